//! Building the application from settings: database, indexes, secret, routes, listener.
//!
//! [`Application::build`] does everything that can fail before the first request, binds the
//! configured address (port 0 picks a free one, which tests use) and reports the real port.
//! Nothing is kept between requests apart from what the settings decide, so any number of
//! replicas can serve any user.

use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{web, App, HttpResponse, HttpServer};
use mongodb::event::command::CommandEvent;
use mongodb::event::EventHandler;
use mongodb::options::ClientOptions;
use prometheus::IntCounter;
use secrecy::{ExposeSecret, SecretString};
use thiserror::Error;
use walkerd_graph::{Store, StoreError};
use walkerd_runtime::Registry;

use crate::api::ApiError;
use crate::auth::Tokens;
use crate::embedded_db::{EmbeddedDb, EmbeddedDbError};
use crate::idempotency::Idempotency;
use crate::metrics::Metrics;
use crate::observe::observe;
use crate::rate_limit::RateLimiter;
use crate::revocation::Generations;
use crate::routes::{graph, health, operations, user, walker};
use crate::security::{cors, security_headers};
use crate::settings::{Database, Settings, SettingsError, TokenKeys};
use crate::users::Users;

#[derive(Debug, Error)]
pub enum StartupError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    EmbeddedDb(#[from] EmbeddedDbError),
    #[error("cannot prepare the database")]
    Store(#[from] StoreError),
    #[error("cannot prepare the database: {0}")]
    Users(ApiError),
    #[error("cannot listen on {address}")]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Keys(#[from] crate::auth::KeyError),
    #[error("cannot keep the development secret in {path}")]
    Secret {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// What every request handler shares.
pub struct AppState {
    pub store: Store,
    pub users: Users,
    pub tokens: Tokens,
    pub walkers: Registry,
    pub idempotency: Idempotency,
    pub settings: Settings,
    pub metrics: Metrics,
    pub generations: Generations,
    /// Login and register requests per client address.
    pub address_limits: RateLimiter,
    /// Failed logins and registrations per username.
    pub username_limits: RateLimiter,
    /// Set when the server is shutting down: readiness then answers 503.
    pub draining: AtomicBool,
}

/// A built server, bound and ready to run.
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    embedded: Option<EmbeddedDb>,
}

impl Application {
    pub async fn build(settings: Settings, walkers: Registry) -> Result<Application, StartupError> {
        let (uri, embedded) = match &settings.database {
            Database::External { uri } => (uri.clone(), None),
            Database::Embedded { data_dir, binary } => {
                let db = EmbeddedDb::start(data_dir, binary.as_deref()).await?;
                (SecretString::from(db.uri().to_owned()), Some(db))
            }
        };
        match &embedded {
            Some(db) => tracing::info!(uri = db.uri(), "using the embedded database"),
            None => tracing::info!(db = %settings.db_name, "using the database from MONGODB_URI"),
        }

        let metrics = Metrics::new();
        let store = connect(&uri, &settings, metrics.database_commands()).await?;
        let users = Users::new(&store);
        let idempotency = Idempotency::new(&store, settings.idempotency_claim);
        prepare_database(&store, &users, &idempotency).await?;
        let keys = match (&settings.token_keys, &settings.database) {
            (Some(keys), _) => keys.clone(),
            (None, Database::Embedded { data_dir, .. }) => {
                TokenKeys::Secret(development_secret(data_dir)?)
            }
            (None, Database::External { .. }) => unreachable!("settings require a secret"),
        };

        let state = web::Data::new(AppState {
            tokens: Tokens::new(&keys, settings.jwt_expiry)?,
            generations: Generations::new(users.clone(), settings.revocation_cache),
            address_limits: RateLimiter::new(settings.auth_rate.per_address_per_minute),
            username_limits: RateLimiter::new(settings.auth_rate.per_username_per_minute),
            store,
            users,
            walkers,
            idempotency,
            settings: settings.clone(),
            metrics,
            draining: AtomicBool::new(false),
        });
        let listener = TcpListener::bind(settings.bind)
            .map_err(|source| StartupError::Bind { address: settings.bind.to_string(), source })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind { address: settings.bind.to_string(), source })?;
        let server = http_server(state.clone(), listener, &settings)?;
        tracing::info!(address = %port, "walkerd listening");
        Ok(Application { port: port.port(), server, state, embedded })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM or SIGINT, then shuts down gracefully:
    ///
    /// 1. readiness answers 503 at once, so load balancers stop routing here, while requests
    ///    are still served for the drain delay (`WALKERD_DRAIN_DELAY_SECS`);
    /// 2. the listener closes and in-flight requests get `WALKERD_SHUTDOWN_TIMEOUT_SECS` to
    ///    finish (a walker commit is never cut off halfway by walkerd itself);
    /// 3. the embedded database, if any, stops.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let (state, drain) = (self.state.clone(), self.state.settings.drain_delay);
        let stopper = tokio::spawn(async move {
            stop_signal().await;
            state.draining.store(true, std::sync::atomic::Ordering::SeqCst);
            tracing::info!(drain_secs = drain.as_secs(), "stopping: not ready; draining");
            tokio::time::sleep(drain).await;
            tracing::info!("closing the listener; letting in-flight requests finish");
            handle.stop(true).await;
        });
        let served = self.server.await;
        stopper.abort();
        if let Some(db) = self.embedded {
            db.stop().await;
        }
        tracing::info!("walkerd stopped");
        served
    }
}

/// Waits for SIGTERM (what Kubernetes and Docker send) or SIGINT (Ctrl-C).
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut interrupt = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
}

