//! Ceiling loops for the benchmarks: the MongoDB operations each demo walker needs, sent straight
//! from the driver with nothing around them.
//!
//! A [`RawGraph`] keeps documents shaped like the store's (a root node, item and counter nodes,
//! edge sets of at most 100 entries) in the same collections, so each operation does the same
//! work on the server as the store's. Whatever a walker costs beyond these loops is walkerd's
//! own: HTTP, tokens, the unit of work, the commit protocol. The loops take shortcuts the store
//! cannot: they never seal a full edge set (they start a new bucket), and they keep no versions
//! on edge sets.

use std::sync::atomic::{AtomicU64, Ordering};

use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::{Collection, Database};

/// Entries per edge bucket, as in the store.
const BUCKET: u64 = 100;

fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// One graph written and read with plain driver calls.
pub struct RawGraph {
    nodes: Collection<Document>,
    edges: Collection<Document>,
    root: String,
    added: AtomicU64,
}

impl RawGraph {
    /// Inserts a new root node in `db`.
    pub async fn create(db: &Database) -> RawGraph {
        let graph = RawGraph {
            nodes: db.collection("nodes"),
            edges: db.collection("edges"),
            root: new_id(),
            added: AtomicU64::new(0),
        };
        let root = doc! { "_id": &graph.root, "root": &graph.root, "kind": "Root",
        "fields": {}, "_v": 1_i64 };
        graph.nodes.insert_one(root).await.expect("inserting a raw root");
        graph
    }

    fn set_filter(&self, kind: &str) -> Document {
        doc! { "node": &self.root, "ek": "raw", "tk": kind }
    }

    /// Ids of the targets of the root's edges to nodes of `kind`: one query.
    async fn targets(&self, kind: &str) -> Vec<String> {
        let sets = self.edges.find(self.set_filter(kind)).await.expect("listing raw edge sets");
        let sets: Vec<Document> = sets.try_collect().await.expect("reading raw edge sets");
        let entries = sets.iter().flat_map(|s| s.get_array("entries").into_iter().flatten());
        entries.filter_map(|e| e.as_document()?.get_str("t").ok().map(str::to_owned)).collect()
    }

    /// The nodes with these ids: one query.
    async fn load(&self, ids: Vec<String>) -> Vec<Document> {
        let ids: Vec<Bson> = ids.into_iter().map(Bson::from).collect();
        let found = self.nodes.find(doc! { "_id": { "$in": ids } }).await.expect("finding");
        found.try_collect().await.expect("reading raw nodes")
    }

    /// Inserts a node and adds an edge to it from the root: two commands, as `add_item`'s.
    pub async fn add_item(&self) {
        self.add_child("Item", doc! { "name": "bench" }).await;
    }

    /// A counter child at 0, for [`RawGraph::touch`].
    pub async fn add_counter(&self) {
        self.add_child("Counter", doc! { "value": 0_i64 }).await;
    }

    async fn add_child(&self, kind: &str, fields: Document) {
        let id = new_id();
        let node = doc! { "_id": &id, "root": &self.root, "kind": kind, "fields": fields,
        "_v": 1_i64 };
        self.nodes.insert_one(node).await.expect("inserting a raw node");
        let bucket = self.added.fetch_add(1, Ordering::Relaxed) / BUCKET;
        let entry = doc! { "id": new_id(), "t": &id };
        let update = doc! {
            "$addToSet": { "entries": entry },
            "$inc": { "n": 1, "v": 1_i64 },
            "$setOnInsert": { "node": &self.root, "root": &self.root, "ek": "raw", "tk": kind },
        };
        let head = doc! { "_id": format!("{}|raw|{kind}|{bucket}", self.root) };
        self.edges.update_one(head, update).upsert(true).await.expect("adding a raw edge");
    }

    /// The root's items with their fields: two queries, as `list_items`'s.
    pub async fn list_items(&self) -> usize {
        let ids = self.targets("Item").await;
        self.load(ids).await.len()
    }

    /// Counts the items (their edges only), reads the counter and writes `value + 1` if its
    /// version is unchanged, retrying on a stale one: four commands an attempt.
    pub async fn touch(&self) {
        self.bump_counter(false).await;
    }

    /// [`RawGraph::touch`], loading the items too, as the demo `touch` walker does: five
    /// commands an attempt.
    pub async fn touch_loading_items(&self) {
        self.bump_counter(true).await;
    }

    async fn bump_counter(&self, load_items: bool) {
        loop {
            let items = self.targets("Item").await;
            if load_items {
                self.load(items).await;
            }
            let counter = self.targets("Counter").await;
            let counter = self.load(counter).await;
            let counter = counter.first().expect("add_counter comes first");
            let id = counter.get_str("_id").expect("an id");
            let version = counter.get_i64("_v").expect("a version");
            let fields = counter.get_document("fields").expect("fields");
            let value = fields.get_i64("value").expect("a value");
            let update = doc! { "$set": { "fields.value": value + 1 }, "$inc": { "_v": 1_i64 } };
            let filter = doc! { "_id": id, "_v": version };
            let result = self.nodes.update_one(filter, update).await.expect("updating");
            if result.matched_count == 1 {
                return;
            }
        }
    }
}
