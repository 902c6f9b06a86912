//! Listeners nobody can hold open for free: the real binary, started with a
//! lowered open-file limit, closes sockets that never send a request, send
//! headers a line at a time, stop mid request line, idle after a request,
//! or declare a 10 GB body and send one byte — each within its
//! `middleware.listener` timeout — on the HTTP port and on the gRPC port;
//! more idle sockets than it has descriptors for never keep a real client
//! from connecting and receiving a publication, and running out of
//! descriptors is logged, not fatal.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::binary::{self, Binary};
use support::{SECRET, WsClient, token};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const API_KEY: &str = "listener-key";
/// The test config's header-read timeout (seconds).
const HEADER_TIMEOUT: u64 = 2;
/// The test config's body-read timeout (seconds).
const BODY_TIMEOUT: u64 = 3;
/// Slack on top of a timeout for a loaded CI machine.
const SLACK: Duration = Duration::from_secs(4);

fn config(grpc_port: u16, extra: Value) -> Value {
    let mut cfg = json!({
        "client": {"token": {"hmac_secret_key": SECRET}},
        "channel": {"without_namespace": {"allow_subscribe_for_client": true}},
        "http_api": {"key": API_KEY},
        "grpc_api": {"enabled": true, "port": grpc_port, "key": API_KEY},
        "health": {"enabled": true},
        "http_stream": {"enabled": true},
        "middleware": {"listener": {
            "header_read_timeout": format!("{HEADER_TIMEOUT}s"),
            "body_read_timeout": format!("{BODY_TIMEOUT}s"),
            "idle_timeout": "3s"
        }}
    });
    if let (Some(base), Some(more)) = (
        cfg["middleware"]["listener"].as_object_mut(),
        extra.as_object(),
    ) {
        for (k, v) in more {
            base.insert(k.clone(), v.clone());
        }
    }
    cfg
}

async fn start(dir: &Path, nofile: u32, extra: Value) -> (Binary, u16) {
    let grpc_port = binary::free_port();
    let bin = binary::start_with(dir, "rotor", &config(grpc_port, extra), Some(nofile)).await;
    (bin, grpc_port)
}

