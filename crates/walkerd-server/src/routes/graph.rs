//! `/graph`: the caller's graph over plain REST, with HTTP's own way of preventing lost updates.
//!
//! A node is `{id, kind, _v, fields}` and carries `ETag: "<_v>"`. `PATCH` (a JSON merge patch of
//! `fields`) and `DELETE` require `If-Match` (428 without it) and answer 412 with the current
//! ETag when it is stale; a matching write is the same conditional commit walkers use, so it
//! cannot overwrite a change made since the ETag was read. Edge adds and removes need no
//! precondition: they never lose each other. A node's out-edge listing has an ETag of its own,
//! which `POST .../children` and `POST /graph/edges` accept as `If-Match`: the add then commits
//! only if that listing is unchanged, so a client can check, then create, without duplicates.
//!
//! A listing reads every edge it filters and sorts, which grows with the node's fan-out. With
//! both `kind` and `target_kind`, it pages one edge set from its index instead, at the same cost
//! for ten edges or a million; such a page carries no ETag (a check-then-create condition needs
//! the whole listing).
//!
//! Every read and write is scoped to the caller's graph; ids of other users' nodes, malformed
//! ids and ids of deleted nodes all answer 404.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{delete, get, patch, post, web, HttpRequest, HttpResponse};
use futures::FutureExt;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use walkerd_graph::{Edge, EdgeId, EdgeKind, Node, NodeId, NodeKind, PageCursor, UnitOfWork};
use walkerd_runtime::json::{bson_to_json, json_to_fields};

use crate::api::{envelope, ApiError};
use crate::auth::Caller;
use crate::idempotency::{Claim, Idempotency};
use crate::openapi::{
    EdgeEnvelope, EdgePageEnvelope, ErrorEnvelope, NewChild, NewEdge, NodeEnvelope,
};
use crate::routes::body::json_object;
use crate::routes::walker::idempotency_key;
use crate::startup::AppState;

/// A node as the API shows it.
fn node_json(node: &Node) -> Value {
    let fields = Value::Object(
        node.fields.iter().map(|(k, v)| (k.clone(), bson_to_json(v.clone()))).collect(),
    );
    json!({ "id": node.id.to_string(), "kind": node.kind.to_string(), "_v": node.version.0,
            "fields": fields })
}

fn edge_json(edge: &Edge) -> Value {
    let fields = Value::Object(
        edge.fields.iter().map(|(k, v)| (k.clone(), bson_to_json(v.clone()))).collect(),
    );
    json!({ "id": edge.id.to_string(), "kind": edge.kind.to_string(),
            "source": edge.source.to_string(), "target": edge.target.to_string(),
            "target_kind": edge.target_kind.to_string(), "fields": fields })
}

fn node_etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// The ETag of a listing: a digest of what identifies its state.
fn listing_etag(state_text: &str) -> String {
    let digest = format!("{:x}", Sha256::digest(state_text.as_bytes()));
    format!("\"e{}\"", &digest[..24])
}

/// A response with a node in the envelope and its ETag.
fn node_response(status: StatusCode, node: &Node) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::ETAG, node_etag(node.version.0)))
        .json(envelope(status, node_json(node)))
}

fn header_text(req: &HttpRequest, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v: &HeaderValue| v.to_str().ok()).map(str::trim)
}

/// A path id: malformed ids are answered exactly like unknown ones.
fn node_id(text: &str) -> Result<NodeId, ApiError> {
    NodeId::parse(text).map_err(|_| ApiError::NotFound("node"))
}

fn kind_of<T>(
    value: Option<&Value>,
    make: fn(&str) -> Result<T, walkerd_graph::ModelError>,
    what: &str,
) -> Result<Option<T>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => {
            make(text).map(Some).map_err(|e| ApiError::validation(e.to_string()))
        }
        Some(_) => Err(ApiError::validation(format!("`{what}` must be a string"))),
    }
}

/// An `Idempotency-Key` this request holds.
#[derive(Clone)]
struct Held {
    key: String,
    claim: String,
}

