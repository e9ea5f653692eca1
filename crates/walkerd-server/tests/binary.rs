//! The `walkerd` binary itself: the zero-setup run on the embedded database, its data kept
//! across restarts, a graceful stop on SIGTERM, and `--help`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A running `walkerd` and the address it reported.
struct Walkerd {
    child: Child,
    address: String,
    base: String,
}

impl Walkerd {
    /// Sends SIGTERM and waits for the exit.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let started = Instant::now();
        loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                return exit;
            }
            assert!(started.elapsed() < Duration::from_secs(40), "walkerd ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Walkerd {
    fn drop(&mut self) {
        // A graceful stop, so that the embedded database stops with walkerd.
        if self.child.try_wait().ok().flatten().is_none() {
            self.terminate();
        }
    }
}

/// Starts the binary with no `MONGODB_URI`, its data in `data_dir`, on a free port.
fn start(data_dir: &Path) -> Walkerd {
    start_with(data_dir, &[("WALKERD_DRAIN_DELAY_SECS", "0")])
}

fn start_with(data_dir: &Path, env: &[(&str, &str)]) -> Walkerd {
    let mut child = Command::new(env!("CARGO_BIN_EXE_walkerd"))
        .envs(env.iter().copied())
        .env_remove("MONGODB_URI")
        .env_remove("WALKERD_JWT_SECRET")
        .env("WALKERD_BIND", "127.0.0.1:0")
        .env("WALKERD_DATA_DIR", data_dir)
        .env("WALKERD_EMBEDDED_DB_BIN", walkerd_testkit::server_binary())
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting walkerd");

    // Logs are JSON lines when stdout is not a terminal; the listening line has the address.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let address = loop {
        let line = lines.next().expect("walkerd exited before listening").unwrap();
        let Ok(event) = serde_json::from_str::<Value>(&line) else { continue };
        if event["message"] == "walkerd listening" {
            break event["address"].as_str().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    Walkerd { child, base: format!("http://{address}"), address }
}

async fn post(base: &str, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(format!("{base}{path}")).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn embedded_pid(data_dir: &Path) -> Option<String> {
    std::fs::read_to_string(data_dir.join("db.pid")).ok().map(|p| p.trim().to_owned())
}

#[tokio::test]
async fn the_zero_setup_run_keeps_data_across_restarts_and_stops_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let credentials = json!({ "username": "solo", "password": "a long password" });

    let mut first = start(data.path());
    let ready = reqwest::get(format!("{}/healthz/ready", first.base)).await.unwrap();
    assert_eq!(ready.status(), 200);
    let (status, _) = post(&first.base, "/user/register", None, credentials.clone()).await;
    assert_eq!(status, 201);
    let (_, login) = post(&first.base, "/user/login", None, credentials.clone()).await;
    let token = login["data"]["token"].as_str().unwrap().to_owned();
    let (status, _) = post(&first.base, "/walker/add_item", Some(&token), json!({})).await;
    assert_eq!(status, 200);
    let db_pid = embedded_pid(data.path()).expect("the embedded database's pid is recorded");

    // SIGTERM: walkerd stops, and takes its database down with it.
    let exit = first.terminate();
    assert!(exit.success(), "walkerd exited with {exit}");
    assert!(!Path::new(&format!("/proc/{db_pid}")).exists(), "the database was left running");

    // A new start on the same directory finds the user, the item and the same secret.
    let second = start(data.path());
    let (status, listed) = post(&second.base, "/walker/list_items", Some(&token), json!({})).await;
    assert_eq!(status, 200, "the old token is no longer accepted: {listed}");
    assert_eq!(listed["data"]["reports"][0]["count"], 1);
}

fn healthcheck(address: &str) -> bool {
    let status = Command::new(env!("CARGO_BIN_EXE_walkerd"))
        .arg("--healthcheck")
        .env("WALKERD_BIND", address)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    status.success()
}

#[tokio::test]
async fn sigterm_turns_readiness_off_drains_then_exits() {
    let data = tempfile::tempdir().unwrap();
    let mut walkerd = start_with(data.path(), &[("WALKERD_DRAIN_DELAY_SECS", "2")]);
    let credentials = json!({ "username": "drainer", "password": "a long password" });
    post(&walkerd.base, "/user/register", None, credentials.clone()).await;
    let (_, login) = post(&walkerd.base, "/user/login", None, credentials).await;
    let token = login["data"]["token"].as_str().unwrap().to_owned();
    assert!(healthcheck(&walkerd.address), "--healthcheck fails on a live server");

    let pid = walkerd.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let signalled = Instant::now();
    let ready_url = format!("{}/healthz/ready", walkerd.base);
    let mut not_ready = false;
    while !not_ready && signalled.elapsed() < Duration::from_secs(1) {
        not_ready = reqwest::get(&ready_url).await.is_ok_and(|r| r.status() == 503);
    }
    let (during_drain, _) = post(&walkerd.base, "/walker/touch", Some(&token), json!({})).await;

    assert!(not_ready, "readiness still answered 200 after SIGTERM");
    assert_eq!(during_drain, 200, "a request during the drain was refused");
    let exit = walkerd.terminate();
    let took = signalled.elapsed();
    assert!(exit.success(), "walkerd exited with {exit}");
    assert!(took >= Duration::from_millis(1900), "exited after {took:?}, before the drain ended");
    assert!(took < Duration::from_secs(15), "took {took:?} to exit");
    assert!(!healthcheck(&walkerd.address), "--healthcheck passes with walkerd stopped");
}

#[test]
fn help_documents_every_setting() {
    let output = Command::new(env!("CARGO_BIN_EXE_walkerd")).arg("--help").output().unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for name in [
        "WALKERD_CONFIG",
        "WALKERD_BIND",
        "MONGODB_URI",
        "WALKERD_DB_NAME",
        "WALKERD_JWT_SECRET",
        "WALKERD_JWT_EXPIRY_SECS",
        "WALKERD_DATA_DIR",
        "WALKERD_EMBEDDED_DB_BIN",
        "WALKERD_BODY_LIMIT_BYTES",
        "WALKERD_REPLAY_DEADLINE_MS",
        "WALKERD_REPLAY_MAX_ATTEMPTS",
        "WALKERD_MAX_VISITS",
        "WALKERD_WALK_TIME_LIMIT_MS",
        "WALKERD_DRAIN_DELAY_SECS",
        "WALKERD_SHUTDOWN_TIMEOUT_SECS",
        "WALKERD_METRICS_TOKEN",
        "WALKERD_IDEMPOTENCY_CLAIM_SECS",
    ] {
        assert!(help.contains(name), "--help does not mention {name}");
    }
}

#[test]
fn an_invalid_setting_stops_startup_with_its_name() {
    let output = Command::new(env!("CARGO_BIN_EXE_walkerd"))
        .env("WALKERD_BIND", "not an address")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("WALKERD_BIND"), "{stderr}");
}
