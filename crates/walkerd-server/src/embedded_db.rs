//! The embedded database: `secantusd-rs` as a child process, for running walkerd with no setup.
//!
//! When `MONGODB_URI` is not set, walkerd starts `secantusd-rs` (a MongoDB-compatible server,
//! GPL-2.0, kept out of walkerd's binary by running it as a separate process) on a free loopback
//! port, with its data in `WALKERD_DATA_DIR/db`, kept across restarts. It stops with walkerd.
//! walkerd never installs it: `scripts/run.sh` does, when it is missing.
//!
//! A walkerd killed with SIGKILL cannot stop its child; the child's pid is kept in
//! `WALKERD_DATA_DIR/db.pid`, and the next start stops that leftover before starting anew, since
//! two servers cannot share one data directory.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BINARY: &str = "secantusd-rs";

#[derive(Debug, Error)]
pub enum EmbeddedDbError {
    #[error(
        "cannot start the embedded database {binary}: {reason}; install it with \
             scripts/install-db.sh, or set MONGODB_URI"
    )]
    Start { binary: PathBuf, reason: String },
    #[error("cannot use the data directory {path}: {reason}")]
    DataDir { path: PathBuf, reason: String },
}

/// The running child process.
pub struct EmbeddedDb {
    child: Child,
    uri: String,
    pid_file: PathBuf,
}

impl EmbeddedDb {
    pub async fn start(
        data_dir: &Path,
        binary: Option<&Path>,
    ) -> Result<EmbeddedDb, EmbeddedDbError> {
        let dir_error = |e: std::io::Error| EmbeddedDbError::DataDir {
            path: data_dir.to_owned(),
            reason: e.to_string(),
        };
        std::fs::create_dir_all(data_dir.join("db")).map_err(dir_error)?;
        let pid_file = data_dir.join("db.pid");
        stop_leftover(&pid_file).await;

        let binary = binary.map(Path::to_owned).unwrap_or_else(find_binary);
        let start_error =
            |reason: String| EmbeddedDbError::Start { binary: binary.clone(), reason };
        let mut child = Command::new(&binary)
            .args(["--host", "127.0.0.1", "--port", "0", "--log-level", "WARNING"])
            .arg("--storage-path")
            .arg(data_dir.join("db"))
            .args(["--log-file-max", "32MB", "--cache-size", "512M"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| start_error(e.to_string()))?;
        if let Some(pid) = child.id() {
            std::fs::write(&pid_file, pid.to_string()).map_err(dir_error)?;
        }

        let stdout = child.stdout.take().expect("stdout is piped");
        let port = tokio::time::timeout(Duration::from_secs(60), read_port(stdout))
            .await
            .map_err(|_| start_error("it did not report a port within 60 s".into()))?
            .ok_or_else(|| start_error("it exited before listening".into()))?;
        let uri = format!("mongodb://127.0.0.1:{port}/?directConnection=true");
        Ok(EmbeddedDb { child, uri, pid_file })
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Asks the server to stop (SIGTERM), and kills it if it has not within five seconds.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status().await;
        }
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

/// Reads stdout until the "listening on HOST:PORT" line; keeps draining it afterwards.
async fn read_port(stdout: tokio::process::ChildStdout) -> Option<u16> {
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines.next_line().await.ok()? {
        if line.contains("listening on") {
            let port = line.trim().rsplit(':').next()?.parse().ok()?;
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Some(port);
        }
    }
    None
}

/// Stops a server left running by a walkerd that was killed.
async fn stop_leftover(pid_file: &Path) {
    let Some(pid) = std::fs::read_to_string(pid_file).ok() else { return };
    let pid = pid.trim();
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if name.trim() == BINARY {
        tracing::warn!(pid, "stopping an embedded database left running by an earlier walkerd");
        let _ = Command::new("kill").arg("-KILL").arg(pid).status().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = std::fs::remove_file(pid_file);
}

/// `secantusd-rs` on `PATH`, else in `~/.cargo/bin`, else the bare name (which fails clearly).
fn find_binary() -> PathBuf {
    let search = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>());
    let cargo_bin = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin"));
    search
        .unwrap_or_default()
        .into_iter()
        .chain(cargo_bin)
        .map(|dir| dir.join(BINARY))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| PathBuf::from(BINARY))
}
