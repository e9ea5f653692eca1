//! A node with 200,000 edges: far past MongoDB's 16 MB document limit if kept in one document.
//! Adding an edge stays a bounded number of commands and documents, and pages come from an index.

mod common;

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use common::*;
use futures::FutureExt;
use walkerd_graph::bson::{doc, Document};
use walkerd_graph::{PageCursor, StoreError, StoreSettings};

const EDGES: usize = 200_000;
const CHUNK: usize = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_holds_200k_edges_with_bounded_adds_and_indexed_pages() {
    let (db, store, commands) = open_counted_store("fan_out_200k", StoreSettings::default()).await;
    let root = store.create_root().await.unwrap();
    let edges = store.database().collection::<Document>("edges");

    // Arrange: the fixture goes through the store in chunks of 2,000 edges per commit.
    for chunk in 0..EDGES / CHUNK {
        store
            .run(&root, |work| {
                async move {
                    let root = work.root().clone();
                    for i in 0..CHUNK {
                        let name = format!("item-{:06}", chunk * CHUNK + i);
                        let id = work.create(item(), doc! { "name": name })?;
                        work.connect(&root, &id, edge(), doc! {})?;
                    }
                    Ok::<_, StoreError>(())
                }
                .boxed()
            })
            .await
            .unwrap();
    }
    let buckets = edges.count_documents(doc! {}).await.unwrap();
    assert!(buckets >= (EDGES / 100) as u64, "only {buckets} buckets for {EDGES} edges");

    // Every edge is reachable through pages of 50, each page served by a few commands.
    let mut seen = HashSet::new();
    let mut cursor: Option<PageCursor> = None;
    let mut most_commands_per_page = 0;
    loop {
        let before = commands.load(Ordering::SeqCst);
        let page = store.page_edges(&root, &edge(), &item(), cursor.as_ref(), 50).await.unwrap();
        most_commands_per_page =
            most_commands_per_page.max(commands.load(Ordering::SeqCst) - before);
        assert!(page.edges.len() <= 50);
        seen.extend(page.edges.into_iter().map(|e| e.target));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), EDGES, "paging missed or repeated edges");
    assert!(most_commands_per_page <= 3, "a page took {most_commands_per_page} commands");

    // Adding one more edge: an insert for the node and one update of the set's head, or, when
    // the head is full, a transaction that seals it. Either way a handful of commands.
    let mut adds = Vec::new();
    for i in 0..101 {
        let (docs_before, before) =
            (edges.count_documents(doc! {}).await.unwrap(), commands.load(Ordering::SeqCst));
        add_item(&store, &root, &format!("extra-{i}")).await.unwrap();
        let sent = commands.load(Ordering::SeqCst) - before;
        let new_docs = edges.count_documents(doc! {}).await.unwrap() - docs_before;
        adds.push((sent, new_docs));
    }
    let plain = adds.iter().filter(|(sent, _)| *sent == 2).count();
    assert!(plain >= 99, "most adds should be an insert plus one update: {adds:?}");
    assert!(adds.iter().all(|(sent, new_docs)| *sent <= 8 && *new_docs <= 1), "{adds:?}");

    // In-traversal is indexed too: the newest item's only parent is the root.
    let newest = store.page_edges(&root, &edge(), &item(), None, 1).await.unwrap().edges;
    let mut work = store.begin(&root);
    let parents = work.edges_in(&newest[0].target).await.unwrap();
    assert_eq!(parents.len(), 1);
    assert_eq!(parents[0].source, root);
    db.drop_database().await;
}
