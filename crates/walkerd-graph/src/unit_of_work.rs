//! The unit of work: everything one walker run reads and changes, kept until commit.
//!
//! Reads go through an identity map, so each node is loaded at most once per run and the version
//! it was read at is remembered; the same holds for each edge set listed. Changes are recorded,
//! not sent: which fields were set, which were incremented, which nodes were created or deleted,
//! which edges were added or removed. [`UnitOfWork::commit`] (in [`crate::commit`]) turns that
//! record into the fewest writes that keep the run all-or-nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};

use crate::edges::{entry_document, SetKey};
use crate::error::{DriverResultExt, Result, StoreError};
use crate::model::{
    check_fields, Edge, EdgeId, EdgeKind, FieldName, Node, NodeId, NodeKind, Version,
};
use crate::store::{node_from_document, Store};

/// One node known to the run.
#[derive(Debug, Clone)]
pub(crate) struct Tracked {
    pub node: Node,
    /// The version the node was read at; `None` for a node created by this run.
    pub read_at: Option<Version>,
    /// Fields given a new value with [`UnitOfWork::set`].
    pub dirty: BTreeSet<String>,
    /// Blind increments from [`UnitOfWork::increment`] of fields not otherwise set.
    pub increments: BTreeMap<String, i64>,
    pub deleted: bool,
}

/// An edge this run adds, with the entry that will be stored for it.
#[derive(Debug, Clone)]
pub(crate) struct AddedEdge {
    pub key: SetKey,
    pub edge: Edge,
    pub entry: Document,
}

/// A walker run's view of one graph and its pending changes. Made by [`Store::begin`] or, with
/// replays, by [`Store::run`].
pub struct UnitOfWork {
    pub(crate) store: Store,
    pub(crate) root: NodeId,
    pub(crate) nodes: HashMap<NodeId, Tracked>,
    /// The version of each edge set at the moment this run first listed it.
    pub(crate) sets_read: HashMap<SetKey, Version>,
    /// Listings that covered every set under a node (and edge kind): a set under them that is
    /// not in `sets_read` was empty when listed.
    pub(crate) listed: Vec<(NodeId, Option<EdgeKind>)>,
    pub(crate) added: Vec<AddedEdge>,
    pub(crate) removed: Vec<(SetKey, EdgeId)>,
    /// Writes to documents outside the graph that must commit with it (see
    /// [`UnitOfWork::also_update`]).
    pub(crate) also: Vec<AlsoUpdate>,
}

/// A conditional update of a document outside the graph, committed with the run.
#[derive(Debug, Clone)]
pub(crate) struct AlsoUpdate {
    pub collection: String,
    pub filter: Document,
    pub update: Document,
}

impl UnitOfWork {
    pub(crate) fn new(store: Store, root: NodeId) -> UnitOfWork {
        UnitOfWork {
            store,
            root,
            nodes: HashMap::new(),
            sets_read: HashMap::new(),
            listed: Vec::new(),
            added: Vec::new(),
            removed: Vec::new(),
            also: Vec::new(),
        }
    }

    /// Updates one document of `collection` in the same commit as the run's changes: both
    /// apply or neither does. `filter` must match exactly one existing document when the commit
    /// runs; if it matches none, the commit conflicts. The server uses it to store an idempotent
    /// request's response with the changes it describes.
    pub fn also_update(&mut self, collection: &str, filter: Document, update: Document) {
        self.also.push(AlsoUpdate { collection: collection.to_owned(), filter, update });
    }

    /// The root of the graph this run works on.
    pub fn root(&self) -> &NodeId {
        &self.root
    }

    /// True while the run has changed nothing: its commit sends no write.
    pub fn is_read_only(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.also.is_empty()
            && self.nodes.values().all(|t| {
                t.read_at.is_some() && t.dirty.is_empty() && t.increments.is_empty() && !t.deleted
            })
    }

    /// The node `id` of this graph, loaded once per run. `None` when it does not exist, was
    /// deleted, or belongs to another graph: the three cases are indistinguishable on purpose.
    pub async fn load(&mut self, id: &NodeId) -> Result<Option<&Node>> {
        self.load_many(std::slice::from_ref(id)).await?;
        Ok(self.node(id))
    }