fn http_server(
    state: web::Data<AppState>,
    listener: TcpListener,
    settings: &Settings,
) -> Result<Server, StartupError> {
    let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let origins = settings.cors_origins.clone();
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap(cors(&origins))
            .wrap(security_headers())
            .wrap(actix_web::middleware::from_fn(observe))
            .app_data(state.clone())
            .service(health::healthz)
            .service(health::live)
            .service(health::ready)
            .service(operations::metrics)
            .service(operations::openapi_json)
            .service(operations::docs)
            .service(operations::docs_asset)
            .service(user::register)
            .service(user::login)
            .service(user::refresh_token)
            .service(user::me)
            .service(user::logout_all)
            .service(walker::spawn_on_root)
            .service(walker::spawn_on_node)
            .service(graph::root)
            .service(graph::get_node)
            .service(graph::patch_node)
            .service(graph::delete_node)
            .service(graph::list_edges)
            .service(graph::create_child)
            .service(graph::create_edge)
            .service(graph::delete_edge)
            .default_service(web::to(not_found))
    })
    // walkerd handles the signals itself, to drain before closing the listener.
    .disable_signals()
    .shutdown_timeout(settings.shutdown_timeout.as_secs());
    if let Some(workers) = settings.workers {
        server = server.workers(workers);
    }
    let server =
        server.listen(listener).map_err(|source| StartupError::Bind { address, source })?.run();
    Ok(server)
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("route"))
}

/// A store whose client gives up quickly when the database is away, so that requests answer
/// 503 in seconds rather than hang.
async fn connect(
    uri: &SecretString,
    settings: &Settings,
    commands: IntCounter,
) -> Result<Store, StoreError> {
    let mut options = ClientOptions::parse(uri.expose_secret())
        .await
        .map_err(|source| StoreError::Database { context: "parsing MONGODB_URI", source })?;
    options.app_name = Some("walkerd".into());
    options.command_event_handler = Some(EventHandler::callback(move |event| {
        if let CommandEvent::Started(started) = event {
            commands.inc();
            // Names only, never bodies: RUST_LOG=walkerd::db=trace shows each request's round
            // trips.
            tracing::trace!(target: "walkerd::db", command = %started.command_name);
        }
    }));
    options.server_selection_timeout = Some(Duration::from_secs(5));
    options.connect_timeout = Some(Duration::from_secs(5));
    Store::with_options(options, &settings.db_name, settings.store.clone())
}

/// Creates the indexes, waiting up to 30 s for a database that is still starting.
async fn prepare_database(
    store: &Store,
    users: &Users,
    idempotency: &Idempotency,
) -> Result<(), StartupError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match store.ensure_indexes().await {
            Ok(()) => break,
            Err(StoreError::Unavailable { .. }) if attempt < 6 => {
                tracing::warn!(attempt, "database not reachable yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    users.ensure_indexes().await.map_err(StartupError::Users)?;
    idempotency.ensure_indexes().await.map_err(StartupError::Users)
}

/// A random secret kept in the data directory, for the embedded database only.
fn development_secret(data_dir: &Path) -> Result<SecretString, StartupError> {
    use std::os::unix::fs::PermissionsExt;

    let path = data_dir.join("jwt-secret");
    let error = |source| StartupError::Secret { path: path.display().to_string(), source };
    if let Ok(secret) = std::fs::read_to_string(&path) {
        if secret.trim().len() >= 32 {
            return Ok(secret.trim().to_owned().into());
        }
    }
    let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    std::fs::write(&path, &secret).map_err(error)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(error)?;
    tracing::warn!(
        path = %path.display(),
        "no WALKERD_JWT_SECRET: generated a development secret; set one in production"
    );
    Ok(secret.into())
}
