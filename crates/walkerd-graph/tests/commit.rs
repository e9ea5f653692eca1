//! What a commit makes visible: all of a run or nothing of it, and no dangling edge.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use walkerd_graph::bson::{doc, Document};
use walkerd_graph::{StoreError, StoreSettings};

async fn count(store: &walkerd_graph::Store, collection: &str, filter: Document) -> u64 {
    store.database().collection::<Document>(collection).count_documents(filter).await.unwrap()
}

#[tokio::test]
async fn a_transaction_that_fails_midway_leaves_nothing_visible() {
    let (db, store) = open_store("txn_fails_midway", StoreSettings::default()).await;
    let root = store.create_root().await.unwrap();
    let a = add_item(&store, &root, "a").await.unwrap().value;
    let b = add_item(&store, &root, "b").await.unwrap().value;

    // Two node updates and an edge add: this commit needs a transaction.
    let mut work = store.begin(&root);
    work.load_many(&[a.clone(), b.clone()]).await.unwrap();
    work.set(&a, "name", "a2").unwrap();
    work.set(&b, "name", "b2").unwrap();
    let c = work.create(item(), doc! { "name": "c" }).unwrap();
    work.connect(&root, &c, edge(), doc! {}).unwrap();
    store.faults().fail_commit_after_writes(2);
    let outcome = work.commit().await;

    assert!(matches!(outcome, Err(StoreError::InjectedFault)), "{outcome:?}");
    assert_eq!(item_names(&store, &root).await, ["a", "b"]);
    assert_eq!(count(&store, "nodes", doc! {}).await, 3, "the new node was left behind");
    assert_eq!(count(&store, "nodes", doc! { "_v": 1 }).await, 3, "a version moved");
    db.drop_database().await;
}

#[tokio::test]
async fn a_commit_interrupted_after_its_insert_leaves_only_unreachable_garbage() {
    let (db, store) = open_store("interrupted_insert", StoreSettings::default()).await;
    let root = store.create_root().await.unwrap();

    store.faults().fail_commit_after_writes(1);
    let outcome = add_item(&store, &root, "lost").await;

    assert!(matches!(outcome, Err(StoreError::InjectedFault)), "{outcome:?}");
    assert!(item_names(&store, &root).await.is_empty());
    assert_eq!(count(&store, "nodes", doc! {}).await, 2, "root and the unlinked item");
    let report = store.collect_garbage(&root, Duration::ZERO).await.unwrap();
    assert_eq!(report.unreachable_nodes, 1);
    assert_eq!(count(&store, "nodes", doc! {}).await, 1);
    db.drop_database().await;
}

#[tokio::test]
async fn a_stale_read_modify_write_conflicts_and_changes_nothing() {
    let (db, store) = open_store("stale_rmw", StoreSettings::default()).await;
    let root = store.create_root().await.unwrap();
    let a = add_item(&store, &root, "a").await.unwrap().value;

    let mut first = store.begin(&root);
    first.load(&a).await.unwrap();
    let mut second = store.begin(&root);
    second.load(&a).await.unwrap();
    second.set(&a, "name", "second").unwrap();
    second.commit().await.unwrap();
    first.set(&a, "name", "first").unwrap();
    let outcome = first.commit().await;

    assert!(matches!(outcome, Err(StoreError::Conflict(_))), "{outcome:?}");
    assert_eq!(item_names(&store, &root).await, ["second"]);
    db.drop_database().await;
}

#[tokio::test]
async fn a_read_only_run_sends_nothing_on_commit() {
    let (db, store, commands) = open_counted_store("read_only", StoreSettings::default()).await;
    let root = store.create_root().await.unwrap();
    add_item(&store, &root, "a").await.unwrap();

    let mut work = store.begin(&root);
    work.children(&root, None, None).await.unwrap();
    let before = commands.load(Ordering::SeqCst);
    let stats = work.commit().await.unwrap();

    assert_eq!(commands.load(Ordering::SeqCst), before);
    assert_eq!(stats, walkerd_graph::CommitStats::default());
    db.drop_database().await;
}

#[tokio::test]
async fn deleting_a_node_removes_its_edges_both_ways() {
    let (db, store) = open_store("delete_node", StoreSettings::default()).await;
    let root = store.create_root().await.unwrap();
    let a = add_item(&store, &root, "a").await.unwrap().value;
    let mut work = store.begin(&root);
    work.load(&a).await.unwrap();
    let b = work.create(item(), doc! { "name": "b" }).unwrap();
    work.connect(&a, &b, edge(), doc! {}).unwrap();
    work.commit().await.unwrap();

    let mut work = store.begin(&root);
    work.load(&a).await.unwrap();
    work.delete(&a).unwrap();
    let stats = work.commit().await.unwrap();

    assert_eq!(stats.nodes_deleted, 1);
    assert!(item_names(&store, &root).await.is_empty());
    let mut work = store.begin(&root);
    assert!(work.load(&a).await.unwrap().is_none());
    assert!(work.edges_in(&b).await.unwrap().is_empty(), "an edge still leaves the deleted node");
    let mentions = doc! { "$or": [ { "node": a.as_str() }, { "entries.t": a.as_str() } ] };
    assert_eq!(count(&store, "edges", mentions).await, 0);
    db.drop_database().await;
}

#[tokio::test]
async fn a_blind_edge_add_racing_a_deletion_leaves_no_dangling_edge() {
    let (db, store) = open_store("add_races_delete", StoreSettings::default()).await;
    let root = store.create_root().await.unwrap();
    let a = add_item(&store, &root, "a").await.unwrap().value;
    let b = add_item(&store, &root, "b").await.unwrap().value;

    // The adder reads both ends, then the deleter commits, then the adder commits.
    let mut adder = store.begin(&root);
    adder.load_many(&[a.clone(), b.clone()]).await.unwrap();
    adder.connect(&a, &b, edge(), doc! {}).unwrap();
    let mut deleter = store.begin(&root);
    deleter.load(&b).await.unwrap();
    deleter.delete(&b).unwrap();
    deleter.commit().await.unwrap();
    adder.commit().await.unwrap();

    let mut work = store.begin(&root);
    assert!(work.edges_out(&a, None, None).await.unwrap().is_empty(), "dangling edge a -> b");
    assert_eq!(count(&store, "edges", doc! { "entries.t": b.as_str() }).await, 0);
    db.drop_database().await;
}

#[tokio::test]
async fn a_node_from_another_graph_is_invisible() {
    let (db, store) = open_store("other_graph", StoreSettings::default()).await;
    let alice = store.create_root().await.unwrap();
    let bob = store.create_root().await.unwrap();
    let secret = add_item(&store, &alice, "secret").await.unwrap().value;

    let mut work = store.begin(&bob);
    assert!(work.load(&secret).await.unwrap().is_none());
    assert!(work.load(&alice).await.unwrap().is_none(), "another graph's root");
    assert!(work.load_many(&[secret.clone(), alice.clone()]).await.unwrap().is_empty());
    assert!(work.edges_in(&secret).await.unwrap().is_empty());
    assert!(matches!(work.set(&secret, "name", "mine"), Err(StoreError::NodeNotFound(_))));
    assert!(matches!(
        work.connect(&bob, &secret, edge(), doc! {}),
        Err(StoreError::NodeNotFound(_))
    ));
    work.commit().await.unwrap();
    assert_eq!(item_names(&store, &alice).await, ["secret"]);
    db.drop_database().await;
}
