//! Security: isolation between users, forged and revoked tokens, rate limits, input limits,
//! response headers and CORS. Every test talks to the real app over HTTP.

mod support;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::Method;
use serde_json::{json, Value};
use support::*;
use walkerd_server::settings::{KeyAlgorithm, TokenKeys};

const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keys");

fn key(file: &str) -> String {
    std::fs::read_to_string(format!("{KEYS}/{file}")).expect("reading a test key")
}

/// A request with a bearer token and extra headers.
fn request(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> reqwest::RequestBuilder {
    let mut request = app.http.request(method, format!("{}{path}", app.base)).bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request
}

async fn create_child(app: &TestApp, token: &str, parent: &str, name: &str) -> String {
    let path = format!("/graph/nodes/{parent}/children");
    let body = json!({ "kind": "Item", "fields": { "name": name } });
    let created = app.send(request(app, Method::POST, &path, token, &[], Some(body))).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    created.data()["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_endpoint_answers_another_users_ids_exactly_like_unknown_ones() {
    let app = spawn_app("security_isolation").await;
    let (victim, v) = app.user("victim").await;
    let (attacker, a) = app.user("attacker").await;
    let victim_root = v["root_id"].as_str().unwrap().to_owned();
    let attacker_root = a["root_id"].as_str().unwrap().to_owned();

    let first = create_child(&app, &victim, &victim_root, "secret").await;
    let second = create_child(&app, &victim, &victim_root, "other").await;
    let edge = json!({ "source": first, "target": second, "kind": "Next" });
    let edge =
        app.send(request(&app, Method::POST, "/graph/edges", &victim, &[], Some(edge))).await;
    assert_eq!(edge.status, 201, "{:?}", edge.body);
    let victim_edge = edge.data()["id"].as_str().unwrap().to_owned();

    let deleted = create_child(&app, &attacker, &attacker_root, "gone").await;
    let path = format!("/graph/nodes/{deleted}");
    let gone =
        app.send(request(&app, Method::DELETE, &path, &attacker, &[("if-match", "\"1\"")], None));
    assert_eq!(gone.await.status, 204);

    // The last id is unknown everywhere: every other id must be answered exactly like it.
    let ids = [
        victim_root.clone(),
        first.clone(),
        victim_edge.clone(),
        deleted,
        first.to_uppercase(),
        "not-an-id".to_owned(),
        "%24where".to_owned(),
        "0".repeat(32),
    ];
    let before = app.snapshot().await;
    let mut requests = 0;
    for template in endpoints(&attacker_root) {
        let mut answers = Vec::new();
        for id in &ids {
            let (method, path, headers, body) = template(id);
            let reply = app.send(request(&app, method, &path, &attacker, &headers, body)).await;
            answers.push((path, reply.status, reply.body["error"].clone()));
            requests += 1;
        }
        let (_, status, error) = answers.last().unwrap().clone();
        assert_eq!((status, error["code"].as_str()), (404, Some("NOT_FOUND")), "{answers:?}");
        for (path, other_status, other_error) in &answers {
            assert_eq!((*other_status, other_error), (status, &error), "{path} differs");
        }
    }
    assert!(requests >= 80, "only {requests} requests were tried");

    assert_eq!(app.snapshot().await, before, "a refused request wrote to the database");
    let path = format!("/graph/nodes/{first}");
    let mine = app.send(request(&app, Method::GET, &path, &victim, &[], None)).await;
    assert_eq!((mine.status, mine.data()["_v"].as_i64()), (200, Some(1)));
    assert_eq!(mine.data()["fields"]["name"], "secret");
}

type Endpoint =
    Box<dyn Fn(&str) -> (Method, String, Vec<(&'static str, &'static str)>, Option<Value>)>;

/// Every route that takes an id, as the attacker would call it with `id`.
fn endpoints(own_root: &str) -> Vec<Endpoint> {
    let root = own_root.to_owned();
    let root2 = own_root.to_owned();
    let if_match = vec![("if-match", "\"1\"")];
    let if_match2 = if_match.clone();
    vec![
        Box::new(|id| (Method::GET, format!("/graph/nodes/{id}"), vec![], None)),
        Box::new(move |id| {
            let body = Some(json!({ "name": "pwned" }));
            (Method::PATCH, format!("/graph/nodes/{id}"), if_match.clone(), body)
        }),
        Box::new(move |id| (Method::DELETE, format!("/graph/nodes/{id}"), if_match2.clone(), None)),
        Box::new(|id| (Method::GET, format!("/graph/nodes/{id}/edges"), vec![], None)),
        Box::new(|id| (Method::GET, format!("/graph/nodes/{id}/edges?direction=in"), vec![], None)),
        Box::new(|id| {
            let body = Some(json!({ "kind": "Item", "fields": { "name": "planted" } }));
            (Method::POST, format!("/graph/nodes/{id}/children"), vec![], body)
        }),
        Box::new(|id| (Method::POST, format!("/walker/touch/{id}"), vec![], Some(json!({})))),
        Box::new(|id| (Method::POST, format!("/walker/add_item/{id}"), vec![], Some(json!({})))),
        Box::new(move |id| {
            let body = Some(json!({ "source": root, "target": id, "kind": "Steal" }));
            (Method::POST, "/graph/edges".to_owned(), vec![], body)
        }),
        Box::new(move |id| {
            let body = Some(json!({ "source": id, "target": root2, "kind": "Steal" }));
            (Method::POST, "/graph/edges".to_owned(), vec![], body)
        }),
        Box::new(|id| (Method::DELETE, format!("/graph/edges/{id}"), vec![], None)),
    ]
}

fn encode(part: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(part).unwrap())
}

fn claims_of(login: &Value, change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    let now = chrono_now();
    let mut claims = json!({ "sub": login["user_id"], "root": login["root_id"], "gen": 0,
                             "iat": now, "nbf": now, "exp": now + 3600 });
    change(claims.as_object_mut().unwrap());
    claims
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn sign(
    algorithm: jsonwebtoken::Algorithm,
    key: &jsonwebtoken::EncodingKey,
    claims: &Value,
) -> String {
    jsonwebtoken::encode(&jsonwebtoken::Header::new(algorithm), claims, key).unwrap()
}

fn rsa_keys() -> TokenKeys {
    TokenKeys::Pair {
        algorithm: KeyAlgorithm::Rs256,
        private_pem: key("rsa-private.pem").into(),
        public_pem: key("rsa-public.pem"),
    }
}

#[tokio::test]
async fn forged_expired_early_incomplete_and_garbage_tokens_are_refused() {
    let app = spawn_app_with("security_tokens", demo_walkers(), |s| {
        s.token_keys = Some(rsa_keys());
    })
    .await;
    let (valid, login) = app.user("holder").await;
    let ours = jsonwebtoken::EncodingKey::from_rsa_pem(key("rsa-private.pem").as_bytes()).unwrap();
    let public_as_secret = jsonwebtoken::EncodingKey::from_secret(key("rsa-public.pem").as_bytes());
    let ed = jsonwebtoken::EncodingKey::from_ed_pem(key("ed25519-private.pem").as_bytes()).unwrap();
    use jsonwebtoken::Algorithm::{EdDSA, HS256, RS256};

    let good = claims_of(&login, |_| {});
    let unsigned =
        format!("{}.{}.", encode(&json!({ "alg": "none", "typ": "JWT" })), encode(&good));
    let mut tampered: Vec<&str> = valid.split('.').collect();
    let other_claims = encode(&claims_of(&login, |c| {
        c.insert("root".into(), json!("0".repeat(32)));
    }));
    tampered[1] = &other_claims;
    let tampered = tampered.join(".");
    let now = chrono_now();
    let forged = [
        ("alg none", unsigned),
        ("HS256 keyed with our public key", sign(HS256, &public_as_secret, &good)),
        ("another algorithm", sign(EdDSA, &ed, &good)),
        ("claims changed after signing", tampered),
        (
            "expired",
            sign(
                RS256,
                &ours,
                &claims_of(&login, |c| {
                    c.insert("exp".into(), json!(now - 1));
                }),
            ),
        ),
        (
            "not yet valid",
            sign(
                RS256,
                &ours,
                &claims_of(&login, |c| {
                    c.insert("nbf".into(), json!(now + 600));
                }),
            ),
        ),
        (
            "issued in the future",
            sign(
                RS256,
                &ours,
                &claims_of(&login, |c| {
                    c.insert("iat".into(), json!(now + 600));
                }),
            ),
        ),
        (
            "no root",
            sign(
                RS256,
                &ours,
                &claims_of(&login, |c| {
                    c.remove("root");
                }),
            ),
        ),
        (
            "no generation",
            sign(
                RS256,
                &ours,
                &claims_of(&login, |c| {
                    c.remove("gen");
                }),
            ),
        ),
        (
            "no expiry",
            sign(
                RS256,
                &ours,
                &claims_of(&login, |c| {
                    c.remove("exp");
                }),
            ),
        ),
        (
            "no subject",
            sign(
                RS256,
                &ours,
                &claims_of(&login, |c| {
                    c.remove("sub");
                }),
            ),
        ),
        (
            "a user that does not exist",
            sign(
                RS256,
                &ours,
                &claims_of(&login, |c| {
                    c.insert("sub".into(), json!("f".repeat(32)));
                }),
            ),
        ),
        (
            "a generation from the future",
            sign(
                RS256,
                &ours,
                &claims_of(&login, |c| {
                    c.insert("gen".into(), json!(7));
                }),
            ),
        ),
        ("garbage", "not.a.token".to_owned()),
        ("empty", String::new()),
        ("huge", "a".repeat(16 * 1024)),
        ("bad base64", "%%%.%%%.%%%".to_owned()),
    ];

    let me = app.send(request(&app, Method::GET, "/user/me", &valid, &[], None)).await;
    assert_eq!(me.status, 200, "the genuine token works: {:?}", me.body);
    for (what, token) in forged {
        let me = app.send(request(&app, Method::GET, "/user/me", &token, &[], None)).await;
        assert_eq!((me.status, me.code()), (401, "UNAUTHORIZED"), "{what}: {:?}", me.body);
        let walk = request(&app, Method::POST, "/walker/touch", &token, &[], Some(json!({})));
        assert_eq!(app.send(walk).await.status, 401, "{what}");
    }
    let basic = app.http.get(format!("{}/user/me", app.base)).header("authorization", "Basic eDp5");
    assert_eq!(app.send(basic).await.status, 401);
}

#[tokio::test]
async fn eddsa_tokens_work_end_to_end() {
    let app = spawn_app_with("security_eddsa", demo_walkers(), |s| {
        s.token_keys = Some(TokenKeys::Pair {
            algorithm: KeyAlgorithm::EdDsa,
            private_pem: key("ed25519-private.pem").into(),
            public_pem: key("ed25519-public.pem"),
        });
    })
    .await;
    let (token, _) = app.user("ed").await;
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap())
            .unwrap();
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(app.walk(&token, "touch", json!({})).await.status, 200);
}

#[tokio::test]
async fn a_key_pair_that_does_not_match_stops_startup() {
    let db = walkerd_testkit::TestDb::new("security_mismatch");
    let mut settings = walkerd_server::Settings::for_tests(&db.uri, &db.name);
    settings.token_keys = Some(TokenKeys::Pair {
        algorithm: KeyAlgorithm::EdDsa,
        private_pem: key("ed25519-private.pem").into(),
        public_pem: key("other-ed25519-public.pem"),
    });
    let built = walkerd_server::Application::build(settings, demo_walkers()).await;
    let error = built.err().expect("startup refuses a mismatched pair").to_string();
    assert!(error.contains("does not match"), "{error}");
}

#[tokio::test]
async fn logout_all_revokes_earlier_tokens_at_once_here_and_within_the_bound_elsewhere() {
    let bound = Duration::from_secs(1);
    let here =
        spawn_app_with("security_logout_all", demo_walkers(), |s| s.revocation_cache = bound).await;
    let elsewhere = here.replica(demo_walkers(), |s| s.revocation_cache = bound).await;
    let (first, _) = here.user("leaver").await;
    let credentials = json!({ "username": "leaver", "password": "correct horse battery" });
    let second = here.post("/user/login", None, credentials.clone()).await;
    let second = second.data()["token"].as_str().unwrap().to_owned();

    // The other replica has seen (and cached) the current generation.
    assert_eq!(elsewhere.get("/user/me", Some(&second)).await.status, 200);

    let revoked = here.post("/user/logout-all", Some(&first), json!({})).await.checked();
    assert_eq!(revoked.status, 200, "{:?}", revoked.body);
    let fresh = revoked.data()["token"].as_str().unwrap().to_owned();
    for token in [&first, &second] {
        assert_eq!(here.get("/user/me", Some(token)).await.status, 401);
        let refresh = here.post("/user/refresh-token", None, json!({ "token": token })).await;
        assert_eq!(refresh.status, 401);
    }
    assert_eq!(here.get("/user/me", Some(&fresh)).await.status, 200);

    // Past the staleness bound the other replica refuses them too, and accepts the new token.
    tokio::time::sleep(bound + Duration::from_millis(200)).await;
    assert_eq!(elsewhere.get("/user/me", Some(&second)).await.status, 401);
    assert_eq!(elsewhere.get("/user/me", Some(&first)).await.status, 401);
    assert_eq!(elsewhere.get("/user/me", Some(&fresh)).await.status, 200);
    let again = here.post("/user/login", None, credentials).await;
    let again = again.data()["token"].as_str().unwrap().to_owned();
    assert_eq!(elsewhere.get("/user/me", Some(&again)).await.status, 200);
}

#[tokio::test]
async fn a_new_login_is_accepted_by_a_replica_whose_cache_is_older() {
    let long = Duration::from_secs(600);
    let here =
        spawn_app_with("security_newer_gen", demo_walkers(), |s| s.revocation_cache = long).await;
    let elsewhere = here.replica(demo_walkers(), |s| s.revocation_cache = long).await;
    let (token, _) = here.user("returning").await;
    assert_eq!(elsewhere.get("/user/me", Some(&token)).await.status, 200);
    let fresh = here.post("/user/logout-all", Some(&token), json!({})).await;
    let fresh = fresh.data()["token"].as_str().unwrap().to_owned();
    assert_eq!(elsewhere.get("/user/me", Some(&fresh)).await.status, 200);
    assert_eq!(elsewhere.get("/user/me", Some(&token)).await.status, 401);
}

async fn login(app: &TestApp, name: &str, password: &str, forwarded: Option<&str>) -> Reply {
    let body = json!({ "username": name, "password": password });
    let mut request = app.http.post(format!("{}/user/login", app.base)).json(&body);
    if let Some(address) = forwarded {
        request = request.header("x-forwarded-for", address);
    }
    app.send(request).await
}

#[tokio::test]
async fn failed_logins_of_one_name_are_limited_with_retry_after() {
    let app = spawn_app_with("security_rate_name", demo_walkers(), |s| {
        s.auth_rate.per_username_per_minute = Some(3);
        s.auth_rate.per_address_per_minute = None;
    })
    .await;
    // Registering counts once; successful logins do not count.
    app.user("target").await;
    assert_eq!(login(&app, "target", "correct horse battery", None).await.status, 200);
    for _ in 0..2 {
        assert_eq!(login(&app, "target", "guess", None).await.status, 401);
    }
    let body = json!({ "username": "TARGET", "password": "guess" });
    let response = app.http.post(format!("{}/user/login", app.base)).json(&body).send().await;
    let response = response.unwrap();
    assert_eq!(response.status(), 429);
    let wait: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=20).contains(&wait), "Retry-After: {wait}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "RATE_LIMITED");
    assert_eq!(login(&app, "target", "correct horse battery", None).await.status, 429);
    app.user("bystander").await;
}