/// Claims the request's `Idempotency-Key`, if it has one. `Err` carries the stored answer of an
/// earlier request with the same key, to send instead of doing anything.
async fn claim_key(
    req: &HttpRequest,
    caller: &Caller,
    state: &AppState,
    body: &Value,
) -> Result<Result<Option<Held>, HttpResponse>, ApiError> {
    let Some(key) = idempotency_key(req)? else { return Ok(Ok(None)) };
    let what = format!("{} {}", req.method(), req.path());
    let fingerprint = Idempotency::fingerprint(&what, None, body);
    match state.idempotency.claim(&caller.user_id, &key, &fingerprint).await? {
        Claim::Fresh { claim } => Ok(Ok(Some(Held { key, claim }))),
        Claim::Replay { status, body } => Ok(Err(Idempotency::replayed(status, body))),
    }
}

/// Stores the answer with the held key, in the same commit as the change.
fn complete(
    work: &mut UnitOfWork,
    state: &AppState,
    caller: &Caller,
    held: &Option<Held>,
    status: StatusCode,
    body: &Value,
) {
    if let Some(held) = held {
        let (user, code) = (&caller.user_id, status.as_u16());
        state.idempotency.complete_in(work, user, &held.key, &held.claim, code, body);
    }
}

/// Frees the held key after a definite failure, so that a retry runs again.
async fn settle<T>(
    state: &AppState,
    caller: &Caller,
    held: &Option<Held>,
    result: Result<T, ApiError>,
) -> Result<T, ApiError> {
    if let (Err(e), Some(held)) = (&result, held) {
        if !e.outcome_unknown() {
            state.idempotency.release(&caller.user_id, &held.key, &held.claim).await;
        }
    }
    result
}

/// Loads a node of the caller's graph, or 404.
async fn load(work: &mut UnitOfWork, id: &NodeId) -> Result<Node, ApiError> {
    work.load(id).await?.cloned().ok_or(ApiError::NotFound("node"))
}

#[utoipa::path(
    get, path = "/graph/root", tag = "graph", security(("bearer" = [])),
    responses(
        (status = 200, description = "The node; ETag: \"<_v>\"", body = NodeEnvelope),
        (status = 401, description = "UNAUTHORIZED", body = ErrorEnvelope),
    )
)]
#[get("/graph/root")]
pub async fn root(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    read_node(&req, &caller.root.clone(), &caller, &state).await
}

#[utoipa::path(
    get, path = "/graph/nodes/{id}", tag = "graph", security(("bearer" = [])),
    params(("id" = String, Path, description = "One of the caller's nodes"),
           ("If-None-Match" = Option<String>, Header, description = "An ETag")),
    responses(
        (status = 200, description = "The node; ETag: \"<_v>\"", body = NodeEnvelope),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 401, description = "UNAUTHORIZED", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND", body = ErrorEnvelope),
    )
)]
#[get("/graph/nodes/{id}")]
pub async fn get_node(
    req: HttpRequest,
    id: web::Path<String>,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    read_node(&req, &node_id(&id)?, &caller, &state).await
}

/// `GET` of one node, honouring `If-None-Match`.
async fn read_node(
    req: &HttpRequest,
    id: &NodeId,
    caller: &Caller,
    state: &AppState,
) -> Result<HttpResponse, ApiError> {
    let mut work = state.store.begin(&caller.root);
    let node = load(&mut work, id).await?;
    let etag = node_etag(node.version.0);
    if header_text(req, header::IF_NONE_MATCH)
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return Ok(HttpResponse::NotModified().insert_header((header::ETAG, etag)).finish());
    }
    Ok(node_response(StatusCode::OK, &node))
}

/// The version an `If-Match` header names; 428 without one.
fn required_version(req: &HttpRequest) -> Result<i64, ApiError> {
    let tag = header_text(req, header::IF_MATCH).ok_or(ApiError::PreconditionRequired)?;
    // An ETag that is not one of ours can never match.
    Ok(tag.trim_matches('"').parse().unwrap_or(-1))
}