/// Reads until the server closes the socket (EOF or reset); the time it
/// took, or None if it was still open at `within`.
async fn closed_within(sock: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        let left = within.checked_sub(started.elapsed())?;
        match tokio::time::timeout(left, sock.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

async fn open_idle(port: u16, n: usize) -> Vec<TcpStream> {
    let mut socks = Vec::with_capacity(n);
    for _ in 0..n {
        socks.push(
            TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect"),
        );
    }
    socks
}

/// A socket to `port` that has sent `data`.
async fn sending(port: u16, data: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    s.write_all(data).await.expect("write");
    s
}

/// A real client connects, subscribes and receives a publication sent
/// through the HTTP API.
async fn client_is_served(port: u16) {
    let url = format!("ws://127.0.0.1:{port}/connection/websocket");
    let deadline = Instant::now() + Duration::from_secs(10);
    // The first attempts may land while the listener evicts idle sockets.
    let mut client = loop {
        match WsClient::open(&url, false, None).await {
            Ok(c) => break c,
            Err(e) => {
                assert!(Instant::now() < deadline, "client never connected: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let reply = client.connect(&token("alice", 3600)).await;
    assert!(reply.error.is_none(), "connect: {reply:?}");
    let reply = client.subscribe("news").await;
    assert!(reply.error.is_none(), "subscribe: {reply:?}");
    let out = binary::api(
        port,
        API_KEY,
        "publish",
        json!({"channel": "news", "data": {"n": 1}}),
    )
    .await;
    assert!(out.get("error").is_none(), "{out}");
    let publication = client.publication("news").await;
    assert_eq!(publication.data, br#"{"n":1}"#.to_vec());
}

#[tokio::test]
async fn idle_sockets_beyond_the_file_limit_never_lock_out_clients() {
    let dir = tempfile::tempdir().expect("dir");
    // 256 descriptors: the pending cap defaults to 128.
    let (bin, grpc_port) = start(dir.path(), 256, json!({})).await;
    let mut idle = open_idle(bin.port, 400).await;
    let mut grpc_idle = open_idle(grpc_port, 5).await;
    client_is_served(bin.port).await;
    let within = Duration::from_secs(HEADER_TIMEOUT) + SLACK;
    for (i, sock) in idle.iter_mut().chain(grpc_idle.iter_mut()).enumerate() {
        assert!(
            closed_within(sock, within).await.is_some(),
            "idle socket {i} still open after {within:?}"
        );
    }
    client_is_served(bin.port).await;
}

#[tokio::test]
async fn slow_and_stalled_requests_are_closed_within_their_timeouts() {
    let dir = tempfile::tempdir().expect("dir");
    let (bin, grpc_port) = start(dir.path(), 256, json!({})).await;
    let port = bin.port;
    let header_limit = Duration::from_secs(HEADER_TIMEOUT) + SLACK;
    let body_limit = Duration::from_secs(BODY_TIMEOUT) + SLACK;

    // Slowloris: a header line every 500 ms, forever.
    let slowloris = tokio::spawn(async move {
        let mut s = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        let started = Instant::now();
        let mut buf = [0u8; 256];
        let mut n = 0u32;
        while started.elapsed() < header_limit {
            match tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
                Ok(Ok(_)) => {}
                Err(_) => {
                    n += 1;
                    let line = format!("X-Slow-{n}: {n}\r\n");
                    if s.write_all(line.as_bytes()).await.is_err() {
                        return Some(started.elapsed());
                    }
                }
            }
        }
        None
    });

    // A request line that never ends.
    let mut partial = sending(port, b"GET /connec").await;

    // A keep-alive connection left idle after one request.
    let mut keep_alive = sending(port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut head = [0u8; 12];
    keep_alive.read_exact(&mut head).await.expect("response");
    assert_eq!(&head, b"HTTP/1.1 200");

    // 10 GB declared, one byte sent, on routes that read bodies and on
    // routes that do not.
    let mut huge = Vec::new();
    for (path, extra) in [
        ("/emulation", ""),
        ("/connection/http_stream", ""),
        ("/api/publish", "X-API-Key: listener-key\r\n"),
        ("/api/publish", ""),
        ("/connection/websocket", ""),
        ("/nowhere", ""),
    ] {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\n{extra}Content-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n{{"
        );
        huge.push((path, sending(port, req.as_bytes()).await));
    }

    // gRPC port: a socket that sends the HTTP/2 preface and stops.
    let mut preface = sending(grpc_port, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;

    client_is_served(port).await;

    assert!(
        closed_within(&mut partial, header_limit).await.is_some(),
        "partial request line still open"
    );
    assert!(
        closed_within(&mut keep_alive, header_limit).await.is_some(),
        "idle keep-alive still open"
    );
    assert!(
        closed_within(&mut preface, header_limit).await.is_some(),
        "gRPC preface-only socket still open"
    );
    for (path, mut s) in huge {
        assert!(
            closed_within(&mut s, body_limit).await.is_some(),
            "10 GB body on {path} still open"
        );
    }
    assert!(
        slowloris.await.expect("task").is_some(),
        "slowloris connection still open after {header_limit:?}"
    );
    client_is_served(port).await;
}

#[tokio::test]
async fn running_out_of_descriptors_is_logged_and_survived() {
    let dir = tempfile::tempdir().expect("dir");
    // A cap above the descriptor limit: accept itself runs out.
    let (bin, _grpc) = start(dir.path(), 64, json!({"max_pending_connections": 10_000})).await;
    let _idle = open_idle(bin.port, 120).await;
    client_is_served(bin.port).await;
    let log = std::fs::read_to_string(dir.path().join("rotor.log")).expect("log");
    assert!(
        log.contains("out of file descriptors"),
        "no accept warning in the log:\n{log}"
    );
}
