//! Test support: a real MongoDB-compatible server for each test, and a database of its own.
//!
//! Tests never mock the database. When `MONGODB_URI` is set, tests use that server (a real
//! MongoDB replica set, say), each in a database named after the test. Otherwise each test starts
//! its own `secantusd-rs` process on a free port with its data in a temporary directory; the
//! process is killed when the test's [`DbServer`] is dropped, even when the test panics.
//!
//! The server binary is found through `WALKERD_EMBEDDED_DB_BIN`, then `PATH`, then
//! `~/.cargo/bin`; `.ci/run` installs it.
//!
//! [`raw`] holds the benchmarks' ceiling loops: the walkers' MongoDB operations, sent directly.

pub mod raw;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The binary that serves the MongoDB wire protocol in tests and the embedded default.
pub const SERVER_BIN: &str = "secantusd-rs";

/// Where the server binary is.
pub fn server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("WALKERD_EMBEDDED_DB_BIN") {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(SERVER_BIN))
        .find(|candidate| candidate.is_file());
    let in_cargo_home = std::env::var_os("HOME")
        .map(|home| Path::new(&home).join(".cargo/bin").join(SERVER_BIN))
        .filter(|p| p.is_file());
    on_path.or(in_cargo_home).unwrap_or_else(|| PathBuf::from(SERVER_BIN))
}

/// A running `secantusd-rs` process, killed when dropped.
pub struct DbServer {
    child: Option<Child>,
    port: u16,
    storage: PathBuf,
    sync_on_commit: bool,
    _dir: Option<tempfile::TempDir>,
}

impl DbServer {
    /// Starts a server on a free port, with its data in a new temporary directory.
    pub fn start() -> DbServer {
        Self::start_with(false)
    }

    /// Starts a server that fsyncs every commit: use it wherever a test kills the database, so
    /// that a write acknowledged before the kill survives it.
    pub fn start_durable() -> DbServer {
        Self::start_with(true)
    }

    fn start_with(sync_on_commit: bool) -> DbServer {
        let dir = tempfile::tempdir().expect("creating a temporary directory for the database");
        let storage = dir.path().join("db");
        let mut server =
            DbServer { child: None, port: 0, storage, sync_on_commit, _dir: Some(dir) };
        let (child, port) = server.spawn(0).unwrap_or_else(|e| panic!("{e}"));
        server.child = Some(child);
        server.port = port;
        server
    }

    fn spawn(&self, port: u16) -> Result<(Child, u16), String> {
        let mut command = Command::new(server_binary());
        command
            .arg("--port")
            .arg(port.to_string())
            .arg("--storage-path")
            .arg(&self.storage)
            .args(["--cache-size", "256M", "--log-file-max", "16MB", "--log-level", "WARNING"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if self.sync_on_commit {
            command.arg("--sync-on-commit");
        }
        let mut child = command.spawn().map_err(|e| {
            format!("starting {} ({e}); install it as README.md says", server_binary().display())
        })?;
        let stdout = child.stdout.take().expect("stdout is piped");
        match read_port(stdout) {
            Some(port) => Ok((child, port)),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                Err("the database server exited before it listened".to_owned())
            }
        }
    }

    /// The URI to connect to this server.
    pub fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}/?directConnection=true", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data after [`DbServer::kill`].
    pub fn restart(&mut self) {
        self.kill();
        // The port may linger briefly after the kill; retry until it binds.
        for _ in 0..100 {
            if let Ok((child, _)) = self.spawn(self.port) {
                self.child = Some(child);
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the database server did not restart on port {}", self.port);
    }
}

impl Drop for DbServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Reads the "listening on HOST:PORT" line, then keeps draining stdout so the server never
/// blocks on a full pipe.
fn read_port(stdout: impl Read + Send + 'static) -> Option<u16> {
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let port = line.trim().rsplit(':').next().and_then(|p| p.parse().ok());
        if let (true, Some(port)) = (line.contains("listening on"), port) {
            std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
            return Some(port);
        }
    }
}

/// A database for one test: on the shared `MONGODB_URI` server when set, otherwise on a server
/// of the test's own.
pub struct TestDb {
    pub uri: String,
    pub name: String,
    pub server: Option<DbServer>,
}

impl TestDb {
    /// A fresh database named after `test` (plus a random suffix, so reruns never collide).
    pub fn new(test: &str) -> TestDb {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let base: String = test
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(40)
            .collect();
        let name = format!("t_{base}_{}", &suffix[..8]);
        match std::env::var("MONGODB_URI") {
            Ok(uri) if !uri.is_empty() => TestDb { uri, name, server: None },
            _ => {
                let server = DbServer::start();
                TestDb { uri: server.uri(), name, server: Some(server) }
            }
        }
    }

    /// Drops the test's database (a no-op worth doing only on a shared server).
    pub async fn drop_database(&self) {
        if self.server.is_some() {
            return;
        }
        let client = mongodb::Client::with_uri_str(&self.uri).await.expect("connecting");
        client.database(&self.name).drop().await.expect("dropping the test database");
    }
}