    /// Loads every node of `ids` not yet known to the run, in one query; returns those that exist
    /// in the order asked.
    pub async fn load_many(&mut self, ids: &[NodeId]) -> Result<Vec<Node>> {
        let missing: Vec<&str> =
            ids.iter().filter(|id| !self.nodes.contains_key(*id)).map(NodeId::as_str).collect();
        if !missing.is_empty() {
            // One batch for all of them: the server's default first batch (101 documents) would
            // cost a second round trip for every larger load. One more than can match, because a
            // batch filled exactly leaves the cursor open and costs an empty getMore.
            let batch = u32::try_from(missing.len() + 1).unwrap_or(u32::MAX);
            // The graph is checked here rather than in the filter: with `root` in it, a planner
            // weighs the `(root, kind)` index against `_id` (on secantusd-rs at every query, which
            // costs ten times the lookup), and the ids alone already find at most these nodes.
            let filter = doc! { "_id": { "$in": missing }, "_deleted": { "$exists": false } };
            let docs: Vec<Document> = self
                .store
                .nodes()
                .find(filter)
                .batch_size(batch)
                .await
                .ctx("loading nodes")?
                .try_collect()
                .await
                .ctx("loading nodes")?;
            for doc in docs {
                let node = node_from_document(doc)?;
                if node.root != self.root {
                    continue;
                }
                let read_at = Some(node.version);
                let tracked = Tracked {
                    node,
                    read_at,
                    dirty: BTreeSet::new(),
                    increments: BTreeMap::new(),
                    deleted: false,
                };
                self.nodes.insert(tracked.node.id.clone(), tracked);
            }
        }
        Ok(ids.iter().filter_map(|id| self.node(id)).cloned().collect())
    }

    /// A node already known to the run (loaded or created), as this run sees it.
    pub fn node(&self, id: &NodeId) -> Option<&Node> {
        self.nodes.get(id).filter(|t| !t.deleted).map(|t| &t.node)
    }

    fn tracked_mut(&mut self, id: &NodeId) -> Result<&mut Tracked> {
        match self.nodes.get_mut(id) {
            Some(t) if !t.deleted => Ok(t),
            _ => Err(StoreError::NodeNotFound(id.clone())),
        }
    }

    /// Gives a field of a loaded or created node a new value. On commit the node is written only
    /// if nobody changed it since this run read it.
    pub fn set(&mut self, id: &NodeId, field: &str, value: impl Into<Bson>) -> Result<()> {
        let name = FieldName::new(field)?;
        let value = value.into();
        if let Bson::Document(doc) = &value {
            check_fields(doc)?;
        }
        let tracked = self.tracked_mut(id)?;
        tracked.node.fields.insert(name.as_str(), value);
        tracked.increments.remove(name.as_str());
        tracked.dirty.insert(name.as_str().to_owned());
        Ok(())
    }

    /// Removes a field of a loaded or created node, under the same condition as [`Self::set`].
    pub fn unset(&mut self, id: &NodeId, field: &str) -> Result<()> {
        let name = FieldName::new(field)?;
        let tracked = self.tracked_mut(id)?;
        tracked.node.fields.remove(name.as_str());
        tracked.increments.remove(name.as_str());
        tracked.dirty.insert(name.as_str().to_owned());
        Ok(())
    }

    /// A fingerprint of the edge sets leaving `source` (of `edge_kind`, or all) as this run
    /// listed them: it changes whenever an edge is added to or removed from them. Empty when the
    /// run listed none of them.
    pub fn listed_versions(&self, source: &NodeId, edge_kind: Option<&EdgeKind>) -> String {
        let mut versions: Vec<String> = self
            .sets_read
            .iter()
            .filter(|(key, _)| &key.source == source)
            .filter(|(key, _)| edge_kind.is_none_or(|k| &key.edge_kind == k))
            .filter(|(_, version)| version.0 > 0)
            .map(|(key, version)| format!("{}|{}", key.head_id(), version.0))
            .collect();
        versions.sort();
        versions.join(",")
    }

    /// Adds `by` to a numeric field without a read condition: increments from concurrent runs
    /// never conflict with each other. The node's version is still bumped, so a concurrent
    /// read-modify-write of the same node conflicts instead of overwriting the increment.
    pub fn increment(&mut self, id: &NodeId, field: &str, by: i64) -> Result<()> {
        let name = FieldName::new(field)?;
        let tracked = self.tracked_mut(id)?;
        let current = match tracked.node.fields.get(name.as_str()) {
            None => 0,
            Some(Bson::Int32(n)) => i64::from(*n),
            Some(Bson::Int64(n)) => *n,
            Some(_) => {
                return Err(StoreError::InvalidOperation(format!(
                    "field {field:?} is not an integer and cannot be incremented"
                )))
            }
        };
        tracked.node.fields.insert(name.as_str(), current + by);
        if !tracked.dirty.contains(name.as_str()) {
            *tracked.increments.entry(name.as_str().to_owned()).or_insert(0) += by;
        }
        Ok(())
    }

    /// Creates a node in this graph; it becomes visible on commit, and reachable once an edge
    /// points at it.
    pub fn create(&mut self, kind: NodeKind, fields: Document) -> Result<NodeId> {
        check_fields(&fields)?;
        let id = NodeId::new();
        let node =
            Node { id: id.clone(), root: self.root.clone(), kind, version: Version(1), fields };
        let tracked = Tracked {
            node,
            read_at: None,
            dirty: BTreeSet::new(),
            increments: BTreeMap::new(),
            deleted: false,
        };
        self.nodes.insert(id.clone(), tracked);
        Ok(id)
    }

