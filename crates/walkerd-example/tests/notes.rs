//! The example application end to end: its own walkers over HTTP, spawned on its own nodes.

use serde_json::{json, Value};
use walkerd_server::{Application, Settings};
use walkerd_testkit::TestDb;

async fn post(base: &str, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(format!("{base}{path}")).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn notes_are_added_listed_and_pinned_through_the_applications_walkers() {
    let db = TestDb::new("example_notes");
    let settings = Settings::for_tests(&db.uri, &db.name);
    let app = Application::build(settings, walkerd_example::walkers()).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let credentials = json!({ "username": "writer", "password": "a long password" });
    post(&base, "/user/register", None, credentials.clone()).await;
    let (_, login) = post(&base, "/user/login", None, credentials).await;
    let token = login["data"]["token"].as_str().unwrap();

    let (status, added) =
        post(&base, "/walker/add_note", Some(token), json!({ "text": "hi" })).await;
    assert_eq!(status, 200, "{added}");
    let note = &added["data"]["reports"][0];
    assert_eq!((note["kind"].as_str(), note["text"].as_str()), (Some("Note"), Some("hi")));
    let id = note["id"].as_str().unwrap();

    let (status, pinned) = post(&base, &format!("/walker/pin/{id}"), Some(token), json!({})).await;
    assert_eq!(status, 200, "{pinned}");
    let (_, listed) = post(&base, "/walker/list_notes", Some(token), json!({})).await;
    assert_eq!(listed["data"]["reports"][0]["pinned"], true);

    let (status, refused) = post(&base, "/walker/pin", Some(token), json!({})).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (422, Some("WALKER_FAILED")));
    let (status, _) = post(&base, "/walker/add_note", Some(token), json!({ "text": " " })).await;
    assert_eq!(status, 422);
    let (_, listed) = post(&base, "/walker/list_notes", Some(token), json!({})).await;
    assert_eq!(listed["data"]["reports"].as_array().unwrap().len(), 1);
}
