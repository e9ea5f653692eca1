//! One span per request, request ids, and the HTTP metrics.
//!
//! Every request gets an id: the caller's `X-Request-Id` when it is sane (1 to 64 letters,
//! digits, `-`, `_` or `.`), otherwise a new UUID. The id is echoed in the response's
//! `X-Request-Id` and carried by the request's span, with the method, the route template, the
//! status and the duration; the walker handler adds the walker, user, attempts and outcome.
//! Nothing from the body, headers or token is logged.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use tracing::field::Empty;
use tracing::Instrument;

use crate::api::DatabaseErrorKind;
use crate::startup::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The middleware: wraps every request in its span and counts it.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let request_id = request_id(&req);
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().as_str().to_owned();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %method,
        route = %route,
        status = Empty,
        duration_ms = Empty,
        user_id = Empty,
        walker = Empty,
        attempts = Empty,
        outcome = Empty,
    );

    if let Some(state) = &state {
        state.metrics.request_started();
    }
    let started = Instant::now();
    let mut response = next.call(req).instrument(span.clone()).await?;
    let elapsed = started.elapsed();

    let status = response.status().as_u16();
    span.record("status", status);
    span.record("duration_ms", elapsed.as_millis() as u64);
    if let Some(state) = &state {
        state.metrics.request_finished(&route, &method, status, elapsed.as_secs_f64());
        if let Some(kind) = response.response().extensions().get::<DatabaseErrorKind>() {
            state.metrics.database_error(kind.0);
        }
    }
    tracing::debug!(parent: &span, "request finished");

    let value = HeaderValue::from_str(&request_id).expect("request ids are header-safe");
    response.headers_mut().insert(REQUEST_ID, value);
    Ok(response)
}

/// The caller's request id if it is sane, else a new one.
fn request_id(req: &ServiceRequest) -> String {
    let given = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok());
    let sane = |id: &&str| {
        (1..=64).contains(&id.len())
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    given.filter(sane).map(str::to_owned).unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}
