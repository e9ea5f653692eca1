//! walkerd's graph model and its MongoDB store.
//!
//! This is the lowest layer of walkerd. It knows nodes, edges and versions; it knows nothing of
//! walkers, users or HTTP. Its one job is to make lost updates impossible when any number of
//! stateless processes change the same graphs at once, without any lock inside a process.
//!
//! # A tour
//!
//! - [`model`]: the domain values. Ids, kinds and field names are checked when made.
//! - [`Store`]: a handle on one database (`nodes` and `edges` collections). It holds no graph
//!   state, so every replica can have its own.
//! - [`UnitOfWork`]: one run's reads and pending changes. Each node is read at most once and
//!   remembers the version `_v` it was read at; each edge set listed remembers its version too.
//! - [`UnitOfWork::commit`]: writes only what changed, each node write conditional on the version
//!   read, in one transaction only when two or more existing documents change (see [`commit`]).
//! - [`Store::run`]: the replay loop. On conflict the run starts again from fresh state.
//! - [`edges`]: why edges live in their own collection, in bounded buckets.
//! - [`gc`]: what a crash can leave behind, and how it is collected.
//!
//! # Isolation, precisely
//!
//! A committed run behaves as if every node it changed or deleted, and every edge set it listed
//! and then changed, stayed exactly as the run read it until the commit (first committer wins on
//! each of them). This prevents:
//!
//! - lost updates: two read-modify-writes of one node never both commit from the same version;
//! - dirty reads and dirty writes: nothing of an uncommitted or conflicting run is ever visible;
//! - duplicate children from check-then-create: a run that listed a set and adds to it conflicts
//!   with any other change to that set;
//! - dangling edges: an edge is never left pointing at, or leaving, a deleted node.
//!
//! It does not prevent write skew: two runs that each read what the other writes, and write
//! disjoint documents, can both commit. Nor are a run's reads one snapshot: two nodes read at
//! different moments may reflect different commits (read skew). A run that needs either must
//! write to what it depends on, for example by setting a field of the node it read.
//! Blind increments ([`UnitOfWork::increment`]) and blind edge adds (adding to a set the run did
//! not list) are commutative and never conflict with each other; an increment still bumps `_v`,
//! so a concurrent read-modify-write of that node replays instead of overwriting it.

pub mod commit;
pub mod edges;
mod error;
pub mod gc;
pub mod model;
mod replay;
mod store;
mod unit_of_work;

pub use commit::CommitStats;
pub use edges::{EdgePage, PageCursor};
pub use error::{ConflictKind, Result, StoreError};
pub use gc::GarbageReport;
pub use model::{Edge, EdgeId, EdgeKind, FieldName, ModelError, Node, NodeId, NodeKind, Version};
pub use replay::{Committed, ReplaySettings};
pub use store::{FaultInjector, Store, StoreSettings, StoreStats};
pub use unit_of_work::UnitOfWork;

/// Re-exported so that users of the store name the same BSON types.
pub use mongodb::bson;
