//! Channel proxies driven by client sessions: subscribe, publish and
//! sub_refresh against a real HTTP backend (axum), with raw WebSocket
//! clients. Success, error and disconnect results and failures each give
//! the client Centrifugo's code, and the server keeps serving.

#[path = "support/session_backend.rs"]
mod session_backend;
mod support;

use bytes::Bytes;
use rotor::config::{self, Config};
use rotor::proto::client::{Command, PublishRequest, SubscribeRequest};
use serde_json::{Value, json};
use session_backend::{Answer, Backend, error_code, proxy};
use support::{Event, TestServer, WsClient, assert_healthy, base_config, now, ns, typed};

/// Namespaces `sp` (subscribe proxy, sub_refresh proxy) and `pp` (publish
/// proxy, client subscribe allowed) served by `backend`.
fn channel_config(backend: &Backend) -> Config {
    let mut cfg = base_config();
    cfg.channel.proxy = typed(json!({
        "subscribe": proxy(&backend.url("subscribe")),
        "publish": proxy(&backend.url("publish")),
        "sub_refresh": proxy(&backend.url("sub_refresh")),
    }));
    cfg.channel.namespaces.push(ns("sp", &|o| {
        o.subscribe_proxy_enabled = true;
        o.sub_refresh_proxy_enabled = true;
    }));
    cfg.channel
        .namespaces
        .push(ns("pp", &|o: &mut config::ChannelOptions| {
            o.publish_proxy_enabled = true;
            o.allow_subscribe_for_client = true;
            o.history_size = 10;
            o.history_ttl = config::Duration::from_secs(60);
        }));
    cfg
}

async fn subscribe_data(c: &mut WsClient, channel: &str, data: &str) -> Event {
    let id = c.id();
    c.send(vec![Command {
        id,
        subscribe: Some(SubscribeRequest {
            channel: channel.into(),
            data: Bytes::copy_from_slice(data.as_bytes()),
            ..Default::default()
        }),
        ..Default::default()
    }])
    .await;
    c.next_event().await
}

fn channel_script(path: &str, body: &Value) -> Answer {
    let case = body["channel"].as_str().unwrap_or_default();
    match (path, case) {
        ("/subscribe", "sp:denied") => {
            Answer::Json(json!({"error": {"code": 403, "message": "denied"}}))
        }
        ("/subscribe", "sp:kick") => {
            Answer::Json(json!({"disconnect": {"code": 4503, "reason": "kicked"}}))
        }
        ("/subscribe", "sp:broken") => Answer::Status(502),
        ("/subscribe", "sp:short" | "sp:renew" | "sp:flaky") => {
            Answer::Json(json!({"result": {"expire_at": now() + 1}}))
        }
        ("/subscribe", _) => {
            Answer::Json(json!({"result": {"data": {"seen": body["data"].clone()}}}))
        }
        ("/publish", "pp:denied") => {
            Answer::Json(json!({"error": {"code": 1403, "message": "no"}}))
        }
        ("/publish", "pp:broken") => Answer::Raw("]"),
        ("/publish", _) => {
            Answer::Json(json!({"result": {"data": {"changed": true}, "skip_history": true}}))
        }
        ("/sub_refresh", "sp:renew") => {
            Answer::Json(json!({"result": {"expire_at": now() + 3600}}))
        }
        ("/sub_refresh", "sp:flaky") => Answer::Status(500),
        ("/sub_refresh", _) => Answer::Json(json!({"result": {"expired": true}})),
        _ => Answer::Status(404),
    }
}

