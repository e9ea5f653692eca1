//! walkerd's end-to-end tests.
//!
//! The tests in `tests/` exercise the crates together, against a real MongoDB-compatible server
//! started by `walkerd-testkit`. This library is empty on purpose: the root package exists only
//! to hold those tests, so that `cargo test --workspace` runs them with everything else.
