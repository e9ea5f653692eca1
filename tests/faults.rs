//! The database going away and coming back. These tests kill the database, so they always start
//! their own server, even when `MONGODB_URI` is set.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::*;
use walkerd_server::{Application, Settings};
use walkerd_testkit::DbServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_answer_503_while_the_database_is_down_and_recover_after() {
    let mut server = DbServer::start_durable();
    let settings = Settings::for_tests(&server.uri(), "db_down");
    let app = Application::build(settings, demo_walkers()).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let app = TestApp { base, http: reqwest::Client::new(), db: None };
    let (token, _) = app.user("patient").await;
    app.walk(&token, "add_item", json!({ "name": "before" })).await;

    server.kill();
    let down = app.walk(&token, "add_item", json!({ "name": "during" })).await;
    let ready = app.get("/healthz/ready", None).await;

    assert_eq!((down.status, down.code()), (503, "DATABASE_UNAVAILABLE"));
    assert!(!down.body["error"]["message"].as_str().unwrap().to_lowercase().contains("server"));
    assert_eq!(ready.status, 503);
    assert_eq!(app.get("/healthz/live", None).await.status, 200);

    server.restart();
    let started = Instant::now();
    let recovered = loop {
        let reply = app.walk(&token, "add_item", json!({ "name": "after" })).await;
        if reply.status == 200 || started.elapsed() > Duration::from_secs(60) {
            break reply;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(recovered.status, 200, "{:?}", recovered.body);
    assert_eq!(app.get("/healthz/ready", None).await.status, 200);
    let listed = app.walk(&token, "list_items", json!({})).await;
    let names: Vec<&str> = listed.data()["reports"][0]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"before") && names.contains(&"after"), "{names:?}");
    // The database was down before that request was sent, so it cannot have applied.
    assert!(!names.contains(&"during"), "a request answered 503 was applied: {names:?}");
}
