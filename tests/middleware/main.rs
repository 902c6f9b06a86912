//! The middleware stacks over real sockets: small axum routers behind
//! `stack::api_http`, a tonic-health server behind `stack::grpc`, the
//! WebSocket endpoint behind `stack::client` (via the real server), and
//! OTLP export from the real binary. Time-dependent HTTP tests run on a
//! paused clock.

#[path = "../support/mod.rs"]
mod support;

mod grpc;
mod http;
mod otel;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use rotor::config::{Config, RateLimitRule};
use rotor::middleware::stack;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub(crate) const HOUR: Duration = Duration::from_secs(3600);

/// A parsed HTTP/1.1 response.
pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) head: String,
    pub(crate) body: String,
}

impl Resp {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Serves `app` behind the HTTP API stack on 127.0.0.1:0.
pub(crate) async fn serve_api(app: Router, cfg: &Config) -> SocketAddr {
    let app = stack::api_http(app, cfg);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let svc = app.into_make_service_with_connect_info::<SocketAddr>();
        let _ = axum::serve(listener, svc).await;
    });
    addr
}

/// One request on a fresh connection (`Connection: close` unless the
/// caller sets `connection`). A 101 answer is returned at its head.
pub(crate) async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: test\r\n");
    if !body.is_empty() {
        head.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("connection"))
    {
        head.push_str("connection: close\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.expect("write head");
    // A refusal may come (and the server may close) before the whole body.
    let _ = s.write_all(body).await;
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => panic!("no response head in {:?}", String::from_utf8_lossy(&raw)),
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    let mut resp = Resp {
        status,
        head,
        body: String::new(),
    };
    if status == 101 {
        return resp;
    }
    let mut rest = raw[head_end + 4..].to_vec();
    match resp
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        Some(len) => {
            while rest.len() < len {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => rest.extend_from_slice(&buf[..n]),
                }
            }
        }
        None => {
            let _ = s.read_to_end(&mut rest).await;
        }
    }
    resp.body = String::from_utf8_lossy(&rest).into_owned();
    resp
}

pub(crate) async fn get_(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Resp {
    request(addr, "GET", path, headers, b"").await
}

pub(crate) fn rule(rate: u64, interval: Duration, burst: u64) -> RateLimitRule {
    RateLimitRule {
        rate,
        interval: rotor::config::Duration(interval),
        burst,
    }
}

pub(crate) fn ok_router() -> Router {
    Router::new()
        .route("/api/info", get(|| async { "ok" }))
        .route(
            "/api/publish",
            post(|body: String| async move { body.len().to_string() }),
        )
}