#[tokio::test]
async fn subscribe_proxy_decides() {
    let mut backend = Backend::start(channel_script).await;
    let srv = TestServer::start(channel_config(&backend)).await;
    let mut c = srv.connected(false, "42").await;

    let Event::Reply(r) = subscribe_data(&mut c, "sp:room", r#"{"want":1}"#).await else {
        panic!("closed")
    };
    let res = r.subscribe.expect("subscribed");
    assert_eq!(&res.data[..], br#"{"seen":{"want":1}}"#);
    let call = backend.call().await;
    assert_eq!(call.body["channel"], "sp:room");
    assert_eq!(call.body["user"], "42");

    let Event::Reply(r) = subscribe_data(&mut c, "sp:denied", "{}").await else {
        panic!("closed")
    };
    assert_eq!(r.error.expect("error").code, 403);
    let e = subscribe_data(&mut c, "sp:broken", "{}").await;
    assert_eq!(error_code(&e), Some(100));
    let e = subscribe_data(&mut c, "sp:kick", "{}").await;
    assert!(matches!(e, Event::Closed(4503, _)), "{e:?}");
    assert_healthy(&srv).await;
}

#[tokio::test]
async fn sub_refresh_proxy_expired_unsubscribes() {
    let backend = Backend::start(channel_script).await;
    let srv = TestServer::start(channel_config(&backend)).await;
    let mut c = srv.connected(false, "42").await;
    let Event::Reply(r) = subscribe_data(&mut c, "sp:short", "{}").await else {
        panic!("closed")
    };
    // The server refreshes it: the client is not told about the expiry.
    assert!(!r.subscribe.expect("subscribed").expires);
    let p = c.push().await;
    assert_eq!(p.channel, "sp:short");
    assert!(p.unsubscribe.is_some(), "{p:?}");
}

#[tokio::test]
async fn sub_refresh_proxy_extends_or_retries() {
    let mut backend = Backend::start(channel_script).await;
    let srv = TestServer::start(channel_config(&backend)).await;
    let mut c = srv.connected(false, "42").await;
    for channel in ["sp:renew", "sp:flaky"] {
        let Event::Reply(r) = subscribe_data(&mut c, channel, "{}").await else {
            panic!("closed")
        };
        assert!(r.subscribe.is_some(), "{r:?}");
    }
    let mut refreshed = std::collections::BTreeSet::new();
    while refreshed.len() < 2 {
        let call = backend.call().await;
        if call.path == "/sub_refresh" {
            assert_eq!(call.body["user"], "42");
            refreshed.insert(
                call.body["channel"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
    }
    // Both subscriptions are still held: one extended by the backend, the
    // other by a minute after the failed call.
    for channel in ["sp:renew", "sp:flaky"] {
        let r = c.subscribe(channel).await;
        assert_eq!(r.error.map(|e| e.code), Some(105), "{channel}");
    }
}

#[tokio::test]
async fn publish_proxy_replaces_data_and_rejects() {
    let mut backend = Backend::start(channel_script).await;
    let srv = TestServer::start(channel_config(&backend)).await;
    let mut c = srv.connected(false, "42").await;
    assert!(c.subscribe("pp:news").await.subscribe.is_some());

    let r = c.publish("pp:news", r#"{"orig":true}"#).await;
    assert!(r.publish.is_some(), "{r:?}");
    let p = c.publication("pp:news").await;
    assert_eq!(&p.data[..], br#"{"changed":true}"#);
    let call = backend.call().await;
    assert_eq!(call.path, "/publish");
    assert_eq!(call.body["data"], json!({"orig": true}));
    // skip_history: nothing was kept.
    let h = srv
        .node
        .history(
            "pp:news",
            rotor::engine::HistoryFilter {
                since: None,
                limit: -1,
                reverse: false,
            },
            std::time::Duration::ZERO,
        )
        .await
        .expect("history");
    assert!(h.publications.is_empty(), "{h:?}");

    let publish = |channel: &str| PublishRequest {
        channel: channel.into(),
        data: Bytes::from_static(b"{}"),
        ..Default::default()
    };
    let r = c
        .call(Command {
            publish: Some(publish("pp:denied")),
            ..Default::default()
        })
        .await;
    assert_eq!(r.error.expect("error").code, 1403);
    let r = c
        .call(Command {
            publish: Some(publish("pp:broken")),
            ..Default::default()
        })
        .await;
    assert_eq!(r.error.expect("error").code, 100);
    assert_healthy(&srv).await;
}