#[tokio::test]
async fn forwarded_for_counts_only_from_a_trusted_proxy() {
    let limited = |trusted: bool| {
        move |s: &mut walkerd_server::Settings| {
            s.auth_rate.per_address_per_minute = Some(3);
            s.auth_rate.per_username_per_minute = None;
            if trusted {
                s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
            }
        }
    };
    let direct = spawn_app_with("security_rate_direct", demo_walkers(), limited(false)).await;
    for i in 0..3 {
        let forwarded = format!("198.51.100.{i}");
        assert_eq!(login(&direct, "nobody", "x", Some(&forwarded)).await.status, 401);
    }
    let spoofed = login(&direct, "nobody", "x", Some("198.51.100.99")).await;
    assert_eq!((spoofed.status, spoofed.code()), (429, "RATE_LIMITED"));

    let proxied = direct.replica(demo_walkers(), limited(true)).await;
    for i in 0..10 {
        let forwarded = format!("203.0.113.{i}, 127.0.0.1");
        assert_eq!(login(&proxied, "nobody", "x", Some(&forwarded)).await.status, 401);
    }
    for _ in 0..3 {
        assert_eq!(login(&proxied, "nobody", "x", Some("192.0.2.1")).await.status, 401);
    }
    assert_eq!(login(&proxied, "nobody", "x", Some("192.0.2.1")).await.status, 429);
}