#[utoipa::path(
    patch, path = "/graph/nodes/{id}", tag = "graph", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe"),
           ("id" = String, Path, description = "One of the caller's nodes"),
           ("If-Match" = String, Header, description = "The node's ETag")),
    request_body(content = Object, description = "A JSON merge patch of the node's fields"),
    responses(
        (status = 200, description = "The node; ETag: \"<_v>\"", body = NodeEnvelope),
        (status = 401, description = "UNAUTHORIZED", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND", body = ErrorEnvelope),
        (status = 409, description = "WRITE_CONFLICT", body = ErrorEnvelope),
        (status = 412, description = "PRECONDITION_FAILED, with the current ETag",
         body = ErrorEnvelope),
        (status = 428, description = "PRECONDITION_REQUIRED", body = ErrorEnvelope),
    )
)]
#[patch("/graph/nodes/{id}")]
pub async fn patch_node(
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = node_id(&id)?;
    let expected = required_version(&req)?;
    let patch = json_object(&req, payload, &state).await?;
    let held = match claim_key(&req, &caller, &state, &Value::Object(patch.clone())).await? {
        Ok(held) => held,
        Err(replayed) => return Ok(replayed),
    };

    let outcome = state
        .store
        .run(&caller.root, |work| {
            let (id, patch, state, caller, held) =
                (id.clone(), patch.clone(), state.clone(), caller.clone(), held.clone());
            async move {
                let node = load(work, &id).await?;
                if node.version.0 != expected {
                    return Err(ApiError::PreconditionFailed { etag: node_etag(node.version.0) });
                }
                apply_merge_patch(work, &node, &patch)?;
                let mut patched = work.node(&id).cloned().expect("loaded above");
                // Any field in the patch marks the node changed, and the commit bumps `_v`.
                patched.version.0 += i64::from(!patch.is_empty());
                let body = envelope(StatusCode::OK, node_json(&patched));
                complete(work, &state, &caller, &held, StatusCode::OK, &body);
                Ok(patched)
            }
            .boxed()
        })
        .await;
    let committed = settle(&state, &caller, &held, outcome).await?;
    Ok(node_response(StatusCode::OK, &committed.value))
}

/// RFC 7396 on `fields`: `null` removes a field, an object merges into an object, anything else
/// replaces.
fn apply_merge_patch(
    work: &mut UnitOfWork,
    node: &Node,
    patch: &Map<String, Value>,
) -> Result<(), ApiError> {
    for (name, change) in patch {
        if change.is_null() {
            work.unset(&node.id, name)?;
            continue;
        }
        let current = node.fields.get(name).cloned().map(bson_to_json);
        let merged = merge(current, change.clone());
        let fields = json_to_fields(json!({ name: merged }))?;
        let value = fields.get(name).cloned().expect("just built");
        work.set(&node.id, name, value)?;
    }
    Ok(())
}

fn merge(target: Option<Value>, patch: Value) -> Value {
    match (target, patch) {
        (Some(Value::Object(mut target)), Value::Object(patch)) => {
            for (key, change) in patch {
                if change.is_null() {
                    target.remove(&key);
                } else {
                    let merged = merge(target.remove(&key), change);
                    target.insert(key, merged);
                }
            }
            Value::Object(target)
        }
        (_, Value::Object(patch)) => merge(Some(Value::Object(Map::new())), Value::Object(patch)),
        (_, patch) => patch,
    }
}

