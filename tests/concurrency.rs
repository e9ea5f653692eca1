//! Concurrent walker requests over HTTP: nothing acknowledged is lost, nothing duplicated.

mod support;

use futures::future::join_all;
use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rounds_of_add_item_and_concurrent_touches_lose_nothing() {
    let app = spawn_app("seed_scenario").await;
    let (token, _) = app.user("seed").await;

    let mut touches_ok = 0;
    for round in 0..5 {
        let add = app.walk(&token, "add_item", json!({ "name": format!("item-{round}") }));
        let touches = join_all(
            (0..15).map(|i| app.walk(&token, "touch", json!({ "ts": format!("{round}-{i}") }))),
        );
        let (added, touched) = tokio::join!(add, touches);
        assert_eq!(added.status, 200, "{:?}", added.body);
        touches_ok += touched.iter().filter(|r| r.status == 200).count() as i64;
    }

    let listed = app.walk(&token, "list_items", json!({})).await;
    let report = &listed.data()["reports"][0];
    let mut names: Vec<&str> =
        report["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["item-0", "item-1", "item-2", "item-3", "item-4"], "an item was lost");
    let counter = app.walk(&token, "read_counter", json!({})).await;
    assert_eq!(
        counter.data()["reports"][0],
        json!({ "success": true, "counters": 1, "value": touches_ok }),
        "the counter disagrees with the touches that answered 200"
    );
    assert_eq!(touches_ok, 75);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_touches_all_succeed_and_count_exactly() {
    let app = spawn_app("hundred_touches").await;
    let (token, _) = app.user("hot").await;

    let replies = join_all((0..100).map(|_| app.walk(&token, "touch", json!({})))).await;

    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert!(statuses.iter().all(|s| *s == 200), "statuses: {statuses:?}");
    let counter = app.walk(&token, "read_counter", json!({})).await;
    assert_eq!(
        counter.data()["reports"][0],
        json!({ "success": true, "counters": 1, "value": 100 })
    );
}
