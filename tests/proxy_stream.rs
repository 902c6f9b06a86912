//! Subscription streams (`subscribe_stream_proxy_enabled`): the real server
//! opening gRPC streams to a real tonic `CentrifugoProxy` backend for raw
//! WebSocket clients. Covers per-client delivery in order, stream teardown
//! on unsubscribe and disconnect, client publications up a bidirectional
//! stream, first-message rejections, the backend ending or failing the
//! stream, and the HTTP-endpoint config check.

#[path = "support/stream_backend.rs"]
mod stream_backend;
mod support;

use rotor::config::Config;
use rotor::proto::client::{Command, Reply, SubscribeRequest, UnsubscribeRequest};
use rotor::proto::proxy as pp;
use serde_json::json;
use stream_backend::{Opened, StreamBackend};
use support::{TestServer, WsClient, assert_healthy, base_config, ns, typed};
use tonic::Status;

fn config(endpoint: &str) -> Config {
    let mut cfg = base_config();
    cfg.channel.proxy = typed(json!({
        "subscribe_stream": { "endpoint": endpoint, "timeout": "5s" },
    }));
    cfg.channel.namespaces.push(ns("st", &|o| {
        o.subscribe_stream_proxy_enabled = true;
        // History would make subscriptions positioned; streams are not.
        o.history_size = 10;
        o.history_ttl = rotor::config::Duration::from_secs(60);
    }));
    cfg.channel.namespaces.push(ns("bi", &|o| {
        o.subscribe_stream_proxy_enabled = true;
        o.subscribe_stream_proxy_bidirectional = true;
    }));
    cfg
}

async fn setup() -> (TestServer, StreamBackend) {
    let backend = StreamBackend::start().await;
    let srv = TestServer::start(config(&backend.endpoint())).await;
    (srv, backend)
}

/// Sends a subscribe, lets the backend see the stream, and returns the
/// command id with the opened stream (unanswered).
async fn open(c: &mut WsClient, backend: &mut StreamBackend, channel: &str) -> (u32, Opened) {
    let id = c.id();
    c.send(vec![Command {
        id,
        subscribe: Some(SubscribeRequest {
            channel: channel.into(),
            ..Default::default()
        }),
        ..Default::default()
    }])
    .await;
    (id, backend.opened().await)
}

/// Subscribes with the backend allowing; returns the stream.
async fn subscribed(c: &mut WsClient, backend: &mut StreamBackend, channel: &str) -> Opened {
    let (id, s) = open(c, backend, channel).await;
    s.accept().await;
    let reply = c.reply_to(id).await;
    assert!(reply.error.is_none(), "subscribe failed: {reply:?}");
    let result = reply.subscribe.expect("subscribe result");
    assert!(!result.positioned && !result.recoverable);
    s
}

