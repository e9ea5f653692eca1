//! walkerd's HTTP server: users, tokens and the walker API over the graph store.
//!
//! This is the top layer. A request's path through it:
//!
//! 1. [`routes`] parses the request (body within the size limit, JSON, walker name, node id);
//! 2. [`auth`] proves the caller from the bearer token, which also carries the caller's root
//!    node id, so no database read is needed before walking ([`revocation`] checks the token
//!    was not revoked, from a short-lived cache; [`rate_limit`] slows password guessing);
//! 3. the walker runtime runs the walker on the caller's graph with replays
//!    ([`walkerd_runtime::Registry::run`]);
//! 4. [`api`] wraps the result in the envelope, or maps the error to a status and a stable code.
//!
//! [`settings`] reads and checks the configuration once; [`startup`] builds the app from it;
//! [`embedded_db`] runs a local database when no `MONGODB_URI` is given.
//!
//! walkerd is also a library: an application registers its own walkers and calls [`serve`].
//!
//! ```no_run
//! # async fn example() -> Result<(), walkerd_server::StartupError> {
//! let mut walkers = walkerd_server::Registry::new();
//! walkerd_server::demo::register(&mut walkers); // and/or your own: walkers.register::<W>("w")
//! walkerd_server::serve(walkers).await
//! # }
//! ```

pub mod api;
pub mod auth;
pub mod embedded_db;
pub mod health;
pub mod idempotency;
pub mod metrics;
pub mod observe;
pub mod openapi;
pub mod rate_limit;
pub mod revocation;
pub mod routes;
pub mod security;
pub mod settings;
pub mod startup;
pub mod telemetry;
pub mod users;

pub use settings::Settings;
pub use startup::{Application, StartupError};
pub use walkerd_runtime::{demo, node_json, Registry, Walk, WalkError, Walker};

/// Reads the settings (flags, environment, file), starts logging, and serves `walkers` until
/// the process is told to stop.
pub async fn serve(walkers: Registry) -> Result<(), StartupError> {
    let settings = Settings::load()?;
    if settings.healthcheck {
        return health::check_live(settings.bind).await;
    }
    telemetry::init();
    let app = Application::build(settings, walkers).await?;
    app.run_until_stopped()
        .await
        .map_err(|source| StartupError::Bind { address: "the configured address".into(), source })
}
