//! `/walker/{name}` and `/walker/{name}/{node_id}`: run a walker on the caller's graph.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{post, web, HttpRequest, HttpResponse};
use serde_json::json;
use walkerd_graph::{NodeId, StoreError};
use walkerd_runtime::{Attachment, RunOutcome, WalkError};

use crate::api::{envelope, respond, ApiError};
use crate::auth::Caller;
use crate::idempotency::{Claim, Idempotency, ResponseFn};
use crate::routes::body::json_body;
use crate::startup::AppState;

#[utoipa::path(
    post, path = "/walker/{name}", tag = "walker", security(("bearer" = [])),
    params(
        ("name" = String, Path, description = "A registered walker"),
        ("Idempotency-Key" = Option<String>, Header,
         description = "Makes retries safe: the walker applies at most once per key"),
    ),
    request_body = crate::openapi::WalkerFields,
    responses(
        (status = 200, description = "Committed", body = crate::openapi::WalkerEnvelope),
        (status = 400, description = "VALIDATION_ERROR", body = crate::openapi::ErrorEnvelope),
        (status = 401, description = "UNAUTHORIZED", body = crate::openapi::ErrorEnvelope),
        (status = 404, description = "NOT_FOUND", body = crate::openapi::ErrorEnvelope),
        (status = 409, description = "WRITE_CONFLICT, or REQUEST_IN_PROGRESS for a key that \
                                      is still running", body = crate::openapi::ErrorEnvelope),
        (status = 413, description = "PAYLOAD_TOO_LARGE", body = crate::openapi::ErrorEnvelope),
        (status = 422, description = "LIMIT_EXCEEDED, WALKER_FAILED or IDEMPOTENCY_KEY_REUSED",
         body = crate::openapi::ErrorEnvelope),
        (status = 500, description = "INTERNAL_ERROR", body = crate::openapi::ErrorEnvelope),
        (status = 503, description = "DATABASE_UNAVAILABLE", body = crate::openapi::ErrorEnvelope),
    )
)]
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

#[utoipa::path(
    post, path = "/walker/{name}/{node_id}", tag = "walker", security(("bearer" = [])),
    params(
        ("name" = String, Path, description = "A registered walker"),
        ("node_id" = String, Path, description = "One of the caller's nodes"),
        ("Idempotency-Key" = Option<String>, Header,
         description = "Makes retries safe: the walker applies at most once per key"),
    ),
    request_body = crate::openapi::WalkerFields,
    responses(
        (status = 200, description = "Committed", body = crate::openapi::WalkerEnvelope),
        (status = 400, description = "VALIDATION_ERROR", body = crate::openapi::ErrorEnvelope),
        (status = 401, description = "UNAUTHORIZED", body = crate::openapi::ErrorEnvelope),
        (status = 404, description = "NOT_FOUND", body = crate::openapi::ErrorEnvelope),
        (status = 409, description = "WRITE_CONFLICT, or REQUEST_IN_PROGRESS for a key that \
                                      is still running", body = crate::openapi::ErrorEnvelope),
        (status = 413, description = "PAYLOAD_TOO_LARGE", body = crate::openapi::ErrorEnvelope),
        (status = 422, description = "LIMIT_EXCEEDED, WALKER_FAILED or IDEMPOTENCY_KEY_REUSED",
         body = crate::openapi::ErrorEnvelope),
        (status = 500, description = "INTERNAL_ERROR", body = crate::openapi::ErrorEnvelope),
        (status = 503, description = "DATABASE_UNAVAILABLE", body = crate::openapi::ErrorEnvelope),
    )
)]
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
    let span = tracing::Span::current();
    span.record("walker", name);
    span.record("user_id", tracing::field::display(&caller.user_id));

    let held = match claim_key(req, name, spawn.as_ref(), &body, &caller, state).await? {
        KeyState::Replay(answer) => return Ok(answer),
        KeyState::Held(key, claim) => Some((key, claim)),
        KeyState::NoKey => None,
    };
    let attachment = held.as_ref().map(|(key, claim)| completion(state, &caller, key, claim));

    let limits = &state.settings.limits;
    let outcome = state
        .walkers
        .run_attached(&state.store, name, &caller.root, spawn.as_ref(), body, limits, attachment)
        .await;
    record(state, name, &outcome);
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(e) => {
            let error = ApiError::from(e);
            // Nothing was applied unless the outcome is unknown: let a retry run again.
            if let (Some((key, claim)), false) = (&held, error.outcome_unknown()) {
                state.idempotency.release(&caller.user_id, key, claim).await;
            }
            return Err(error);
        }
    };
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

