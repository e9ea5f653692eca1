//! Several real `walkerd` processes sharing one database, and a TCP proxy that misbehaves.
//!
//! Replicas are the binary built by `cargo test --workspace` (target/<profile>/walkerd), each on
//! its own port, restartable on the same port after a SIGKILL, so that clients can keep sending
//! to it as a load balancer would.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The walkerd binary next to the test executable.
pub fn walkerd_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let binary = exe.parent().and_then(|deps| deps.parent()).expect("target dir").join("walkerd");
    assert!(
        binary.is_file(),
        "{} is missing: run the tests with `cargo test --workspace`, which builds it",
        binary.display()
    );
    binary
}

/// A free loopback port (free when asked; replicas bind it right after).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// One walkerd process.
pub struct Replica {
    pub port: u16,
    child: Option<Child>,
    env: Vec<(String, String)>,
}

impl Replica {
    /// Starts a replica on a free port with `env` (database, secret and so on).
    pub fn start(env: Vec<(String, String)>) -> Replica {
        let mut replica = Replica { port: free_port(), child: None, env };
        replica.restart();
        replica
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process (again) on the same port, and waits until it listens.
    pub fn restart(&mut self) {
        self.kill();
        for _ in 0..50 {
            let mut child = Command::new(walkerd_binary())
                .envs(self.env.iter().cloned())
                .env("WALKERD_BIND", format!("127.0.0.1:{}", self.port))
                .env("RUST_LOG", "warn,walkerd_server::startup=info")
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting walkerd");
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            let listening =
                lines.by_ref().map_while(Result::ok).any(|l| l.contains("walkerd listening"));
            if listening {
                std::thread::spawn(move || lines.for_each(drop));
                self.child = Some(child);
                return;
            }
            // The port was still held by the killed process: try again shortly.
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("walkerd did not start on port {}", self.port);
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A TCP proxy to `upstream` that delays every chunk by up to `max_delay` and cuts each
/// connection after a random lifetime below `max_life`.
pub async fn start_proxy(upstream: u16, max_delay: Duration, max_life: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else { continue };
            let life = rand::rng().random_range(max_life / 10..max_life);
            tokio::spawn(async move {
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                // Whichever ends first (a side closes, or the lifetime runs out) drops both
                // connections: the cut the driver must survive.
                tokio::select! {
                    _ = pump(client_read, server_write, max_delay) => {}
                    _ = pump(server_read, client_write, max_delay) => {}
                    _ = tokio::time::sleep(life) => {}
                }
            });
        }
    });
    port
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    max_delay: Duration,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let delay = rand::rng().random_range(Duration::ZERO..=max_delay);
        tokio::time::sleep(delay).await;
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}
