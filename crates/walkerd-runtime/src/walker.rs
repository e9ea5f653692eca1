//! The walker trait and the context a walker acts through.
//!
//! A walker is a Rust value made from a request body. The runtime spawns it on a node and calls
//! [`Walker::enter`] on every node it visits, breadth-first: the spawn node first, then the nodes
//! the walker asked to [`Walk::visit`], in the order asked. Everything the walker reads and
//! changes goes through [`Walk`], which wraps the run's unit of work; nothing reaches the database
//! until the whole walk is done and committed.
//!
//! A walk may run several times (each conflict replays it from fresh state), so a walker must
//! have no effect outside the graph and its reports.
//!
//! The node a walker is on is loaded only when the walker asks for it ([`Walk::here`]): most
//! walkers start on the root and only follow its edges, and not loading the root saves one
//! database round trip on every such request. A walker that changes a node's fields must have
//! read that node first (through `here`, `load` or `children`), the root included, because a
//! change is conditional on the version read.

use std::collections::VecDeque;
use std::time::Instant;

use futures::future::BoxFuture;
use serde_json::{Map, Value};
use walkerd_graph::bson::{Bson, Document};
use walkerd_graph::{Edge, EdgeKind, Node, NodeId, NodeKind, UnitOfWork};

use crate::error::WalkError;
use crate::json::{bson_to_json, json_to_bson, json_to_fields};

/// A walker: made from a request body, entered on each node it visits.
pub trait Walker: Send + 'static {
    /// Runs on entry to a node; `walk.here()` is that node. Match on its kind, or on
    /// [`Walk::at_root`], to run an ability only on some nodes.
    fn enter<'a>(&'a mut self, walk: &'a mut Walk<'_>) -> BoxFuture<'a, Result<(), WalkError>>;

    /// The value the walker returns when the walk ends (`data.result` in the response).
    fn result(&self) -> Option<Value> {
        None
    }
}

/// A walker's view of the graph during one attempt of one run.
pub struct Walk<'w> {
    work: &'w mut UnitOfWork,
    here: NodeId,
    queue: VecDeque<NodeId>,
    reports: Vec<Value>,
    disengaged: bool,
    deadline: Instant,
}

impl<'w> Walk<'w> {
    pub(crate) fn new(work: &'w mut UnitOfWork, here: NodeId, deadline: Instant) -> Self {
        Walk {
            work,
            here,
            queue: VecDeque::new(),
            reports: Vec::new(),
            disengaged: false,
            deadline,
        }
    }

    /// The node the walker is on, as this run sees it (its own changes included). Loaded from
    /// the database on first use only.
    pub async fn here(&mut self) -> Result<Node, WalkError> {
        self.check_time()?;
        let node = self.work.load(&self.here).await?;
        node.cloned().ok_or(WalkError::NodeNotFound)
    }

    /// The id of the node the walker is on; needs no database read.
    pub fn here_id(&self) -> &NodeId {
        &self.here
    }

    /// True on the graph's root node.
    pub fn at_root(&self) -> bool {
        &self.here == self.work.root()
    }

    /// The graph's root node id.
    pub fn root(&self) -> &NodeId {
        self.work.root()
    }

    /// Queues nodes to visit after the ones already queued.
    pub fn visit(&mut self, nodes: impl IntoIterator<Item = NodeId>) {
        self.queue.extend(nodes);
    }

    /// Adds a value to the walk's reports.
    pub fn report(&mut self, value: Value) {
        self.reports.push(value);
    }

    /// Stops the walk after the current node; what was done so far is committed.
    pub fn disengage(&mut self) {
        self.disengaged = true;
    }

    /// The nodes reached by out-edges from `node`, optionally only those of kind `kind`.
    pub async fn children(
        &mut self,
        node: &NodeId,
        kind: Option<&NodeKind>,
    ) -> Result<Vec<Node>, WalkError> {
        self.check_time()?;
        Ok(self.work.children(node, None, kind).await?)
    }

    /// The edges leaving `node`, optionally only those towards nodes of kind `kind`.
    pub async fn edges(
        &mut self,
        node: &NodeId,
        kind: Option<&NodeKind>,
    ) -> Result<Vec<Edge>, WalkError> {
        self.check_time()?;
        Ok(self.work.edges_out(node, None, kind).await?)
    }

