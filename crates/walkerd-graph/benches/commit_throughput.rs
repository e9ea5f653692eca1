//! Commit throughput of the store against a raw driver loop that sends the same MongoDB
//! operations, side by side on one database server, at concurrency 16.
//!
//! `cargo bench -p walkerd-graph --bench commit_throughput` (uses `MONGODB_URI` when set,
//! otherwise starts `secantusd-rs`). `WALKERD_BENCH_SECS` sets each phase's length (default 5).
//!
//! Shapes, all 16 clients on one user's graph:
//! - add-item: insert a node, add an edge from the root (`$addToSet` on the set's head);
//! - touch: list the root's items and counters, load the counter, write `value + 1` conditional
//!   on its version, replaying on conflict.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use mongodb::bson::doc;
use walkerd_graph::{EdgeKind, NodeId, NodeKind, Store, StoreError, StoreSettings};
use walkerd_testkit::raw::RawGraph;
use walkerd_testkit::TestDb;

const CONCURRENCY: usize = 16;

fn phase_length() -> Duration {
    let secs = std::env::var("WALKERD_BENCH_SECS").ok().and_then(|s| s.parse().ok());
    Duration::from_secs_f64(secs.unwrap_or(5.0))
}

/// Runs `op` from 16 tasks for the phase length; returns completed operations per second.
async fn measure<F, Fut>(op: F) -> f64
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + phase_length();
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (op, done) = (op.clone(), done.clone());
            tokio::spawn(async move {
                while Instant::now() < until {
                    op().await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn item() -> NodeKind {
    NodeKind::new("Item").unwrap()
}

fn counter() -> NodeKind {
    NodeKind::new("Counter").unwrap()
}

async fn store_add_item(store: Store, root: NodeId) {
    store
        .run(&root, |work| {
            async move {
                let root = work.root().clone();
                let id = work.create(item(), doc! { "name": "bench" })?;
                work.connect(&root, &id, EdgeKind::generic(), doc! {})?;
                Ok::<_, StoreError>(())
            }
            .boxed()
        })
        .await
        .unwrap();
}

async fn store_touch(store: Store, root: NodeId) {
    store
        .run(&root, |work| {
            async move {
                let root = work.root().clone();
                let kind = EdgeKind::generic();
                work.children(&root, Some(&kind), Some(&item())).await?;
                let counters = work.children(&root, Some(&kind), Some(&counter())).await?;
                let c = counters.first().expect("the bench creates the counter first");
                let value = c.fields.get_i64("value").unwrap_or(0);
                work.set(&c.id.clone(), "value", value + 1)?;
                Ok::<_, StoreError>(())
            }
            .boxed()
        })
        .await
        .unwrap();
}

#[tokio::main]
async fn main() {
    let db = TestDb::new("bench_commit");
    let store = Store::connect(&db.uri, &db.name, StoreSettings::default()).await.unwrap();
    store.ensure_indexes().await.unwrap();

    println!(
        "commit throughput, {CONCURRENCY} clients on one graph, {:?} per phase",
        phase_length()
    );
    println!("{:<10} {:>12} {:>12} {:>8}", "shape", "store/s", "raw/s", "ratio");

    let (s, r) = (store.clone(), store.create_root().await.unwrap());
    let walker = measure(move || store_add_item(s.clone(), r.clone())).await;
    let graph = Arc::new(RawGraph::create(store.database()).await);
    let raw = measure(move || {
        let graph = graph.clone();
        async move { graph.add_item().await }
    })
    .await;
    println!("{:<10} {walker:>12.0} {raw:>12.0} {:>8.2}", "add-item", walker / raw);

    // Each touch graph gets a counter and a few items first.
    let root = store.create_root().await.unwrap();
    for _ in 0..5 {
        store_add_item(store.clone(), root.clone()).await;
    }
    let mut work = store.begin(&root);
    let c = work.create(counter(), doc! { "value": 0_i64 }).unwrap();
    work.connect(&root, &c, EdgeKind::generic(), doc! {}).unwrap();
    work.commit().await.unwrap();
    let (s, r) = (store.clone(), root.clone());
    let walker = measure(move || store_touch(s.clone(), r.clone())).await;

    let graph = RawGraph::create(store.database()).await;
    for _ in 0..5 {
        graph.add_item().await;
    }
    graph.add_counter().await;
    let graph = Arc::new(graph);
    let raw = measure(move || {
        let graph = graph.clone();
        async move { graph.touch().await }
    })
    .await;
    println!("{:<10} {walker:>12.0} {raw:>12.0} {:>8.2}", "touch", walker / raw);
    db.drop_database().await;
}
