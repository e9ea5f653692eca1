//! The HTTP API end to end: users, tokens, the demo walkers, every error case.

mod support;

use serde_json::json;
use support::*;

#[tokio::test]
async fn register_login_and_run_every_demo_walker() {
    let app = spawn_app("demo_walkers").await;
    let (token, login) = app.user("ann@example.com").await;
    assert!(login["root_id"].as_str().is_some_and(|r| r.len() == 32));

    let added = app.walk(&token, "add_item", json!({ "name": "first" })).await;
    assert_eq!(added.status, 200, "{:?}", added.body);
    let report = &added.data()["reports"][0];
    assert_eq!(report["success"], true);
    assert_eq!(report["name"], "first");
    assert!(report["created_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{report}");
    assert_eq!(added.data()["result"], serde_json::Value::Null);

    let default = app.walk(&token, "add_item", json!({})).await;
    assert_eq!(default.data()["reports"][0]["name"], "test");

    let listed = app.walk(&token, "list_items", json!({})).await;
    let report = &listed.data()["reports"][0];
    assert_eq!(report["count"], 2);
    let mut names: Vec<&str> =
        report["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["first", "test"]);

    let touched = app.walk(&token, "touch", json!({ "ts": "t1" })).await;
    assert_eq!(
        touched.data()["reports"][0],
        json!({ "success": true, "item_count": 2, "ts": "t1" })
    );
    app.walk(&token, "touch", json!({})).await;
    app.walk(&token, "count_up", json!({})).await;
    let counter = app.walk(&token, "read_counter", json!({})).await;
    assert_eq!(counter.data()["reports"][0], json!({ "success": true, "counters": 1, "value": 3 }));
}

#[tokio::test]
async fn the_identity_body_form_registers_and_logs_in() {
    let app = spawn_app("identity_form").await;
    let register = json!({
        "identities": [{ "type": "email", "value": "bo@example.com" }],
        "credential": { "type": "password", "password": "long enough password" },
    });
    let registered = app.post("/user/register", None, register).await.checked();
    assert_eq!(registered.status, 201, "{:?}", registered.body);
    assert!(registered.data()["user_id"].is_string());
    assert!(registered.data()["root_id"].is_string());

    let login = json!({
        "identity": { "type": "email", "value": "BO@example.com" },
        "credential": { "type": "password", "password": "long enough password" },
    });
    let logged_in = app.post("/user/login", None, login).await.checked();
    assert_eq!(logged_in.status, 200, "{:?}", logged_in.body);
    assert_eq!(logged_in.data()["root_id"], registered.data()["root_id"]);
}

#[tokio::test]
async fn user_errors_have_their_status_and_code() {
    let app = spawn_app("user_errors").await;
    let (token, _) = app.user("cy").await;
    let cases = [
        (json!({ "username": "cy", "password": "another password" }), 409, "IDENTITY_TAKEN"),
        (json!({ "username": "CY", "password": "another password" }), 409, "IDENTITY_TAKEN"),
        (json!({ "username": "dee", "password": "short" }), 400, "VALIDATION_ERROR"),
        (json!({ "username": "", "password": "long enough" }), 400, "VALIDATION_ERROR"),
        (
            json!({ "username": "x".repeat(300), "password": "long enough" }),
            400,
            "VALIDATION_ERROR",
        ),
        (json!({ "password": "long enough" }), 400, "VALIDATION_ERROR"),
        (json!([1, 2]), 400, "VALIDATION_ERROR"),
    ];
    for (body, status, code) in cases {
        let reply = app.post("/user/register", None, body.clone()).await.checked();
        assert_eq!((reply.status, reply.code()), (status, code), "{body}: {:?}", reply.body);
    }
    let malformed = app.post_raw("/user/register", None, b"{not json".to_vec()).await.checked();
    assert_eq!((malformed.status, malformed.code()), (400, "VALIDATION_ERROR"));

    let wrong = app.post("/user/login", None, json!({ "username": "cy", "password": "nope nope" }));
    let unknown =
        app.post("/user/login", None, json!({ "username": "zz", "password": "nope nope" }));
    let (wrong, unknown) = (wrong.await.checked(), unknown.await.checked());
    assert_eq!((wrong.status, wrong.code()), (401, "UNAUTHORIZED"));
    assert_eq!(wrong.body["error"], unknown.body["error"], "login reveals whether a user exists");

    let me = app.get("/user/me", Some(&token)).await.checked();
    assert_eq!(me.data()["username"], "cy");
    let refreshed =
        app.post("/user/refresh-token", None, json!({ "token": token })).await.checked();
    let new_token = refreshed.data()["token"].as_str().unwrap().to_owned();
    assert_eq!(app.get("/user/me", Some(&new_token)).await.status, 200);
    let bad_refresh = app.post("/user/refresh-token", None, json!({ "token": "x.y.z" })).await;
    assert_eq!(bad_refresh.checked().status, 401);
}

#[tokio::test]
async fn walker_errors_have_their_status_and_code() {
    let app = spawn_app_with("walker_errors", demo_walkers(), |s| s.body_limit_bytes = 1024).await;
    let (token, _) = app.user("eve").await;

    let no_token = app.post("/walker/add_item", None, json!({})).await.checked();
    assert_eq!((no_token.status, no_token.code()), (401, "UNAUTHORIZED"));
    let bad_token = app.post("/walker/add_item", Some("a.b.c"), json!({})).await.checked();
    assert_eq!((bad_token.status, bad_token.code()), (401, "UNAUTHORIZED"));

    let unknown = app.walk(&token, "no_such_walker", json!({})).await;
    assert_eq!((unknown.status, unknown.code()), (404, "NOT_FOUND"));
    let wrong_type = app.walk(&token, "add_item", json!({ "name": 5 })).await;
    assert_eq!((wrong_type.status, wrong_type.code()), (400, "VALIDATION_ERROR"));
    assert!(wrong_type.body["error"]["message"].as_str().unwrap().contains("name"));
    let extra = app.walk(&token, "touch", json!({ "bogus": 1 })).await;
    assert!(extra.body["error"]["message"].as_str().unwrap().contains("bogus"));
    let not_object = app.walk(&token, "touch", json!("text")).await;
    assert_eq!((not_object.status, not_object.code()), (400, "VALIDATION_ERROR"));
    let malformed = app.post_raw("/walker/touch", Some(&token), b"{".to_vec()).await.checked();
    assert_eq!((malformed.status, malformed.code()), (400, "VALIDATION_ERROR"));

    let big = json!({ "name": "x".repeat(2000) });
    let too_large = app.walk(&token, "add_item", big).await;
    assert_eq!((too_large.status, too_large.code()), (413, "PAYLOAD_TOO_LARGE"));

    // None of the refused requests changed anything.
    let listed = app.walk(&token, "list_items", json!({})).await;
    assert_eq!(listed.data()["reports"][0]["count"], 0);
}

#[tokio::test]
async fn a_second_user_cannot_see_or_spawn_on_the_first_users_nodes() {
    let app = spawn_app("isolation").await;
    let (ann, ann_login) = app.user("ann").await;
    let (bob, _) = app.user("bob").await;
    app.walk(&ann, "add_item", json!({ "name": "private" })).await;
    let ann_root = ann_login["root_id"].as_str().unwrap();

    let on_ann = format!("/walker/list_items/{ann_root}");
    let on_anns_root = app.post(&on_ann, Some(&bob), json!({})).await.checked();
    assert_eq!((on_anns_root.status, on_anns_root.code()), (404, "NOT_FOUND"));
    let malformed = app.post("/walker/list_items/not-an-id", Some(&bob), json!({})).await.checked();
    assert_eq!(malformed.body["error"], on_anns_root.body["error"]);

    let own = app.walk(&bob, "list_items", json!({})).await;
    assert_eq!(own.data()["reports"][0]["count"], 0);
    let on_own_root = app.post(&on_ann, Some(&ann), json!({})).await.checked();
    assert_eq!(on_own_root.data()["reports"][0]["count"], 1);
}

#[tokio::test]
async fn health_endpoints_answer_plain_bodies() {
    let app = spawn_app("health").await;
    for path in ["/healthz", "/healthz/live", "/healthz/ready"] {
        let reply = app.get(path, None).await;
        assert_eq!(reply.status, 200, "{path}: {:?}", reply.body);
        assert!(reply.body["status"].is_string(), "{path}: {:?}", reply.body);
    }
    let missing = app.get("/nowhere", None).await.checked();
    assert_eq!((missing.status, missing.code()), (404, "NOT_FOUND"));
}
