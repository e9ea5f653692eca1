//! Shared pieces of the store tests: opening a store on a real server, and small runs shaped
//! like the demo walkers (add an item, read-modify-write a counter, increment it).

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures::FutureExt;
use walkerd_graph::bson::{doc, Bson};
use walkerd_graph::{
    Committed, EdgeKind, NodeId, NodeKind, Store, StoreError, StoreSettings, UnitOfWork,
};
use walkerd_testkit::TestDb;

/// A store on a database of the test's own, with its indexes made.
pub async fn open_store(test: &str, settings: StoreSettings) -> (TestDb, Store) {
    let db = TestDb::new(test);
    let store = Store::connect(&db.uri, &db.name, settings).await.expect("connecting");
    store.ensure_indexes().await.expect("creating indexes");
    (db, store)
}

/// Like [`open_store`], counting every command the store sends.
pub async fn open_counted_store(
    test: &str,
    settings: StoreSettings,
) -> (TestDb, Store, Arc<AtomicUsize>) {
    use mongodb::event::{command::CommandEvent, EventHandler};
    let db = TestDb::new(test);
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    let mut options = mongodb::options::ClientOptions::parse(&db.uri).await.expect("parsing");
    options.command_event_handler = Some(EventHandler::callback(move |event| {
        if let CommandEvent::Started(_) = event {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    }));
    let store = Store::with_options(options, &db.name, settings).expect("connecting");
    store.ensure_indexes().await.expect("creating indexes");
    (db, store, count)
}

pub fn item() -> NodeKind {
    NodeKind::new("Item").unwrap()
}

pub fn counter() -> NodeKind {
    NodeKind::new("Counter").unwrap()
}

pub fn edge() -> EdgeKind {
    EdgeKind::generic()
}

/// Creates an `Item{name}` linked from the root, without looking at the root's items.
pub async fn add_item(
    store: &Store,
    root: &NodeId,
    name: &str,
) -> Result<Committed<NodeId>, StoreError> {
    store
        .run(root, |work| {
            let name = name.to_owned();
            async move {
                let root = work.root().clone();
                let id = work.create(item(), doc! { "name": name })?;
                work.connect(&root, &id, edge(), doc! {})?;
                Ok(id)
            }
            .boxed()
        })
        .await
}

/// Lists the root's counters and either creates the first one or sets `value = value + 1` by
/// reading and writing. Returns the number of items seen.
pub async fn touch(store: &Store, root: &NodeId) -> Result<Committed<usize>, StoreError> {
    store.run(root, |work| touch_once(work).boxed()).await
}

pub async fn touch_once(work: &mut UnitOfWork) -> Result<usize, StoreError> {
    let root = work.root().clone();
    let items = work.children(&root, Some(&edge()), Some(&item())).await?;
    let counters = work.children(&root, Some(&edge()), Some(&counter())).await?;
    match counters.first() {
        None => {
            let id = work.create(counter(), doc! { "value": 1_i64 })?;
            work.connect(&root, &id, edge(), doc! {})?;
        }
        Some(node) => {
            let value = int(node.fields.get("value"));
            work.set(&node.id, "value", value + 1)?;
        }
    }
    Ok(items.len())
}

/// Bumps the counter with a blind increment, creating it like [`touch`] when there is none.
pub async fn count_up(store: &Store, root: &NodeId) -> Result<Committed<()>, StoreError> {
    store
        .run(root, |work| {
            async move {
                let root = work.root().clone();
                let counters = work.children(&root, Some(&edge()), Some(&counter())).await?;
                match counters.first() {
                    None => {
                        let id = work.create(counter(), doc! { "value": 1_i64 })?;
                        work.connect(&root, &id, edge(), doc! {})?;
                    }
                    Some(node) => work.increment(&node.id.clone(), "value", 1)?,
                }
                Ok(())
            }
            .boxed()
        })
        .await
}

/// The number of counters under the root and the first one's value.
pub async fn read_counters(store: &Store, root: &NodeId) -> (usize, i64) {
    let mut work = store.begin(root);
    let counters = work.children(root, Some(&edge()), Some(&counter())).await.unwrap();
    (counters.len(), counters.first().map_or(0, |c| int(c.fields.get("value"))))
}

/// The names of the root's items.
pub async fn item_names(store: &Store, root: &NodeId) -> Vec<String> {
    let mut work = store.begin(root);
    let items = work.children(root, Some(&edge()), Some(&item())).await.unwrap();
    let mut names: Vec<String> =
        items.iter().map(|n| n.fields.get_str("name").unwrap().to_owned()).collect();
    names.sort();
    names
}

pub fn int(value: Option<&Bson>) -> i64 {
    match value {
        Some(Bson::Int64(n)) => *n,
        Some(Bson::Int32(n)) => i64::from(*n),
        other => panic!("expected an integer, found {other:?}"),
    }
}
