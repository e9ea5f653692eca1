//! Typed settings, read once at startup.
//!
//! Each setting comes from, in order of precedence: a command-line flag, its environment variable
//! (`WALKERD_*`, and `MONGODB_URI`), the optional TOML file named by `WALKERD_CONFIG` (keys are
//! the flag names with `_`, such as `jwt_expiry_secs`), and a built-in default. Every value is
//! checked here, and an invalid one stops startup with a message naming the setting, so a bad
//! deployment fails at once instead of on the first request.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use secrecy::SecretString;
use serde::Deserialize;
use thiserror::Error;
use walkerd_graph::{ReplaySettings, StoreSettings};
use walkerd_runtime::{InputLimits, Limits};

#[derive(Debug, Error)]
pub enum SettingsError {
    #[error("invalid setting {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("cannot read the configuration file {path}: {reason}")]
    File { path: PathBuf, reason: String },
}

fn invalid(name: &'static str, reason: impl Into<String>) -> SettingsError {
    SettingsError::Invalid { name, reason: reason.into() }
}

/// walkerd: runs walkers over per-user graphs stored in MongoDB.
///
/// Every option can also be given by the environment variable shown, or in the TOML file named
/// by WALKERD_CONFIG. Without MONGODB_URI, walkerd starts its embedded database (secantusd-rs)
/// with data under WALKERD_DATA_DIR.
#[derive(Debug, Default, Parser, Deserialize)]
#[command(name = "walkerd", version, about, long_about)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// TOML file with settings; flags and environment variables take precedence over it.
    #[arg(long, env = "WALKERD_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Address and port to listen on [default: 127.0.0.1:8000].
    #[arg(long, env = "WALKERD_BIND")]
    pub bind: Option<String>,

    /// MongoDB connection string of a replica set. Unset: use the embedded database.
    #[arg(long, env = "MONGODB_URI", hide_env_values = true)]
    pub mongodb_uri: Option<String>,

    /// Database name [default: walkerd].
    #[arg(long, env = "WALKERD_DB_NAME")]
    pub db_name: Option<String>,

    /// Secret that signs tokens (HS256), at least 32 bytes. Required with MONGODB_URI.
    #[arg(long, env = "WALKERD_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Token lifetime in seconds [default: 604800, 7 days].
    #[arg(long, env = "WALKERD_JWT_EXPIRY_SECS")]
    pub jwt_expiry_secs: Option<u64>,

    /// Directory for the embedded database and the development secret [default: ./data].
    #[arg(long, env = "WALKERD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// The embedded database binary [default: secantusd-rs on PATH or in ~/.cargo/bin].
    #[arg(long, env = "WALKERD_EMBEDDED_DB_BIN")]
    pub embedded_db_bin: Option<PathBuf>,

    /// Largest request body in bytes [default: 1048576].
    #[arg(long, env = "WALKERD_BODY_LIMIT_BYTES")]
    pub body_limit_bytes: Option<usize>,

    /// Time after which a conflicting walker stops replaying, in ms [default: 10000].
    #[arg(long, env = "WALKERD_REPLAY_DEADLINE_MS")]
    pub replay_deadline_ms: Option<u64>,

    /// Most attempts of one walker run, the first included [default: 200].
    #[arg(long, env = "WALKERD_REPLAY_MAX_ATTEMPTS")]
    pub replay_max_attempts: Option<u32>,

    /// Most node visits in one walk [default: 10000].
    #[arg(long, env = "WALKERD_MAX_VISITS")]
    pub max_visits: Option<usize>,

    /// Longest one walk may take, replays included, in ms [default: 30000].
    #[arg(long, env = "WALKERD_WALK_TIME_LIMIT_MS")]
    pub walk_time_limit_ms: Option<u64>,

    /// HTTP worker threads [default: the number of CPUs].
    #[arg(long, env = "WALKERD_WORKERS")]
    pub workers: Option<usize>,

    /// Seconds after which an Idempotency-Key claim left by a stopped replica may be taken over
    /// [default: 30].
    #[arg(long, env = "WALKERD_IDEMPOTENCY_CLAIM_SECS")]
    pub idempotency_claim_secs: Option<u64>,

    /// Seconds between SIGTERM and closing the listener, while readiness answers 503 so that
    /// load balancers stop routing here; requests are still served [default: 5].
    #[arg(long, env = "WALKERD_DRAIN_DELAY_SECS")]
    pub drain_delay_secs: Option<u64>,

    /// Seconds that in-flight requests get to finish after the listener closes [default: 20].
    /// Keep drain delay + this below the pod's terminationGracePeriodSeconds.
    #[arg(long, env = "WALKERD_SHUTDOWN_TIMEOUT_SECS")]
    pub shutdown_timeout_secs: Option<u64>,

    /// Check /healthz/live of the walkerd listening on the configured address, and exit 0 when
    /// it answers 200 (for container health checks).
    #[arg(long)]
    #[serde(skip)]
    pub healthcheck: bool,

    /// Bearer token required by GET /metrics [default: none, metrics are open].
    #[arg(long, env = "WALKERD_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Token signing algorithm: HS256 (with WALKERD_JWT_SECRET), RS256 or EdDSA (with key files)
    /// [default: HS256].
    #[arg(long, env = "WALKERD_JWT_ALGORITHM")]
    pub jwt_algorithm: Option<String>,

    /// PEM file with the private key that signs tokens (RS256: RSA; EdDSA: Ed25519, PKCS#8).
    #[arg(long, env = "WALKERD_JWT_PRIVATE_KEY_FILE")]
    pub jwt_private_key_file: Option<PathBuf>,

    /// PEM file with the matching public key that checks tokens.
    #[arg(long, env = "WALKERD_JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<PathBuf>,

    /// Seconds a replica may keep accepting a token after POST /user/logout-all on another
    /// replica revoked it; 0 reads the user's token generation on every request [default: 5].
    #[arg(long, env = "WALKERD_REVOCATION_CACHE_SECS")]
    pub revocation_cache_secs: Option<u64>,

    /// Login and register requests per minute from one client address, per replica; 0 turns
    /// the limit off [default: 6000].
    #[arg(long, env = "WALKERD_AUTH_RATE_PER_ADDRESS")]
    pub auth_rate_per_address: Option<u32>,

    /// Failed logins and registrations per minute for one username, per replica; 0 turns the
    /// limit off [default: 30].
    #[arg(long, env = "WALKERD_AUTH_RATE_PER_USERNAME")]
    pub auth_rate_per_username: Option<u32>,

    /// Comma-separated addresses or CIDR ranges of reverse proxies whose X-Forwarded-For is
    /// believed [default: none, X-Forwarded-For is ignored].
    #[arg(long, env = "WALKERD_TRUSTED_PROXIES")]
    pub trusted_proxies: Option<String>,

    /// Comma-separated origins allowed to call the API from a browser, or `*` [default: none,
    /// CORS is off].
    #[arg(long, env = "WALKERD_CORS_ORIGINS")]
    pub cors_origins: Option<String>,

    /// Deepest JSON nesting accepted in a request body [default: 32].
    #[arg(long, env = "WALKERD_MAX_JSON_DEPTH")]
    pub max_json_depth: Option<usize>,

    /// Longest JSON string or key accepted, in bytes [default: 65536].
    #[arg(long, env = "WALKERD_MAX_STRING_BYTES")]
    pub max_string_bytes: Option<usize>,

    /// Most items in one JSON array [default: 10000].
    #[arg(long, env = "WALKERD_MAX_ARRAY_LEN")]
    pub max_array_len: Option<usize>,

    /// Most fields in one JSON object [default: 1000].
    #[arg(long, env = "WALKERD_MAX_OBJECT_FIELDS")]
    pub max_object_fields: Option<usize>,
}

