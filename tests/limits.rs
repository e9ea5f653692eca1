//! Walker limits, with walkers defined by the test itself (walkerd used as a library).

mod support;

use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use serde::Deserialize;
use serde_json::json;
use support::*;
use walkerd_graph::NodeKind;
use walkerd_server::{Registry, Walk, WalkError, Walker};

/// Marks the root with a new item, then visits every node reachable from it.
#[derive(Deserialize)]
struct Wander {}

impl Walker for Wander {
    fn enter<'a>(&'a mut self, walk: &'a mut Walk<'_>) -> BoxFuture<'a, Result<(), WalkError>> {
        async move {
            let here = walk.here_id().clone();
            if walk.at_root() {
                let kind = NodeKind::new("Item").unwrap();
                walk.create_child(&here, &kind, json!({ "name": "marker" }))?;
            }
            let children = walk.children(&here, None).await?;
            walk.visit(children.into_iter().map(|n| n.id));
            Ok(())
        }
        .boxed()
    }
}

/// Lingers before reading, to run past a short time limit.
#[derive(Deserialize)]
struct Dawdle {}

impl Walker for Dawdle {
    fn enter<'a>(&'a mut self, walk: &'a mut Walk<'_>) -> BoxFuture<'a, Result<(), WalkError>> {
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let root = walk.root().clone();
            walk.children(&root, None).await?;
            Ok(())
        }
        .boxed()
    }

    fn result(&self) -> Option<serde_json::Value> {
        Some(json!("done"))
    }
}

fn walkers() -> Registry {
    let mut walkers = demo_walkers();
    walkers.register::<Wander>("wander").register::<Dawdle>("dawdle");
    walkers
}

#[tokio::test]
async fn a_walk_past_its_visit_limit_applies_nothing() {
    let app = spawn_app_with("visit_limit", walkers(), |s| s.limits.max_visits = 4).await;
    let (token, _) = app.user("wanderer").await;
    for _ in 0..2 {
        app.walk(&token, "add_item", json!({})).await;
    }

    // Root, two items and the new marker: four visits fit.
    let within = app.walk(&token, "wander", json!({})).await;
    assert_eq!(within.status, 200, "{:?}", within.body);
    // Root, three items and the new marker: five do not.
    let beyond = app.walk(&token, "wander", json!({})).await;

    assert_eq!((beyond.status, beyond.code()), (422, "LIMIT_EXCEEDED"));
    let listed = app.walk(&token, "list_items", json!({})).await;
    assert_eq!(listed.data()["reports"][0]["count"], 3, "the refused walk left its marker");
}

#[tokio::test]
async fn a_walk_past_its_time_limit_is_refused_and_returns_its_result_otherwise() {
    let slow = spawn_app_with("time_limit", walkers(), |s| {
        s.limits.time_limit = Duration::from_millis(100)
    });
    let patient = spawn_app_with("time_limit_ok", walkers(), |_| {});
    let (slow, patient) = tokio::join!(slow, patient);

    let (token, _) = slow.user("slow").await;
    let refused = slow.walk(&token, "dawdle", json!({})).await;
    assert_eq!((refused.status, refused.code()), (422, "LIMIT_EXCEEDED"));

    let (token, _) = patient.user("patient").await;
    let done = patient.walk(&token, "dawdle", json!({})).await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    assert_eq!(done.data()["result"], "done");
}
