//! Test harness: a real server on port 0 and a raw WebSocket client that
//! speaks the protocol frame by frame (JSON or Protobuf).

#![allow(dead_code)]

pub mod api;
pub mod binary;
pub mod grpc_raw;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use rotor::config::{self, Config};
use rotor::node::Node;
use rotor::proto::client::{Command, Push, Reply};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// HMAC secret of [`base_config`].
pub const SECRET: &str = "test-secret";

/// How long any single wait may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// A namespace named `name` with the options `f` sets.
/// A JSON value typed as the config loader would (proxy objects, sections).
#[allow(dead_code)]
pub fn typed<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).expect("a well-typed config value")
}

pub fn ns(name: &str, f: &dyn Fn(&mut config::ChannelOptions)) -> config::Namespace {
    let mut o = config::ChannelOptions::default();
    f(&mut o);
    config::Namespace {
        name: name.into(),
        options: o,
    }
}

/// A config with an HMAC key and a few namespaces used across tests.
pub fn base_config() -> Config {
    let mut cfg = Config::default();
    cfg.client.token.hmac_secret_key = SECRET.into();
    cfg.health.enabled = true;
    cfg.channel.without_namespace = config::ChannelOptions {
        allow_subscribe_for_client: true,
        allow_publish_for_subscriber: true,
        ..Default::default()
    };
    cfg.channel.namespaces = vec![
        ns("chat", &|o| {
            o.allow_subscribe_for_client = true;
            o.allow_publish_for_subscriber = true;
            o.allow_presence_for_subscriber = true;
            o.allow_history_for_subscriber = true;
            o.presence = true;
            o.join_leave = true;
            o.force_push_join_leave = true;
            o.history_size = 100;
            o.history_ttl = config::Duration::from_secs(300);
            o.force_recovery = true;
        }),
        ns("closed", &|_| {}),
        ns("strict", &|o| {
            o.allow_subscribe_for_client = true;
            o.channel_regex = "^[a-z]+$".into();
        }),
        ns("dialog", &|o| o.allow_user_limited_channels = true),
        ns("secret", &|o| o.allow_subscribe_for_client = true),
    ];
    cfg
}

/// A running server.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The gRPC API listener (served when `grpc_api.enabled`).
    pub grpc_addr: SocketAddr,
    /// The uni gRPC listener, bound where the config puts it (port 0: one
    /// the system picks), when `uni_grpc.enabled`.
    pub uni_grpc_addr: Option<SocketAddr>,
    pub node: Arc<Node>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), String>>>,
}

impl TestServer {
    /// Starts a server with `cfg` on 127.0.0.1:0.
    pub async fn start(cfg: Config) -> Self {
        // Uni gRPC where the config puts it; HTTP and the gRPC API on port 0.
        let uni_grpc = rotor::server::Listeners::bind_uni_grpc(&cfg).expect("bind uni_grpc");
        let uni_grpc_addr = uni_grpc.as_ref().map(|l| l.local_addr().expect("addr"));
        let node = Node::new(cfg).await.expect("node starts");
        let port0 = || rotor::server::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let listener = port0();
        let addr = listener.local_addr().expect("addr");
        let grpc = port0();
        let grpc_addr = grpc.local_addr().expect("addr");
        let listeners = rotor::server::Listeners {
            external: listener,
            internal: None,
            grpc_api: Some(grpc),
            uni_grpc,
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let handle = tokio::spawn(rotor::server::run(node.clone(), listeners, async move {
            let _ = rx.await;
        }));
        Self {
            addr,
            grpc_addr,
            uni_grpc_addr,
            node,
            stop: Some(tx),
            handle: Some(handle),
        }
    }

    /// The uni gRPC port (the config must enable it).
    pub fn uni_grpc_port(&self) -> u16 {
        self.uni_grpc_addr.expect("uni_grpc is enabled").port()
    }

    /// WebSocket URL.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/connection/websocket", self.addr)
    }

    /// Connects a raw client.
    pub async fn client(&self, protobuf: bool) -> WsClient {
        WsClient::open(&self.ws_url(), protobuf, None)
            .await
            .expect("connects")
    }

    /// Connects a raw client and completes `connect` with a token for `user`.
    pub async fn connected(&self, protobuf: bool, user: &str) -> WsClient {
        let mut c = self.client(protobuf).await;
        let reply = c.connect(&token(user, 3600)).await;
        assert!(reply.error.is_none(), "connect failed: {reply:?}");
        c
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), h).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// HS256 token with `sub`=`user` expiring in `ttl` seconds (plus extra claims).
pub fn token(user: &str, ttl: i64) -> String {
    token_with(serde_json::json!({ "sub": user, "exp": now() + ttl }))
}

/// HS256 token with the given claims, signed with [`SECRET`].
pub fn token_with(claims: serde_json::Value) -> String {
    sign(SECRET, claims)
}

/// HS256 token signed with `secret`.
pub fn sign(secret: &str, claims: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("signs")
}

/// Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What a read produced.
#[derive(Debug)]
pub enum Event {
    Reply(Reply),
    Closed(u16, String),
}

