//! Bidirectional emulation over plain HTTP: HTTP-streaming (JSON and
//! Protobuf) and SSE streams, commands posted to `/emulation`, publications
//! from the server API, pings answered through `/emulation`, disconnects as
//! pushes, the registry cleaned when a client goes away, and the status
//! codes of the endpoints.

#[path = "support/emulation.rs"]
mod emulation_client;
#[path = "support/session_backend.rs"]
mod session_backend;
mod support;

use std::time::Duration;

use bytes::{Buf, Bytes};
use emulation_client::{
    EmuClient, Kind, api_publish, connect_cmd, emulate, encode_frame, open_raw,
};
use rotor::config::Config;
use rotor::proto::client::{Command, PublishRequest, RpcRequest};
use serde_json::json;
use session_backend::{Answer, Backend, proxy};
use support::api::{api_config, call};
use support::{PATIENCE, TestServer, typed};

/// [`api_config`] with both emulation transports on.
fn emu_config() -> Config {
    let mut cfg = api_config();
    cfg.http_stream.enabled = true;
    cfg.sse.enabled = true;
    cfg
}

#[tokio::test]
async fn every_kind_connects_subscribes_and_receives() {
    let srv = TestServer::start(emu_config()).await;
    for kind in [Kind::StreamJson, Kind::StreamProtobuf, Kind::Sse] {
        let (mut c, reply) = EmuClient::open(&srv, kind, "42").await;
        let res = reply.connect.expect("connect result");
        assert_eq!(res.node, srv.node.id, "{kind:?}");
        assert_eq!(res.session, res.client, "{kind:?}");
        assert!(res.pong);
        let ch = format!("news{}", kind as u8);
        assert!(c.subscribe(&ch).await.subscribe.is_some(), "{kind:?}");
        api_publish(&srv, &ch, json!({"n": 1})).await;
        let p = c.push().await;
        assert_eq!(p.channel, ch);
        assert_eq!(&p.r#pub.expect("publication").data[..], br#"{"n":1}"#);
        // A client publish goes through /emulation and comes back on the stream.
        let r = c
            .call(Command {
                publish: Some(PublishRequest {
                    channel: ch.clone(),
                    data: Bytes::from_static(br#"{"n":2}"#),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await;
        assert!(r.publish.is_some(), "{kind:?}: {r:?}");
        let p = c.push().await;
        assert_eq!(&p.r#pub.expect("publication").data[..], br#"{"n":2}"#);
    }
    srv.stop().await;
}

#[tokio::test]
async fn stream_responses_carry_centrifugo_headers() {
    let srv = TestServer::start(emu_config()).await;
    let frame = encode_frame(false, &[connect_cmd("1")]);
    let mut resp = open_raw(&srv, Kind::Sse, frame.clone()).await;
    assert_eq!(resp.status(), 200);
    let h = resp.headers();
    assert_eq!(h["content-type"], "text/event-stream; charset=utf-8");
    assert_eq!(
        h["cache-control"],
        "private, no-cache, no-store, must-revalidate, max-age=0"
    );
    assert_eq!(h["pragma"], "no-cache");
    assert_eq!(h["expire"], "0");
    assert_eq!(h["x-accel-buffering"], "no");
    let first = tokio::time::timeout(PATIENCE, resp.chunk())
        .await
        .expect("in time")
        .expect("chunk")
        .expect("data");
    assert!(first.starts_with(b"\r\n"), "{first:?}");
    let resp = open_raw(&srv, Kind::StreamJson, frame).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-accel-buffering"], "no");
    assert_eq!(resp.headers()["pragma"], "no-cache");
    srv.stop().await;
}

#[tokio::test]
async fn sse_accepts_the_connect_command_as_a_post_body() {
    let srv = TestServer::start(emu_config()).await;
    let frame = encode_frame(false, &[connect_cmd("1")]);
    let mut resp = reqwest::Client::new()
        .post(format!("http://{}/connection/sse", srv.addr))
        .body(frame)
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);
    let mut text = Vec::new();
    while !text.windows(2).any(|w| w == b"\n\n") {
        let chunk = tokio::time::timeout(PATIENCE, resp.chunk())
            .await
            .expect("in time")
            .expect("chunk")
            .expect("data");
        text.extend_from_slice(&chunk);
    }
    let text = String::from_utf8(text).expect("utf-8");
    assert!(
        text.starts_with("\r\ndata: {\"id\":1,\"connect\":"),
        "{text}"
    );
    srv.stop().await;
}

#[tokio::test]
async fn bad_stream_requests_are_refused() {
    let srv = TestServer::start(emu_config()).await;
    let http = reqwest::Client::new();
    let base = format!("http://{}", srv.addr);
    let status = |r: reqwest::Response| r.status().as_u16();
    // SSE without, or with a malformed, connect command.
    let r = http.get(format!("{base}/connection/sse")).send().await;
    assert_eq!(status(r.expect("sent")), 400);
    let r = http
        .get(format!("{base}/connection/sse?cf_connect=%7Bnope"))
        .send()
        .await;
    assert_eq!(status(r.expect("sent")), 400);
    let r = http
        .post(format!("{base}/connection/http_stream"))
        .body("not json")
        .send()
        .await;
    assert_eq!(status(r.expect("sent")), 400);
    let r = http
        .get(format!("{base}/connection/http_stream"))
        .send()
        .await;
    assert_eq!(status(r.expect("sent")), 405);
    let r = http
        .post(format!("{base}/connection/http_stream"))
        .body(vec![b' '; 70_000])
        .send()
        .await;
    assert_eq!(status(r.expect("sent")), 413);
    // Preflight.
    let r = http
        .request(
            reqwest::Method::OPTIONS,
            format!("{base}/connection/http_stream"),
        )
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["access-control-allow-methods"], "POST, OPTIONS");
    srv.stop().await;
}

#[tokio::test]
async fn emulation_endpoint_status_codes() {
    let mut cfg = emu_config();
    cfg.emulation.max_request_body_size = 512;
    let srv = TestServer::start(cfg).await;
    let (c, _) = EmuClient::open(&srv, Kind::StreamJson, "1").await;
    let http = reqwest::Client::new();
    let base = format!("http://{}", srv.addr);
    let post = |body: Vec<u8>, ct: &'static str| {
        let req = http
            .post(format!("{base}/emulation"))
            .header("content-type", ct)
            .body(body);
        async move { req.send().await.expect("sent").status().as_u16() }
    };
    let pong = br#"{}"#.to_vec();
    // Malformed bodies.
    assert_eq!(post(b"nope".to_vec(), "application/json").await, 400);
    let obj = json!({"session": c.session, "node": c.node, "data": {"id": 2}});
    assert_eq!(
        post(obj.to_string().into_bytes(), "application/json").await,
        400
    );
    assert_eq!(
        post(vec![0xff, 0xff, 0xff], "application/octet-stream").await,
        400
    );
    // Too large.
    let big = json!({"session": c.session, "node": c.node, "data": "x".repeat(600)});
    assert_eq!(
        post(big.to_string().into_bytes(), "application/json").await,
        413
    );
    // Unknown node; unknown session on this node.
    assert_eq!(
        emulate(&http, &base, false, "other-node", &c.session, pong.clone()).await,
        404
    );
    assert_eq!(
        emulate(
            &http,
            &base,
            false,
            &c.node,
            "no-such-session",
            pong.clone()
        )
        .await,
        204
    );
    // Delivered.
    assert_eq!(
        emulate(&http, &base, false, &c.node, &c.session, pong).await,
        204
    );
    let r = http
        .request(reqwest::Method::OPTIONS, format!("{base}/emulation"))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 204);
    let r = http.get(format!("{base}/emulation")).send().await;
    assert_eq!(r.expect("sent").status(), 405);
    srv.stop().await;
}

#[tokio::test]
async fn origins_are_checked_and_allowed_ones_get_cors_headers() {
    let mut cfg = emu_config();
    cfg.client.allowed_origins = vec!["https://app.example.com".into()];
    let srv = TestServer::start(cfg).await;
    let http = reqwest::Client::new();
    let base = format!("http://{}", srv.addr);
    for path in ["/connection/http_stream", "/connection/sse", "/emulation"] {
        let r = http
            .post(format!("{base}{path}"))
            .header("origin", "https://evil.example.org")
            .body("{}")
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), 403, "{path}");
        let r = http
            .request(reqwest::Method::OPTIONS, format!("{base}{path}"))
            .header("origin", "https://app.example.com")
            .header("access-control-request-headers", "content-type")
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), 204, "{path}");
        let h = r.headers();
        assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
        assert_eq!(h["access-control-allow-credentials"], "true");
        assert_eq!(h["access-control-allow-headers"], "content-type");
        assert_eq!(h["access-control-max-age"], "300");
    }
    let frame = encode_frame(false, &[connect_cmd("1")]);
    let r = http
        .post(format!("{base}/connection/http_stream"))
        .header("origin", "https://app.example.com")
        .body(frame)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    srv.stop().await;
}