fn nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

#[tokio::test]
async fn oversized_deep_and_operator_laden_bodies_are_refused_and_write_nothing() {
    let app = spawn_app("security_input").await;
    let (token, login) = app.user("sender").await;
    let root = login["root_id"].as_str().unwrap().to_owned();
    let children = format!("/graph/nodes/{root}/children");
    let before = app.snapshot().await;

    let many_fields: serde_json::Map<String, Value> =
        (0..1001).map(|i| (format!("f{i}"), json!(i))).collect();
    let bodies: Vec<(&str, String)> = vec![
        ("33 levels", format!("{{\"name\": {}}}", nested(32))),
        ("past the parser's limit", format!("{{\"name\": {}}}", nested(100_000))),
        ("a 70 kB string", json!({ "name": "x".repeat(70_000) }).to_string()),
        ("10001 items", json!({ "name": vec![0; 10_001] }).to_string()),
        ("1001 fields", json!({ "fields": many_fields }).to_string()),
        ("$ key", r#"{"name": {"$gt": ""}}"#.to_owned()),
        ("dotted key", r#"{"fields": {"a.b": 1}, "kind": "Item"}"#.to_owned()),
        ("NUL key", "{\"fields\": {\"a\\u0000\": 1}, \"kind\": \"Item\"}".to_owned()),
        ("truncated", r#"{"name": "#.to_owned()),
    ];
    for (what, body) in &bodies {
        for path in ["/walker/add_item", children.as_str(), "/user/register"] {
            let reply = app.post_raw(path, Some(&token), body.clone().into_bytes()).await;
            let reply = reply.checked();
            assert_eq!((reply.status, reply.code()), (400, "VALIDATION_ERROR"), "{what} {path}");
        }
    }
    let raw =
        app.post_raw("/walker/add_item", Some(&token), b"{\"name\": \"\xff\"}".to_vec()).await;
    assert_eq!(raw.status, 400);
    let huge = json!({ "name": "x".repeat(2 << 20) }).to_string().into_bytes();
    let reply = app.post_raw("/walker/add_item", Some(&token), huge).await.checked();
    assert_eq!((reply.status, reply.code()), (413, "PAYLOAD_TOO_LARGE"));

    assert_eq!(app.snapshot().await, before, "a refused body wrote to the database");
    let within = format!("{{\"kind\": \"Item\", \"fields\": {{\"deep\": {}}}}}", nested(28));
    let accepted = app.post_raw(&children, Some(&token), within.into_bytes()).await;
    assert_eq!(accepted.status, 201, "the limits leave room for real input: {:?}", accepted.body);
}

#[tokio::test]
async fn responses_carry_security_headers_and_no_cors_unless_configured() {
    let app = spawn_app("security_headers").await;
    let origin = "https://app.example.com";
    let response = app.http.get(format!("{}/healthz", app.base)).header("origin", origin);
    let response = response.send().await.unwrap();
    let headers = response.headers();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(headers["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
    assert!(headers.get("access-control-allow-origin").is_none());
    let docs = app.http.get(format!("{}/docs", app.base)).send().await.unwrap();
    let policy = docs.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(policy.contains("default-src 'self'") && !policy.contains("unsafe-eval"), "{policy}");

    let cors = app.replica(demo_walkers(), |s| s.cors_origins = vec![origin.to_owned()]).await;
    let preflight = cors
        .http
        .request(Method::OPTIONS, format!("{}/walker/touch", cors.base))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()["access-control-allow-origin"], origin);
    let foreign = cors
        .http
        .get(format!("{}/healthz", cors.base))
        .header("origin", "https://evil.example.net")
        .send()
        .await
        .unwrap();
    assert!(foreign.headers().get("access-control-allow-origin").is_none());
}