    /// The nodes with an edge into `node` (`<--`).
    pub async fn parents(&mut self, node: &NodeId) -> Result<Vec<Node>, WalkError> {
        self.check_time()?;
        let sources: Vec<NodeId> =
            self.work.edges_in(node).await?.into_iter().map(|e| e.source).collect();
        Ok(self.work.load_many(&sources).await?)
    }

    /// A node of this graph, if it exists.
    pub async fn load(&mut self, node: &NodeId) -> Result<Option<Node>, WalkError> {
        self.check_time()?;
        Ok(self.work.load(node).await?.cloned())
    }

    /// Creates a node of kind `kind` with `fields` (a JSON object) and links it from `parent`.
    pub fn create_child(
        &mut self,
        parent: &NodeId,
        kind: &NodeKind,
        fields: Value,
    ) -> Result<NodeId, WalkError> {
        let id = self.work.create(kind.clone(), json_to_fields(fields)?)?;
        self.work.connect(parent, &id, EdgeKind::generic(), Document::new())?;
        Ok(id)
    }

    /// Creates a node with no edge to it yet; link it with [`Walk::connect`].
    pub fn create(&mut self, kind: &NodeKind, fields: Value) -> Result<NodeId, WalkError> {
        Ok(self.work.create(kind.clone(), json_to_fields(fields)?)?)
    }

    /// Adds a generic edge from `source` to `target`.
    pub fn connect(&mut self, source: &NodeId, target: &NodeId) -> Result<(), WalkError> {
        self.work.connect(source, target, EdgeKind::generic(), Document::new())?;
        Ok(())
    }

    /// Removes an edge.
    pub fn disconnect(&mut self, edge: &Edge) {
        self.work.disconnect(edge);
    }

    /// Sets a field of a loaded node (a read-modify-write: it conflicts with any concurrent
    /// change of that node).
    pub fn set(&mut self, node: &NodeId, field: &str, value: Value) -> Result<(), WalkError> {
        self.work.set(node, field, json_to_bson(value)?)?;
        Ok(())
    }

    /// Adds `by` to an integer field without a read condition (concurrent increments never
    /// conflict with each other).
    pub fn increment(&mut self, node: &NodeId, field: &str, by: i64) -> Result<(), WalkError> {
        self.work.increment(node, field, by)?;
        Ok(())
    }

    /// Deletes a loaded node and its edges.
    pub fn delete(&mut self, node: &NodeId) -> Result<(), WalkError> {
        self.work.delete(node)?;
        Ok(())
    }

    /// The unit of work itself, for what this context does not wrap.
    pub fn unit_of_work(&mut self) -> &mut UnitOfWork {
        self.work
    }

    fn check_time(&self) -> Result<(), WalkError> {
        if Instant::now() > self.deadline {
            return Err(WalkError::TimeLimitExceeded);
        }
        Ok(())
    }

    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    pub(crate) fn move_to(&mut self, node: NodeId) {
        self.here = node;
    }

    pub(crate) fn next_node(&mut self) -> Option<NodeId> {
        if self.disengaged {
            return None;
        }
        self.queue.pop_front()
    }

    pub(crate) fn into_reports(self) -> Vec<Value> {
        self.reports
    }

    pub(crate) fn work(&mut self) -> &mut UnitOfWork {
        self.work
    }
}

/// A node as walkers report it: its fields, plus `id` and `kind`.
pub fn node_json(node: &Node) -> Value {
    let mut object = Map::new();
    for (key, value) in &node.fields {
        object.insert(key.clone(), bson_to_json(value.clone()));
    }
    object.insert("id".into(), Value::String(node.id.to_string()));
    object.insert("kind".into(), Value::String(node.kind.to_string()));
    Value::Object(object)
}

/// A field of a node as JSON, `null` when absent.
pub fn field(node: &Node, name: &str) -> Value {
    node.fields.get(name).cloned().map_or(Value::Null, bson_to_json)
}

/// An integer field of a node, 0 when absent or not an integer.
pub fn int_field(node: &Node, name: &str) -> i64 {
    match node.fields.get(name) {
        Some(Bson::Int64(n)) => *n,
        Some(Bson::Int32(n)) => i64::from(*n),
        _ => 0,
    }
}
