//! The `walkerd-load` binary against the real app on port 0 and a real database server.

use std::process::Command;

use serde_json::Value;
use walkerd_server::{Application, Registry, Settings};
use walkerd_testkit::TestDb;

/// Starts the app with the demo walkers; its base URL and database.
async fn spawn_app(test: &str) -> (String, TestDb) {
    let db = TestDb::new(test);
    let mut walkers = Registry::new();
    walkerd_server::demo::register(&mut walkers);
    let settings = Settings::for_tests(&db.uri, &db.name);
    let app = Application::build(settings, walkers).await.expect("building the app");
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    (base, db)
}

/// Runs the binary with `args` on a blocking thread; its exit code, stdout and stderr.
async fn load(args: Vec<String>) -> (i32, String, String) {
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_walkerd-load")).args(args).output()
    })
    .await
    .unwrap()
    .expect("running walkerd-load");
    let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
    (output.status.code().unwrap_or(-1), text(output.stdout), text(output.stderr))
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_closed_loop_run_reports_every_request_and_writes_json_and_svg() {
    let (base, db) = spawn_app("load_closed_loop").await;
    let dir = tempfile::tempdir().unwrap();
    let (json_path, svg_path) = (dir.path().join("report.json"), dir.path().join("report.svg"));
    let mut args = strings(&["--users", "3", "--requests", "300", "--concurrency", "8"]);
    args.extend(strings(&["--mix", "add_item=1,touch=2,list_items=1", "--target", &base]));
    args.extend(strings(&["--mongodb-uri", &db.uri, "--db-name", &db.name]));
    args.extend(["--json".into(), json_path.display().to_string()]);
    args.extend(["--plot".into(), svg_path.display().to_string()]);

    let (code, stdout, stderr) = load(args).await;

    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("checker: no violation"), "{stdout}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(report["requests"], 300);
    assert_eq!(report["ok"], 300, "{report}");
    assert_eq!(report["statuses"]["200"], 300);
    assert_eq!(report["latency"]["all"]["requests"], 300);
    for walker in ["add_item", "touch", "list_items"] {
        let latency = &report["latency"][walker];
        assert!(latency["p99_ms"].as_f64().unwrap() >= latency["p50_ms"].as_f64().unwrap());
    }
    assert!(report["latency"].get("count_up").is_none(), "count_up has weight 0");
    // The servers' own counts: every walker request made at least one commit attempt.
    let attempts = report["server"]["commit_attempts"].as_f64().unwrap();
    assert!(attempts >= 300.0, "{report}");
    assert!(report["server"]["database_commands"].as_f64().unwrap() > attempts);
    assert_eq!(report["checker"]["checked"], true);
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<polyline").count(), 5, "three latency and two throughput lines");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_open_loop_run_paces_requests_at_the_rate_for_the_duration() {
    let (base, _db) = spawn_app("load_open_loop").await;
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("report.json");
    let mut args = strings(&["--users", "2", "--rate", "100", "--duration", "2s"]);
    args.extend(strings(&["--mix", "touch=1,count_up=1", "--target", &base]));
    args.extend(["--json".into(), json_path.display().to_string()]);

    let (code, stdout, stderr) = load(args).await;

    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    // 100 req/s for 2 s is 200 requests due, whatever the server's speed.
    assert_eq!(report["requests"], 200, "{report}");
    assert!(report["pacing"].as_str().unwrap().starts_with("open loop at 100"));
    assert!(report["seconds"].as_f64().unwrap() >= 1.99, "{report}");
}

#[tokio::test]
async fn bad_arguments_exit_2_with_the_reason() {
    for (args, reason) in [
        (strings(&["--target", "http://127.0.0.1:9", "--mix", "fly=1"]), "unknown walker"),
        (strings(&["--target", "http://127.0.0.1:9", "--rate", "0"]), "--rate"),
        (strings(&["--target", "http://127.0.0.1:9", "--duration", "soon"]), "duration"),
    ] {
        let (code, _, stderr) = load(args.clone()).await;
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
    }
}
