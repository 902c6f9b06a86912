//! Unidirectional transports end to end: uni WebSocket, uni SSE and uni
//! HTTP-streaming against the real server, with plain clients (a
//! tokio-tungstenite WebSocket, raw streaming HTTP readers) and the server
//! API driving publications, server-side subscriptions and disconnects.

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rotor::config::{self, Config};
use serde_json::{Value, json};
use support::api::{api_config, call};
use support::{PATIENCE, TestServer, now, raw_http, token, token_with, typed, unique};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// The API config with the three uni transports on and pings every 2 s.
fn uni_config() -> Config {
    let mut cfg = api_config();
    cfg.uni_websocket.enabled = true;
    cfg.uni_sse.enabled = true;
    cfg.uni_http_stream.enabled = true;
    cfg.client.ping_interval = config::Duration::from_secs(2);
    cfg.client.pong_timeout = config::Duration::from_secs(1);
    cfg
}

/// What a uni client read.
#[derive(Debug)]
enum Got {
    Push(Value),
    Closed(u16, String),
}

/// A uni WebSocket client: every text message is one push.
struct UniWs {
    ws: WebSocketStream<TcpStream>,
}

impl UniWs {
    async fn open(srv: &TestServer, query: &str) -> Self {
        let url = format!("ws://{}/connection/uni_websocket{query}", srv.addr);
        let stream = TcpStream::connect(srv.addr).await.expect("tcp");
        let (ws, _) = tokio_tungstenite::client_async(url, stream)
            .await
            .expect("uni websocket upgrade");
        Self { ws }
    }

    async fn connected(srv: &TestServer, req: Value) -> (Self, Value) {
        let mut c = Self::open(srv, "").await;
        c.ws.send(Message::Text(req.to_string().into()))
            .await
            .expect("send connect request");
        let first = c.push().await;
        assert!(first["connect"]["client"].is_string(), "{first}");
        (c, first)
    }

    async fn next(&mut self) -> Got {
        loop {
            let msg = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("uni websocket event in time");
            match msg {
                Some(Ok(Message::Text(t))) => {
                    return Got::Push(serde_json::from_str(&t).expect("push is JSON"));
                }
                Some(Ok(Message::Close(f))) => {
                    return match f {
                        Some(f) => Got::Closed(f.code.into(), f.reason.to_string()),
                        None => Got::Closed(1005, String::new()),
                    };
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Got::Closed(1006, e.to_string()),
                None => return Got::Closed(1006, String::new()),
            }
        }
    }

    /// The next push that is not a ping.
    async fn push(&mut self) -> Value {
        loop {
            match self.next().await {
                // Pings and joins (chat pushes join/leave) are skipped.
                Got::Push(p) if p == json!({}) || p.get("join").is_some() => continue,
                Got::Push(p) => return p,
                Got::Closed(code, reason) => panic!("closed {code} {reason}"),
            }
        }
    }
}

/// A streaming HTTP response read push by push (SSE `data:` events or
/// `\n`-terminated lines).
struct UniHttp {
    resp: reqwest::Response,
    buf: Vec<u8>,
    sse: bool,
}

impl UniHttp {
    async fn open(srv: &TestServer, sse: bool, method: &str, query: &str, body: &str) -> Self {
        let path = if sse { "uni_sse" } else { "uni_http_stream" };
        let url = format!("http://{}/connection/{path}{query}", srv.addr);
        let resp = reqwest::Client::new()
            .request(method.parse().expect("method"), url)
            .body(body.to_string())
            .send()
            .await
            .expect("request sent");
        assert_eq!(resp.status().as_u16(), 200);
        Self {
            resp,
            buf: Vec::new(),
            sse,
        }
    }

    /// The next push, or `None` when the body ended.
    async fn next(&mut self) -> Option<Value> {
        let sep: &[u8] = if self.sse { b"\n\n" } else { b"\n" };
        loop {
            if self.sse && self.buf.starts_with(b"\r\n") {
                self.buf.drain(..2);
            }
            if let Some(i) = self.buf.windows(sep.len()).position(|w| w == sep) {
                let item: Vec<u8> = self.buf.drain(..i + sep.len()).collect();
                let text = String::from_utf8(item[..i].to_vec()).expect("utf-8");
                let json = if self.sse {
                    text.strip_prefix("data: ")
                        .expect("an SSE data line")
                        .to_string()
                } else {
                    text
                };
                return Some(serde_json::from_str(&json).expect("push is JSON"));
            }
            let chunk = tokio::time::timeout(PATIENCE, self.resp.chunk())
                .await
                .expect("stream data in time")
                .ok()??;
            self.buf.extend_from_slice(&chunk);
        }
    }