/// Where the data lives.
#[derive(Debug, Clone)]
pub enum Database {
    /// A MongoDB deployment given by `MONGODB_URI`.
    External { uri: SecretString },
    /// The embedded `secantusd-rs`, started as a child process.
    Embedded { data_dir: PathBuf, binary: Option<PathBuf> },
}

/// How tokens are signed and checked.
#[derive(Debug, Clone)]
pub enum TokenKeys {
    /// HS256 with a shared secret of at least 32 bytes.
    Secret(SecretString),
    /// RS256 or EdDSA with a key pair read from PEM files at startup.
    Pair { algorithm: KeyAlgorithm, private_pem: SecretString, public_pem: String },
}

/// The asymmetric algorithms walkerd signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    Rs256,
    EdDsa,
}

/// Request-rate limits of the login and register routes; `None` is off.
#[derive(Debug, Clone, Default)]
pub struct AuthRateLimits {
    pub per_address_per_minute: Option<u32>,
    pub per_username_per_minute: Option<u32>,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: SocketAddr,
    pub database: Database,
    pub db_name: String,
    /// `None` only with the embedded database: a development secret is then generated.
    pub token_keys: Option<TokenKeys>,
    pub jwt_expiry: Duration,
    pub body_limit_bytes: usize,
    pub store: StoreSettings,
    pub limits: Limits,
    pub workers: Option<usize>,
    pub metrics_token: Option<SecretString>,
    pub idempotency_claim: Duration,
    pub drain_delay: Duration,
    pub shutdown_timeout: Duration,
    /// Only check a running walkerd's liveness, then exit.
    pub healthcheck: bool,
    pub revocation_cache: Duration,
    pub auth_rate: AuthRateLimits,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Empty: CORS is off. `["*"]`: any origin.
    pub cors_origins: Vec<String>,
    pub input: InputLimits,
}