#[tokio::test]
async fn pongs_through_emulation_keep_the_connection_alive() {
    let mut cfg = emu_config();
    cfg.client.ping_interval = rotor::config::Duration::from_millis(300);
    cfg.client.pong_timeout = rotor::config::Duration::from_millis(250);
    let srv = TestServer::start(cfg).await;
    for kind in [Kind::StreamProtobuf, Kind::Sse] {
        let (mut c, _) = EmuClient::open(&srv, kind, "1").await;
        let mut pings = 0;
        while pings < 4 {
            let r = c.next().await.expect("stream open");
            if r.id == 0 && r.push.is_none() {
                pings += 1;
                assert_eq!(c.post(&[Command::default()]).await, 204);
            }
            assert!(
                r.push.and_then(|p| p.disconnect).is_none(),
                "{kind:?} disconnected"
            );
        }
        // Without pongs the server gives up (3012) and ends the stream.
        assert_eq!(c.disconnected().await.code, 3012, "{kind:?}");
    }
    srv.stop().await;
}

#[tokio::test]
async fn server_disconnect_arrives_as_a_push_and_ends_the_stream() {
    let srv = TestServer::start(emu_config()).await;
    for kind in [Kind::StreamJson, Kind::StreamProtobuf, Kind::Sse] {
        let user = format!("u{}", kind as u8);
        let (mut c, _) = EmuClient::open(&srv, kind, &user).await;
        call(
            &srv,
            "disconnect",
            json!({"user": user, "disconnect": {"code": 4500, "reason": "bye"}}),
        )
        .await;
        let d = c.disconnected().await;
        assert_eq!((d.code, d.reason.as_str()), (4500, "bye"), "{kind:?}");
        let session = c.session.clone();
        wait_until(|| !srv.node.emulation.contains(&session)).await;
    }
    srv.stop().await;
}

