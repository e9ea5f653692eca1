//! Test support for the HTTP-level tests: the real application on port 0, on a database of the
//! test's own, and a client that speaks its envelope.

#![allow(dead_code)]

pub mod cluster;

use serde_json::{json, Value};
use walkerd_server::{Application, Registry, Settings};
use walkerd_testkit::TestDb;

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    /// The test's database, when the app was started on one by [`spawn_app_with`].
    pub db: Option<TestDb>,
}

/// A response: the HTTP status and the parsed body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// Asserts that the envelope's status matches the HTTP status, then returns `self`.
    pub fn checked(self) -> Reply {
        assert_eq!(self.body["meta"]["extra"]["http_status"], self.status, "{:?}", self.body);
        assert_eq!(self.body["ok"], self.status < 400, "{:?}", self.body);
        self
    }
}

pub fn demo_walkers() -> Registry {
    let mut walkers = Registry::new();
    walkerd_server::demo::register(&mut walkers);
    walkers
}

/// Starts the app with the demo walkers.
pub async fn spawn_app(test: &str) -> TestApp {
    spawn_app_with(test, demo_walkers(), |_| {}).await
}

/// Starts the app with `walkers`, after `adjust` has changed the test settings.
pub async fn spawn_app_with(
    test: &str,
    walkers: Registry,
    adjust: impl FnOnce(&mut Settings),
) -> TestApp {
    let db = TestDb::new(test);
    let mut settings = Settings::for_tests(&db.uri, &db.name);
    adjust(&mut settings);
    let app = Application::build(settings, walkers).await.expect("building the app");
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp { base, http: reqwest::Client::new(), db: Some(db) }
}

impl TestApp {
    /// A second replica on this app's database, with `adjust` applied to its settings.
    pub async fn replica(&self, walkers: Registry, adjust: impl FnOnce(&mut Settings)) -> TestApp {
        let db = self.db.as_ref().expect("the app runs on a test database");
        let mut settings = Settings::for_tests(&db.uri, &db.name);
        adjust(&mut settings);
        let app = Application::build(settings, walkers).await.expect("building the replica");
        let base = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        TestApp { base, http: reqwest::Client::new(), db: None }
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        reply(request.send().await.expect("sending")).await
    }

    pub async fn post_raw(&self, path: &str, token: Option<&str>, body: Vec<u8>) -> Reply {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        reply(request.send().await.expect("sending")).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        reply(request.send().await.expect("sending")).await
    }

    /// Sends any request; returns its reply.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        reply(request.send().await.expect("sending")).await
    }

    /// Every document of every collection in the app's database, sorted: two equal snapshots
    /// mean nothing was written in between.
    pub async fn snapshot(&self) -> std::collections::BTreeMap<String, Vec<String>> {
        let db = self.db.as_ref().expect("the app runs on a test database");
        let client = mongodb::Client::with_uri_str(&db.uri).await.expect("connecting");
        let database = client.database(&db.name);
        let mut snapshot = std::collections::BTreeMap::new();
        for name in database.list_collection_names().await.expect("listing collections") {
            let collection = database.collection::<mongodb::bson::Document>(&name);
            let cursor = collection.find(mongodb::bson::doc! {}).await.expect("reading");
            let documents: Vec<mongodb::bson::Document> =
                futures::TryStreamExt::try_collect(cursor).await.expect("reading");
            let mut texts: Vec<String> = documents.iter().map(|d| d.to_string()).collect();
            texts.sort();
            snapshot.insert(name, texts);
        }
        snapshot
    }

    /// Registers `name` and logs in; returns the token and the login data.
    pub async fn user(&self, name: &str) -> (String, Value) {
        let credentials = json!({ "username": name, "password": "correct horse battery" });
        let registered = self.post("/user/register", None, credentials.clone()).await.checked();
        assert_eq!(registered.status, 201, "{:?}", registered.body);
        let login = self.post("/user/login", None, credentials).await.checked();
        assert_eq!(login.status, 200, "{:?}", login.body);
        let token = login.data()["token"].as_str().expect("a token").to_owned();
        (token, login.data().clone())
    }

    /// Runs a walker on the caller's root; returns its reply.
    pub async fn walk(&self, token: &str, walker: &str, body: Value) -> Reply {
        self.post(&format!("/walker/{walker}"), Some(token), body).await.checked()
    }
}

async fn reply(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let text = response.text().await.expect("reading the body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply { status, body }
}