#[utoipa::path(
    delete, path = "/graph/nodes/{id}", tag = "graph", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe"),
           ("id" = String, Path, description = "One of the caller's nodes"),
           ("If-Match" = String, Header, description = "The node's ETag")),
    responses(
        (status = 204, description = "Deleted, with its edges"),
        (status = 401, description = "UNAUTHORIZED", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND", body = ErrorEnvelope),
        (status = 412, description = "PRECONDITION_FAILED", body = ErrorEnvelope),
        (status = 428, description = "PRECONDITION_REQUIRED", body = ErrorEnvelope),
    )
)]
#[delete("/graph/nodes/{id}")]
pub async fn delete_node(
    req: HttpRequest,
    id: web::Path<String>,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = node_id(&id)?;
    let expected = required_version(&req)?;
    if id == caller.root {
        return Err(ApiError::validation("the root node cannot be deleted"));
    }
    let held = match claim_key(&req, &caller, &state, &Value::Null).await? {
        Ok(held) => held,
        Err(replayed) => return Ok(replayed),
    };
    let outcome = state
        .store
        .run(&caller.root, |work| {
            let (id, state, caller, held) =
                (id.clone(), state.clone(), caller.clone(), held.clone());
            async move {
                let node = load(work, &id).await?;
                if node.version.0 != expected {
                    return Err(ApiError::PreconditionFailed { etag: node_etag(node.version.0) });
                }
                work.delete(&id)?;
                complete(work, &state, &caller, &held, StatusCode::NO_CONTENT, &Value::Null);
                Ok(())
            }
            .boxed()
        })
        .await;
    settle(&state, &caller, &held, outcome).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
pub struct EdgeQuery {
    direction: Option<String>,
    kind: Option<String>,
    target_kind: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

#[utoipa::path(
    get, path = "/graph/nodes/{id}/edges", tag = "graph", security(("bearer" = [])),
    params(("id" = String, Path, description = "One of the caller's nodes"),
           ("direction" = Option<String>, Query, description = "out (default) or in"),
           ("kind" = Option<String>, Query, description = "Only edges of this kind"),
           ("target_kind" = Option<String>, Query, description = "Only edges to nodes of this \
             kind; with `kind`, pages that one edge set from its index, without an ETag"),
           ("limit" = Option<usize>, Query, description = "1 to 500, default 50"),
           ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")),
    responses(
        (status = 200, description = "Edges; ETag: the listing's", body = EdgePageEnvelope),
        (status = 401, description = "UNAUTHORIZED", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND", body = ErrorEnvelope),
    )
)]
#[get("/graph/nodes/{id}/edges")]
pub async fn list_edges(
    id: web::Path<String>,
    query: web::Query<EdgeQuery>,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = node_id(&id)?;
    let kind = kind_of(
        query.kind.as_ref().map(|k| Value::String(k.clone())).as_ref(),
        EdgeKind::new,
        "kind",
    )?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::validation("`limit` must be from 1 to 500"));
    }
    if let Some(target_kind) = &query.target_kind {
        return page_one_set(&state, &caller, &id, kind, target_kind, &query, limit).await;
    }
    let after = match &query.cursor {
        None => None,
        Some(c) => Some(EdgeId::parse(c).map_err(|_| ApiError::validation("malformed `cursor`"))?),
    };

    let mut work = state.store.begin(&caller.root);
    load(&mut work, &id).await?;
    let (mut edges, etag) = match query.direction.as_deref().unwrap_or("out") {
        "out" => {
            let edges = work.edges_out(&id, kind.as_ref(), None).await?;
            let etag = listing_etag(&work.listed_versions(&id, kind.as_ref()));
            (edges, etag)
        }
        "in" => {
            let mut edges = work.edges_in(&id).await?;
            edges.retain(|e| kind.as_ref().is_none_or(|k| &e.kind == k));
            let mut ids: Vec<String> = edges.iter().map(|e| e.id.to_string()).collect();
            ids.sort();
            (edges, listing_etag(&ids.join(",")))
        }
        _ => return Err(ApiError::validation("`direction` must be \"out\" or \"in\"")),
    };
    edges.sort_by(|a, b| a.id.cmp(&b.id));
    edges.retain(|e| after.as_ref().is_none_or(|a| &e.id > a));
    let next = (edges.len() > limit).then(|| edges[limit - 1].id.to_string());
    edges.truncate(limit);

    let data =
        json!({ "edges": edges.iter().map(edge_json).collect::<Vec<_>>(), "next_cursor": next });
    Ok(HttpResponse::Ok().insert_header((header::ETAG, etag)).json(envelope(StatusCode::OK, data)))
}