/// Polls `cond` until it holds, failing after [`PATIENCE`].
async fn wait_until(cond: impl Fn() -> bool) {
    tokio::time::timeout(PATIENCE, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("condition within deadline");
}

/// Clients connected to the node (server API `info`; zero is omitted).
async fn num_clients(srv: &TestServer) -> u64 {
    let info = call(srv, "info", json!({})).await;
    info["result"]["nodes"][0]["num_clients"]
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test]
async fn a_client_going_away_ends_its_session_and_registry_entry() {
    let srv = TestServer::start(emu_config()).await;
    for kind in [Kind::StreamJson, Kind::Sse] {
        let (c, _) = EmuClient::open(&srv, kind, "gone").await;
        let session = c.session.clone();
        assert!(srv.node.emulation.contains(&session));
        assert_eq!(num_clients(&srv).await, 1, "{kind:?}");
        drop(c);
        wait_until(|| !srv.node.emulation.contains(&session)).await;
        // The session is gone from the hub too.
        assert_eq!(num_clients(&srv).await, 0, "{kind:?}");
    }
    assert!(srv.node.emulation.is_empty());
    srv.stop().await;
}

#[tokio::test]
async fn shutdown_ends_streams_with_the_shutdown_push() {
    let srv = TestServer::start(emu_config()).await;
    let (mut a, _) = EmuClient::open(&srv, Kind::StreamJson, "1").await;
    let (mut b, _) = EmuClient::open(&srv, Kind::Sse, "2").await;
    let (_, da, db) = tokio::join!(srv.stop(), a.disconnected(), b.disconnected());
    assert_eq!(da.code, 3001);
    assert_eq!(db.code, 3001);
}

/// The stream's bytes for JSON: every reply ends with `\n`.
#[tokio::test]
async fn json_stream_framing_ends_each_reply_with_newline() {
    let srv = TestServer::start(emu_config()).await;
    let frame = encode_frame(false, &[connect_cmd("1")]);
    let mut resp = open_raw(&srv, Kind::StreamJson, frame).await;
    let mut bytes = Vec::new();
    while !bytes.ends_with(b"\n") {
        let chunk = tokio::time::timeout(PATIENCE, resp.chunk())
            .await
            .expect("in time")
            .expect("chunk")
            .expect("data");
        bytes.extend_from_slice(&chunk);
    }
    let mut b = Bytes::from(bytes);
    assert_eq!(b.get_u8(), b'{');
    srv.stop().await;
}

#[tokio::test]
async fn a_full_inbox_refuses_with_503_and_nothing_is_lost() {
    // An RPC held by its backend keeps the connection busy: what is posted
    // meanwhile waits in the inbox.
    let gate = std::sync::Arc::new(tokio::sync::Notify::new());
    let held = gate.clone();
    let mut backend = Backend::start(move |_, _| {
        Answer::Held(held.clone(), json!({"result": {"data": {"ok": true}}}))
    })
    .await;
    let mut cfg = emu_config();
    cfg.rpc.proxy = typed(proxy(&backend.url("rpc")));
    cfg.rpc.proxy.timeout = rotor::config::Duration::from_secs(10);
    cfg.rpc.without_namespace.proxy_enabled = true;
    cfg.rpc.without_namespace.proxy_name = "default".into();
    let srv = TestServer::start(cfg).await;
    let (mut c, _) = EmuClient::open(&srv, Kind::StreamJson, "1").await;
    let rpc = Command {
        id: 2,
        rpc: Some(RpcRequest {
            method: "wait".into(),
            data: Bytes::from_static(b"{}"),
        }),
        ..Default::default()
    };
    assert_eq!(c.post(&[rpc]).await, 204);
    backend.call().await;
    let frames = rotor::node::emulation::INBOX_FRAMES as u32;
    for i in 0..frames {
        let publish = Command {
            id: 3 + i,
            publish: Some(PublishRequest {
                channel: "inbox".into(),
                data: Bytes::from_static(b"{}"),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(c.post(&[publish]).await, 204, "frame {i}");
    }
    assert_eq!(c.post(&[Command::default()]).await, 503);
    gate.notify_one();
    assert!(c.reply_to(2).await.rpc.is_some());
    // Every frame accepted before the refusal is handled, in order.
    let mut expected = 3;
    while expected < 3 + frames {
        let r = c.next().await.expect("stream open");
        if r.id != 0 {
            // Not subscribed: a permission error, but an answer.
            assert_eq!(r.id, expected);
            expected += 1;
        }
    }
    srv.stop().await;
}

#[tokio::test]
async fn preflights_take_no_connection_slot() {
    let mut cfg = emu_config();
    cfg.client.connection_rate_limit = 1;
    let srv = TestServer::start(cfg).await;
    let http = reqwest::Client::new();
    for path in ["/connection/http_stream", "/connection/sse"] {
        let r = http
            .request(
                reqwest::Method::OPTIONS,
                format!("http://{}{path}", srv.addr),
            )
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), 204, "{path}");
    }
    // The one connection a second the limit allows is still there.
    let (c, _) = EmuClient::open(&srv, Kind::StreamJson, "1").await;
    assert!(!c.session.is_empty());
    srv.stop().await;
}
