//! walkerd's benchmarks, measured side by side in one run against one database server.
//!
//! `cargo bench -p walkerd-server --bench walkers` starts a database server (`secantusd-rs`, or
//! `MONGODB_URI` when set) and one real `walkerd` process, then prints:
//!
//! 1. walker throughput over HTTP at concurrency 16 and 64 for `touch`, `add_item` and
//!    `list_items`, next to a ceiling: a raw driver loop sending the MongoDB operations each
//!    walker needs, at the same concurrency, on documents of the same shape;
//! 2. database commands per request of each demo walker, from walkerd's own
//!    `walkerd_database_commands_total`, next to the fewest the design allows;
//! 3. a hot node: 64 concurrent `touch` on one user against one client in series;
//! 4. fan-out: the latency of adding an edge and of reading a page of 50 edges on a node with
//!    1k, 10k and 200k edges: one edge set paged over HTTP and from the store, and the page of
//!    a whole listing (which reads every edge of the node);
//! 5. the walkerd process's resident memory, idle and under load at concurrency 64.
//!
//! `WALKERD_BENCH_SECS` sets each timed phase (default 5); `WALKERD_BENCH_FANOUT` the edge
//! counts of 4 (default `1000,10000,200000`). Figures are for the machine they ran on; the
//! ratios are what carries over. BENCHMARKS.md holds the figures and how they were made.

use std::future::Future;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use serde_json::{json, Value};
use walkerd_check::{Event, Live, Op, RunConfig, User, Workload};
use walkerd_graph::bson::doc;
use walkerd_graph::{EdgeKind, NodeId, NodeKind, Store, StoreError, StoreSettings};
use walkerd_load::metrics::{self, ServerCounters};
use walkerd_load::report::Latency;
use walkerd_testkit::raw::RawGraph;
use walkerd_testkit::TestDb;

const USERS: usize = 64;

fn phase() -> Duration {
    let secs = std::env::var("WALKERD_BENCH_SECS").ok().and_then(|s| s.parse().ok());
    Duration::from_secs_f64(secs.unwrap_or(5.0))
}

fn fan_out_sizes() -> Vec<usize> {
    let text = std::env::var("WALKERD_BENCH_FANOUT").unwrap_or("1000,10000,200000".into());
    text.split(',').map(|n| n.trim().parse().expect("WALKERD_BENCH_FANOUT: numbers")).collect()
}

/// One real walkerd process on the bench's database, killed when dropped.
struct Walkerd {
    child: Child,
    base: String,
}

impl Walkerd {
    async fn start(db: &TestDb) -> Walkerd {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(env!("CARGO_BIN_EXE_walkerd"))
            .env("MONGODB_URI", &db.uri)
            .env("WALKERD_DB_NAME", &db.name)
            .env("WALKERD_BIND", format!("127.0.0.1:{port}"))
            .env("WALKERD_JWT_SECRET", "bench-secret-that-is-at-least-32-bytes")
            .env("WALKERD_AUTH_RATE_PER_ADDRESS", "0")
            .env("WALKERD_AUTH_RATE_PER_USERNAME", "0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("starting walkerd");
        let walkerd = Walkerd { child, base: format!("http://127.0.0.1:{port}") };
        let http = reqwest::Client::new();
        for _ in 0..300 {
            let ready = http.get(format!("{}/healthz/ready", walkerd.base)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return walkerd;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("walkerd did not become ready");
    }

    /// Resident memory in MiB, from /proc.
    fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()));
        let status = status.expect("reading the process status");
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("a VmRSS line");
        let kib: f64 = line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap();
        kib / 1024.0
    }

    fn metrics_url(&self) -> Vec<String> {
        vec![format!("{}/metrics", self.base)]
    }
}

impl Drop for Walkerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `op` from `clients` tasks for the phase; returns operations per second.
async fn raw_rate<F, Fut>(clients: usize, op: F) -> f64
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let until = Instant::now() + phase();
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut done = 0u64;
                let mut turn = client;
                while Instant::now() < until {
                    op(turn).await;
                    done += 1;
                    turn = turn.wrapping_add(clients);
                }
                done
            })
        })
        .collect();
    let mut done = 0;
    for task in tasks {
        done += task.await.unwrap();
    }
    done as f64 / started.elapsed().as_secs_f64()
}