async fn unsubscribe(c: &mut WsClient, channel: &str) -> Reply {
    c.call(Command {
        unsubscribe: Some(UnsubscribeRequest {
            channel: channel.into(),
        }),
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn streams_publications_to_one_client_in_order() {
    let (srv, mut backend) = setup().await;
    let mut a = srv.connected(false, "alice").await;
    let sa = subscribed(&mut a, &mut backend, "st:feed").await;
    assert_eq!(sa.request.channel, "st:feed");
    assert_eq!(sa.request.user, "alice");
    assert!(!sa.bidirectional);
    let sender = tokio::spawn(async move {
        for i in 0..1000 {
            sa.publish(&format!("{{\"n\":{i}}}")).await;
        }
        sa
    });
    for i in 0..1000 {
        let p = a.publication("st:feed").await;
        assert_eq!(
            p.data,
            format!("{{\"n\":{i}}}").as_bytes(),
            "publication {i}"
        );
    }
    let sa = sender.await.expect("sender");

    // A second client on the same channel gets its own stream.
    let mut b = srv.connected(true, "bob").await;
    let sb = subscribed(&mut b, &mut backend, "st:feed").await;
    assert_eq!(sb.request.user, "bob");
    sb.publish("{\"for\":\"bob\"}").await;
    assert_eq!(
        b.publication("st:feed").await.data,
        &b"{\"for\":\"bob\"}"[..]
    );
    sa.publish("{\"for\":\"alice\"}").await;
    assert_eq!(
        a.publication("st:feed").await.data,
        &b"{\"for\":\"alice\"}"[..],
        "alice does not see bob's data"
    );
    sb.publish("{\"again\":\"bob\"}").await;
    assert_eq!(
        b.publication("st:feed").await.data,
        &b"{\"again\":\"bob\"}"[..]
    );

    assert_healthy(&srv).await;
    drop(srv);
}

#[tokio::test]
async fn unsubscribe_and_disconnect_close_the_stream() {
    let (srv, mut backend) = setup().await;
    let mut a = srv.connected(false, "alice").await;
    let s1 = subscribed(&mut a, &mut backend, "st:one").await;
    let reply = unsubscribe(&mut a, "st:one").await;
    assert!(reply.error.is_none());
    s1.closed().await;

    // Subscribing again opens a fresh stream.
    let s2 = subscribed(&mut a, &mut backend, "st:one").await;
    s2.publish("{\"v\":2}").await;
    assert_eq!(a.publication("st:one").await.data, &b"{\"v\":2}"[..]);
    let s3 = subscribed(&mut a, &mut backend, "st:two").await;
    drop(a);
    s2.closed().await;
    s3.closed().await;

    let mut c = srv.connected(false, "carol").await;
    let reply = c.subscribe("chat:x").await;
    assert!(reply.error.is_none(), "others keep being served");
    drop(srv);
}

#[tokio::test]
async fn bidirectional_stream_carries_client_publications() {
    let (srv, mut backend) = setup().await;
    let mut a = srv.connected(false, "alice").await;
    let mut s = subscribed(&mut a, &mut backend, "bi:room").await;
    assert!(s.bidirectional);
    assert_eq!(s.request.channel, "bi:room");
    let reply = a.publish("bi:room", "{\"up\":1}").await;
    assert!(reply.error.is_none(), "publish failed: {reply:?}");
    assert!(reply.publish.is_some());
    assert_eq!(s.upstream().await.data, &b"{\"up\":1}"[..]);
    let reply = a.publish("bi:room", "{\"up\":2}").await;
    assert!(reply.error.is_none());
    assert_eq!(s.upstream().await.data, &b"{\"up\":2}"[..]);
    s.publish("{\"down\":1}").await;
    assert_eq!(a.publication("bi:room").await.data, &b"{\"down\":1}"[..]);

    // Without a bidirectional stream of its own, publish is not available.
    let reply = a.publish("bi:other", "{}").await;
    assert_eq!(reply.error.map(|e| e.code), Some(108));
    let _s2 = subscribed(&mut a, &mut backend, "st:uni").await;
    let reply = a.publish("st:uni", "{}").await;
    assert_eq!(reply.error.map(|e| e.code), Some(108));
    drop(srv);
}

#[tokio::test]
async fn first_message_decides_the_subscribe() {
    let (srv, mut backend) = setup().await;
    let mut a = srv.connected(false, "alice").await;

    let (id, s) = open(&mut a, &mut backend, "st:deny").await;
    s.answer(pp::SubscribeResponse {
        error: Some(pp::Error {
            code: 4003,
            message: "no".into(),
            temporary: false,
        }),
        ..Default::default()
    })
    .await;
    let reply = a.reply_to(id).await;
    assert_eq!(reply.error.map(|e| e.code), Some(4003));
    s.closed().await;

    let (id, s) = open(&mut a, &mut backend, "st:fail").await;
    s.send(Err(Status::internal("boom"))).await;
    let reply = a.reply_to(id).await;
    assert_eq!(reply.error.map(|e| e.code), Some(100));

    // Channel info and data from the result reach the client.
    let (id, s) = open(&mut a, &mut backend, "st:data").await;
    s.answer(pp::SubscribeResponse {
        result: Some(pp::SubscribeResult {
            data: bytes::Bytes::from_static(b"{\"hello\":1}"),
            ..Default::default()
        }),
        ..Default::default()
    })
    .await;
    let reply = a.reply_to(id).await;
    assert_eq!(reply.subscribe.expect("result").data, &b"{\"hello\":1}"[..]);

    let (id, s) = open(&mut a, &mut backend, "st:kick").await;
    s.answer(pp::SubscribeResponse {
        disconnect: Some(pp::Disconnect {
            code: 4501,
            reason: "kicked".into(),
        }),
        ..Default::default()
    })
    .await;
    let _ = id;
    assert_eq!(a.closed().await.0, 4501);
    assert_healthy(&srv).await;
    drop(srv);
}

#[tokio::test]
async fn backend_ending_or_failing_the_stream_unsubscribes() {
    let (srv, mut backend) = setup().await;
    let mut a = srv.connected(false, "alice").await;
    let s = subscribed(&mut a, &mut backend, "st:end").await;
    s.publish("{\"last\":1}").await;
    s.finish();
    assert_eq!(a.publication("st:end").await.data, &b"{\"last\":1}"[..]);
    let push = a.push().await;
    assert_eq!(push.channel, "st:end");
    assert_eq!(push.unsubscribe.expect("unsubscribe push").code, 2000);

    let s = subscribed(&mut a, &mut backend, "st:err").await;
    s.send(Err(Status::unavailable("gone"))).await;
    let push = a.push().await;
    assert_eq!(push.channel, "st:err");
    assert_eq!(push.unsubscribe.expect("unsubscribe push").code, 2500);

    // The client may subscribe again (the old subscription is gone).
    let s = subscribed(&mut a, &mut backend, "st:end").await;
    s.publish("{\"again\":1}").await;
    assert_eq!(a.publication("st:end").await.data, &b"{\"again\":1}"[..]);
    drop(srv);
}

#[tokio::test]
async fn silent_backend_times_out_the_subscribe() {
    let mut backend = StreamBackend::start().await;
    let mut cfg = config(&backend.endpoint());
    cfg.channel.proxy.subscribe_stream.timeout = rotor::config::Duration::from_millis(200);
    let srv = TestServer::start(cfg).await;
    let mut a = srv.connected(false, "alice").await;
    let (id, s) = open(&mut a, &mut backend, "st:quiet").await;
    let reply = a.reply_to(id).await;
    assert_eq!(reply.error.map(|e| e.code), Some(100));
    s.closed().await;
    assert!(a.subscribe("chat:after").await.error.is_none());
}

#[tokio::test]
async fn stalled_client_overflows_its_queue() {
    let backend = StreamBackend::start().await;
    let mut cfg = config(&backend.endpoint());
    cfg.client.queue_max_size = 64 * 1024;
    let srv = TestServer::start(cfg).await;
    let mut backend = backend;
    let mut stalled = WsClient::open_with_rcvbuf(&srv.ws_url(), false, 4096).await;
    let reply = stalled.connect(&support::token("stalled", 600)).await;
    assert!(reply.error.is_none());
    let s = subscribed(&mut stalled, &mut backend, "st:flood").await;
    let pad = format!("\"{}\"", "p".repeat(4000));
    let flood = tokio::spawn(async move {
        let mut sent = 0usize;
        while s.offer(&pad).await {
            sent += 1;
            assert!(sent < 100_000, "the stream was never dropped");
        }
        sent
    });
    // The queue bound closes the connection, which drops the stream.
    let sent = tokio::time::timeout(std::time::Duration::from_secs(10), flood)
        .await
        .expect("stream dropped within deadline")
        .expect("flood task");
    assert!(sent > 16, "only {sent} publications before the drop");
    assert_eq!(stalled.closed().await.0, 3008);
    assert_healthy(&srv).await;
}

#[test]
fn http_endpoint_is_a_config_error() {
    let mut cfg = config("http://127.0.0.1:1/stream");
    let err = rotor::config::validate(&cfg).expect_err("http stream proxy");
    assert!(
        err.to_string()
            .contains("channel.proxy.subscribe_stream.endpoint"),
        "{err}"
    );
    cfg.channel.proxy = typed(json!({}));
    cfg.proxies = vec![typed(
        json!({ "name": "web", "endpoint": "http://127.0.0.1:1/x" }),
    )];
    for n in &mut cfg.channel.namespaces {
        if n.name == "st" || n.name == "bi" {
            n.options.subscribe_stream_proxy_name = "web".into();
        }
    }
    let err = rotor::config::validate(&cfg).expect_err("http named stream proxy");
    assert!(
        err.to_string().contains("subscribe_stream_proxy_name"),
        "{err}"
    );
    cfg.proxies = vec![typed(
        json!({ "name": "web", "endpoint": "grpc://127.0.0.1:1" }),
    )];
    rotor::config::validate(&cfg).expect("gRPC stream proxy is valid");
}
