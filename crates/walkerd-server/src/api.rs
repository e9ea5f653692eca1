//! The response envelope, and the one place where errors become HTTP statuses and codes.
//!
//! Every JSON response under `/user` and `/walker` is an envelope whose HTTP status equals
//! `meta.extra.http_status`, as Jac-style clients expect:
//!
//! ```json
//! {"ok": true, "type": "response", "data": {..}, "error": null,
//!  "meta": {"extra": {"http_status": 200}}}
//! {"ok": false, "type": "error", "data": null, "error": {"code": "..", "message": ".."},
//!  "meta": {"extra": {"http_status": 409}}}
//! ```
//!
//! Error codes are stable and machine-readable. Internal failures are logged here, once, with
//! their whole chain of causes, and answered with a generic message: no driver text reaches a
//! client.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::{json, Value};
use thiserror::Error;
use walkerd_graph::StoreError;
use walkerd_runtime::WalkError;

/// A success envelope.
pub fn envelope(status: StatusCode, data: Value) -> Value {
    json!({
        "ok": true,
        "type": "response",
        "data": data,
        "error": null,
        "meta": { "extra": { "http_status": status.as_u16() } },
    })
}

/// Builds a success response.
pub fn respond(status: StatusCode, data: Value) -> HttpResponse {
    HttpResponse::build(status).json(envelope(status, data))
}

/// Every error the API answers with.
#[derive(Debug, Error)]
pub enum ApiError {
    #[error("{message}")]
    Validation { message: String },
    #[error("invalid credentials or token")]
    Unauthorized,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("that identity is already registered")]
    IdentityTaken,
    #[error("the request conflicted with concurrent changes too often; nothing was applied")]
    WriteConflict,
    #[error("the walk exceeded a limit: {0}; nothing was applied")]
    LimitExceeded(String),
    #[error("{0}")]
    WalkerFailed(String),
    #[error("a request with this Idempotency-Key is still running; retry later")]
    RequestInProgress,
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyKeyReused,
    #[error("the resource changed: its current ETag is {etag}")]
    PreconditionFailed { etag: String },
    #[error("this request needs an If-Match header with the resource's ETag")]
    PreconditionRequired,
    #[error("too many requests; retry in {} s", retry_after_secs(.retry_after))]
    RateLimited { retry_after: std::time::Duration },
    #[error("the request body exceeds {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the database is unavailable")]
    DatabaseUnavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn validation(message: impl Into<String>) -> Self {
        ApiError::Validation { message: message.into() }
    }

    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        ApiError::Internal(Box::new(e))
    }

    /// True when the request may have applied (the database went away mid-commit).
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, ApiError::DatabaseUnavailable(_) | ApiError::Internal(_))
    }

    /// The stable code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Validation { .. } => "VALIDATION_ERROR",
            ApiError::Unauthorized => "UNAUTHORIZED",
            ApiError::NotFound(_) => "NOT_FOUND",
            ApiError::IdentityTaken => "IDENTITY_TAKEN",
            ApiError::WriteConflict => "WRITE_CONFLICT",
            ApiError::LimitExceeded(_) => "LIMIT_EXCEEDED",
            ApiError::WalkerFailed(_) => "WALKER_FAILED",
            ApiError::RequestInProgress => "REQUEST_IN_PROGRESS",
            ApiError::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            ApiError::PreconditionFailed { .. } => "PRECONDITION_FAILED",
            ApiError::PreconditionRequired => "PRECONDITION_REQUIRED",
            ApiError::RateLimited { .. } => "RATE_LIMITED",
            ApiError::PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            ApiError::DatabaseUnavailable(_) => "DATABASE_UNAVAILABLE",
            ApiError::Internal(_) => "INTERNAL_ERROR",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Validation { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::IdentityTaken | ApiError::WriteConflict | ApiError::RequestInProgress => {
                StatusCode::CONFLICT
            }
            ApiError::LimitExceeded(_)
            | ApiError::WalkerFailed(_)
            | ApiError::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            ApiError::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            ApiError::DatabaseUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let database_error = match self {
            ApiError::DatabaseUnavailable(_) => Some("unavailable"),
            ApiError::Internal(cause) if cause.downcast_ref::<StoreError>().is_some() => {
                Some("other")
            }
            _ => None,
        };
        match self {
            ApiError::Internal(cause) | ApiError::DatabaseUnavailable(cause) => {
                let cause = error_chain(cause.as_ref());
                tracing::error!(code = self.code(), %cause, "request failed");
            }
            _ => tracing::debug!(code = self.code(), "request refused"),
        }
        let body = json!({
            "ok": false,
            "type": "error",
            "data": null,
            "error": { "code": self.code(), "message": self.to_string() },
            "meta": { "extra": { "http_status": status.as_u16() } },
        });
        let mut builder = HttpResponse::build(status);
        match self {
            ApiError::PreconditionFailed { etag } => {
                builder.insert_header((actix_web::http::header::ETAG, etag.as_str()));
            }
            ApiError::RateLimited { retry_after } => {
                let seconds = retry_after_secs(retry_after).to_string();
                builder.insert_header((actix_web::http::header::RETRY_AFTER, seconds));
            }
            _ => {}
        }
        let mut response = builder.json(body);
        if let Some(kind) = database_error {
            response.extensions_mut().insert(DatabaseErrorKind(kind));
        }
        response
    }
}

/// Whole seconds to wait, rounded up and at least 1, as `Retry-After` wants them.
fn retry_after_secs(wait: &std::time::Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

/// Marks a response that failed on the database, for the metrics middleware.
#[derive(Debug, Clone, Copy)]
pub struct DatabaseErrorKind(pub &'static str);

/// An error and its sources, joined with `: ` (for logs and the binary's startup errors).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::ConflictsExhausted { .. } | StoreError::Conflict(_) => {
                ApiError::WriteConflict
            }
            StoreError::NodeNotFound(_) => ApiError::NotFound("node"),
            StoreError::Model(e) => ApiError::validation(e.to_string()),
            StoreError::InvalidOperation(message) => ApiError::WalkerFailed(message),
            e @ (StoreError::Unavailable { .. } | StoreError::OutcomeUnknown { .. }) => {
                ApiError::DatabaseUnavailable(Box::new(e))
            }
            e => ApiError::internal(e),
        }
    }
}

impl From<WalkError> for ApiError {
    fn from(e: WalkError) -> Self {
        match e {
            WalkError::UnknownWalker(_) => ApiError::NotFound("walker"),
            WalkError::NodeNotFound => ApiError::NotFound("node"),
            WalkError::InvalidInput { .. } => ApiError::validation(e.to_string()),
            WalkError::VisitLimitExceeded { .. } | WalkError::TimeLimitExceeded => {
                ApiError::LimitExceeded(e.to_string())
            }
            WalkError::Failed(message) => ApiError::WalkerFailed(message),
            WalkError::Store(e) => e.into(),
        }
    }
}
