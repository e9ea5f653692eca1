//! Prometheus metrics, served at `GET /metrics`.
//!
//! Route labels are route templates (`/walker/{name}`), never raw paths, and walker labels are
//! only registered walker names, so every label has a small, fixed set of values however many
//! users and nodes there are. The store's transaction counters are read from
//! [`walkerd_graph::StoreStats`] at scrape time.

use std::sync::atomic::Ordering;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use walkerd_graph::{ConflictKind, StoreStats};

pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    in_flight: IntGauge,
    walker_runs: IntCounterVec,
    commit_attempts: IntCounter,
    conflicts: IntCounterVec,
    replays: HistogramVec,
    budget_exhausted: IntCounterVec,
    database_errors: IntCounterVec,
    database_commands: IntCounter,
    transactions: IntCounterVec,
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric");
    registry.register(Box::new(metric.clone())).expect("registered once");
    metric
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let http_requests = counter_vec(
            &registry,
            "walkerd_http_requests_total",
            "HTTP requests by route template, method and status.",
            &["route", "method", "status"],
        );
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "walkerd_http_request_duration_seconds",
                "HTTP request latency by route template and method.",
            )
            .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0]),
            &["route", "method"],
        )
        .expect("a valid metric");
        registry.register(Box::new(http_duration.clone())).expect("registered once");
        let in_flight =
            IntGauge::new("walkerd_http_requests_in_flight", "HTTP requests being served.")
                .expect("a valid metric");
        registry.register(Box::new(in_flight.clone())).expect("registered once");
        let walker_runs = counter_vec(
            &registry,
            "walkerd_walker_runs_total",
            "Walker runs by walker and outcome.",
            &["walker", "outcome"],
        );
        let commit_attempts =
            IntCounter::new("walkerd_commit_attempts_total", "Commit attempts of walker runs.")
                .expect("a valid metric");
        registry.register(Box::new(commit_attempts.clone())).expect("registered once");
        let conflicts = counter_vec(
            &registry,
            "walkerd_commit_conflicts_total",
            "Commit attempts that conflicted, by what they ran into.",
            &["kind"],
        );
        let replays = HistogramVec::new(
            HistogramOpts::new("walkerd_replays_per_request", "Replays of one walker request.")
                .buckets(vec![0.0, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0]),
            &["walker"],
        )
        .expect("a valid metric");
        registry.register(Box::new(replays.clone())).expect("registered once");
        let budget_exhausted = counter_vec(
            &registry,
            "walkerd_replay_budget_exhausted_total",
            "Walker requests answered 409 because replays ran out.",
            &["walker"],
        );
        let database_errors = counter_vec(
            &registry,
            "walkerd_database_errors_total",
            "Requests that failed on the database, by kind.",
            &["kind"],
        );
        // Counted by the driver's command monitor (see `startup::connect`): commands per request
        // is the figure that says whether a walker makes the round trips it should.
        let database_commands = IntCounter::new(
            "walkerd_database_commands_total",
            "Commands sent to the database, by every route and background task.",
        )
        .expect("a valid metric");
        registry.register(Box::new(database_commands.clone())).expect("registered once");
        let transactions = counter_vec(
            &registry,
            "walkerd_transactions_total",
            "Store transactions by outcome (aborts by reason).",
            &["outcome"],
        );
        let build = IntGaugeVec::new(
            Opts::new("walkerd_build_info", "walkerd's version; always 1."),
            &["version"],
        )
        .expect("a valid metric");
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        registry.register(Box::new(build)).expect("registered once");

        Metrics {
            registry,
            http_requests,
            http_duration,
            in_flight,
            walker_runs,
            commit_attempts,
            conflicts,
            replays,
            budget_exhausted,
            database_errors,
            database_commands,
            transactions,
        }
    }

    pub fn request_started(&self) {
        self.in_flight.inc();
    }

    pub fn request_finished(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.in_flight.dec();
        let status = status.to_string();
        self.http_requests.with_label_values(&[route, method, &status]).inc();
        self.http_duration.with_label_values(&[route, method]).observe(seconds);
    }

    /// Records one walker request: its outcome label, attempts and conflicts.
    pub fn walker_run(
        &self,
        walker: &str,
        outcome: &str,
        attempts: u32,
        conflicts: &[ConflictKind],
    ) {
        self.walker_runs.with_label_values(&[walker, outcome]).inc();
        self.commit_attempts.inc_by(u64::from(attempts));
        for kind in conflicts {
            self.conflicts.with_label_values(&[kind.label()]).inc();
        }
        self.replays.with_label_values(&[walker]).observe(f64::from(attempts.saturating_sub(1)));
        if outcome == "write_conflict" {
            self.budget_exhausted.with_label_values(&[walker]).inc();
        }
    }

    /// The counter the driver's command monitor bumps for each command it starts.
    pub fn database_commands(&self) -> IntCounter {
        self.database_commands.clone()
    }

    pub fn database_error(&self, kind: &str) {
        self.database_errors.with_label_values(&[kind]).inc();
    }

    /// The text exposition of every metric, with the store's counters as they are now.
    pub fn render(&self, store: &StoreStats) -> String {
        let read = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        let outcomes = [
            ("committed", read(&store.transactions_committed)),
            ("aborted_transient", read(&store.aborts_transient)),
            ("aborted_stale", read(&store.aborts_stale)),
            ("aborted_unavailable", read(&store.aborts_unavailable)),
            ("aborted_other", read(&store.aborts_other)),
            ("commit_retried_unknown_result", read(&store.commit_retries_unknown_result)),
        ];
        for (outcome, value) in outcomes {
            let counter = self.transactions.with_label_values(&[outcome]);
            counter.inc_by(value.saturating_sub(counter.get()));
        }
        let mut text = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut text).expect("encoding metrics");
        String::from_utf8(text).expect("metrics are UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
