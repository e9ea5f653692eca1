//! The REST graph API: every status it answers, and no lost update under If-Match.

mod support;

use futures::future::join_all;
use serde_json::{json, Value};
use support::*;

/// A request with optional If-Match / If-None-Match; returns status, ETag and body.
async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Option<String>, Value) {
    let mut request = app.http.request(method, format!("{}{path}", app.base)).bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let etag = response.headers().get("etag").map(|v| v.to_str().unwrap().to_owned());
    let body = response.json().await.unwrap_or(Value::Null);
    (status, etag, body)
}

use reqwest::Method;

#[tokio::test]
async fn nodes_answer_every_status_of_the_etag_protocol() {
    let app = spawn_app("graph_statuses").await;
    let (token, _) = app.user("rest").await;

    let (status, root_tag, root) = send(&app, Method::GET, "/graph/root", &token, &[], None).await;
    assert_eq!((status, root_tag.as_deref()), (200, Some("\"1\"")));
    let root_id = root["data"]["id"].as_str().unwrap().to_owned();

    let create = json!({ "kind": "Item", "fields": { "name": "a", "tags": { "x": 1 } } });
    let path = format!("/graph/nodes/{root_id}/children");
    let (status, tag, child) = send(&app, Method::POST, &path, &token, &[], Some(create)).await;
    assert_eq!((status, tag.as_deref()), (201, Some("\"1\"")), "{child}");
    let node = format!("/graph/nodes/{}", child["data"]["id"].as_str().unwrap());

    let (status, _, _) =
        send(&app, Method::GET, &node, &token, &[("if-none-match", "\"1\"")], None).await;
    assert_eq!(status, 304);

    let patch = json!({ "name": "b", "tags": { "y": 2 } });
    let (status, _, body) =
        send(&app, Method::PATCH, &node, &token, &[], Some(patch.clone())).await;
    assert_eq!((status, body["error"]["code"].as_str()), (428, Some("PRECONDITION_REQUIRED")));
    let (status, tag, body) =
        send(&app, Method::PATCH, &node, &token, &[("if-match", "\"1\"")], Some(patch.clone()))
            .await;
    assert_eq!((status, tag.as_deref()), (200, Some("\"2\"")), "{body}");
    assert_eq!(body["data"]["fields"], json!({ "name": "b", "tags": { "x": 1, "y": 2 } }));
    let (status, tag, body) =
        send(&app, Method::PATCH, &node, &token, &[("if-match", "\"1\"")], Some(patch)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (412, Some("PRECONDITION_FAILED")));
    assert_eq!(tag.as_deref(), Some("\"2\""), "a 412 carries the current ETag");
    let removal = json!({ "tags": null });
    let (_, _, body) =
        send(&app, Method::PATCH, &node, &token, &[("if-match", "\"2\"")], Some(removal)).await;
    assert_eq!(body["data"]["fields"], json!({ "name": "b" }));

    let (status, _, _) =
        send(&app, Method::DELETE, &node, &token, &[("if-match", "\"2\"")], None).await;
    assert_eq!(status, 412);
    let (status, _, _) =
        send(&app, Method::DELETE, &node, &token, &[("if-match", "\"3\"")], None).await;
    assert_eq!(status, 204);
    let (status, _, body) = send(&app, Method::GET, &node, &token, &[], None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("NOT_FOUND")));
    let (status, _, _) = send(&app, Method::GET, "/graph/nodes/not-an-id", &token, &[], None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn edges_list_page_and_guard_check_then_create() {
    let app = spawn_app("graph_edges").await;
    let (token, login) = app.user("rest").await;
    let root = login["root_id"].as_str().unwrap().to_owned();
    let children = format!("/graph/nodes/{root}/children");
    let mut ids = Vec::new();
    for i in 0..5 {
        let body = json!({ "kind": "Item", "fields": { "i": i } });
        let (_, _, created) = send(&app, Method::POST, &children, &token, &[], Some(body)).await;
        ids.push(created["data"]["id"].as_str().unwrap().to_owned());
    }

    let list = format!("/graph/nodes/{root}/edges?limit=2");
    let (status, listing_tag, first) = send(&app, Method::GET, &list, &token, &[], None).await;
    assert_eq!(status, 200);
    let cursor = first["data"]["next_cursor"].as_str().unwrap().to_owned();
    let mut seen = first["data"]["edges"].as_array().unwrap().len();
    let mut next = Some(cursor);
    while let Some(cursor) = next {
        let (_, _, page) =
            send(&app, Method::GET, &format!("{list}&cursor={cursor}"), &token, &[], None).await;
        seen += page["data"]["edges"].as_array().unwrap().len();
        next = page["data"]["next_cursor"].as_str().map(str::to_owned);
    }
    assert_eq!(seen, 5);

    // Check-then-create: with the listing's ETag, a create after someone else's fails.
    let tag = listing_tag.unwrap();
    let body = json!({ "kind": "Counter", "fields": {} });
    let (status, _, _) =
        send(&app, Method::POST, &children, &token, &[("if-match", &tag)], Some(body.clone()))
            .await;
    assert_eq!(status, 201);
    let (status, _, _) =
        send(&app, Method::POST, &children, &token, &[("if-match", &tag)], Some(body)).await;
    assert_eq!(status, 412, "a second create on a stale listing went through");

    let new_edge = json!({ "source": ids[0], "target": ids[1], "kind": "Next" });
    let (status, _, edge) =
        send(&app, Method::POST, "/graph/edges", &token, &[], Some(new_edge)).await;
    assert_eq!(status, 201, "{edge}");
    let incoming = format!("/graph/nodes/{}/edges?direction=in&kind=Next", ids[1]);
    let (_, _, listed) = send(&app, Method::GET, &incoming, &token, &[], None).await;
    assert_eq!(listed["data"]["edges"][0]["source"], ids[0].as_str());
    let edge_path = format!("/graph/edges/{}", edge["data"]["id"].as_str().unwrap());
    assert_eq!(send(&app, Method::DELETE, &edge_path, &token, &[], None).await.0, 204);
    assert_eq!(send(&app, Method::DELETE, &edge_path, &token, &[], None).await.0, 404);

    // Another user sees none of it.
    let (other, _) = app.user("stranger").await;
    let node = format!("/graph/nodes/{}", ids[0]);
    assert_eq!(send(&app, Method::GET, &node, &other, &[], None).await.0, 404);
    let body = json!({ "source": ids[0], "target": ids[1] });
    assert_eq!(send(&app, Method::POST, "/graph/edges", &other, &[], Some(body)).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_clients_patching_with_if_match_lose_no_update() {
    let app = spawn_app("graph_patch_race").await;
    let (token, login) = app.user("rest").await;
    let root = login["root_id"].as_str().unwrap().to_owned();
    let children = format!("/graph/nodes/{root}/children");
    let body = json!({ "kind": "Counter", "fields": { "n": 0 } });
    let (_, _, created) = send(&app, Method::POST, &children, &token, &[], Some(body)).await;
    let node = format!("/graph/nodes/{}", created["data"]["id"].as_str().unwrap());

    // Each client reads, adds one, and writes with If-Match, retrying on 412.
    let increments = 5;
    let clients = (0..32).map(|_| async {
        for _ in 0..increments {
            loop {
                let (_, tag, body) = send(&app, Method::GET, &node, &token, &[], None).await;
                let n = body["data"]["fields"]["n"].as_i64().unwrap();
                let tag = tag.unwrap();
                let patch = json!({ "n": n + 1 });
                let (status, _, _) =
                    send(&app, Method::PATCH, &node, &token, &[("if-match", &tag)], Some(patch))
                        .await;
                match status {
                    200 => break,
                    412 => continue,
                    other => panic!("PATCH answered {other}"),
                }
            }
        }
    });
    join_all(clients).await;

    let (_, tag, body) = send(&app, Method::GET, &node, &token, &[], None).await;
    assert_eq!(body["data"]["fields"]["n"], 32 * increments, "an update was lost");
    assert_eq!(tag.as_deref(), Some(format!("\"{}\"", 32 * increments + 1).as_str()));
}

#[tokio::test]
async fn graph_writes_with_an_idempotency_key_apply_once() {
    let app = spawn_app("graph_idempotency").await;
    let (token, login) = app.user("rest").await;
    let root = login["root_id"].as_str().unwrap().to_owned();
    let children = format!("/graph/nodes/{root}/children");
    let body = json!({ "kind": "Item", "fields": { "n": 1 } });

    let key = [("idempotency-key", "create-1")];
    let (first_status, _, first) =
        send(&app, Method::POST, &children, &token, &key, Some(body.clone())).await;
    let (again_status, tag, again) =
        send(&app, Method::POST, &children, &token, &key, Some(body)).await;
    assert_eq!((first_status, again_status), (201, 201));
    assert_eq!(first, again, "the retry got a different answer");
    assert_eq!(tag.as_deref(), Some("\"1\""));
    let listing = format!("/graph/nodes/{root}/edges");
    let (_, _, listed) = send(&app, Method::GET, &listing, &token, &[], None).await;
    assert_eq!(listed["data"]["edges"].as_array().unwrap().len(), 1, "the create applied twice");

    // A retried PATCH gets its first answer, not a 412 for the version it itself moved.
    let node = format!("/graph/nodes/{}", first["data"]["id"].as_str().unwrap());
    let headers = [("if-match", "\"1\""), ("idempotency-key", "patch-1")];
    let patch = json!({ "n": 2 });
    let (status, _, _) =
        send(&app, Method::PATCH, &node, &token, &headers, Some(patch.clone())).await;
    let (retried, tag, _) = send(&app, Method::PATCH, &node, &token, &headers, Some(patch)).await;
    assert_eq!((status, retried, tag.as_deref()), (200, 200, Some("\"2\"")));
}

#[tokio::test]
async fn a_graph_write_whose_key_is_still_running_answers_409() {
    let app = spawn_app("graph_in_progress").await;
    let (token, login) = app.user("rest").await;
    let (root, user_id) = (login["root_id"].as_str().unwrap(), login["user_id"].as_str().unwrap());
    let children = format!("/graph/nodes/{root}/children");
    let body = json!({ "kind": "Item" });

    // Another replica holds the key and is still working on it.
    let db = app.db.as_ref().unwrap();
    let client = mongodb::Client::with_uri_str(&db.uri).await.unwrap();
    let keys = client.database(&db.name).collection::<mongodb::bson::Document>("idempotency");
    let fingerprint = walkerd_server::idempotency::Idempotency::fingerprint(
        &format!("POST {children}"),
        None,
        &body,
    );
    let now = mongodb::bson::DateTime::now();
    keys.insert_one(mongodb::bson::doc! {
        "_id": format!("{user_id}|busy"), "state": "running", "claim": "elsewhere",
        "fingerprint": fingerprint, "claimed_at": now, "expires_at": now,
    })
    .await
    .unwrap();

    let key = [("idempotency-key", "busy")];
    let (status, _, answer) = send(&app, Method::POST, &children, &token, &key, Some(body)).await;

    assert_eq!((status, answer["error"]["code"].as_str()), (409, Some("REQUEST_IN_PROGRESS")));
    let (_, _, listed) =
        send(&app, Method::GET, &format!("/graph/nodes/{root}/edges"), &token, &[], None).await;
    assert!(listed["data"]["edges"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn one_edge_set_pages_from_its_index_across_buckets_without_repeats() {
    let app = spawn_app("graph_set_pages").await;
    let (token, login) = app.user("pager").await;
    let root = login["root_id"].as_str().unwrap().to_owned();
    let children = format!("/graph/nodes/{root}/children");
    let mut created = std::collections::BTreeSet::new();
    // 120 items fill more than one bucket (100 entries each); a counter is another set.
    for i in 0..120 {
        let body = json!({ "kind": "Item", "fields": { "i": i } });
        let (status, _, child) = send(&app, Method::POST, &children, &token, &[], Some(body)).await;
        assert_eq!(status, 201, "{child}");
        created.insert(child["data"]["id"].as_str().unwrap().to_owned());
    }
    let counter = json!({ "kind": "Counter", "fields": {} });
    send(&app, Method::POST, &children, &token, &[], Some(counter)).await;

    let list = format!("/graph/nodes/{root}/edges?kind=Edge&target_kind=Item&limit=50");
    let (mut seen, mut sizes, mut cursor) = (Vec::new(), Vec::new(), None::<String>);
    loop {
        let path = match &cursor {
            Some(c) => format!("{list}&cursor={c}"),
            None => list.clone(),
        };
        let (status, etag, page) = send(&app, Method::GET, &path, &token, &[], None).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(etag, None, "a page of one set has no listing ETag");
        let edges = page["data"]["edges"].as_array().unwrap();
        sizes.push(edges.len());
        for edge in edges {
            assert_eq!(edge["target_kind"], "Item");
            seen.push(edge["target"].as_str().unwrap().to_owned());
        }
        cursor = page["data"]["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(sizes, [50, 50, 20]);
    assert_eq!(seen.len(), 120, "an edge came twice");
    assert_eq!(seen.into_iter().collect::<std::collections::BTreeSet<_>>(), created);

    let bad = [
        format!("/graph/nodes/{root}/edges?target_kind=Item"),
        format!("/graph/nodes/{root}/edges?kind=Edge&target_kind=Item&direction=in"),
        format!("/graph/nodes/{root}/edges?kind=Edge&target_kind=It%24em"),
        format!("{list}&cursor=12"),
        format!("{list}&cursor=-1-0123"),
        format!("{list}&cursor=x-y"),
    ];
    for path in bad {
        let (status, _, body) = send(&app, Method::GET, &path, &token, &[], None).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("VALIDATION_ERROR")),
            "{path}"
        );
    }
    let (other, _) = app.user("stranger").await;
    let (status, _, _) = send(&app, Method::GET, &list, &other, &[], None).await;
    assert_eq!(status, 404, "another user's node");
}