/// Runs one walker closed-loop for the phase; the answers and the server's counts over it.
async fn walker_phase(
    server: &Walkerd,
    workload: &Workload,
    users: &[User],
    op: Op,
    clients: usize,
) -> (Vec<Event>, f64, ServerCounters) {
    let before = metrics::read(workload, &server.metrics_url()).await.unwrap();
    let config = RunConfig {
        clients,
        requests: u64::MAX,
        duration: Some(phase()),
        mix: vec![(op, 1)],
        ..RunConfig::default()
    };
    let started = Instant::now();
    let history = workload.run_live(users, &config, &Arc::new(Live::default())).await;
    let seconds = started.elapsed().as_secs_f64();
    let after = metrics::read(workload, &server.metrics_url()).await.unwrap();
    // Counted, not asserted: a 409 after the replays ran out is a legitimate answer under
    // contention, and the rate counts only requests that applied.
    let ok = history.events.iter().filter(|e| e.outcome.is_ok()).count();
    let not_ok = history.events.len() - ok;
    if not_ok > 0 {
        eprintln!(
            "  ({} {clients} clients: {not_ok} of {} not ok)",
            op.walker(),
            history.events.len()
        );
    }
    (history.events, ok as f64 / seconds, after.since(&before))
}

async fn seed(workload: &Workload, users: &[User], items: usize) {
    for user in users {
        for n in 0..items {
            let body = json!({ "name": format!("seed{n}") });
            post_ok(workload, user, "/walker/add_item", &body).await;
        }
        post_ok(workload, user, "/walker/touch", &json!({})).await;
    }
}

async fn post_ok(workload: &Workload, user: &User, path: &str, body: &Value) -> Value {
    let timeout = Duration::from_secs(60);
    let (status, answer) =
        workload.post(path, Some(&user.token), None, body, timeout).await.unwrap();
    assert!((200..300).contains(&status), "{path}: {status} {answer}");
    answer
}

/// Benchmark 1: walkers over HTTP against the raw loop, at concurrency 16 and 64.
async fn throughput(server: &Walkerd, workload: &Workload, users: &[User], store: &Store) {
    println!("\n1. walker throughput against the raw driver loop ({:?} a phase)", phase());
    println!("{:<11} {:>4} {:>10} {:>10} {:>7}", "walker", "c", "walker/s", "ceiling/s", "ratio");
    let mut raw = Vec::new();
    for _ in 0..USERS {
        let graph = RawGraph::create(store.database()).await;
        for _ in 0..5 {
            graph.add_item().await;
        }
        graph.add_counter().await;
        raw.push(graph);
    }
    let raw = Arc::new(raw);
    // add_item last: it grows the item lists the other two read.
    for op in [Op::Touch, Op::ListItems, Op::AddItem] {
        for clients in [16, 64] {
            let (_, walker, _) = walker_phase(server, workload, users, op, clients).await;
            let graphs = raw.clone();
            let ceiling = raw_rate(clients, move |turn| {
                let graphs = graphs.clone();
                async move {
                    let graph = &graphs[turn % graphs.len()];
                    match op {
                        Op::Touch => graph.touch_loading_items().await,
                        Op::ListItems => drop(graph.list_items().await),
                        _ => graph.add_item().await,
                    }
                }
            })
            .await;
            let ratio = walker / ceiling;
            println!(
                "{:<11} {clients:>4} {walker:>10.0} {ceiling:>10.0} {ratio:>7.2}",
                op.walker()
            );
        }
    }
}

