//! The race suite: several real walkerd replicas on one database, many clients, faults, and a
//! checker that holds the final graph to what every client was told.
//!
//! Each scenario sends `WALKERD_RACE_REQUESTS` requests (default 2,000; set 20,000 or more for
//! the full-size run) from 64 clients spread round-robin over 4 replicas. Scenarios that kill
//! the database or put a proxy in front of it start their own database server; the others use
//! `MONGODB_URI` when it is set. Scenarios run one at a time: the machine has two cores.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::cluster::{start_proxy, Replica};
use tokio::sync::Mutex;
use walkerd_check::{check, summary, Database, History, Op, RunConfig, Violation, Workload};
use walkerd_testkit::{DbServer, TestDb};

static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

const SECRET: &str = "race-suite-secret-that-is-long-enough";

#[derive(Clone, Copy, PartialEq)]
enum Fault {
    None,
    KillReplicas,
    KillDatabase,
    Proxy,
}

struct Scenario {
    name: &'static str,
    fault: Fault,
    users: usize,
    mix: Vec<(Op, u32)>,
    idempotent: bool,
}

impl Scenario {
    fn mixed(name: &'static str, fault: Fault) -> Scenario {
        let mix = vec![(Op::AddItem, 2), (Op::Touch, 3), (Op::CountUp, 2), (Op::ListItems, 2)];
        Scenario { name, fault, users: 10, mix, idempotent: false }
    }
}

fn requests() -> u64 {
    std::env::var("WALKERD_RACE_REQUESTS").ok().and_then(|r| r.parse().ok()).unwrap_or(2000)
}

/// The database a scenario uses, kept alive for its length.
enum Db {
    Own(DbServer),
    Shared(TestDb),
}

/// Runs a scenario; returns its history and the checker's verdict.
async fn run(scenario: Scenario) -> (History, Vec<Violation>) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let own_server = matches!(scenario.fault, Fault::KillDatabase | Fault::Proxy);
    let db_name = format!("race_{}", scenario.name);
    let db = if own_server {
        Db::Own(DbServer::start_durable())
    } else {
        Db::Shared(TestDb::new(&db_name))
    };
    let (direct_uri, db_name) = match &db {
        Db::Own(server) => (server.uri(), db_name),
        Db::Shared(test_db) => (test_db.uri.clone(), test_db.name.clone()),
    };
    let replica_uri = match (&db, scenario.fault) {
        (Db::Own(server), Fault::Proxy) => {
            let max_delay = Duration::from_millis(3);
            let port = start_proxy(server.port(), max_delay, Duration::from_secs(2)).await;
            format!("mongodb://127.0.0.1:{port}/?directConnection=true")
        }
        _ => direct_uri.clone(),
    };
    let db = Arc::new(std::sync::Mutex::new(db));
    shorten_abandoned_transactions(&direct_uri).await;

    let env = vec![
        ("MONGODB_URI".to_owned(), replica_uri),
        ("WALKERD_DB_NAME".to_owned(), db_name.clone()),
        ("WALKERD_JWT_SECRET".to_owned(), SECRET.to_owned()),
        ("WALKERD_WORKERS".to_owned(), "2".to_owned()),
        ("WALKERD_IDEMPOTENCY_CLAIM_SECS".to_owned(), "2".to_owned()),
    ];
    let replicas: Vec<Replica> = (0..4).map(|_| Replica::start(env.clone())).collect();
    let workload = Workload::new(replicas.iter().map(Replica::url).collect());
    let users = workload.register_users(&format!("{}-", scenario.name), scenario.users).await;
    let users = users.expect("registering the users");
    let replicas = Arc::new(std::sync::Mutex::new(replicas));

    let config = RunConfig {
        requests: requests(),
        mix: scenario.mix.clone(),
        idempotent_retries: scenario.idempotent,
        retry_for: Duration::from_secs(120),
        ..RunConfig::default()
    };
    let running = Arc::new(AtomicBool::new(true));
    let faults = tokio::task::spawn_blocking({
        let (running, replicas, db) = (running.clone(), replicas.clone(), db.clone());
        let first = workload.clone();
        move || inject(scenario.fault, &running, &replicas, &db, &first)
    });
    let history = workload.run(&users, &config).await;
    running.store(false, Ordering::SeqCst);
    let saw_not_ready = faults.await.unwrap();
    if scenario.fault == Fault::KillDatabase {
        assert!(saw_not_ready, "readiness never went false while the database was down");
    }

    let database = Database { uri: direct_uri, name: db_name };
    let violations = check(&workload, &users, &history, Some(&database)).await.unwrap();
    drop(replicas);
    (history, violations)
}

