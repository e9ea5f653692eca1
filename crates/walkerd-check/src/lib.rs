//! walkerd's workload client and history checker, shared by the race tests and the load
//! generator.
//!
//! The proof that walkerd loses nothing is made the way trusted databases are tested: drive
//! many clients against many replicas while things break, record what every client was told
//! ([`history`]), then check the final graph against those answers ([`checker`]). A client that
//! was told "ok" must find its change exactly once; one told "no" must not find it; one that
//! got no clear answer may find it at most once.

pub mod checker;
pub mod history;
pub mod workload;

pub use checker::{check, summary, Database, Violation};
pub use history::{Event, History, Op, Outcome};
pub use workload::{Live, RunConfig, User, Workload};