/// A page of the one edge set (`id`, `kind`, `target_kind`), read from its index. Its cursor is
/// `<bucket seq>-<last edge id>`.
async fn page_one_set(
    state: &AppState,
    caller: &Caller,
    id: &NodeId,
    kind: Option<EdgeKind>,
    target_kind: &str,
    query: &EdgeQuery,
    limit: usize,
) -> Result<HttpResponse, ApiError> {
    let Some(kind) = kind else {
        return Err(ApiError::validation("`target_kind` needs `kind` as well"));
    };
    if query.direction.as_deref().is_some_and(|d| d != "out") {
        return Err(ApiError::validation("`target_kind` lists out-edges only"));
    }
    let target_kind = NodeKind::new(target_kind)
        .map_err(|_| ApiError::validation("`target_kind` is not a valid node kind"))?;
    let cursor = query.cursor.as_deref().map(parse_page_cursor).transpose()?;

    let mut work = state.store.begin(&caller.root);
    load(&mut work, id).await?;
    let page = state.store.page_edges(id, &kind, &target_kind, cursor.as_ref(), limit).await?;
    let next = page.next.map(|c| format!("{}-{}", c.seq, c.after));
    let edges: Vec<Value> = page.edges.iter().map(edge_json).collect();
    let data = json!({ "edges": edges, "next_cursor": next });
    Ok(HttpResponse::Ok().json(envelope(StatusCode::OK, data)))
}

fn parse_page_cursor(text: &str) -> Result<PageCursor, ApiError> {
    let malformed = || ApiError::validation("malformed `cursor`");
    let (seq, after) = text.split_once('-').ok_or_else(malformed)?;
    let seq: i64 = seq.parse().map_err(|_| malformed())?;
    if seq < 0 {
        return Err(malformed());
    }
    Ok(PageCursor { seq, after: EdgeId::parse(after).map_err(|_| malformed())? })
}

/// Checks an optional `If-Match` against the out-edge listing of `source` (of `edge_kind`),
/// listing it in `work` so that the commit is conditional on it.
async fn check_listing(
    work: &mut UnitOfWork,
    source: &NodeId,
    edge_kind: &EdgeKind,
    if_match: Option<&str>,
) -> Result<(), ApiError> {
    let Some(expected) = if_match else { return Ok(()) };
    work.edges_out(source, Some(edge_kind), None).await?;
    let current = listing_etag(&work.listed_versions(source, Some(edge_kind)));
    if expected != current {
        return Err(ApiError::PreconditionFailed { etag: current });
    }
    Ok(())
}

#[utoipa::path(
    post, path = "/graph/nodes/{id}/children", tag = "graph", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe"),
           ("id" = String, Path, description = "The parent, one of the caller's nodes"),
           ("If-Match" = Option<String>, Header, description = "An out-edge listing's ETag")),
    request_body = NewChild,
    responses(
        (status = 201, description = "The new node, linked from the parent", body = NodeEnvelope),
        (status = 401, description = "UNAUTHORIZED", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND", body = ErrorEnvelope),
        (status = 412, description = "PRECONDITION_FAILED: listing changed", body = ErrorEnvelope),
    )
)]
#[post("/graph/nodes/{id}/children")]
pub async fn create_child(
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let parent = node_id(&id)?;
    let body = json_object(&req, payload, &state).await?;
    let kind = kind_of(body.get("kind"), NodeKind::new, "kind")?
        .ok_or_else(|| ApiError::validation("`kind` is required"))?;
    let edge_kind = kind_of(body.get("edge_kind"), EdgeKind::new, "edge_kind")?
        .unwrap_or_else(EdgeKind::generic);
    let fields = json_to_fields(body.get("fields").cloned().unwrap_or(json!({})))?;
    let if_match = header_text(&req, header::IF_MATCH).map(str::to_owned);
    let held = match claim_key(&req, &caller, &state, &Value::Object(body.clone())).await? {
        Ok(held) => held,
        Err(replayed) => return Ok(replayed),
    };

    let outcome = state
        .store
        .run(&caller.root, |work| {
            let (parent, kind, edge_kind, fields, if_match) =
                (parent.clone(), kind.clone(), edge_kind.clone(), fields.clone(), if_match.clone());
            let (state, caller, held) = (state.clone(), caller.clone(), held.clone());
            async move {
                load(work, &parent).await?;
                check_listing(work, &parent, &edge_kind, if_match.as_deref()).await?;
                let child = work.create(kind, fields)?;
                work.connect(&parent, &child, edge_kind, Default::default())?;
                let node = work.node(&child).cloned().expect("created above");
                let body = envelope(StatusCode::CREATED, node_json(&node));
                complete(work, &state, &caller, &held, StatusCode::CREATED, &body);
                Ok::<_, ApiError>(node)
            }
            .boxed()
        })
        .await;
    let committed = settle(&state, &caller, &held, outcome).await?;
    let node = committed.value;
    let location = format!("/graph/nodes/{}", node.id);
    let mut response = node_response(StatusCode::CREATED, &node);
    response
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_str(&location).expect("ids are header-safe"));
    Ok(response)
}