/// A replica killed inside a transaction leaves it open on the server, holding its documents
/// until the server's `transactionLifetimeLimitSeconds` (60 s by default) runs out. walkerd's
/// transactions last milliseconds; the README recommends a few seconds, and so does this suite.
/// Best effort: a shared server may not allow it.
async fn shorten_abandoned_transactions(uri: &str) {
    let client = mongodb::Client::with_uri_str(uri).await.unwrap();
    let command = mongodb::bson::doc! { "setParameter": 1, "transactionLifetimeLimitSeconds": 5 };
    if let Err(e) = client.database("admin").run_command(command).await {
        println!("could not shorten transactionLifetimeLimitSeconds: {e}");
    }
}

/// Breaks things while the workload runs. Returns whether readiness was seen going false.
fn inject(
    fault: Fault,
    running: &AtomicBool,
    replicas: &std::sync::Mutex<Vec<Replica>>,
    db: &std::sync::Mutex<Db>,
    workload: &Workload,
) -> bool {
    let mut saw_not_ready = false;
    let mut round = 0;
    while running.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_secs(2));
        if !running.load(Ordering::SeqCst) {
            break;
        }
        match fault {
            Fault::KillReplicas => {
                let mut replicas = replicas.lock().unwrap();
                let n = replicas.len();
                replicas[round % n].restart();
            }
            Fault::KillDatabase if round == 0 => {
                if let Db::Own(server) = &mut *db.lock().unwrap() {
                    // Down for longer than the driver waits to select a server (5 s), so that
                    // requests in the meantime are answered 503 rather than merely delayed.
                    let killed = std::time::Instant::now();
                    server.kill();
                    saw_not_ready = wait_not_ready(workload);
                    std::thread::sleep(Duration::from_secs(7).saturating_sub(killed.elapsed()));
                    server.restart();
                }
            }
            _ => {}
        }
        round += 1;
    }
    saw_not_ready
}

/// Polls a replica's readiness until it answers 503 (within ten seconds).
fn wait_not_ready(workload: &Workload) -> bool {
    let url = format!("{}/healthz/ready", workload.target());
    let runtime = tokio::runtime::Handle::current();
    let http = reqwest::Client::new();
    for _ in 0..50 {
        let answer = runtime.block_on(http.get(&url).timeout(Duration::from_secs(3)).send());
        if answer.is_ok_and(|r| r.status() == 503) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

fn assert_clean(name: &str, history: &History, violations: &[Violation]) {
    let text = summary(history, violations);
    println!("{name}: {text}");
    assert!(violations.is_empty(), "{name}: {text}");
    let (ok, _, _) = history.tally();
    assert!(ok > history.events.len() / 2, "{name}: too few requests succeeded: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_replicas_and_64_clients_lose_nothing() {
    let (history, violations) = run(Scenario::mixed("plain", Fault::None)).await;
    assert_clean("plain", &history, &violations);
    assert_eq!(history.tally().2, 0, "requests had unknown outcomes with nothing failing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_killed_and_restarted_every_two_seconds_lose_nothing() {
    let (history, violations) = run(Scenario::mixed("kill_replicas", Fault::KillReplicas)).await;
    assert_clean("kill_replicas", &history, &violations);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_killed_mid_run_loses_nothing_acknowledged() {
    let (history, violations) = run(Scenario::mixed("kill_database", Fault::KillDatabase)).await;
    assert_clean("kill_database", &history, &violations);
    let unavailable = history
        .events
        .iter()
        .filter(|e| matches!(&e.outcome, walkerd_check::Outcome::Info(r) if r.contains("503")))
        .count();
    assert!(unavailable > 0, "no request saw the database down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_adding_latency_and_cutting_connections_loses_nothing() {
    let (history, violations) = run(Scenario::mixed("proxy", Fault::Proxy)).await;
    assert_clean("proxy", &history, &violations);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_clients_on_one_hot_node_lose_nothing_and_never_give_up() {
    let scenario =
        Scenario { users: 1, mix: vec![(Op::Touch, 1)], ..Scenario::mixed("hot", Fault::None) };
    let (history, violations) = run(scenario).await;
    assert_clean("hot", &history, &violations);
    assert_eq!(history.failures_with("WRITE_CONFLICT"), 0, "{}", summary(&history, &violations));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_with_idempotency_keys_apply_exactly_once_through_replica_kills() {
    let scenario =
        Scenario { idempotent: true, ..Scenario::mixed("exactly_once", Fault::KillReplicas) };
    let (history, violations) = run(scenario).await;
    assert_clean("exactly_once", &history, &violations);

    // Every request ended with a definite answer (applied, or refused with nothing applied), so
    // the checker's bounds collapse: each acknowledged key counted exactly once, no other.
    let unknown: Vec<String> = history
        .events
        .iter()
        .filter(|e| e.outcome.is_info())
        .map(|e| format!("{} {:?} after {} tries: {:?}", e.id, e.op, e.attempts, e.outcome))
        .collect();
    assert!(unknown.is_empty(), "requests without a definite answer: {unknown:#?}");
    let retried = history.events.iter().filter(|e| e.attempts > 1).count();
    let refused = history.failures_with("WRITE_CONFLICT");
    println!("exactly_once: {retried} requests retried with their key; {refused} refused (409)");
}
