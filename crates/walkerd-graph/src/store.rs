//! The store handle: connection, collections, indexes, node documents and root creation.
//!
//! A node is one document in `nodes`:
//! `{_id, root, kind, fields: {..}, _v, created_at, updated_at}`; a deleted node first becomes a
//! tombstone (`_deleted: true`, invisible to every read) and is then purged with its edges. Edges
//! live in `edges`, described in [`crate::edges`].

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use mongodb::bson::{doc, Bson, DateTime, Document};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Collection, Database, IndexModel};

use crate::error::{DriverResultExt, Result, StoreError};
use crate::model::{Node, NodeId, NodeKind, Version};
use crate::replay::ReplaySettings;
use crate::unit_of_work::UnitOfWork;

/// How the store behaves; every field has a production default.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// The replay loop's budget.
    pub replay: ReplaySettings,
    /// Most edges kept in one adjacency bucket. Small buckets keep every edge change cheap (the
    /// cost of `$addToSet` grows with the array it scans); tests shrink it to exercise sealing.
    pub bucket_capacity: usize,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self { replay: ReplaySettings::default(), bucket_capacity: 100 }
    }
}

/// A cheap, cloneable handle on one walkerd database. It holds no graph state: two processes
/// with their own handles on the same database are exactly as safe as one.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    db: Database,
    nodes: Collection<Document>,
    edges: Collection<Document>,
    settings: StoreSettings,
    faults: FaultInjector,
    stats: StoreStats,
    gates: crate::replay::ReplayGates,
}

impl Store {
    /// Connects to `uri` and uses the database `db_name`. The driver connects lazily: call
    /// [`Store::ping`] to find out whether the server answers.
    pub async fn connect(uri: &str, db_name: &str, settings: StoreSettings) -> Result<Store> {
        let options = ClientOptions::parse(uri).await.ctx("parsing the MongoDB URI")?;
        Self::with_options(options, db_name, settings)
    }

    /// Like [`Store::connect`] with options already made, for example with a command monitor.
    pub fn with_options(
        options: ClientOptions,
        db_name: &str,
        settings: StoreSettings,
    ) -> Result<Store> {
        let client = Client::with_options(options).ctx("creating the MongoDB client")?;
        let db = client.database(db_name);
        let inner = Inner {
            nodes: db.collection("nodes"),
            edges: db.collection("edges"),
            client,
            db,
            settings,
            faults: FaultInjector::default(),
            stats: StoreStats::default(),
            gates: Default::default(),
        };
        Ok(Store { inner: Arc::new(inner) })
    }

    /// Creates the indexes walkerd relies on; safe to call from every replica at every start.
    pub async fn ensure_indexes(&self) -> Result<()> {
        let sparse = IndexOptions::builder().sparse(true).build();
        let node_indexes = [
            IndexModel::builder().keys(doc! { "root": 1, "kind": 1 }).build(),
            IndexModel::builder().keys(doc! { "_deleted": 1 }).options(sparse).build(),
        ];
        self.nodes().create_indexes(node_indexes).await.ctx("creating node indexes")?;

        // Out-traversal and paging walk the buckets of one set in order; in-traversal and
        // removal by id use the multikey indexes over the entries.
        let edge_indexes = [
            IndexModel::builder().keys(doc! { "node": 1, "ek": 1, "tk": 1, "seq": 1 }).build(),
            IndexModel::builder().keys(doc! { "root": 1, "entries.t": 1 }).build(),
            IndexModel::builder().keys(doc! { "entries.id": 1 }).build(),
        ];
        self.edges().create_indexes(edge_indexes).await.ctx("creating edge indexes")?;
        Ok(())
    }

    /// Asks the server to answer; used by readiness checks.
    pub async fn ping(&self) -> Result<()> {
        self.inner.db.run_command(doc! { "ping": 1 }).await.ctx("pinging the database")?;
        Ok(())
    }

    /// Creates a new graph: its root node, with no fields. Roots are never deleted.
    pub async fn create_root(&self) -> Result<NodeId> {
        let id = NodeId::new();
        let node = Node {
            root: id.clone(),
            id: id.clone(),
            kind: NodeKind::root(),
            version: Version(1),
            fields: Document::new(),
        };
        self.nodes()
            .insert_one(node_document(&node, DateTime::now()))
            .await
            .ctx("creating a root")?;
        Ok(id)
    }

    /// Deletes a root that was never handed out (its registration failed). It must have no
    /// edges; a root that does is left alone.
    pub async fn discard_unused_root(&self, root: &NodeId) -> Result<()> {
        let has_edges = self
            .edges()
            .find_one(doc! { "node": root.as_str() })
            .await
            .ctx("checking a root")?
            .is_some();
        if !has_edges {
            let filter = doc! { "_id": root.as_str(), "root": root.as_str() };
            self.nodes().delete_one(filter).await.ctx("discarding a root")?;
        }
        Ok(())
    }