/// A raw protocol client.
pub struct WsClient {
    ws: WebSocketStream<TcpStream>,
    pub protobuf: bool,
    next_id: u32,
    pending: std::collections::VecDeque<Reply>,
}

impl WsClient {
    /// Opens a WebSocket, optionally with an Origin header.
    pub async fn open(url: &str, protobuf: bool, origin: Option<&str>) -> Result<Self, String> {
        let mut req = url.into_client_request().map_err(|e| e.to_string())?;
        if protobuf {
            req.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_static("centrifuge-protobuf"),
            );
        }
        if let Some(o) = origin {
            req.headers_mut().insert(
                "Origin",
                HeaderValue::from_str(o).map_err(|e| e.to_string())?,
            );
        }
        let host = req
            .uri()
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let stream = TcpStream::connect(host).await.map_err(|e| e.to_string())?;
        let (ws, _resp) = tokio_tungstenite::client_async(req, stream)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Self {
            ws,
            protobuf,
            next_id: 0,
            pending: Default::default(),
        })
    }

    /// Sends one frame as is.
    pub async fn send_raw(&mut self, frame: Message) {
        self.ws.send(frame).await.expect("send");
    }

    /// Sends commands as one frame; returns the id of the last one.
    pub async fn send(&mut self, cmds: Vec<Command>) {
        let frame = if self.protobuf {
            let mut buf = Vec::new();
            for c in &cmds {
                c.encode_length_delimited(&mut buf).expect("encode");
            }
            Message::Binary(buf.into())
        } else {
            let lines: Vec<String> = cmds
                .iter()
                .map(|c| serde_json::to_string(c).expect("json"))
                .collect();
            Message::Text(lines.join("\n").into())
        };
        self.send_raw(frame).await;
    }

    /// Next command id.
    pub fn id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    /// Sends one command (id assigned) and waits for its reply.
    pub async fn call(&mut self, mut cmd: Command) -> Reply {
        let id = self.id();
        cmd.id = id;
        self.send(vec![cmd]).await;
        self.reply_to(id).await
    }

    /// Sends `connect` with a token.
    pub async fn connect_cmd(&mut self, token: &str) -> Reply {
        let req = rotor::proto::client::ConnectRequest {
            token: token.into(),
            ..Default::default()
        };
        self.call(Command {
            connect: Some(req),
            ..Default::default()
        })
        .await
    }

    /// Alias of [`WsClient::connect_cmd`].
    pub async fn connect(&mut self, token: &str) -> Reply {
        self.connect_cmd(token).await
    }

    /// Subscribes (plain request).
    pub async fn subscribe(&mut self, channel: &str) -> Reply {
        self.subscribe_with(rotor::proto::client::SubscribeRequest {
            channel: channel.into(),
            ..Default::default()
        })
        .await
    }

    /// Subscribes with a full request.
    pub async fn subscribe_with(&mut self, req: rotor::proto::client::SubscribeRequest) -> Reply {
        self.call(Command {
            subscribe: Some(req),
            ..Default::default()
        })
        .await
    }

    /// Publishes JSON data.
    pub async fn publish(&mut self, channel: &str, data: &str) -> Reply {
        let req = rotor::proto::client::PublishRequest {
            channel: channel.into(),
            data: bytes::Bytes::copy_from_slice(data.as_bytes()),
            ..Default::default()
        };
        self.call(Command {
            publish: Some(req),
            ..Default::default()
        })
        .await
    }

    /// Reads the next event (reply, push, ping or close).
    pub async fn next_event(&mut self) -> Event {
        if let Some(r) = self.pending.pop_front() {
            return Event::Reply(r);
        }
        loop {
            let msg = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("event within deadline");
            match msg {
                Some(Ok(Message::Text(t))) => {
                    for line in t.as_str().split('\n').filter(|l| !l.is_empty()) {
                        self.pending
                            .push_back(serde_json::from_str(line).expect("reply json"));
                    }
                }
                Some(Ok(Message::Binary(b))) => {
                    let mut rest: &[u8] = &b;
                    while !rest.is_empty() {
                        self.pending.push_back(
                            Reply::decode_length_delimited(&mut rest).expect("reply proto"),
                        );
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((1005, String::new()));
                    return Event::Closed(code, reason);
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Event::Closed(1006, e.to_string()),
                None => return Event::Closed(1006, "eof".into()),
            }
            if let Some(r) = self.pending.pop_front() {
                return Event::Reply(r);
            }
        }
    }

    /// Reads the next frame and returns everything it carried, in order
    /// (for checks of how messages are joined into frames).
    pub async fn frame(&mut self) -> Vec<Reply> {
        assert!(self.pending.is_empty(), "an earlier frame was not read out");
        match self.next_event().await {
            Event::Reply(first) => std::iter::once(first)
                .chain(self.pending.drain(..))
                .collect(),
            Event::Closed(code, reason) => panic!("closed with {code} {reason:?}"),
        }
    }

    /// Waits for the reply with `id`; pushes read meanwhile are kept.
    pub async fn reply_to(&mut self, id: u32) -> Reply {
        let mut skipped = Vec::new();
        let out = loop {
            match self.next_event().await {
                Event::Reply(r) if r.id == id => break r,
                Event::Reply(r) => skipped.push(r),
                Event::Closed(code, reason) => {
                    panic!("closed with {code} {reason:?} while waiting for reply {id}")
                }
            }
        };
        for r in skipped.into_iter().rev() {
            self.pending.push_front(r);
        }
        out
    }

    /// Waits for the next push (skipping pings).
    pub async fn push(&mut self) -> Push {
        loop {
            match self.next_event().await {
                Event::Reply(r) => {
                    if let Some(p) = r.push {
                        return p;
                    }
                }
                Event::Closed(code, reason) => {
                    panic!("closed with {code} {reason:?} while waiting for a push")
                }
            }
        }
    }

    /// Waits for the next publication push of `channel`, skipping others.
    pub async fn publication(&mut self, channel: &str) -> rotor::proto::client::Publication {
        loop {
            let p = self.push().await;
            if p.channel == channel
                && let Some(publication) = p.r#pub
            {
                return publication;
            }
        }
    }

    /// Waits for the next join push of `channel` from `user`.
    pub async fn join_of(&mut self, channel: &str, user: &str) {
        loop {
            let p = self.push().await;
            if p.channel == channel && p.join.and_then(|j| j.info).is_some_and(|i| i.user == user) {
                return;
            }
        }
    }

    /// Waits for the connection to close; returns the close code and reason.
    pub async fn closed(&mut self) -> (u16, String) {
        loop {
            if let Event::Closed(code, reason) = self.next_event().await {
                return (code, reason);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers for the bad-input and limits suites.

pub mod keys;

/// Unique suffix for channel names within one test process.
pub fn unique(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}{n}")
}

/// RS256 token signed with [`keys::RSA_PRIVATE_PEM`].
pub fn sign_rs256(claims: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(keys::RSA_PRIVATE_PEM.as_bytes())
            .expect("rsa key"),
    )
    .expect("signs")
}

/// Asserts the server still serves: a fresh JSON client connects with
/// `token`, subscribes to a new channel (no namespace), publishes into it
/// and receives the publication.
pub async fn assert_serves(srv: &TestServer, token: &str) {
    let ch = unique("alive-");
    let mut c = srv.client(false).await;
    let r = c.connect(token).await;
    assert!(r.error.is_none(), "fresh connect failed: {r:?}");
    let r = c.subscribe(&ch).await;
    assert!(r.subscribe.is_some(), "fresh subscribe failed: {r:?}");
    let r = c.publish(&ch, r#"{"alive":true}"#).await;
    assert!(r.publish.is_some(), "fresh publish failed: {r:?}");
    let p = c.publication(&ch).await;
    assert_eq!(&p.data[..], br#"{"alive":true}"#);
}

/// [`assert_serves`] with an HS256 token of [`base_config`].
pub async fn assert_healthy(srv: &TestServer) {
    assert_serves(srv, &token("healthy", 3600)).await;
}

impl WsClient {
    /// Opens a WebSocket over a socket whose receive buffer is set to
    /// `rcvbuf` bytes before connecting (a client that stalls early).
    pub async fn open_with_rcvbuf(url: &str, protobuf: bool, rcvbuf: u32) -> Self {
        let mut req = url.into_client_request().expect("request");
        if protobuf {
            req.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_static("centrifuge-protobuf"),
            );
        }
        let host = req
            .uri()
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let addr: SocketAddr = host.parse().expect("socket addr");
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(rcvbuf).expect("SO_RCVBUF");
        let stream = socket.connect(addr).await.expect("tcp connect");
        let (ws, _resp) = tokio_tungstenite::client_async(req, stream)
            .await
            .expect("handshake");
        Self {
            ws,
            protobuf,
            next_id: 0,
            pending: Default::default(),
        }
    }
}

/// Sends raw bytes (an HTTP request) and returns the response's status and
/// everything read until the server closes or `PATIENCE` runs out.
pub async fn raw_http(addr: SocketAddr, request: &[u8]) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await.expect("tcp connect");
    s.write_all(request).await.expect("write request");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let status_known = buf.windows(4).any(|w| w == b"\r\n\r\n");
        let read = tokio::time::timeout_at(deadline, s.read(&mut chunk)).await;
        match read {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) if status_known => break,
            Err(_) => panic!("no HTTP response within deadline"),
        }
        // An upgrade answer keeps the connection open: the head is enough.
        if buf.starts_with(b"HTTP/1.1 101") && buf.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    (status, buf)
}

/// A WebSocket upgrade request for the default handler, with the given extra
/// header lines (raw bytes, so non-ASCII values go out as is); returns the
/// HTTP status.
pub async fn upgrade_status(addr: SocketAddr, extra_headers: &[&[u8]]) -> u16 {
    let mut req = format!(
        "GET /connection/websocket HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    )
    .into_bytes();
    for h in extra_headers {
        req.extend_from_slice(h);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"\r\n");
    raw_http(addr, &req).await.0
}

/// GET `path` and return status and body text.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let (status, buf) = raw_http(addr, req.as_bytes()).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