/// Where a request stands with its `Idempotency-Key`.
enum KeyState {
    NoKey,
    /// An earlier request with this key finished: this is its answer.
    Replay(HttpResponse),
    /// This request holds the key (the key, the claim).
    Held(String, String),
}

async fn claim_key(
    req: &HttpRequest,
    walker: &str,
    spawn: Option<&NodeId>,
    body: &serde_json::Value,
    caller: &Caller,
    state: &AppState,
) -> Result<KeyState, ApiError> {
    let Some(key) = idempotency_key(req)? else { return Ok(KeyState::NoKey) };
    let fingerprint = Idempotency::fingerprint(walker, spawn.map(NodeId::as_str), body);
    match state.idempotency.claim(&caller.user_id, &key, &fingerprint).await? {
        Claim::Fresh { claim } => Ok(KeyState::Held(key, claim)),
        Claim::Replay { status, body } => Ok(KeyState::Replay(Idempotency::replayed(status, body))),
    }
}

/// The update that completes a held key with this request's answer, in the walker's commit.
fn completion(state: &AppState, caller: &Caller, key: &str, claim: &str) -> Arc<Attachment> {
    let respond: ResponseFn = Box::new(|result, reports| {
        let data = json!({ "result": result, "reports": reports });
        (200, envelope(StatusCode::OK, data))
    });
    Arc::new(state.idempotency.completion(&caller.user_id, key, claim, respond))
}

/// The request's `Idempotency-Key`, checked.
pub(crate) fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get("idempotency-key") else { return Ok(None) };
    let key = value.to_str().map_err(|_| ApiError::validation("Idempotency-Key is not ASCII"))?;
    Idempotency::check_key(key)?;
    Ok(Some(key.to_owned()))
}

/// Puts a run's outcome in the request's span and in the metrics.
fn record(state: &AppState, walker: &str, outcome: &Result<RunOutcome, WalkError>) {
    let (label, attempts, conflicts) = match outcome {
        Ok(run) => ("ok", run.attempts, run.conflicts.clone()),
        Err(WalkError::Store(StoreError::ConflictsExhausted { attempts, last })) => {
            ("write_conflict", *attempts, vec![*last; *attempts as usize])
        }
        Err(e) => (outcome_label(e), 1, Vec::new()),
    };
    let span = tracing::Span::current();
    span.record("attempts", attempts);
    span.record("outcome", label);
    state.metrics.walker_run(walker, label, attempts, &conflicts);
}

fn outcome_label(e: &WalkError) -> &'static str {
    match e {
        WalkError::UnknownWalker(_) | WalkError::NodeNotFound => "not_found",
        WalkError::InvalidInput { .. } => "invalid_input",
        WalkError::VisitLimitExceeded { .. } | WalkError::TimeLimitExceeded => "limit_exceeded",
        WalkError::Failed(_) => "walker_failed",
        WalkError::Store(StoreError::Unavailable { .. } | StoreError::OutcomeUnknown { .. }) => {
            "database_unavailable"
        }
        WalkError::Store(StoreError::NodeNotFound(_)) => "not_found",
        WalkError::Store(_) => "error",
    }
}