/// Benchmark 2: database commands per request of each walker, serial on one quiet user.
async fn round_trips(server: &Walkerd, workload: &Workload, user: &User) {
    println!("\n2. database commands per request (200 serial requests each)");
    println!("{:<13} {:>9} {:>8}", "walker", "commands", "fewest");
    // The fewest the walkers' own reads and writes allow, with nodes and edge sets in two
    // collections: add_item inserts the node and adds its edge; list_items and read_counter list
    // the edges and load their targets; count_up does the same, then increments; touch lists and
    // loads the items and the counter, then writes the counter. The spawn node (the root) is not
    // read, since none of them looks at it.
    let cases =
        [("add_item", 2), ("touch", 5), ("list_items", 2), ("count_up", 3), ("read_counter", 2)];
    for (walker, fewest) in cases {
        let path = format!("/walker/{walker}");
        post_ok(workload, user, &path, &json!({})).await;
        let before = metrics::read(workload, &server.metrics_url()).await.unwrap();
        for _ in 0..200 {
            post_ok(workload, user, &path, &json!({})).await;
        }
        let after = metrics::read(workload, &server.metrics_url()).await.unwrap();
        let per_request = after.since(&before).database_commands / 200.0;
        println!("{walker:<13} {per_request:>9.2} {fewest:>8}");
    }
}

/// Benchmark 3: many clients on one counter against one client alone.
async fn hot_node(server: &Walkerd, workload: &Workload, user: &User) {
    println!("\n3. hot node: touch on one user's counter");
    println!("{:<10} {:>8} {:>10} {:>9}", "clients", "req/s", "replays/req", "p99 ms");
    let mut serial_rate = 0.0;
    for clients in [1, 64] {
        let users = std::slice::from_ref(user);
        let (events, rate, counters) =
            walker_phase(server, workload, users, Op::Touch, clients).await;
        let replays = counters.replays / events.len() as f64;
        let p99 = Latency::of_events(&events).p99_ms;
        println!("{clients:<10} {rate:>8.0} {replays:>10.3} {p99:>9.1}");
        if clients == 1 {
            serial_rate = rate;
        } else {
            println!("ratio 64 clients / 1 client: {:.2}", rate / serial_rate);
        }
    }
}

/// Adds `count` edges from `parent` to new `Item` nodes, 2,000 to a commit (one transaction
/// each, which fills and seals buckets as it goes).
async fn grow(store: &Store, root: &NodeId, parent: &NodeId, count: usize) {
    for first in (0..count).step_by(2000) {
        let size = 2000.min(count - first);
        store
            .run(root, |work| {
                let parent = parent.clone();
                async move {
                    work.load(&parent).await?;
                    for _ in 0..size {
                        let item = NodeKind::new("Item").unwrap();
                        let id = work.create(item, doc! { "name": "fan" })?;
                        work.connect(&parent, &id, EdgeKind::generic(), doc! {})?;
                    }
                    Ok::<_, StoreError>(())
                }
                .boxed()
            })
            .await
            .expect("growing the fan-out");
    }
}

/// Median and p99 of `samples` calls of `call`, in milliseconds.
async fn time_calls<F, Fut>(samples: usize, mut call: F) -> (f64, f64)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut took = Vec::with_capacity(samples);
    for _ in 0..samples {
        let started = Instant::now();
        call().await;
        took.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    took.sort_by(f64::total_cmp);
    (took[samples / 2], took[(samples * 99 / 100).min(samples - 1)])
}

