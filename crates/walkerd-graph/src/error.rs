//! The store's error type, and how driver errors are sorted into it.
//!
//! Errors are classified by the driver's error code and labels, never by message text:
//! WriteConflict (112) and `TransientTransactionError` mean "replay", a duplicate key (11000) on a
//! conditional insert means someone else got there first, and network or server-selection trouble
//! means the database is unavailable.

use mongodb::error::{Error as DriverError, ErrorKind, WriteFailure};
use thiserror::Error;

use crate::model::{ModelError, NodeId};

/// What a conflicting commit ran into; reported in traces and metrics, never to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConflictKind {
    /// A node changed (or was deleted) after this run read it.
    StaleNode,
    /// An edge set this run listed gained or lost an edge before the run changed it.
    StaleEdgeSet,
    /// The database aborted the transaction (WriteConflict or a transient error).
    Transaction,
    /// A document updated with the run ([`crate::UnitOfWork::also_update`]) no longer matched.
    StaleDocument,
}

#[derive(Debug, Error)]
pub enum StoreError {
    /// The commit met a concurrent change; nothing of it is visible. Replaying fixes it.
    #[error("commit conflicted with a concurrent change ({0:?})")]
    Conflict(ConflictKind),

    /// Replays ran out (attempt budget or deadline); nothing of the last attempt is visible.
    #[error("gave up after {attempts} conflicting attempts")]
    ConflictsExhausted { attempts: u32, last: ConflictKind },

    /// The node does not exist in this graph, or it has been deleted.
    #[error("node {0} not found")]
    NodeNotFound(NodeId),

    /// The run asked for something the store does not allow (for example deleting a root).
    #[error("invalid operation: {0}")]
    InvalidOperation(String),

    #[error(transparent)]
    Model(#[from] ModelError),

    /// The database could not be reached; nothing was written by this request.
    #[error("database unavailable during {context}")]
    Unavailable {
        context: &'static str,
        #[source]
        source: DriverError,
    },

    /// A commit was sent but its outcome is unknown (the connection dropped after sending).
    /// The run is not replayed, because replaying could apply it twice.
    #[error("outcome of the commit is unknown")]
    OutcomeUnknown {
        #[source]
        source: DriverError,
    },

    /// Any other database error.
    #[error("database error during {context}")]
    Database {
        context: &'static str,
        #[source]
        source: DriverError,
    },

    /// A stored document does not have the shape walkerd writes.
    #[error("malformed document in the store: {0}")]
    Corrupt(String),

    /// A fault armed by a test through [`crate::FaultInjector`].
    #[error("injected fault")]
    InjectedFault,
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub(crate) const WRITE_CONFLICT: i32 = 112;
pub(crate) const DUPLICATE_KEY: i32 = 11000;

/// The server error code carried by a driver error, if any.
pub(crate) fn server_code(err: &DriverError) -> Option<i32> {
    match err.kind.as_ref() {
        ErrorKind::Command(c) => Some(c.code),
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(w)) => Some(w.code),
        ErrorKind::InsertMany(e) => {
            e.write_errors.as_ref().and_then(|errs| errs.first()).map(|w| w.code)
        }
        _ => None,
    }
}

pub(crate) fn is_duplicate_key(err: &DriverError) -> bool {
    server_code(err) == Some(DUPLICATE_KEY)
}

pub(crate) fn is_transient_conflict(err: &DriverError) -> bool {
    server_code(err) == Some(WRITE_CONFLICT)
        || err.contains_label(mongodb::error::TRANSIENT_TRANSACTION_ERROR)
}

/// Server codes meaning "not now": shutting down, stepping down, no primary.
const UNAVAILABLE_CODES: [i32; 7] = [91, 189, 10107, 11600, 11602, 13435, 13436];

fn is_unreachable(err: &DriverError) -> bool {
    let kind = err.kind.as_ref();
    matches!(
        kind,
        ErrorKind::Io(_)
            | ErrorKind::ServerSelection { .. }
            | ErrorKind::ConnectionPoolCleared { .. }
    ) || err.contains_label("RetryableWriteError")
        || server_code(err).is_some_and(|code| UNAVAILABLE_CODES.contains(&code))
}

impl ConflictKind {
    /// A short name for metrics labels.
    pub fn label(self) -> &'static str {
        match self {
            ConflictKind::StaleNode => "stale_node",
            ConflictKind::StaleEdgeSet => "stale_edge_set",
            ConflictKind::Transaction => "transaction",
            ConflictKind::StaleDocument => "stale_document",
        }
    }
}

impl StoreError {
    /// Sorts a driver error met during `context` (a short static description of the step).
    pub(crate) fn from_driver(context: &'static str, source: DriverError) -> Self {
        // Reachability first: a network error inside a transaction also carries the transient
        // label, but replaying cannot help while the database is away.
        if is_unreachable(&source) {
            StoreError::Unavailable { context, source }
        } else if is_transient_conflict(&source) {
            StoreError::Conflict(ConflictKind::Transaction)
        } else {
            StoreError::Database { context, source }
        }
    }

    /// True when replaying the run from fresh state can succeed.
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict(_))
    }
}

/// Adds the step's name to a driver error, as `.ctx("loading nodes")?`.
pub(crate) trait DriverResultExt<T> {
    fn ctx(self, context: &'static str) -> Result<T>;
}

impl<T> DriverResultExt<T> for std::result::Result<T, DriverError> {
    fn ctx(self, context: &'static str) -> Result<T> {
        self.map_err(|e| StoreError::from_driver(context, e))
    }
}