    async fn push(&mut self) -> Value {
        loop {
            match self.next().await {
                Some(p) if p == json!({}) || p.get("join").is_some() => continue,
                Some(p) => return p,
                None => panic!("stream ended"),
            }
        }
    }
}

fn publish_data(p: &Value) -> &Value {
    assert!(p.get("pub").is_some(), "not a publication: {p}");
    &p["pub"]["data"]
}

#[tokio::test]
async fn uni_websocket_full_lifecycle() {
    let srv = TestServer::start(uni_config()).await;
    let user = unique("uws-");
    let ch = unique("chat:uws-");
    let tok = token_with(json!({"sub": user, "exp": now() + 3600, "channels": [ch]}));
    let (mut c, first) = UniWs::connected(&srv, json!({"token": tok})).await;
    let connect = &first["connect"];
    assert_eq!(connect["ping"], 2);
    assert!(
        connect.get("pong").is_none(),
        "uni expects no pong: {connect}"
    );
    assert_eq!(connect["session"], connect["client"]);
    assert!(connect["subs"][&ch].is_object(), "{connect}");

    call(&srv, "publish", json!({"channel": ch, "data": {"n": 1}})).await;
    let p = c.push().await;
    assert_eq!(p["channel"], ch.as_str());
    assert_eq!(publish_data(&p), &json!({"n": 1}));

    let news = unique("news-");
    call(&srv, "subscribe", json!({"user": user, "channel": news})).await;
    let p = c.push().await;
    assert_eq!(p["channel"], news.as_str());
    assert!(p["subscribe"].is_object(), "{p}");

    // A ping push arrives within the interval; no pong is expected, so the
    // connection stays after it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        assert!(tokio::time::Instant::now() < deadline, "no ping push");
        if let Got::Push(p) = c.next().await
            && p == json!({})
        {
            break;
        }
    }
    call(
        &srv,
        "publish",
        json!({"channel": news, "data": "after ping"}),
    )
    .await;
    assert_eq!(publish_data(&c.push().await), "after ping");