    /// Starts a unit of work on the graph of `root`. Prefer [`Store::run`], which replays.
    pub fn begin(&self, root: &NodeId) -> UnitOfWork {
        UnitOfWork::new(self.clone(), root.clone())
    }

    pub fn settings(&self) -> &StoreSettings {
        &self.inner.settings
    }

    /// Faults that tests can arm; inert otherwise.
    pub fn faults(&self) -> &FaultInjector {
        &self.inner.faults
    }

    /// Counters of what this handle's transactions did, for metrics.
    pub fn stats(&self) -> &StoreStats {
        &self.inner.stats
    }

    /// The underlying database, for checkers and tools that inspect documents directly.
    pub fn database(&self) -> &Database {
        &self.inner.db
    }

    pub(crate) fn gates(&self) -> &crate::replay::ReplayGates {
        &self.inner.gates
    }

    pub(crate) fn client(&self) -> &Client {
        &self.inner.client
    }

    pub(crate) fn nodes(&self) -> &Collection<Document> {
        &self.inner.nodes
    }

    pub(crate) fn edges(&self) -> &Collection<Document> {
        &self.inner.edges
    }

    pub(crate) fn bucket_capacity(&self) -> usize {
        self.inner.settings.bucket_capacity.max(1)
    }
}

/// The document stored for a node.
pub(crate) fn node_document(node: &Node, now: DateTime) -> Document {
    doc! {
        "_id": node.id.as_str(),
        "root": node.root.as_str(),
        "kind": node.kind.as_str(),
        "fields": node.fields.clone(),
        "_v": node.version.0,
        "created_at": now,
        "updated_at": now,
    }
}

/// Reads a node back from its document.
pub(crate) fn node_from_document(mut doc: Document) -> Result<Node> {
    let text = |doc: &Document, key: &str| -> Result<String> {
        doc.get_str(key).map(str::to_owned).map_err(|_| corrupt("node", key))
    };
    let id = NodeId::parse(&text(&doc, "_id")?)?;
    let root = NodeId::parse(&text(&doc, "root")?)?;
    let kind = NodeKind::new(&text(&doc, "kind")?)?;
    let version = doc.get_i64("_v").map_err(|_| corrupt("node", "_v"))?;
    let fields = match doc.remove("fields") {
        Some(Bson::Document(fields)) => fields,
        _ => return Err(corrupt("node", "fields")),
    };
    Ok(Node { id, root, kind, version: Version(version), fields })
}

pub(crate) fn corrupt(what: &str, key: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} document without a valid `{key}`"))
}

/// Makes a chosen commit write fail, so tests can prove that a commit interrupted midway leaves
/// nothing visible. Disarmed it costs one atomic load per write.
#[derive(Debug)]
pub struct FaultInjector {
    /// Writes to let through before failing; negative when disarmed.
    fail_after_writes: AtomicI64,
}

impl Default for FaultInjector {
    fn default() -> Self {
        Self { fail_after_writes: AtomicI64::new(-1) }
    }
}

impl FaultInjector {
    /// The next commit write after `writes` successful ones fails with
    /// [`StoreError::InjectedFault`]; then the injector disarms itself.
    pub fn fail_commit_after_writes(&self, writes: u32) {
        self.fail_after_writes.store(i64::from(writes), Ordering::SeqCst);
    }

    pub(crate) fn before_write(&self) -> Result<()> {
        let previous =
            self.fail_after_writes
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n >= 0).then_some(n - 1));
        match previous {
            Ok(0) => Err(StoreError::InjectedFault),
            _ => Ok(()),
        }
    }
}

/// Counts of transaction outcomes since the handle was made. Aborts are counted by the reason,
/// named after the driver's error label where there is one.
#[derive(Debug, Default)]
pub struct StoreStats {
    pub transactions_committed: AtomicU64,
    /// Aborted by the server as part of a write conflict (`TransientTransactionError`).
    pub aborts_transient: AtomicU64,
    /// Aborted because a conditional write found a newer version.
    pub aborts_stale: AtomicU64,
    /// Aborted because the database could not be reached.
    pub aborts_unavailable: AtomicU64,
    /// Aborted for any other reason.
    pub aborts_other: AtomicU64,
    /// Commits retried because their outcome was unknown (`UnknownTransactionCommitResult`).
    pub commit_retries_unknown_result: AtomicU64,
}

impl StoreStats {
    pub(crate) fn count_abort(&self, reason: &StoreError) {
        let counter = match reason {
            StoreError::Conflict(crate::ConflictKind::Transaction) => &self.aborts_transient,
            StoreError::Conflict(_) => &self.aborts_stale,
            StoreError::Unavailable { .. } => &self.aborts_unavailable,
            _ => &self.aborts_other,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
