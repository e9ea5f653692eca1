//! The runtime's error type.

use thiserror::Error;
use walkerd_graph::{ModelError, StoreError};

#[derive(Debug, Error)]
pub enum WalkError {
    /// No walker is registered under that name.
    #[error("no walker named {0:?}")]
    UnknownWalker(String),

    /// The request body does not fit the walker: `field` names the offending field when known.
    #[error("invalid input{}: {message}", at_field(field))]
    InvalidInput { field: Option<String>, message: String },

    /// The spawn node does not exist in the caller's graph.
    #[error("node not found")]
    NodeNotFound,

    /// The walk visited more nodes than allowed; nothing was applied.
    #[error("the walk visited more than {limit} nodes")]
    VisitLimitExceeded { limit: usize },

    /// The walk ran past its time limit; nothing was applied.
    #[error("the walk ran past its time limit")]
    TimeLimitExceeded,

    /// The walker itself refused to go on, with a message meant for the client.
    #[error("{0}")]
    Failed(String),

    #[error(transparent)]
    Store(#[from] StoreError),
}

fn at_field(field: &Option<String>) -> String {
    field.as_ref().map(|f| format!(" at `{f}`")).unwrap_or_default()
}

impl WalkError {
    pub fn invalid(field: Option<String>, message: impl Into<String>) -> Self {
        WalkError::InvalidInput { field, message: message.into() }
    }
}

impl From<ModelError> for WalkError {
    fn from(e: ModelError) -> Self {
        WalkError::invalid(None, e.to_string())
    }
}
