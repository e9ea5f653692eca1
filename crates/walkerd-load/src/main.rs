//! `walkerd-load`: see the crate documentation ([`walkerd_load`]) and `walkerd-load --help`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use walkerd_check::{check, Database, Live, RunConfig, User, Workload};
use walkerd_load::metrics::{self, ServerCounters};
use walkerd_load::mix::{parse_duration, parse_mix};
use walkerd_load::plot;
use walkerd_load::progress::{Length, Progress};
use walkerd_load::report::{Context, Report, Verdict};

/// Drives walkers against walkerd, reports throughput and latency, and checks that nothing
/// acknowledged was lost. Exits 1 when the checker finds a violation, 2 when the run could not
/// be made.
#[derive(Parser)]
#[command(name = "walkerd-load", version, about)]
struct Args {
    /// Base URL of a walkerd replica or load balancer; repeat for several (round-robin).
    #[arg(long = "target", required = true)]
    targets: Vec<String>,
    /// Users to register and spread requests over.
    #[arg(long, default_value_t = 10)]
    users: usize,
    /// Requests in all [default: 5000 unless --duration is given].
    #[arg(long)]
    requests: Option<u64>,
    /// How long to send requests, such as 30s or 2m (with --requests, whichever ends first).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Closed loop: concurrent clients. Open loop (--rate): most requests in flight.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Open loop: requests per second, latency counted from when each request was due.
    #[arg(long)]
    rate: Option<f64>,
    /// Walker weights, as add_item=1,touch=4,list_items=5.
    #[arg(long, default_value = "add_item=1,touch=2,count_up=1,list_items=1")]
    mix: String,
    /// Send an Idempotency-Key with each change and retry unknown outcomes with it.
    #[arg(long)]
    idempotent: bool,
    /// Also check edges and versions in the database directly.
    #[arg(long, env = "MONGODB_URI", hide_env_values = true)]
    mongodb_uri: Option<String>,
    #[arg(long, env = "WALKERD_DB_NAME", default_value = "walkerd")]
    db_name: String,
    /// A replica's /metrics URL to read conflicts and replays from; repeat for each replica
    /// [default: <target>/metrics for each target].
    #[arg(long = "metrics-url")]
    metrics_urls: Vec<String>,
    /// Write the report as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Draw latency percentiles and throughput over time to this SVG file.
    #[arg(long)]
    plot: Option<std::path::PathBuf>,
    /// Seconds to wait for the targets to answer before starting.
    #[arg(long, default_value_t = 120)]
    wait_secs: u64,
}

impl Args {
    fn pacing(&self) -> String {
        match self.rate {
            Some(rate) => {
                format!("open loop at {rate} req/s, at most {} in flight", self.concurrency)
            }
            None => format!("closed loop, {} clients", self.concurrency),
        }
    }

    fn check_values(&self) -> Result<(), String> {
        if self.users == 0 || self.concurrency == 0 {
            return Err("--users and --concurrency must be at least 1".into());
        }
        if self.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
            return Err("--rate must be a positive number of requests per second".into());
        }
        if self.requests == Some(0) {
            return Err("--requests must be at least 1".into());
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let mix = match parse_mix(&args.mix) {
        Ok(mix) => mix,
        Err(e) => return fail(&format!("--mix: {e}")),
    };
    if let Err(e) = args.check_values() {
        return fail(&e);
    }
    let workload = Workload::new(args.targets.clone());
    let users = match register(&workload, &args).await {
        Ok(users) => users,
        Err(e) => return fail(&format!("registering users: {e}")),
    };

    let metrics_urls = if args.metrics_urls.is_empty() {
        args.targets.iter().map(|t| format!("{}/metrics", t.trim_end_matches('/'))).collect()
    } else {
        args.metrics_urls.clone()
    };
    let before = metrics::read(&workload, &metrics_urls).await;

    let requests = args.requests.or(args.duration.is_none().then_some(5000));
    let config = RunConfig {
        clients: args.concurrency,
        requests: requests.unwrap_or(u64::MAX),
        rate: args.rate,
        duration: args.duration,
        mix,
        idempotent_retries: args.idempotent,
        ..RunConfig::default()
    };
    let live = Arc::new(Live::default());
    let progress = Progress::start(live.clone(), Length { requests, duration: args.duration });
    let began = Instant::now();
    let history = workload.run_live(&users, &config, &live).await;
    let elapsed = began.elapsed();
    progress.finish();

    let server = server_counters(before, metrics::read(&workload, &metrics_urls).await);
    let database = args.mongodb_uri.clone().map(|uri| Database { uri, name: args.db_name.clone() });
    let checker = Verdict::of(check(&workload, &users, &history, database.as_ref()).await);
    let context = Context {
        pacing: args.pacing(),
        targets: args.targets.clone(),
        users: users.len(),
        elapsed,
        server,
        checker,
    };
    let report = Report::new(&history, context);
    print!("{}", report.to_text());
    if let Err(e) = write_outputs(&args, &report) {
        return fail(&e);
    }
    match (report.checker.passed(), report.checker.checked) {
        (true, _) => ExitCode::SUCCESS,
        (false, true) => ExitCode::from(1),
        (false, false) => ExitCode::from(2),
    }
}

/// Registers the users, retrying until the targets answer (they may still be starting).
async fn register(workload: &Workload, args: &Args) -> Result<Vec<User>, String> {
    let prefix = format!("load-{}-{}-", std::process::id(), run_suffix());
    let started = Instant::now();
    loop {
        match workload.register_users(&prefix, args.users).await {
            Ok(users) => return Ok(users),
            Err(e) if started.elapsed() < Duration::from_secs(args.wait_secs) => {
                eprintln!("walkerd-load: waiting for the targets: {e}");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// A few characters that differ between runs, so reruns never reuse a username.
fn run_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{nanos:08x}")
}

fn server_counters(
    before: Result<ServerCounters, String>,
    after: Result<ServerCounters, String>,
) -> Result<ServerCounters, String> {
    Ok(after?.since(&before?))
}

fn write_outputs(args: &Args, report: &Report) -> Result<(), String> {
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
        std::fs::write(path, json + "\n")
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        std::fs::write(path, plot::svg(report))
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(())
}

fn fail(message: &str) -> ExitCode {
    eprintln!("walkerd-load: {message}");
    ExitCode::from(2)
}
