//! `walkerd-load`: registers users, drives a walker mix against one or more walkerd base URLs
//! (round-robin), then checks the final graphs against what every client was told. It exits
//! non-zero when the checker finds a violation, so docker-compose and CI can use it as a test.
//!
//! This is the closed-loop core: a fixed number of clients, each sending its next request when
//! the last one is answered, for a number of requests.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use walkerd_check::{check, summary, Database, Op, RunConfig, Workload};

/// Drives walkers against walkerd and checks that nothing acknowledged was lost.
#[derive(Parser)]
#[command(name = "walkerd-load", version, about)]
struct Args {
    /// Base URL of a walkerd replica or load balancer; repeat for several (round-robin).
    #[arg(long = "target", required = true)]
    targets: Vec<String>,
    /// Users to register and spread requests over.
    #[arg(long, default_value_t = 10)]
    users: usize,
    /// Requests in all.
    #[arg(long, default_value_t = 5000)]
    requests: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Walker weights, as add_item=1,touch=2,count_up=1,list_items=1.
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
    /// Seconds to wait for the targets to answer before starting.
    #[arg(long, default_value_t = 120)]
    wait_secs: u64,
}

fn parse_mix(text: &str) -> Result<Vec<(Op, u32)>, String> {
    text.split(',')
        .map(|part| {
            let (name, weight) =
                part.split_once('=').ok_or(format!("{part:?}: expected name=weight"))?;
            let op = match name.trim() {
                "add_item" => Op::AddItem,
                "touch" => Op::Touch,
                "count_up" => Op::CountUp,
                "list_items" => Op::ListItems,
                other => return Err(format!("unknown walker {other:?}")),
            };
            let weight = weight.trim().parse().map_err(|_| format!("{part:?}: bad weight"))?;
            Ok((op, weight))
        })
        .collect()
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let mix = match parse_mix(&args.mix) {
        Ok(mix) if mix.iter().any(|(_, w)| *w > 0) => mix,
        Ok(_) => return fail("--mix: every weight is zero"),
        Err(e) => return fail(&format!("--mix: {e}")),
    };
    let workload = Workload::new(args.targets.clone());

    // Registration retries until the targets answer (they may still be starting).
    let prefix = format!("load-{}-", std::process::id());
    let started = Instant::now();
    let users = loop {
        match workload.register_users(&prefix, args.users).await {
            Ok(users) => break users,
            Err(e) if started.elapsed() < Duration::from_secs(args.wait_secs) => {
                eprintln!("walkerd-load: waiting for the targets: {e}");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => return fail(&format!("registering users: {e}")),
        }
    };

    let config = RunConfig {
        clients: args.concurrency,
        requests: args.requests,
        mix,
        idempotent_retries: args.idempotent,
        ..RunConfig::default()
    };
    let began = Instant::now();
    let history = workload.run(&users, &config).await;
    let seconds = began.elapsed().as_secs_f64();
    println!(
        "{} requests in {seconds:.1} s: {:.0} req/s",
        history.events.len(),
        history.events.len() as f64 / seconds
    );

    let database = args.mongodb_uri.map(|uri| Database { uri, name: args.db_name.clone() });
    let violations = match check(&workload, &users, &history, database.as_ref()).await {
        Ok(violations) => violations,
        Err(e) => return fail(&format!("checking: {e}")),
    };
    println!("{}", summary(&history, &violations));
    if violations.is_empty() {
        println!("checker: no violation");
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("walkerd-load: {message}");
    ExitCode::from(2)
}