impl Settings {
    /// Reads flags and environment, then the optional file, and validates the result.
    pub fn load() -> Result<Settings, SettingsError> {
        let mut options = Options::parse();
        if let Some(path) = options.config.clone() {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| SettingsError::File { path: path.clone(), reason: e.to_string() })?;
            let file: Options = toml::from_str(&text)
                .map_err(|e| SettingsError::File { path: path.clone(), reason: e.to_string() })?;
            options = options.or(file);
        }
        Settings::from_options(options)
    }

    /// Settings for a test: the given database, port 0, a fixed secret.
    pub fn for_tests(uri: &str, db_name: &str) -> Settings {
        let options = Options {
            bind: Some("127.0.0.1:0".into()),
            mongodb_uri: Some(uri.into()),
            db_name: Some(db_name.into()),
            jwt_secret: Some("test-secret-that-is-at-least-32-bytes-long".into()),
            workers: Some(2),
            drain_delay_secs: Some(0),
            ..Options::default()
        };
        Settings::from_options(options).expect("test settings are valid")
    }

    pub fn from_options(o: Options) -> Result<Settings, SettingsError> {
        let external = o.mongodb_uri.as_deref().is_some_and(|u| !u.trim().is_empty());
        let token_keys = token_keys(&o, external)?;
        let bind = o.bind.as_deref().unwrap_or("127.0.0.1:8000");
        let bind = bind.parse().map_err(|e| invalid("WALKERD_BIND", format!("{bind:?}: {e}")))?;

        let database = match o.mongodb_uri.filter(|u| !u.trim().is_empty()) {
            Some(uri) if uri.starts_with("mongodb://") || uri.starts_with("mongodb+srv://") => {
                Database::External { uri: uri.into() }
            }
            Some(_) => {
                return Err(invalid("MONGODB_URI", "must start with mongodb:// or mongodb+srv://"))
            }
            None => Database::Embedded {
                data_dir: o.data_dir.unwrap_or_else(|| PathBuf::from("./data")),
                binary: o.embedded_db_bin,
            },
        };

        let db_name = o.db_name.unwrap_or_else(|| "walkerd".into());
        let db_name_ok = !db_name.is_empty()
            && db_name.len() <= 63
            && db_name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !db_name_ok {
            return Err(invalid("WALKERD_DB_NAME", "1 to 63 letters, digits, `_` or `-`"));
        }

        let jwt_expiry = positive("WALKERD_JWT_EXPIRY_SECS", o.jwt_expiry_secs, 7 * 24 * 3600)?;
        let body_limit_bytes = positive("WALKERD_BODY_LIMIT_BYTES", o.body_limit_bytes, 1 << 20)?;
        let deadline = positive("WALKERD_REPLAY_DEADLINE_MS", o.replay_deadline_ms, 10_000)?;
        let attempts = positive("WALKERD_REPLAY_MAX_ATTEMPTS", o.replay_max_attempts, 200)?;
        let max_visits = positive("WALKERD_MAX_VISITS", o.max_visits, 10_000)?;
        let walk_ms = positive("WALKERD_WALK_TIME_LIMIT_MS", o.walk_time_limit_ms, 30_000)?;
        let claim = positive("WALKERD_IDEMPOTENCY_CLAIM_SECS", o.idempotency_claim_secs, 30)?;
        let shutdown = positive("WALKERD_SHUTDOWN_TIMEOUT_SECS", o.shutdown_timeout_secs, 20)?;
        let input = InputLimits {
            max_depth: positive("WALKERD_MAX_JSON_DEPTH", o.max_json_depth, 32)?,
            max_string_bytes: positive("WALKERD_MAX_STRING_BYTES", o.max_string_bytes, 65_536)?,
            max_array_len: positive("WALKERD_MAX_ARRAY_LEN", o.max_array_len, 10_000)?,
            max_object_fields: positive("WALKERD_MAX_OBJECT_FIELDS", o.max_object_fields, 1_000)?,
        };
        let auth_rate = AuthRateLimits {
            per_address_per_minute: Some(o.auth_rate_per_address.unwrap_or(6000))
                .filter(|&n| n > 0),
            per_username_per_minute: Some(o.auth_rate_per_username.unwrap_or(30))
                .filter(|&n| n > 0),
        };
        let trusted_proxies = comma_list(o.trusted_proxies.as_deref())
            .map(|text| {
                let net = text
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
                net.map_err(|_| {
                    invalid(
                        "WALKERD_TRUSTED_PROXIES",
                        format!("{text:?} is not an address or CIDR range"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let cors_origins: Vec<String> =
            comma_list(o.cors_origins.as_deref()).map(str::to_owned).collect();
        for origin in &cors_origins {
            let ok = origin == "*"
                || ((origin.starts_with("http://") || origin.starts_with("https://"))
                    && !origin.ends_with('/'));
            if !ok || (origin == "*" && cors_origins.len() > 1) {
                return Err(invalid(
                    "WALKERD_CORS_ORIGINS",
                    format!("{origin:?}: give `*` alone, or origins like https://app.example.com"),
                ));
            }
        }
        if let Some(0) = o.workers {
            return Err(invalid("WALKERD_WORKERS", "must be at least 1"));
        }

        let replay = ReplaySettings {
            deadline: Duration::from_millis(deadline),
            max_attempts: attempts,
            ..ReplaySettings::default()
        };
        Ok(Settings {
            bind,
            database,
            db_name,
            token_keys,
            jwt_expiry: Duration::from_secs(jwt_expiry),
            body_limit_bytes,
            store: StoreSettings { replay, ..StoreSettings::default() },
            limits: Limits { max_visits, time_limit: Duration::from_millis(walk_ms) },
            workers: o.workers,
            metrics_token: o.metrics_token.filter(|t| !t.is_empty()).map(Into::into),
            idempotency_claim: Duration::from_secs(claim),
            drain_delay: Duration::from_secs(o.drain_delay_secs.unwrap_or(5)),
            shutdown_timeout: Duration::from_secs(shutdown),
            healthcheck: o.healthcheck,
            revocation_cache: Duration::from_secs(o.revocation_cache_secs.unwrap_or(5)),
            auth_rate,
            trusted_proxies,
            cors_origins,
            input,
        })
    }
}

fn comma_list(text: Option<&str>) -> impl Iterator<Item = &str> {
    text.unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// The signing keys: a secret for HS256, or a key pair read from files.
fn token_keys(o: &Options, external_db: bool) -> Result<Option<TokenKeys>, SettingsError> {
    const ALGORITHM: &str = "WALKERD_JWT_ALGORITHM";
    let algorithm = match o.jwt_algorithm.as_deref().unwrap_or("HS256") {
        "HS256" => None,
        "RS256" => Some(KeyAlgorithm::Rs256),
        "EdDSA" => Some(KeyAlgorithm::EdDsa),
        other => return Err(invalid(ALGORITHM, format!("{other:?}: use HS256, RS256 or EdDSA"))),
    };
    let Some(algorithm) = algorithm else {
        return match (&o.jwt_secret, external_db) {
            (Some(s), _) if s.len() < 32 => {
                Err(invalid("WALKERD_JWT_SECRET", "must be at least 32 bytes"))
            }
            (Some(s), _) => Ok(Some(TokenKeys::Secret(s.clone().into()))),
            (None, true) => {
                Err(invalid("WALKERD_JWT_SECRET", "is required when MONGODB_URI is set"))
            }
            (None, false) => Ok(None),
        };
    };
    let read = |name: &'static str, path: &Option<PathBuf>| {
        let path =
            path.as_ref().ok_or_else(|| invalid(name, "is required with RS256 and EdDSA"))?;
        std::fs::read_to_string(path).map_err(|e| invalid(name, format!("{}: {e}", path.display())))
    };
    let private_pem = read("WALKERD_JWT_PRIVATE_KEY_FILE", &o.jwt_private_key_file)?.into();
    let public_pem = read("WALKERD_JWT_PUBLIC_KEY_FILE", &o.jwt_public_key_file)?;
    Ok(Some(TokenKeys::Pair { algorithm, private_pem, public_pem }))
}

fn positive<T: PartialOrd + Default>(
    name: &'static str,
    value: Option<T>,
    default: T,
) -> Result<T, SettingsError> {
    let value = value.unwrap_or(default);
    if value <= T::default() {
        return Err(invalid(name, "must be greater than zero"));
    }
    Ok(value)
}

impl Options {
    /// Each setting from `self`, or else from `file`.
    fn or(self, file: Options) -> Options {
        Options {
            config: self.config,
            bind: self.bind.or(file.bind),
            mongodb_uri: self.mongodb_uri.or(file.mongodb_uri),
            db_name: self.db_name.or(file.db_name),
            jwt_secret: self.jwt_secret.or(file.jwt_secret),
            jwt_expiry_secs: self.jwt_expiry_secs.or(file.jwt_expiry_secs),
            data_dir: self.data_dir.or(file.data_dir),
            embedded_db_bin: self.embedded_db_bin.or(file.embedded_db_bin),
            body_limit_bytes: self.body_limit_bytes.or(file.body_limit_bytes),
            replay_deadline_ms: self.replay_deadline_ms.or(file.replay_deadline_ms),
            replay_max_attempts: self.replay_max_attempts.or(file.replay_max_attempts),
            max_visits: self.max_visits.or(file.max_visits),
            walk_time_limit_ms: self.walk_time_limit_ms.or(file.walk_time_limit_ms),
            workers: self.workers.or(file.workers),
            metrics_token: self.metrics_token.or(file.metrics_token),
            idempotency_claim_secs: self.idempotency_claim_secs.or(file.idempotency_claim_secs),
            drain_delay_secs: self.drain_delay_secs.or(file.drain_delay_secs),
            shutdown_timeout_secs: self.shutdown_timeout_secs.or(file.shutdown_timeout_secs),
            healthcheck: self.healthcheck,
            jwt_algorithm: self.jwt_algorithm.or(file.jwt_algorithm),
            jwt_private_key_file: self.jwt_private_key_file.or(file.jwt_private_key_file),
            jwt_public_key_file: self.jwt_public_key_file.or(file.jwt_public_key_file),
            revocation_cache_secs: self.revocation_cache_secs.or(file.revocation_cache_secs),
            auth_rate_per_address: self.auth_rate_per_address.or(file.auth_rate_per_address),
            auth_rate_per_username: self.auth_rate_per_username.or(file.auth_rate_per_username),
            trusted_proxies: self.trusted_proxies.or(file.trusted_proxies),
            cors_origins: self.cors_origins.or(file.cors_origins),
            max_json_depth: self.max_json_depth.or(file.max_json_depth),
            max_string_bytes: self.max_string_bytes.or(file.max_string_bytes),
            max_array_len: self.max_array_len.or(file.max_array_len),
            max_object_fields: self.max_object_fields.or(file.max_object_fields),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> Options {
        Options {
            mongodb_uri: Some("mongodb://db:27017".into()),
            jwt_secret: Some("x".repeat(32)),
            ..Options::default()
        }
    }

    #[test]
    fn defaults_are_valid() {
        let settings = Settings::from_options(options()).unwrap();
        assert_eq!(settings.bind.to_string(), "127.0.0.1:8000");
        assert_eq!(settings.db_name, "walkerd");
        assert_eq!(settings.body_limit_bytes, 1 << 20);
    }

    #[test]
    fn an_invalid_setting_is_named() {
        let cases = [
            (Options { bind: Some("nowhere".into()), ..options() }, "WALKERD_BIND"),
            (Options { jwt_secret: Some("short".into()), ..options() }, "WALKERD_JWT_SECRET"),
            (Options { jwt_secret: None, ..options() }, "WALKERD_JWT_SECRET"),
            (Options { mongodb_uri: Some("http://x".into()), ..options() }, "MONGODB_URI"),
            (Options { body_limit_bytes: Some(0), ..options() }, "WALKERD_BODY_LIMIT_BYTES"),
            (Options { db_name: Some("a b".into()), ..options() }, "WALKERD_DB_NAME"),
            (Options { jwt_algorithm: Some("none".into()), ..options() }, "WALKERD_JWT_ALGORITHM"),
            (
                Options { jwt_algorithm: Some("RS256".into()), ..options() },
                "WALKERD_JWT_PRIVATE_KEY_FILE",
            ),
            (
                Options { trusted_proxies: Some("10.0.0.0/8, proxy".into()), ..options() },
                "WALKERD_TRUSTED_PROXIES",
            ),
            (
                Options { cors_origins: Some("*,https://a.b".into()), ..options() },
                "WALKERD_CORS_ORIGINS",
            ),
            (Options { max_json_depth: Some(0), ..options() }, "WALKERD_MAX_JSON_DEPTH"),
        ];
        for (options, name) in cases {
            let err = Settings::from_options(options).unwrap_err().to_string();
            assert!(err.contains(name), "{err:?} does not name {name}");
        }
    }

    #[test]
    fn the_embedded_database_needs_no_secret() {
        let settings = Settings::from_options(Options::default()).unwrap();
        assert!(matches!(settings.database, Database::Embedded { .. }));
        assert!(settings.token_keys.is_none());
    }

    #[test]
    fn flags_and_environment_win_over_the_file() {
        let file: Options =
            toml::from_str("bind = \"0.0.0.0:9000\"\ndb_name = \"fromfile\"").unwrap();
        let merged = Options { db_name: Some("fromenv".into()), ..Options::default() }.or(file);
        assert_eq!(merged.bind.as_deref(), Some("0.0.0.0:9000"));
        assert_eq!(merged.db_name.as_deref(), Some("fromenv"));
    }
}
