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

use futures::{FutureExt, TryStreamExt};
use mongodb::bson::{doc, Bson, Document};
use mongodb::Collection;
use walkerd_graph::{EdgeKind, NodeId, NodeKind, Store, StoreError, StoreSettings};
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

/// Edges added by the raw loop so far, to fill buckets of 100 like the store does.
static RAW_ADDED: AtomicU64 = AtomicU64::new(0);

/// The same operations as [`store_add_item`], issued directly: an insert, then an `$addToSet`
/// on a bucket of at most 100 entries.
async fn raw_add_item(nodes: Collection<Document>, edges: Collection<Document>, root: String) {
    let id = NodeId::new().to_string();
    let node = doc! { "_id": &id, "root": &root, "kind": "Item", "fields": { "name": "bench" },
    "_v": 1_i64 };
    nodes.insert_one(node).await.unwrap();
    let bucket = RAW_ADDED.fetch_add(1, Ordering::Relaxed) / 100;
    let head = format!("{root}|raw|Item|{bucket}");
    let entry = doc! { "id": NodeId::new().to_string(), "t": &id };
    let update = doc! {
        "$addToSet": { "entries": entry },
        "$inc": { "n": 1, "v": 1_i64 },
        "$setOnInsert": { "node": &root, "ek": "raw", "tk": "Item" },
    };
    edges.update_one(doc! { "_id": head }, update).upsert(true).await.unwrap();
}

/// The same operations as [`store_touch`], issued directly, retrying on a stale version.
async fn raw_touch(nodes: Collection<Document>, edges: Collection<Document>, root: String) {
    loop {
        let filter = doc! { "node": &root, "ek": "raw", "tk": "Item" };
        let _: Vec<Document> = edges.find(filter).await.unwrap().try_collect().await.unwrap();
        let filter = doc! { "node": &root, "ek": "raw", "tk": "Counter" };
        let sets: Vec<Document> = edges.find(filter).await.unwrap().try_collect().await.unwrap();
        let target = sets[0].get_array("entries").unwrap()[0].as_document().unwrap();
        let id = target.get_str("t").unwrap().to_owned();
        let ids: Vec<Bson> = vec![id.clone().into()];
        let node = nodes.find(doc! { "_id": { "$in": ids } }).await.unwrap();
        let node: Vec<Document> = node.try_collect().await.unwrap();
        let (v, value) = (node[0].get_i64("_v").unwrap(), node[0].get_document("fields").unwrap());
        let value = value.get_i64("value").unwrap();
        let update = doc! { "$set": { "fields.value": value + 1 }, "$inc": { "_v": 1_i64 } };
        let result = nodes.update_one(doc! { "_id": &id, "_v": v }, update).await.unwrap();
        if result.matched_count == 1 {
            return;
        }
    }
}

#[tokio::main]
async fn main() {
    let db = TestDb::new("bench_commit");
    let store = Store::connect(&db.uri, &db.name, StoreSettings::default()).await.unwrap();
    store.ensure_indexes().await.unwrap();
    let nodes = store.database().collection::<Document>("nodes");
    let edges = store.database().collection::<Document>("edges");

    println!(
        "commit throughput, {CONCURRENCY} clients on one graph, {:?} per phase",
        phase_length()
    );
    println!("{:<10} {:>12} {:>12} {:>8}", "shape", "store/s", "raw/s", "ratio");

    let (s, r) = (store.clone(), store.create_root().await.unwrap());
    let walker = measure(move || store_add_item(s.clone(), r.clone())).await;
    let (n, e, r) = (nodes.clone(), edges.clone(), store.create_root().await.unwrap().to_string());
    let raw = measure(move || raw_add_item(n.clone(), e.clone(), r.clone())).await;
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

    let raw_root = store.create_root().await.unwrap().to_string();
    for _ in 0..5 {
        raw_add_item(nodes.clone(), edges.clone(), raw_root.clone()).await;
    }
    let counter_id = NodeId::new().to_string();
    let node = doc! { "_id": &counter_id, "root": &raw_root, "kind": "Counter",
    "fields": { "value": 0_i64 }, "_v": 1_i64 };
    nodes.insert_one(node).await.unwrap();
    let head = doc! { "_id": format!("{raw_root}|raw|Counter"), "node": &raw_root, "ek": "raw",
    "tk": "Counter", "entries": [ { "id": "x", "t": &counter_id } ] };
    edges.insert_one(head).await.unwrap();
    let (n, e, r) = (nodes.clone(), edges.clone(), raw_root.clone());
    let raw = measure(move || raw_touch(n.clone(), e.clone(), r.clone())).await;
    println!("{:<10} {walker:>12.0} {raw:>12.0} {:>8.2}", "touch", walker / raw);
    db.drop_database().await;
}