/// Benchmark 4: adding an edge and reading a page of 50 on nodes with many edges.
async fn fan_out(workload: &Workload, user: &User, store: &Store) {
    println!("\n4. fan-out: one node with many edges (median / p99 ms of 50 calls each)");
    println!(
        "{:>8} {:>16} {:>18} {:>18} {:>18}",
        "edges", "add edge (HTTP)", "set page (HTTP)", "set page (store)", "listing (HTTP)"
    );
    let root = NodeId::parse(&user.root_id).unwrap();
    let http = reqwest::Client::new();
    for size in fan_out_sizes() {
        let parent = create_child(workload, user, &user.root_id).await;
        let parent_id = NodeId::parse(&parent).unwrap();
        let built = Instant::now();
        grow(store, &root, &parent_id, size).await;
        eprintln!("  ({size} edges built in {:.0} s)", built.elapsed().as_secs_f64());

        let add = time_calls(50, || async { drop(create_child(workload, user, &parent).await) });
        let add = add.await;
        let edges = format!("{}/graph/nodes/{parent}/edges", workload.targets()[0]);
        let page = |url: String| {
            let (http, token) = (&http, &user.token);
            async move {
                let response = http.get(&url).bearer_auth(token).send().await.unwrap();
                assert!(response.status().is_success(), "{}", response.status());
                let page: Value = response.json().await.unwrap();
                assert_eq!(page["data"]["edges"].as_array().map(Vec::len), Some(50), "{page}");
            }
        };
        let set_url = format!("{edges}?kind=Edge&target_kind=Item&limit=50");
        let set_page = time_calls(50, || page(set_url.clone())).await;
        let (edge, item) = (EdgeKind::generic(), NodeKind::new("Item").unwrap());
        let store_page = time_calls(50, || async {
            let page = store.page_edges(&parent_id, &edge, &item, None, 50).await.unwrap();
            assert_eq!(page.edges.len(), 50);
        })
        .await;
        let listing = time_calls(50, || page(format!("{edges}?limit=50"))).await;
        let cell = |(p50, p99): (f64, f64)| format!("{p50:>8.2} / {p99:>7.2}");
        println!(
            "{size:>8} {:>16} {:>18} {:>18} {:>18}",
            cell(add),
            cell(set_page),
            cell(store_page),
            cell(listing)
        );
    }
}

async fn create_child(workload: &Workload, user: &User, parent: &str) -> String {
    let path = format!("/graph/nodes/{parent}/children");
    let body = json!({ "kind": "Item", "fields": { "name": "added" } });
    let answer = post_ok(workload, user, &path, &body).await;
    answer["data"]["id"].as_str().expect("the new child's id").to_owned()
}

/// Benchmark 5, memory: the walkerd process just started, idle after the other benchmarks,
/// and at its peak under a mixed load at concurrency 64.
async fn memory(server: &Walkerd, workload: &Workload, users: &[User], fresh: f64) {
    println!("\n5. walkerd resident memory");
    let idle = server.rss_mib();
    let config = RunConfig {
        clients: 64,
        requests: u64::MAX,
        duration: Some(phase()),
        mix: vec![(Op::AddItem, 1), (Op::Touch, 2), (Op::CountUp, 1), (Op::ListItems, 2)],
        ..RunConfig::default()
    };
    let live = Arc::new(Live::default());
    let load = workload.run_live(users, &config, &live);
    let mut load = std::pin::pin!(load);
    let mut peak = idle;
    let history = loop {
        tokio::select! {
            history = &mut load => break history,
            _ = tokio::time::sleep(Duration::from_millis(100)) => peak = peak.max(server.rss_mib()),
        }
    };
    let requests = history.events.len();
    println!("just started: {fresh:.1} MiB; idle after the benchmarks above: {idle:.1} MiB");
    println!("under load (64 clients, {requests} requests): peak {peak:.1} MiB");
}

#[tokio::main]
async fn main() {
    let db = TestDb::new("bench_walkers");
    let server = Walkerd::start(&db).await;
    let store = Store::connect(&db.uri, &db.name, StoreSettings::default()).await.unwrap();
    let workload = Workload::new(vec![server.base.clone()]);
    println!("walkerd benchmarks: one walkerd process, database {}", db.uri);

    let fresh = server.rss_mib();
    let users = workload.register_users("bench", USERS).await.unwrap();
    seed(&workload, &users, 5).await;

    throughput(&server, &workload, &users, &store).await;
    let quiet = workload.register_users("quiet", 2).await.unwrap();
    seed(&workload, &quiet, 5).await;
    round_trips(&server, &workload, &quiet[0]).await;
    hot_node(&server, &workload, &quiet[1]).await;
    memory(&server, &workload, &users, fresh).await;
    let fan = workload.register_users("fan", 1).await.unwrap();
    fan_out(&workload, &fan[0], &store).await;
    db.drop_database().await;
}
