//! `walkerd --healthcheck`: a liveness probe for container runtimes whose images have no curl.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::startup::StartupError;

/// Asks the walkerd listening on `bind` for `/healthz/live`; Ok when it answers 200.
pub async fn check_live(bind: SocketAddr) -> Result<(), StartupError> {
    // A server bound to every address is asked on the loopback one.
    let target = match bind.ip().is_unspecified() {
        true => SocketAddr::from(([127, 0, 0, 1], bind.port())),
        false => bind,
    };
    let failed = |reason: String| StartupError::Bind {
        address: target.to_string(),
        source: std::io::Error::other(format!("health check failed: {reason}")),
    };
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(target).await?;
        let request = format!("GET /healthz/live HTTP/1.0\r\nHost: {target}\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(Duration::from_secs(3), exchange)
        .await
        .map_err(|_| failed("no answer within 3 s".into()))?
        .map_err(|e| failed(e.to_string()))?;
    match answer.lines().next() {
        Some(status) if status.contains(" 200 ") => Ok(()),
        other => Err(failed(format!("answered {other:?}"))),
    }
}
