//! Liveness and readiness.
//!
//! `/healthz/live` says the process answers; `/healthz/ready` says it should get traffic: the
//! database answers a ping within a second and the server is not draining.

use std::sync::atomic::Ordering;
use std::time::Duration;

use actix_web::{get, web, HttpResponse};
use serde_json::json;

use crate::startup::AppState;

#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Up", body = crate::openapi::HealthStatus)))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

#[utoipa::path(get, path = "/healthz/live", tag = "operations",
    responses(
        (status = 200, description = "The process answers", body = crate::openapi::HealthStatus),
    ))]
#[get("/healthz/live")]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

#[utoipa::path(get, path = "/healthz/ready", tag = "operations",
    responses(
        (status = 200, description = "Ready for traffic", body = crate::openapi::HealthStatus),
        (status = 503, description = "Draining, or the database is unreachable",
         body = crate::openapi::HealthStatus),
    ))]
#[get("/healthz/ready")]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    if state.draining.load(Ordering::SeqCst) {
        return HttpResponse::ServiceUnavailable().json(json!({ "status": "draining" }));
    }
    let ping = tokio::time::timeout(Duration::from_secs(1), state.store.ping()).await;
    match ping {
        Ok(Ok(())) => HttpResponse::Ok().json(json!({ "status": "ready" })),
        _ => HttpResponse::ServiceUnavailable().json(json!({ "status": "database unavailable" })),
    }
}
