//! The OpenAPI 3 document, generated from the handlers' annotations (utoipa), served at
//! `/openapi.json`; `/docs` serves an interactive page over it, with Swagger UI vendored into the
//! binary so nothing is fetched at build or run time.
//!
//! The types here exist only to describe the wire format; the handlers build their JSON
//! directly.

#![allow(dead_code)]

use serde::Serialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "walkerd",
        description = "Runs walkers over per-user graphs. Every response under /user and \
                       /walker is an envelope whose HTTP status equals meta.extra.http_status."
    ),
    paths(
        crate::routes::user::register,
        crate::routes::user::login,
        crate::routes::user::refresh_token,
        crate::routes::user::me,
        crate::routes::user::logout_all,
        crate::routes::walker::spawn_on_root,
        crate::routes::walker::spawn_on_node,
        crate::routes::graph::root,
        crate::routes::graph::get_node,
        crate::routes::graph::patch_node,
        crate::routes::graph::delete_node,
        crate::routes::graph::list_edges,
        crate::routes::graph::create_child,
        crate::routes::graph::create_edge,
        crate::routes::graph::delete_edge,
        crate::routes::health::healthz,
        crate::routes::health::live,
        crate::routes::health::ready,
        crate::routes::operations::metrics,
        crate::routes::operations::openapi_json,
        crate::routes::operations::docs,
    ),
    components(schemas(ErrorCode)),
    modifiers(&BearerScheme),
    tags(
        (name = "user", description = "Accounts and tokens"),
        (name = "walker", description = "Running walkers"),
        (name = "graph", description = "Nodes and edges over REST, with ETag and If-Match"),
        (name = "operations", description = "Health, metrics and this document"),
    )
)]
pub struct ApiDoc;

/// Adds the bearer token scheme.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = Http::builder().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// Every stable error code, with its HTTP status.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// 400: malformed JSON, a body that is not an object, a missing or mistyped field, JSON
    /// past a size or nesting limit, a field name starting with `$` or containing `.` or NUL.
    ValidationError,
    /// 401: missing, invalid, expired or revoked token; wrong credentials.
    Unauthorized,
    /// 404: unknown walker, route, or a node that is not the caller's.
    NotFound,
    /// 409: the name is already registered.
    IdentityTaken,
    /// 409: replays ran out; nothing was applied.
    WriteConflict,
    /// 409: a request with the same Idempotency-Key is still running.
    RequestInProgress,
    /// 422: the Idempotency-Key was used with a different request.
    IdempotencyKeyReused,
    /// 412: the If-Match ETag is not the resource's current one (sent back in ETag).
    PreconditionFailed,
    /// 428: the request needs an If-Match header.
    PreconditionRequired,
    /// 413: the body is over the configured limit.
    PayloadTooLarge,
    /// 429: too many login or register attempts; `Retry-After` says when to retry.
    RateLimited,
    /// 422: the walk exceeded its visit or time limit; nothing was applied.
    LimitExceeded,
    /// 422: the walker refused, with its own message.
    WalkerFailed,
    /// 503: the database is unreachable, or a commit's outcome is unknown.
    DatabaseUnavailable,
    /// 500: anything else; the message is generic.
    InternalError,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct Extra {
    /// Equal to the HTTP status.
    pub http_status: u16,
}

#[derive(Serialize, ToSchema)]
pub struct Meta {
    pub extra: Extra,
}

/// The envelope of every error.
#[derive(Serialize, ToSchema)]
pub struct ErrorEnvelope {
    /// Always false.
    pub ok: bool,
    /// Always "error".
    #[serde(rename = "type")]
    pub kind: String,
    pub data: Option<()>,
    pub error: ErrorBody,
    pub meta: Meta,
}

/// Declares a success envelope around a data type.
macro_rules! envelope {
    ($name:ident, $data:ty) => {
        #[doc = concat!("A success envelope with `", stringify!($data), "` as data.")]
        #[derive(Serialize, ToSchema)]
        pub struct $name {
            /// Always true.
            pub ok: bool,
            /// Always "response".
            #[serde(rename = "type")]
            pub kind: String,
            pub data: $data,
            pub error: Option<()>,
            pub meta: Meta,
        }
    };
}

#[derive(Serialize, ToSchema)]
pub struct Registered {
    pub user_id: String,
    pub root_id: String,
    pub username: String,
}

#[derive(Serialize, ToSchema)]
pub struct LoggedIn {
    pub token: String,
    pub user_id: String,
    pub root_id: String,
    pub username: String,
}

#[derive(Serialize, ToSchema)]
pub struct Refreshed {
    pub token: String,
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    pub user_id: String,
    pub username: String,
    pub root_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct WalkerResult {
    /// The value the walker returned, or null.
    pub result: Option<serde_json::Value>,
    /// Everything the walker reported, in order.
    pub reports: Vec<serde_json::Value>,
}

envelope!(RegisteredEnvelope, Registered);
envelope!(LoggedInEnvelope, LoggedIn);
envelope!(RefreshedEnvelope, Refreshed);
envelope!(MeEnvelope, Me);
envelope!(WalkerEnvelope, WalkerResult);

/// A node of the graph.
#[derive(Serialize, ToSchema)]
pub struct GraphNode {
    pub id: String,
    pub kind: String,
    /// The node's version, also its ETag.
    #[serde(rename = "_v")]
    pub version: i64,
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// An edge of the graph.
#[derive(Serialize, ToSchema)]
pub struct GraphEdge {
    pub id: String,
    pub kind: String,
    pub source: String,
    pub target: String,
    pub target_kind: String,
    pub fields: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
pub struct EdgePage {
    pub edges: Vec<GraphEdge>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct NewChild {
    pub kind: String,
    pub fields: Option<serde_json::Map<String, serde_json::Value>>,
    /// Defaults to "Edge".
    pub edge_kind: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct NewEdge {
    pub source: String,
    pub target: String,
    /// Defaults to "Edge".
    pub kind: Option<String>,
    pub fields: Option<serde_json::Map<String, serde_json::Value>>,
}

envelope!(NodeEnvelope, GraphNode);
envelope!(EdgeEnvelope, GraphEdge);
envelope!(EdgePageEnvelope, EdgePage);

#[derive(Serialize, ToSchema)]
pub struct Identity {
    /// "email" or "username"; both share one namespace.
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

#[derive(Serialize, ToSchema)]
pub struct PasswordCredential {
    /// Always "password".
    #[serde(rename = "type")]
    pub kind: String,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct FlatCredentials {
    pub username: String,
    /// At least 8 characters when registering.
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct IdentityRegistration {
    pub identities: Vec<Identity>,
    pub credential: PasswordCredential,
}

#[derive(Serialize, ToSchema)]
pub struct IdentityLogin {
    pub identity: Identity,
    pub credential: PasswordCredential,
}

/// Either body shape registers.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum RegisterBody {
    Flat(FlatCredentials),
    Identity(IdentityRegistration),
}

/// Either body shape logs in.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginBody {
    Flat(FlatCredentials),
    Identity(IdentityLogin),
}

#[derive(Serialize, ToSchema)]
pub struct RefreshBody {
    pub token: String,
}

/// The walker's fields, as a JSON object (`{}` for none).
#[derive(Serialize, ToSchema)]
pub struct WalkerFields(pub serde_json::Map<String, serde_json::Value>);

#[derive(Serialize, ToSchema)]
pub struct HealthStatus {
    pub status: String,
}