#[utoipa::path(
    post, path = "/graph/edges", tag = "graph", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe"),
           ("If-Match" = Option<String>, Header, description = "The source's listing ETag")),
    request_body = NewEdge,
    responses(
        (status = 201, description = "The new edge", body = EdgeEnvelope),
        (status = 401, description = "UNAUTHORIZED", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND", body = ErrorEnvelope),
        (status = 412, description = "PRECONDITION_FAILED: listing changed", body = ErrorEnvelope),
    )
)]
#[post("/graph/edges")]
pub async fn create_edge(
    req: HttpRequest,
    payload: web::Payload,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = json_object(&req, payload, &state).await?;
    let end = |name: &str| -> Result<NodeId, ApiError> {
        let text = body
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::validation(format!("`{name}` is required")))?;
        node_id(text)
    };
    let (source, target) = (end("source")?, end("target")?);
    let kind = kind_of(body.get("kind"), EdgeKind::new, "kind")?.unwrap_or_else(EdgeKind::generic);
    let fields = json_to_fields(body.get("fields").cloned().unwrap_or(json!({})))?;
    let if_match = header_text(&req, header::IF_MATCH).map(str::to_owned);
    let held = match claim_key(&req, &caller, &state, &Value::Object(body.clone())).await? {
        Ok(held) => held,
        Err(replayed) => return Ok(replayed),
    };

    let outcome = state
        .store
        .run(&caller.root, |work| {
            let (source, target, kind, fields, if_match) =
                (source.clone(), target.clone(), kind.clone(), fields.clone(), if_match.clone());
            let (state, caller, held) = (state.clone(), caller.clone(), held.clone());
            async move {
                load(work, &source).await?;
                load(work, &target).await?;
                check_listing(work, &source, &kind, if_match.as_deref()).await?;
                let id = work.connect(&source, &target, kind.clone(), fields.clone())?;
                let target_kind = work.node(&target).expect("loaded above").kind.clone();
                let edge = Edge { id, kind, source, target, target_kind, fields };
                let body = envelope(StatusCode::CREATED, edge_json(&edge));
                complete(work, &state, &caller, &held, StatusCode::CREATED, &body);
                Ok::<_, ApiError>(edge)
            }
            .boxed()
        })
        .await;
    let committed = settle(&state, &caller, &held, outcome).await?;
    Ok(HttpResponse::Created().json(envelope(StatusCode::CREATED, edge_json(&committed.value))))
}

#[utoipa::path(
    delete, path = "/graph/edges/{id}", tag = "graph", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe"),
           ("id" = String, Path, description = "An edge of the caller's graph")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "UNAUTHORIZED", body = ErrorEnvelope),
        (status = 404, description = "NOT_FOUND", body = ErrorEnvelope),
    )
)]
#[delete("/graph/edges/{id}")]
pub async fn delete_edge(
    req: HttpRequest,
    id: web::Path<String>,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = EdgeId::parse(&id).map_err(|_| ApiError::NotFound("edge"))?;
    let edge = state.store.find_edge(&caller.root, &id).await?.ok_or(ApiError::NotFound("edge"))?;
    let held = match claim_key(&req, &caller, &state, &Value::Null).await? {
        Ok(held) => held,
        Err(replayed) => return Ok(replayed),
    };
    let outcome = state
        .store
        .run(&caller.root, |work| {
            let (edge, state, caller, held) =
                (edge.clone(), state.clone(), caller.clone(), held.clone());
            async move {
                work.disconnect(&edge);
                complete(work, &state, &caller, &held, StatusCode::NO_CONTENT, &Value::Null);
                Ok::<_, ApiError>(())
            }
            .boxed()
        })
        .await;
    settle(&state, &caller, &held, outcome).await?;
    Ok(HttpResponse::NoContent().finish())
}
