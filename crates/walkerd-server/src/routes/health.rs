//! Liveness and readiness.
//!
//! `/healthz/live` says the process answers; `/healthz/ready` says it should get traffic: the
//! database answers a ping within a second and the server is not draining.

use std::sync::atomic::Ordering;
use std::time::Duration;

use actix_web::{get, web, HttpResponse};
use serde_json::json;

use crate::startup::AppState;

#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

#[get("/healthz/live")]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

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
