//! walkerd's walker runtime: walkers registered by name, run over one user's graph.
//!
//! This layer sits on the graph store ([`walkerd_graph`]) and below the HTTP server. It turns a
//! walker name and a JSON body into a committed change of a graph:
//!
//! 1. [`Registry::run`] finds the walker and decodes the body into it (a bad body is rejected
//!    with the offending field named, before any database work);
//! 2. inside the store's replay loop, the walker is spawned on a node and entered on every node
//!    it visits, breadth-first ([`walker`]), acting only through [`Walk`];
//! 3. the attempt's unit of work is committed; on conflict the whole walk runs again from fresh
//!    state with a freshly decoded walker, and the failed attempt's reports are dropped.
//!
//! Limits ([`Limits`]) bound the visits and time of one walk; exceeding them applies nothing.
//! [`demo`] holds the walkers walkerd ships for tests and load runs.

pub mod demo;
mod error;
pub mod input;
pub mod json;
mod registry;
pub mod walker;

pub use error::WalkError;
pub use input::InputLimits;
pub use registry::{Attachment, Limits, Registry, RunOutcome};
pub use walker::{node_json, Walk, Walker};
