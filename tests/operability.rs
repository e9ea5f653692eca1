//! What operators and API consumers rely on: metrics, request ids, the OpenAPI document, docs.

mod support;

use std::collections::BTreeSet;

use serde_json::{json, Value};
use support::*;
use walkerd_load::metrics::ServerCounters;

/// Every route the app serves, as (method, path template).
const ROUTES: &[(&str, &str)] = &[
    ("post", "/user/register"),
    ("post", "/user/login"),
    ("post", "/user/refresh-token"),
    ("get", "/user/me"),
    ("post", "/user/logout-all"),
    ("post", "/walker/{name}"),
    ("post", "/walker/{name}/{node_id}"),
    ("get", "/graph/root"),
    ("get", "/graph/nodes/{id}"),
    ("patch", "/graph/nodes/{id}"),
    ("delete", "/graph/nodes/{id}"),
    ("get", "/graph/nodes/{id}/edges"),
    ("post", "/graph/nodes/{id}/children"),
    ("post", "/graph/edges"),
    ("delete", "/graph/edges/{id}"),
    ("get", "/healthz"),
    ("get", "/healthz/live"),
    ("get", "/healthz/ready"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/docs"),
];

fn documented_operations(document: &Value) -> BTreeSet<(String, String)> {
    let paths = document["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object().unwrap().keys().map(move |method| (method.clone(), path.clone()))
        })
        .collect()
}