    call(&srv, "disconnect", json!({"user": user})).await;
    let p = c.push().await;
    assert_eq!(p["disconnect"]["code"], 3503, "{p}");
    match c.next().await {
        Got::Closed(code, _) => assert_eq!(code, 3503),
        other => panic!("expected the close frame, got {other:?}"),
    }
    support::assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn uni_websocket_connect_request_forms() {
    let srv = TestServer::start(uni_config()).await;
    // JSON null is an empty request (anonymous needs to be allowed).
    let mut cfg = uni_config();
    cfg.client.allow_anonymous_connect_without_token = true;
    let anon = TestServer::start(cfg).await;
    let mut c = UniWs::open(&anon, "").await;
    c.ws.send(Message::Text("null".into())).await.expect("send");
    assert!(c.push().await["connect"]["client"].is_string());
    anon.stop().await;

    // cf_connect query parameter.
    let q = json!({"token": token("q", 3600)}).to_string();
    let enc: String = q.bytes().map(|b| format!("%{b:02X}")).collect();
    let mut c = UniWs::open(&srv, &format!("?cf_connect={enc}")).await;
    assert!(c.push().await["connect"]["client"].is_string());

    // Invalid first message → 3501.
    let mut c = UniWs::open(&srv, "").await;
    c.ws.send(Message::Text("{nope".into()))
        .await
        .expect("send");
    match c.next().await {
        Got::Closed(code, _) => assert_eq!(code, 3501),
        other => panic!("expected close 3501, got {other:?}"),
    }

    // Invalid cf_connect → HTTP 400 before any upgrade.
    let req = format!(
        "GET /connection/uni_websocket?cf_connect=%7Bnope HTTP/1.1\r\nHost: {}\r\n\
         Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        srv.addr
    );
    assert_eq!(raw_http(srv.addr, req.as_bytes()).await.0, 400);
    support::assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn uni_websocket_connect_errors_become_disconnects() {
    let srv = TestServer::start(uni_config()).await;
    let cases = [
        (json!({"token": "not-a-jwt"}), 3500),
        // An expired token (109 on a bidirectional connection) → 3005.
        (json!({"token": token("exp", -100)}), 3005),
        // No credentials at all → 3501.
        (json!({}), 3501),
    ];
    for (req, want) in cases {
        let mut c = UniWs::open(&srv, "").await;
        c.ws.send(Message::Text(req.to_string().into()))
            .await
            .expect("send");
        match c.next().await {
            Got::Push(p) => {
                assert_eq!(p["disconnect"]["code"], want, "{req}: {p}");
                match c.next().await {
                    Got::Closed(code, _) => assert_eq!(u32::from(code), want),
                    other => panic!("{req}: expected close, got {other:?}"),
                }
            }
            Got::Closed(code, r) => panic!("{req}: closed {code} {r} without a push"),
        }
    }
    support::assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn uni_websocket_requested_subs() {
    let srv = TestServer::start(uni_config()).await;
    let open = unique("chat:req-");
    let closed = unique("closed:req-");
    let tok = token("requester", 3600);
    let mut subs = serde_json::Map::new();
    subs.insert(open.clone(), json!({}));
    subs.insert(closed.clone(), json!({}));
    let (mut c, first) = UniWs::connected(&srv, json!({"token": tok, "subs": subs})).await;
    let subs = &first["connect"]["subs"];
    assert!(subs[&open].is_object(), "{first}");
    assert!(subs.get(&closed).is_none(), "{first}");
    call(&srv, "publish", json!({"channel": open, "data": 7})).await;
    assert_eq!(publish_data(&c.push().await), 7);

    // A channel in an unknown namespace → 3501.
    let mut c = UniWs::open(&srv, "").await;
    let req = json!({"token": tok, "subs": {"nosuchns:x": {}}});
    c.ws.send(Message::Text(req.to_string().into()))
        .await
        .expect("send");
    assert_eq!(c.push().await["disconnect"]["code"], 3501);
    srv.stop().await;
}

#[tokio::test]
async fn uni_sse_and_http_stream_deliver_pushes() {
    let srv = TestServer::start(uni_config()).await;
    for (sse, method) in [(true, "GET"), (true, "POST"), (false, "POST")] {
        let user = unique("stream-");
        let ch = unique("chat:stream-");
        let tok = token_with(json!({"sub": user, "exp": now() + 3600, "channels": [ch]}));
        let req = json!({"token": tok}).to_string();
        let mut c = if method == "GET" {
            let enc: String = req.bytes().map(|b| format!("%{b:02X}")).collect();
            UniHttp::open(&srv, sse, "GET", &format!("?cf_connect={enc}"), "").await
        } else {
            UniHttp::open(&srv, sse, "POST", "", &req).await
        };
        let first = c.push().await;
        assert!(first["connect"]["client"].is_string(), "{first}");
        call(
            &srv,
            "publish",
            json!({"channel": ch, "data": {"sse": sse}}),
        )
        .await;
        let p = c.push().await;
        assert_eq!(publish_data(&p), &json!({"sse": sse}));
        // A ping arrives as an empty push.
        let mut pinged = false;
        for _ in 0..3 {
            if c.next().await == Some(json!({})) {
                pinged = true;
                break;
            }
        }
        assert!(pinged, "no ping push");
        call(&srv, "disconnect", json!({"user": user})).await;
        assert_eq!(c.push().await["disconnect"]["code"], 3503);
        assert_eq!(c.next().await, None, "the body ends after the disconnect");
    }
    support::assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn uni_stream_bad_requests() {
    let srv = TestServer::start(uni_config()).await;
    let host = srv.addr;
    let bad_sse = format!(
        "GET /connection/uni_sse?cf_connect=%7Bnope HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(raw_http(host, bad_sse.as_bytes()).await.0, 400);
    let post = |path: &str, body: &str| {
        format!(
            "POST /connection/{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    assert_eq!(
        raw_http(host, post("uni_http_stream", "").as_bytes())
            .await
            .0,
        400
    );
    assert_eq!(
        raw_http(host, post("uni_http_stream", "[1]").as_bytes())
            .await
            .0,
        400
    );
    assert_eq!(raw_http(host, post("uni_sse", "{").as_bytes()).await.0, 400);
    let big = format!("{{\"data\":\"{}\"}}", "x".repeat(70_000));
    assert_eq!(
        raw_http(host, post("uni_http_stream", &big).as_bytes())
            .await
            .0,
        413
    );
    let options = format!(
        "OPTIONS /connection/uni_http_stream HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(raw_http(host, options.as_bytes()).await.0, 204);
    let get = format!(
        "GET /connection/uni_http_stream HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(raw_http(host, get.as_bytes()).await.0, 405);
    let origin = format!(
        "GET /connection/uni_sse HTTP/1.1\r\nHost: {host}\r\nOrigin: https://evil.example\r\n\
         Connection: close\r\n\r\n"
    );
    assert_eq!(raw_http(host, origin.as_bytes()).await.0, 403);

    // An invalid token: the stream carries the mapped disconnect, then ends.
    let mut c = UniHttp::open(&srv, false, "POST", "", r#"{"token":"bad"}"#).await;
    assert_eq!(c.push().await["disconnect"]["code"], 3500);
    assert_eq!(c.next().await, None);
    support::assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn connect_codes_map_to_http_responses_when_enabled() {
    let mut cfg = uni_config();
    cfg.uni_sse.connect_code_to_http_response = typed(json!({
        "enabled": true,
        "transforms": [{"code": 3500, "to": {"status_code": 401, "body": "go away"}}]
    }));
    let srv = TestServer::start(cfg).await;
    let r = support::api::request(
        &srv,
        "POST",
        "/connection/uni_sse",
        r#"{"token":"bad"}"#,
        &[],
    )
    .await;
    assert_eq!((r.status, r.body.as_str()), (401, "go away"));
    // Unmapped codes are 500.
    let r = support::api::request(&srv, "POST", "/connection/uni_sse", "{}", &[]).await;
    assert_eq!(r.status, 500);
    srv.stop().await;
}

#[tokio::test]
async fn uni_websocket_answers_native_pings_and_can_skip_the_disconnect_push() {
    let mut cfg = uni_config();
    cfg.uni_websocket.disable_disconnect_push = true;
    cfg.uni_websocket.join_push_messages = true;
    let srv = TestServer::start(cfg).await;
    let user = unique("quiet-");
    let (mut c, _) = UniWs::connected(&srv, json!({"token": token(&user, 3600)})).await;
    // Two ping pushes: at least one native ping (every 2 s, pong within
    // 1 s) went by and was answered, and the connection stays.
    let mut pings = 0;
    while pings < 2 {
        match c.next().await {
            Got::Push(p) if p == json!({}) => pings += 1,
            Got::Push(_) => {}
            Got::Closed(code, reason) => panic!("closed {code} {reason}"),
        }
    }
    call(&srv, "disconnect", json!({"user": user})).await;
    match c.next().await {
        Got::Closed(code, _) => assert_eq!(code, 3503),
        other => panic!("expected the close frame without a push, got {other:?}"),
    }
    srv.stop().await;
}

#[tokio::test]
async fn uni_websocket_drops_a_client_that_does_not_answer_pings() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let srv = TestServer::start(uni_config()).await;
    let mut s = TcpStream::connect(srv.addr).await.expect("tcp");
    let head = format!(
        "GET /connection/uni_websocket HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        srv.addr
    );
    s.write_all(head.as_bytes()).await.expect("upgrade");
    // One masked text frame (zero mask) with the ConnectRequest; then this
    // client never reads, so it never answers a ping.
    let body = json!({"token": token("mute", 3600)}).to_string();
    let len = u16::try_from(body.len()).expect("short body");
    let mut frame = vec![0x81, 0x80 | 126];
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(body.as_bytes());
    s.write_all(&frame).await.expect("connect frame");
    tokio::time::sleep(Duration::from_millis(3500)).await;
    // The server gave up on it (ping at 2 s, pong due 1 s later): reading
    // what it wrote ends in EOF.
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(_)) => continue,
            Err(_) => panic!("the connection stayed open without pongs"),
        }
    }
    support::assert_healthy(&srv).await;
    srv.stop().await;
}