    /// Deletes a loaded node and, once committed, every edge into or out of it. Roots are never
    /// deleted.
    pub fn delete(&mut self, id: &NodeId) -> Result<()> {
        if id == &self.root {
            return Err(StoreError::InvalidOperation("a root node cannot be deleted".into()));
        }
        self.tracked_mut(id)?.deleted = true;
        self.added.retain(|a| &a.edge.source != id && &a.edge.target != id);
        Ok(())
    }

    /// Adds an edge from `source` to `target`, both loaded or created by this run (the root
    /// need not be loaded).
    ///
    /// If this run listed the edge set it adds to, the add is conditional on that set being
    /// unchanged (check-then-create never duplicates); otherwise it is a blind add, which never
    /// conflicts with other edge changes.
    pub fn connect(
        &mut self,
        source: &NodeId,
        target: &NodeId,
        kind: EdgeKind,
        fields: Document,
    ) -> Result<EdgeId> {
        check_fields(&fields)?;
        let target_kind = match self.node(target) {
            Some(node) => node.kind.clone(),
            None => return Err(StoreError::NodeNotFound(target.clone())),
        };
        // The root needs no load: it always exists and always belongs to this graph.
        if source != &self.root && self.node(source).is_none() {
            return Err(StoreError::NodeNotFound(source.clone()));
        }
        let id = EdgeId::new();
        let entry = entry_document(&id, target, &fields);
        let edge = Edge {
            id: id.clone(),
            kind,
            source: source.clone(),
            target: target.clone(),
            target_kind,
            fields,
        };
        self.added.push(AddedEdge { key: SetKey::of(&edge), edge, entry });
        Ok(id)
    }

    /// Removes an edge this run has seen.
    pub fn disconnect(&mut self, edge: &Edge) {
        let before = self.added.len();
        self.added.retain(|a| a.edge.id != edge.id);
        if self.added.len() == before {
            self.removed.push((SetKey::of(edge), edge.id.clone()));
        }
    }

    /// The edges leaving `source`, optionally of one edge kind and towards one node kind,
    /// including this run's own pending changes. Remembers each set's version for the commit.
    pub async fn edges_out(
        &mut self,
        source: &NodeId,
        edge_kind: Option<&EdgeKind>,
        target_kind: Option<&NodeKind>,
    ) -> Result<Vec<Edge>> {
        let sets = self.store.read_out_sets(source, edge_kind, target_kind).await?;
        match (edge_kind, target_kind) {
            (Some(ek), Some(tk)) => {
                let key = SetKey {
                    source: source.clone(),
                    edge_kind: ek.clone(),
                    target_kind: tk.clone(),
                };
                let version = sets.first().map_or(Version(0), |s| s.version);
                self.sets_read.entry(key).or_insert(version);
            }
            _ => self.listed.push((source.clone(), edge_kind.cloned())),
        }

        let mut edges = Vec::new();
        for set in sets {
            self.sets_read.entry(set.key.clone()).or_insert(set.version);
            edges.extend(set.edges);
        }
        edges.retain(|e| !self.removed.iter().any(|(_, id)| id == &e.id));
        let matches = |e: &Edge| {
            &e.source == source
                && edge_kind.is_none_or(|k| &e.kind == k)
                && target_kind.is_none_or(|k| &e.target_kind == k)
        };
        edges.extend(self.added.iter().map(|a| &a.edge).filter(|e| matches(e)).cloned());
        Ok(edges)
    }

    /// The nodes that edges from `source` lead to (see [`UnitOfWork::edges_out`]), loaded in
    /// one query. Edges to nodes deleted in the meantime are skipped.
    pub async fn children(
        &mut self,
        source: &NodeId,
        edge_kind: Option<&EdgeKind>,
        target_kind: Option<&NodeKind>,
    ) -> Result<Vec<Node>> {
        let edges = self.edges_out(source, edge_kind, target_kind).await?;
        let targets: Vec<NodeId> = edges.into_iter().map(|e| e.target).collect();
        self.load_many(&targets).await
    }

    /// The edges of this graph that point at `target` (`<--`), read through the index on edge
    /// targets. Not remembered for the commit: only out-sets carry versions.
    pub async fn edges_in(&mut self, target: &NodeId) -> Result<Vec<Edge>> {
        let mut edges = self.store.read_in_edges(&self.root, target).await?;
        edges.retain(|e| !self.removed.iter().any(|(_, id)| id == &e.id));
        edges
            .extend(self.added.iter().filter(|a| &a.edge.target == target).map(|a| a.edge.clone()));
        Ok(edges)
    }

    /// The version a change to `key` must find, if this run listed that set.
    pub(crate) fn expected_version(&self, key: &SetKey) -> Option<Version> {
        if let Some(version) = self.sets_read.get(key) {
            return Some(*version);
        }
        let covered = self.listed.iter().any(|(node, kind)| {
            node == &key.source && kind.as_ref().is_none_or(|k| k == &key.edge_kind)
        });
        covered.then_some(Version(0))
    }
}