#[tokio::test]
async fn the_openapi_document_is_valid_and_covers_every_route() {
    let app = spawn_app("openapi").await;
    let document = app.get("/openapi.json", None).await.body;

    let schema: Value =
        serde_json::from_str(include_str!("fixtures/openapi-3.1-schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the OpenAPI schema compiles");
    let errors: Vec<String> = validator.iter_errors(&document).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "the document is not valid OpenAPI 3.1: {errors:#?}");
    let mut broken = document.clone();
    broken["paths"]["/user/login"]["post"]["responses"] = json!("not an object");
    assert!(!validator.is_valid(&broken), "the validator accepts a broken document");

    let expected: BTreeSet<(String, String)> =
        ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(documented_operations(&document), expected);
    let codes = document["components"]["schemas"]["ErrorCode"]["enum"].as_array().unwrap();
    for code in ["VALIDATION_ERROR", "WRITE_CONFLICT", "DATABASE_UNAVAILABLE", "INTERNAL_ERROR"] {
        assert!(codes.contains(&json!(code)), "{code} is not documented");
    }
    assert_eq!(document["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");

    // Each documented operation reaches a handler (never the unknown-route answer).
    let (token, login) = app.user("doc").await;
    let root = login["root_id"].as_str().unwrap();
    for (method, path) in ROUTES {
        let path = path
            .replace("{name}", "list_items")
            .replace("{node_id}", root)
            .replace("{id}", "00000000000000000000000000000000");
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let response = app
            .http
            .request(method.clone(), format!("{}{path}", app.base))
            .bearer_auth(&token)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        let reply = Reply {
            status: response.status().as_u16(),
            body: response.json().await.unwrap_or_default(),
        };
        assert_ne!(reply.body["error"]["message"], "route not found", "{method} {path}");
    }
}

#[tokio::test]
async fn the_docs_page_and_its_assets_are_served_from_the_binary() {
    let app = spawn_app("docs_page").await;
    let page = app.http.get(format!("{}/docs", app.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("/docs/init.js") && html.contains("/docs/swagger-ui-bundle.js"));
    assert!(!html.contains("<script>"), "the page's policy forbids inline scripts");
    let init = app.http.get(format!("{}/docs/init.js", app.base)).send().await.unwrap();
    assert!(init.text().await.unwrap().contains("/openapi.json"));
    for asset in ["/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css"] {
        let response = app.http.get(format!("{}{asset}", app.base)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        assert!(response.bytes().await.unwrap().len() > 10_000, "{asset} is too small");
    }
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_walker_outcome() {
    let app = spawn_app("metrics").await;
    let (token, login) = app.user("metered").await;
    let root = login["root_id"].as_str().unwrap().to_owned();
    app.walk(&token, "add_item", json!({})).await;
    app.walk(&token, "touch", json!({})).await;
    app.walk(&token, "add_item", json!({ "name": 5 })).await;
    app.post(&format!("/walker/list_items/{root}"), Some(&token), json!({})).await;

    let metrics = app.http.get(format!("{}/metrics", app.base)).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();

    for expected in [
        r#"walkerd_http_requests_total{method="POST",route="/walker/{name}",status="200"} 2"#,
        r#"walkerd_http_requests_total{method="POST",route="/walker/{name}",status="400"} 1"#,
        r#"route="/walker/{name}/{node_id}""#,
        r#"walkerd_walker_runs_total{outcome="ok",walker="add_item"} 1"#,
        r#"walkerd_walker_runs_total{outcome="invalid_input",walker="add_item"} 1"#,
        r#"walkerd_walker_runs_total{outcome="ok",walker="touch"} 1"#,
        "walkerd_commit_attempts_total",
        "walkerd_replays_per_request_bucket",
        "walkerd_http_request_duration_seconds_bucket",
        "walkerd_http_requests_in_flight",
        r#"walkerd_transactions_total{outcome="committed"}"#,
        "walkerd_build_info{version=",
    ] {
        assert!(text.contains(expected), "metrics lack {expected}:\n{text}");
    }
    assert!(!text.contains(&root), "a node id leaked into a metric label");
}

#[tokio::test]
async fn metrics_can_require_a_token() {
    let app = spawn_app_with("metrics_token", demo_walkers(), |s| {
        s.metrics_token = Some("scrape-secret".to_owned().into())
    })
    .await;
    let url = format!("{}/metrics", app.base);

    let anonymous = app.http.get(&url).send().await.unwrap();
    let wrong = app.http.get(&url).bearer_auth("nope").send().await.unwrap();
    let right = app.http.get(&url).bearer_auth("scrape-secret").send().await.unwrap();

    assert_eq!(anonymous.status(), 401);
    assert_eq!(wrong.status(), 401);
    assert_eq!(right.status(), 200);
}

#[tokio::test]
async fn request_ids_are_echoed_when_sane_and_generated_otherwise() {
    let app = spawn_app("request_ids").await;
    let url = format!("{}/healthz", app.base);
    let echo = |response: reqwest::Response| {
        response.headers()["x-request-id"].to_str().unwrap().to_owned()
    };

    let given = app.http.get(&url).header("x-request-id", "abc-123.X_y").send().await.unwrap();
    let insane = app.http.get(&url).header("x-request-id", "a b\"c").send().await.unwrap();
    let absent = app.http.get(&url).send().await.unwrap();

    assert_eq!(echo(given), "abc-123.X_y");
    let replaced = echo(insane);
    assert_eq!(replaced.len(), 36, "{replaced}");
    assert_ne!(echo(absent), replaced);
}

#[tokio::test]
async fn demo_walkers_send_the_fewest_database_commands_their_reads_and_writes_need() {
    // A long revocation cache keeps the once-in-a-while token check out of the counts.
    let app = spawn_app_with("round_trips", demo_walkers(), |s| {
        s.revocation_cache = std::time::Duration::from_secs(3600);
    })
    .await;
    let (token, _) = app.user("frugal").await;
    // More items than the server's default first batch (101), which would cost a getMore.
    for n in 0..150 {
        app.walk(&token, "add_item", json!({ "name": format!("i{n}") })).await;
    }
    app.walk(&token, "touch", json!({})).await;

    let commands = || async {
        let text = app.get("/metrics", None).await.body.as_str().unwrap_or_default().to_owned();
        assert!(text.contains("walkerd_database_commands_total"), "{text}");
        ServerCounters::parse(&text).database_commands
    };
    // add_item: insert the node, add the edge. list_items and read_counter: list the edges,
    // load their targets. count_up: the same, then one increment. touch: list and load the
    // items, list and load the counter, one conditional write.
    let fewest = [
        ("add_item", 2.0),
        ("list_items", 2.0),
        ("read_counter", 2.0),
        ("count_up", 3.0),
        ("touch", 5.0),
    ];
    for (walker, expected) in fewest {
        let before = commands().await;
        for _ in 0..10 {
            let reply = app.walk(&token, walker, json!({})).await;
            assert_eq!(reply.status, 200, "{walker}: {:?}", reply.body);
        }
        let per_request = (commands().await - before) / 10.0;
        assert_eq!(per_request, expected, "{walker}: database commands per request");
    }
}
