//! Thousands of generated malformed requests against the real server: none may get a 5xx, none
//! may break a connection or the server, and none may write anything.
//!
//! Every request is invalid by construction (a broken or forbidden body, a foreign or garbled
//! id, a forged token), so the database must be byte-for-byte what it was before. The generator
//! is seeded; `WALKERD_HOSTILE_SEED` replays a run and `WALKERD_HOSTILE_REQUESTS` sizes it.

mod support;

use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::json;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// What the generator may put where a token goes.
struct Tokens {
    valid: String,
    garbage: Vec<String>,
}

/// One request, ready to send.
struct Hostile {
    method: Method,
    path: String,
    token: Option<String>,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// An id that is not one of the caller's nodes.
fn bad_id(rng: &mut StdRng, foreign: &[String]) -> String {
    match rng.random_range(0..6) {
        0 => pick(rng, foreign).clone(),
        1 => "0".repeat(32),
        2 => (0..rng.random_range(1..80)).map(|_| pick(rng, &['a', 'Z', '9', '-', '_'])).collect(),
        3 => "%24where".to_owned(),
        4 => "%F0%9F%92%A5".repeat(rng.random_range(1..20)),
        _ => "x".repeat(rng.random_range(1000..5000)),
    }
}

fn nested(rng: &mut StdRng, depth: usize) -> String {
    let (open, close) = if rng.random_bool(0.5) { ("[", "]") } else { ("{\"a\":", "}") };
    format!("{}1{}", open.repeat(depth), close.repeat(depth))
}

/// A body that every route refuses: broken JSON, past a limit, or with a forbidden key.
fn bad_body(rng: &mut StdRng) -> Vec<u8> {
    let forbidden = ["$set", "$where", "a.b", "\u{0}", "", "$", "x.$y"];
    match rng.random_range(0..10) {
        0 => (0..rng.random_range(1..400)).map(|_| rng.random::<u8>()).collect(),
        1 => {
            let valid =
                json!({ "name": "n", "kind": "Item", "fields": { "x": [1, 2, { "y": 3 }] } });
            let text = valid.to_string();
            text.as_bytes()[..rng.random_range(1..text.len())].to_vec()
        }
        2 => {
            let depth = rng.random_range(33..300);
            nested(rng, depth).into_bytes()
        }
        3 => json!({ "name": "x".repeat(rng.random_range(65_537..200_000)) })
            .to_string()
            .into_bytes(),
        4 => {
            json!({ "fields": vec![1; rng.random_range(10_001..20_000)] }).to_string().into_bytes()
        }
        5 => {
            let fields: serde_json::Map<String, serde_json::Value> =
                (0..rng.random_range(1001..3000)).map(|i| (format!("k{i}"), json!(i))).collect();
            serde_json::Value::Object(fields).to_string().into_bytes()
        }
        6 => b"{\"name\": \"\xff\xfe\"}".to_vec(),
        7 => format!("{{\"n\": 1{}}}", "0".repeat(rng.random_range(400..2000))).into_bytes(),
        _ => {
            // A plausible body with one forbidden key somewhere inside.
            let key = pick(rng, &forbidden).to_owned();
            let mut inner = json!({ key: { "$gt": "" } });
            for _ in 0..rng.random_range(0..5) {
                inner = json!({ "fields": inner, "name": "x", "kind": "Item" });
            }
            inner.to_string().into_bytes()
        }
    }
}

fn generate(rng: &mut StdRng, tokens: &Tokens, foreign: &[String], own_root: &str) -> Hostile {
    let id = bad_id(rng, foreign);
    let walkers = ["touch", "add_item", "list_items", "count_up", "read_counter", "nope", "%00"];
    let walker = pick(rng, &walkers);
    let (method, path) = match rng.random_range(0..14) {
        0 => (Method::POST, format!("/walker/{walker}")),
        1 => (Method::POST, format!("/walker/{walker}/{id}")),
        2 => (Method::GET, format!("/graph/nodes/{id}")),
        3 => (Method::PATCH, format!("/graph/nodes/{id}")),
        4 => (Method::DELETE, format!("/graph/nodes/{id}")),
        5 => (Method::GET, format!("/graph/nodes/{id}/edges?limit=-1&cursor=%ZZ&direction=up")),
        6 => (Method::POST, format!("/graph/nodes/{id}/children")),
        7 => (Method::POST, format!("/graph/nodes/{own_root}/children")),
        8 => (Method::POST, "/graph/edges".to_owned()),
        9 => (Method::DELETE, format!("/graph/edges/{id}")),
        10 => (Method::POST, pick(rng, &["/user/register", "/user/login"]).to_string()),
        11 => (Method::POST, "/user/refresh-token".to_owned()),
        12 => (
            pick(rng, &[Method::PUT, Method::OPTIONS, Method::TRACE]).clone(),
            "/walker/touch".into(),
        ),
        _ => (Method::GET, format!("/{}", bad_id(rng, foreign))),
    };
    // The valid token only ever meets foreign or garbled ids, or a refused body.
    let token = match rng.random_range(0..3) {
        0 => None,
        1 => Some(tokens.valid.clone()),
        _ => Some(pick(rng, &tokens.garbage).clone()),
    };
    let mut headers = Vec::new();
    if rng.random_bool(0.3) {
        headers.push((
            "if-match",
            pick(rng, &["\"1\"", "*", "\"\"", "W/\"1\"", "garbage"]).to_string(),
        ));
    }
    if rng.random_bool(0.2) {
        headers.push(("idempotency-key", "k".repeat(rng.random_range(1..400))));
    }
    if rng.random_bool(0.2) {
        headers.push((
            "content-type",
            pick(rng, &["text/plain", "application/json; charset=latin1", "multipart/form-data"])
                .to_string(),
        ));
    }
    if rng.random_bool(0.1) {
        headers.push(("x-request-id", "\"<script>\" ../../%00 ".repeat(30)));
    }
    Hostile { method, path, token, headers, body: bad_body(rng) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn generated_malformed_requests_get_no_5xx_and_change_nothing() {
    let seed = env_number("WALKERD_HOSTILE_SEED", rand::random::<u32>() as u64);
    let count = env_number("WALKERD_HOSTILE_REQUESTS", 3000) as usize;
    eprintln!("hostile input: seed {seed}, {count} requests (WALKERD_HOSTILE_SEED replays it)");
    let app = spawn_app("hostile_input").await;
    let (valid, own) = app.user("target").await;
    let (other, theirs) = app.user("neighbour").await;
    let neighbour_root = theirs["root_id"].as_str().unwrap().to_owned();
    let item = app.walk(&other, "add_item", json!({ "name": "theirs" })).await;
    assert_eq!(item.status, 200);
    let own_root = own["root_id"].as_str().unwrap().to_owned();
    let foreign = vec![neighbour_root.clone(), own["user_id"].as_str().unwrap().to_owned()];
    let tokens = Tokens {
        garbage: vec![
            "x".into(),
            format!("{valid}x"),
            valid.replace('.', ""),
            other.chars().rev().collect(),
            "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.".into(),
            "a".repeat(20_000),
        ],
        valid,
    };

    let mut rng = StdRng::seed_from_u64(seed);
    let requests: Vec<Hostile> =
        (0..count).map(|_| generate(&mut rng, &tokens, &foreign, &own_root)).collect();
    let before = app.snapshot().await;

    let outcomes: Vec<(String, Result<u16, String>)> = futures::stream::iter(requests)
        .map(|r| {
            let app = &app;
            async move {
                let what = format!("{} {}", r.method, r.path.chars().take(120).collect::<String>());
                let mut request = app.http.request(r.method, format!("{}{}", app.base, r.path));
                if let Some(token) = r.token {
                    request = request.header("authorization", format!("Bearer {token}"));
                }
                for (name, value) in r.headers {
                    request = request.header(name, value);
                }
                let sent = request.body(r.body).send().await;
                (what, sent.map(|response| response.status().as_u16()).map_err(|e| e.to_string()))
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;

    let failures: Vec<_> = outcomes
        .iter()
        .filter(|(_, outcome)| !matches!(outcome, Ok(status) if *status < 500))
        .collect();
    assert!(
        failures.is_empty(),
        "seed {seed}: {} failures, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let refused = outcomes.iter().filter(|(_, o)| matches!(o, Ok(s) if *s >= 400)).count();
    assert_eq!(refused, outcomes.len(), "seed {seed}: a hostile request succeeded");

    // Bytes that are not HTTP at all.
    let address = app.base.trim_start_matches("http://").to_owned();
    for _ in 0..50 {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        let noise: Vec<u8> = (0..rng.random_range(1..2000)).map(|_| rng.random::<u8>()).collect();
        let _ = stream.write_all(&noise).await;
        let mut answer = Vec::new();
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            stream.read_to_end(&mut answer),
        );
        let _ = read.await;
        let text = String::from_utf8_lossy(&answer);
        assert!(!text.starts_with("HTTP/1.1 5"), "seed {seed}: noise got {text:.40}");
    }

    assert_eq!(app.snapshot().await, before, "seed {seed}: a hostile request wrote something");
    assert_eq!(app.get("/healthz/ready", None).await.status, 200);
    assert_eq!(app.walk(&tokens.valid, "touch", json!({})).await.status, 200);
}
