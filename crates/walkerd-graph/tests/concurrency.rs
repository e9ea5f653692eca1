//! Concurrent runs against a real server: nothing lost, nothing duplicated.

mod common;

use std::future::Future;

use common::*;
use futures::future::join_all;
use futures::FutureExt;
use tokio::task::JoinHandle;
use walkerd_graph::bson::doc;
use walkerd_graph::{NodeId, Store, StoreSettings};

/// Spawns `f(store, root)` on its own task, so runs really execute in parallel.
fn spawn_run<F, Fut, T>(store: &Store, root: &NodeId, f: F) -> JoinHandle<T>
where
    F: FnOnce(Store, NodeId) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    tokio::spawn(f(store.clone(), root.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn items_survive_rounds_of_concurrent_counter_touches() {
    let (db, store) = open_store("items_survive_touches", StoreSettings::default()).await;
    let root = store.create_root().await.unwrap();

    let mut touches_ok = 0;
    for round in 0..5 {
        let name = format!("item-{round}");
        let add = spawn_run(&store, &root, |s, r| async move { add_item(&s, &r, &name).await });
        let touches: Vec<_> = (0..15)
            .map(|_| spawn_run(&store, &root, |s, r| async move { touch(&s, &r).await }))
            .collect();
        add.await.unwrap().expect("add_item failed");
        for outcome in join_all(touches).await {
            if outcome.unwrap().is_ok() {
                touches_ok += 1;
            }
        }
    }

    let expected: Vec<String> = (0..5).map(|r| format!("item-{r}")).collect();
    assert_eq!(item_names(&store, &root).await, expected, "an item was lost");
    assert_eq!(touches_ok, 75, "a touch failed under modest contention");
    assert_eq!(read_counters(&store, &root).await, (1, touches_ok));
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_read_modify_writes_of_one_node_lose_no_increment() {
    let (db, store) = open_store("rmw_one_node", StoreSettings::default()).await;
    let root = store.create_root().await.unwrap();
    let target = store
        .run(&root, |work| {
            async move {
                let root = work.root().clone();
                let id = work.create(counter(), doc! { "value": 0_i64 })?;
                work.connect(&root, &id, edge(), doc! {})?;
                Ok::<_, walkerd_graph::StoreError>(id)
            }
            .boxed()
        })
        .await
        .unwrap()
        .value;

    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let target = target.clone();
            spawn_run(&store, &root, |s, r| async move {
                let mut committed = 0;
                for _ in 0..100 {
                    let outcome = s
                        .run(&r, |work| {
                            let target = target.clone();
                            async move {
                                let node = work.load(&target).await?.expect("target exists");
                                let value = int(node.fields.get("value"));
                                work.set(&target, "value", value + 1)?;
                                Ok::<_, walkerd_graph::StoreError>(())
                            }
                            .boxed()
                        })
                        .await;
                    committed += usize::from(outcome.is_ok());
                }
                committed
            })
        })
        .collect();
    let committed: usize = join_all(tasks).await.into_iter().map(Result::unwrap).sum();

    let mut work = store.begin(&root);
    let node = work.load(&target).await.unwrap().unwrap().clone();
    assert_eq!(committed, 3200, "some runs ran out of replays");
    assert_eq!(int(node.fields.get("value")), 3200);
    assert_eq!(node.version.0, 3201, "every committed write bumps _v exactly once");
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_check_then_create_makes_exactly_one_child() {
    let (db, store) = open_store("check_then_create", StoreSettings::default()).await;
    let root = store.create_root().await.unwrap();

    let tasks: Vec<_> = (0..32)
        .map(|_| spawn_run(&store, &root, |s, r| async move { touch(&s, &r).await }))
        .collect();
    for outcome in join_all(tasks).await {
        outcome.unwrap().expect("touch failed");
    }

    assert_eq!(read_counters(&store, &root).await, (1, 32));

    // Losing attempts inserted counters that no edge reaches; collection removes them.
    let report = store.collect_garbage(&root, std::time::Duration::ZERO).await.unwrap();
    let counters = store
        .database()
        .collection::<walkerd_graph::bson::Document>("nodes")
        .count_documents(doc! { "kind": "Counter" })
        .await
        .unwrap();
    assert_eq!(counters, 1, "garbage collection left {counters} counters ({report:?})");
    assert_eq!(read_counters(&store, &root).await, (1, 32), "collection removed a live node");
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_edge_adds_and_removes_on_one_node_all_apply() {
    // Small buckets, so that concurrent adds also race to seal full ones.
    let settings = StoreSettings { bucket_capacity: 4, ..StoreSettings::default() };
    let (db, store) = open_store("edges_concurrent", settings).await;
    let root = store.create_root().await.unwrap();

    let adds: Vec<_> = (0..32)
        .map(|i| {
            spawn_run(&store, &root, move |s, r| async move {
                add_item(&s, &r, &format!("item-{i:02}")).await
            })
        })
        .collect();
    let mut created = Vec::new();
    for outcome in join_all(adds).await {
        created.push(outcome.unwrap().expect("add failed").value);
    }
    let all: Vec<String> = (0..32).map(|i| format!("item-{i:02}")).collect();
    assert_eq!(item_names(&store, &root).await, all);

    // Remove the edges to the even-numbered items, concurrently.
    let removes: Vec<_> = (0..32)
        .step_by(2)
        .map(|i| {
            let name = format!("item-{i:02}");
            spawn_run(&store, &root, move |s, r| async move {
                s.run(&r, |work| {
                    let name = name.clone();
                    async move {
                        let root = work.root().clone();
                        for e in work.edges_out(&root, Some(&edge()), Some(&item())).await? {
                            let node = work.load(&e.target).await?.expect("target exists");
                            if node.fields.get_str("name").ok() == Some(name.as_str()) {
                                work.disconnect(&e);
                            }
                        }
                        Ok::<_, walkerd_graph::StoreError>(())
                    }
                    .boxed()
                })
                .await
            })
        })
        .collect();
    for outcome in join_all(removes).await {
        outcome.unwrap().expect("remove failed");
    }

    let odd: Vec<String> = (1..32).step_by(2).map(|i| format!("item-{i:02}")).collect();
    assert_eq!(item_names(&store, &root).await, odd);
    assert_eq!(created.len(), 32);
    db.drop_database().await;
}
