//! Idempotency-Key on walker calls: at most once, the first answer for every retry.

mod support;

use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use serde::Deserialize;
use serde_json::{json, Value};
use support::*;
use walkerd_server::idempotency::Idempotency;
use walkerd_server::{Walk, WalkError, Walker};

/// Counts like `count_up`, slowly, so that a retry can arrive while it runs.
#[derive(Deserialize)]
struct SlowCount {}

impl Walker for SlowCount {
    fn enter<'a>(&'a mut self, walk: &'a mut Walk<'_>) -> BoxFuture<'a, Result<(), WalkError>> {
        async move {
            tokio::time::sleep(Duration::from_millis(600)).await;
            let root = walk.root().clone();
            let kind = walkerd_graph::NodeKind::new("Counter").unwrap();
            match walk.children(&root, Some(&kind)).await?.first() {
                None => drop(walk.create_child(&root, &kind, json!({ "value": 1 }))?),
                Some(c) => walk.increment(&c.id, "value", 1)?,
            }
            Ok(())
        }
        .boxed()
    }
}

async fn keyed(app: &TestApp, token: &str, walker: &str, key: &str, body: Value) -> (Reply, bool) {
    let response = app
        .http
        .post(format!("{}/walker/{walker}", app.base))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let replayed = response.headers().contains_key("idempotent-replayed");
    let status = response.status().as_u16();
    (Reply { status, body: response.json().await.unwrap() }, replayed)
}

async fn counter(app: &TestApp, token: &str) -> Value {
    app.walk(token, "read_counter", json!({})).await.data()["reports"][0]["value"].clone()
}

#[tokio::test]
async fn a_retry_with_the_same_key_gets_the_first_answer_and_applies_nothing() {
    let app = spawn_app("idem_replay").await;
    let (token, _) = app.user("idem").await;

    let (first, first_replayed) = keyed(&app, &token, "add_item", "k-1", json!({})).await;
    let (second, second_replayed) = keyed(&app, &token, "add_item", "k-1", json!({})).await;
    let (other, _) = keyed(&app, &token, "add_item", "k-2", json!({})).await;

    assert_eq!((first.status, first_replayed, second_replayed), (200, false, true));
    assert_eq!(first.body, second.body, "the retry got a different answer");
    assert_eq!(other.status, 200);
    let listed = app.walk(&token, "list_items", json!({})).await;
    assert_eq!(listed.data()["reports"][0]["count"], 2);
}

#[tokio::test]
async fn a_key_reused_for_another_request_is_refused() {
    let app = spawn_app("idem_reuse").await;
    let (token, _) = app.user("idem").await;

    keyed(&app, &token, "add_item", "same", json!({ "name": "a" })).await;
    let (reused, _) = keyed(&app, &token, "add_item", "same", json!({ "name": "b" })).await;
    let (bad_key, _) = keyed(&app, &token, "add_item", &"x".repeat(200), json!({})).await;

    assert_eq!((reused.status, reused.code()), (422, "IDEMPOTENCY_KEY_REUSED"));
    assert_eq!((bad_key.status, bad_key.code()), (400, "VALIDATION_ERROR"));
}

#[tokio::test]
async fn a_retry_while_the_first_runs_is_told_it_is_in_progress() {
    let mut walkers = demo_walkers();
    walkers.register::<SlowCount>("slow_count");
    let app = spawn_app_with("idem_in_progress", walkers, |_| {}).await;
    let (token, _) = app.user("idem").await;

    let first = keyed(&app, &token, "slow_count", "k", json!({}));
    let retry = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        keyed(&app, &token, "slow_count", "k", json!({})).await
    };
    let ((first, _), (retry, _)) = tokio::join!(first, retry);
    let (after, replayed) = keyed(&app, &token, "slow_count", "k", json!({})).await;

    assert_eq!(first.status, 200);
    assert_eq!((retry.status, retry.code()), (409, "REQUEST_IN_PROGRESS"));
    assert_eq!((after.status, replayed), (200, true));
    assert_eq!(counter(&app, &token).await, 1);
}

#[tokio::test]
async fn a_claim_left_by_a_dead_replica_is_taken_over_after_its_timeout() {
    let app = spawn_app_with("idem_takeover", demo_walkers(), |s| {
        s.idempotency_claim = Duration::from_secs(1)
    })
    .await;
    let (token, login) = app.user("idem").await;
    let user_id = login["user_id"].as_str().unwrap();

    // A replica claimed the key, then died before committing.
    let db = app.db.as_ref().unwrap();
    let client = mongodb::Client::with_uri_str(&db.uri).await.unwrap();
    let keys = client.database(&db.name).collection::<mongodb::bson::Document>("idempotency");
    let fingerprint = Idempotency::fingerprint("count_up", None, &json!({}));
    let now = mongodb::bson::DateTime::now();
    keys.insert_one(mongodb::bson::doc! {
        "_id": format!("{user_id}|dead"), "state": "running", "claim": "gone",
        "fingerprint": fingerprint, "claimed_at": now, "expires_at": now,
    })
    .await
    .unwrap();

    let (early, _) = keyed(&app, &token, "count_up", "dead", json!({})).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (late, _) = keyed(&app, &token, "count_up", "dead", json!({})).await;

    assert_eq!((early.status, early.code()), (409, "REQUEST_IN_PROGRESS"));
    assert_eq!(late.status, 200, "{:?}", late.body);
    assert_eq!(counter(&app, &token).await, 1);
}

#[tokio::test]
async fn a_definite_failure_releases_the_key() {
    let app = spawn_app("idem_release").await;
    let (token, _) = app.user("idem").await;

    let (refused, _) = keyed(&app, &token, "add_item", "k", json!({ "name": 5 })).await;
    let (retried, replayed) = keyed(&app, &token, "add_item", "k", json!({ "name": 5 })).await;

    assert_eq!((refused.status, retried.status, replayed), (400, 400, false));
    let (fixed, _) = keyed(&app, &token, "add_item", "k", json!({ "name": "ok" })).await;
    assert_eq!(fixed.status, 200, "{:?}", fixed.body);
}
