//! `/walker/{name}` and `/walker/{name}/{node_id}`: run a walker on the caller's graph.

use actix_web::http::StatusCode;
use actix_web::{post, web, HttpRequest, HttpResponse};
use serde_json::json;
use tracing::Instrument;
use walkerd_graph::NodeId;

use crate::api::{respond, ApiError};
use crate::auth::Caller;
use crate::routes::body::json_body;
use crate::startup::AppState;

#[post("/walker/{name}")]
pub async fn spawn_on_root(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    run(&req, &path.into_inner(), None, payload, caller, &state).await
}

#[post("/walker/{name}/{node_id}")]
pub async fn spawn_on_node(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (name, node) = path.into_inner();
    // A malformed id is answered like an unknown one: 404, revealing nothing.
    let node = NodeId::parse(&node).map_err(|_| ApiError::NotFound("node"))?;
    run(&req, &name, Some(node), payload, caller, &state).await
}

async fn run(
    req: &HttpRequest,
    name: &str,
    spawn: Option<NodeId>,
    payload: web::Payload,
    caller: Caller,
    state: &AppState,
) -> Result<HttpResponse, ApiError> {
    if !state.walkers.contains(name) {
        return Err(ApiError::NotFound("walker"));
    }
    let body = json_body(req, payload, state).await?;

    let span = tracing::info_span!("walker", walker = name, user_id = %caller.user_id);
    let outcome = state
        .walkers
        .run(&state.store, name, &caller.root, spawn.as_ref(), body, &state.settings.limits)
        .instrument(span)
        .await?;
    tracing::debug!(
        walker = name,
        attempts = outcome.attempts,
        nodes_created = outcome.stats.nodes_created,
        nodes_updated = outcome.stats.nodes_updated,
        edges_added = outcome.stats.edges_added,
        transaction = outcome.stats.transaction,
        "walker committed"
    );
    Ok(respond(StatusCode::OK, json!({ "result": outcome.result, "reports": outcome.reports })))
}
