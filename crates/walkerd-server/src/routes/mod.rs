//! The HTTP routes. Each handler is a short list of named steps; the work lives in the modules
//! they call.

pub mod body;
pub mod graph;
pub mod health;
pub mod operations;
pub mod user;
pub mod walker;
