//! Proxies driven by client sessions: the real server with proxies pointing
//! at a real HTTP backend (axum), and raw WebSocket clients. Each hook is
//! checked for success, error result, disconnect result and failures
//! (backend down, slower than the timeout, malformed body, bad status):
//! the client gets Centrifugo's code and the server keeps serving.

#[path = "support/session_backend.rs"]
mod session_backend;
mod support;

use bytes::Bytes;
use rotor::config::{Config, RpcNamespace, RpcOptions};
use rotor::proto::client::{Command, ConnectRequest, RpcRequest};
use serde_json::{Value, json};
use session_backend::{Answer, Backend, dead_endpoint, error_code, proxy};
use support::{Event, TestServer, WsClient, assert_healthy, base_config, now, typed};

/// A connect proxy at `endpoint`.
fn with_connect(cfg: &mut Config, endpoint: &str) {
    let mut p = proxy(endpoint);
    p["enabled"] = json!(true);
    cfg.client.proxy = typed(json!({ "connect": p }));
}

/// Sends `connect` without a token, with `data`.
async fn connect_with(c: &mut WsClient, data: &str) -> Event {
    let id = c.id();
    c.send(vec![Command {
        id,
        connect: Some(ConnectRequest {
            data: Bytes::copy_from_slice(data.as_bytes()),
            name: "test-sdk".into(),
            ..Default::default()
        }),
        ..Default::default()
    }])
    .await;
    c.next_event().await
}

#[tokio::test]
async fn connect_proxy_sets_credentials_data_and_channels() {
    let mut backend = Backend::start(|_, _| {
        Answer::Json(json!({"result": {
            "user": "56",
            "info": {"name": "Alex"},
            "data": {"welcome": true},
            "channels": ["chat:lobby"],
            "meta": {"tier": "gold"},
        }}))
    })
    .await;
    let mut cfg = base_config();
    with_connect(&mut cfg, &backend.url("connect"));
    let srv = TestServer::start(cfg).await;
    let mut c = srv.client(false).await;
    let Event::Reply(r) = connect_with(&mut c, r#"{"hello":1}"#).await else {
        panic!("closed")
    };
    let res = r.connect.expect("connect reply");
    assert_eq!(&res.data[..], br#"{"welcome":true}"#);
    assert!(res.subs.contains_key("chat:lobby"), "{res:?}");
    assert!(!res.expires);
    let call = backend.call().await;
    assert_eq!(call.path, "/connect");
    assert_eq!(call.body["client"], json!(res.client));
    assert_eq!(call.body["transport"], "websocket");
    assert_eq!(call.body["protocol"], "json");
    assert_eq!(call.body["encoding"], "json");
    assert_eq!(call.body["name"], "test-sdk");
    assert_eq!(call.body["data"], json!({"hello": 1}));
    // The proxy's user is the publisher of what this client publishes.
    let r = c.publish("chat:lobby", r#"{"m":1}"#).await;
    assert!(r.publish.is_some(), "{r:?}");
    let p = c.publication("chat:lobby").await;
    let info = p.info.expect("publisher info");
    assert_eq!(info.user, "56");
    assert_eq!(&info.conn_info[..], br#"{"name":"Alex"}"#);
}

#[tokio::test]
async fn connect_proxy_error_disconnect_and_empty_results() {
    let backend = Backend::start(|_, body| match body["data"]["case"].as_str() {
        Some("error") => Answer::Json(json!({"error": {"code": 1000, "message": "nope"}})),
        Some("both") => Answer::Json(json!({
            "error": {"code": 1000, "message": "nope"},
            "disconnect": {"code": 4501, "reason": "unauthorized"},
        })),
        Some("unknown") => Answer::Json(json!({"result": {"user": "u", "channels": ["nope:x"]}})),
        _ => Answer::Json(json!({})),
    })
    .await;
    let mut cfg = base_config();
    with_connect(&mut cfg, &backend.url("connect"));
    let srv = TestServer::start(cfg).await;

    let mut c = srv.client(false).await;
    let e = connect_with(&mut c, r#"{"case":"error"}"#).await;
    let Event::Reply(r) = e else { panic!("closed") };
    let err = r.error.expect("error reply");
    assert_eq!((err.code, err.message.as_str()), (1000, "nope"));

    let mut c = srv.client(false).await;
    let e = connect_with(&mut c, r#"{"case":"both"}"#).await;
    assert!(
        matches!(&e, Event::Closed(4501, reason) if reason == "unauthorized"),
        "{e:?}"
    );

    // A channel in an unknown namespace: 102.
    let mut c = srv.client(false).await;
    let e = connect_with(&mut c, r#"{"case":"unknown"}"#).await;
    assert_eq!(error_code(&e), Some(102), "{e:?}");

    // No result: no credentials, so no connection.
    let mut c = srv.client(false).await;
    let e = connect_with(&mut c, r#"{"case":"none"}"#).await;
    assert!(matches!(e, Event::Closed(3501, _)), "{e:?}");

    // A token still goes through JWT verification, not the proxy.
    assert_healthy(&srv).await;
}

#[tokio::test]
async fn connect_proxy_failures_are_internal_errors() {
    let slow = Backend::start(|_, _| {
        Answer::Slow(
            std::time::Duration::from_secs(2),
            json!({"result": {"user": "1"}}),
        )
    })
    .await;
    let malformed = Backend::start(|_, _| Answer::Raw("not json")).await;
    let status = Backend::start(|_, _| Answer::Status(500)).await;
    let endpoints = [
        dead_endpoint().await,
        slow.url("connect"),
        malformed.url("connect"),
        status.url("connect"),
    ];
    for endpoint in endpoints {
        let mut cfg = base_config();
        with_connect(&mut cfg, &endpoint);
        let srv = TestServer::start(cfg).await;
        let mut c = srv.client(false).await;
        let e = connect_with(&mut c, "{}").await;
        assert_eq!(error_code(&e), Some(100), "{endpoint}: {e:?}");
        assert_healthy(&srv).await;
        drop(c);
        srv.stop().await;
    }
}

/// A config whose rpc methods without namespace, and in namespace `app`,
/// go to `endpoint`; namespace `off` has the proxy disabled.
fn rpc_config(endpoint: &str) -> Config {
    let mut cfg = base_config();
    cfg.rpc.proxy = typed(proxy(endpoint));
    cfg.rpc.without_namespace = RpcOptions {
        proxy_enabled: true,
        proxy_name: "default".into(),
    };
    cfg.rpc.namespaces = vec![
        RpcNamespace {
            name: "app".into(),
            options: RpcOptions {
                proxy_enabled: true,
                proxy_name: "default".into(),
            },
        },
        RpcNamespace {
            name: "off".into(),
            options: RpcOptions::default(),
        },
    ];
    cfg
}

async fn rpc(c: &mut WsClient, method: &str, data: &str) -> Event {
    let id = c.id();
    c.send(vec![Command {
        id,
        rpc: Some(RpcRequest {
            method: method.into(),
            data: Bytes::copy_from_slice(data.as_bytes()),
        }),
        ..Default::default()
    }])
    .await;
    c.next_event().await
}

#[tokio::test]
async fn rpc_proxy_round_trip_and_errors() {
    let mut backend = Backend::start(|_, body| match body["method"].as_str() {
        Some("fail") => {
            Answer::Json(json!({"error": {"code": 1500, "message": "boom", "temporary": true}}))
        }
        Some("bye") => Answer::Json(json!({"disconnect": {"code": 4000, "reason": "bye"}})),
        Some("slow") => Answer::Slow(std::time::Duration::from_secs(2), json!({})),
        Some("bad") => Answer::Raw("{"),
        _ => Answer::Json(json!({"result": {"data": {"echo": body["data"].clone()}}})),
    })
    .await;
    let srv = TestServer::start(rpc_config(&backend.url("rpc"))).await;
    let mut c = srv.connected(false, "42").await;

    let Event::Reply(r) = rpc(&mut c, "app:echo", r#"{"n":7}"#).await else {
        panic!("closed")
    };
    assert_eq!(&r.rpc.expect("rpc result").data[..], br#"{"echo":{"n":7}}"#);
    let call = backend.call().await;
    assert_eq!(call.body["user"], "42");
    assert_eq!(call.body["method"], "app:echo");

    let e = rpc(&mut c, "nope:x", "{}").await;
    assert_eq!(error_code(&e), Some(104));
    let e = rpc(&mut c, "off:x", "{}").await;
    assert_eq!(error_code(&e), Some(108));
    let Event::Reply(r) = rpc(&mut c, "fail", "{}").await else {
        panic!("closed")
    };
    let err = r.error.expect("error");
    assert_eq!(
        (err.code, err.message.as_str(), err.temporary),
        (1500, "boom", true)
    );
    assert_eq!(error_code(&rpc(&mut c, "slow", "{}").await), Some(100));
    assert_eq!(error_code(&rpc(&mut c, "bad", "{}").await), Some(100));
    // Still served after the failures.
    let Event::Reply(r) = rpc(&mut c, "echo", "1").await else {
        panic!("closed")
    };
    assert!(r.rpc.is_some(), "{r:?}");

    let e = rpc(&mut c, "bye", "{}").await;
    assert!(matches!(e, Event::Closed(4000, _)), "{e:?}");
    assert_healthy(&srv).await;
}

/// While a command waits on the backend, what is queued for the same
/// client is still written: a publication arrives before the backend has
/// answered the client's RPC.
#[tokio::test]
async fn publications_flow_while_an_rpc_waits_on_the_backend() {
    let gate = std::sync::Arc::new(tokio::sync::Notify::new());
    let held = gate.clone();
    let mut backend = Backend::start(move |_, _| {
        Answer::Held(held.clone(), json!({"result": {"data": {"ok": true}}}))
    })
    .await;
    let mut cfg = rpc_config(&backend.url("rpc"));
    cfg.rpc.proxy.timeout = rotor::config::Duration::from_secs(10);
    let srv = TestServer::start(cfg).await;
    let mut c = srv.connected(false, "42").await;
    let channel = "chat:during-rpc";
    c.subscribe(channel).await;
    let id = c.id();
    c.send(vec![Command {
        id,
        rpc: Some(RpcRequest {
            method: "wait".into(),
            data: Bytes::from_static(b"{}"),
        }),
        ..Default::default()
    }])
    .await;
    backend.call().await;
    let exec = rotor::api::Executor::new(srv.node.clone());
    exec.publish(rotor::proto::api::PublishRequest {
        channel: channel.into(),
        data: Bytes::from_static(br#"{"live":1}"#),
        ..Default::default()
    })
    .await
    .expect("publish");
    // Join pushes (chat: pushes join/leave) may come first; the RPC reply
    // cannot, the backend still holds it.
    let publication = loop {
        let Event::Reply(r) = c.next_event().await else {
            panic!("closed")
        };
        assert_ne!(r.id, id, "the RPC reply came before the publication");
        if let Some(p) = r.push.and_then(|p| p.r#pub) {
            break p;
        }
    };
    assert_eq!(&publication.data[..], br#"{"live":1}"#);
    gate.notify_one();
    let Event::Reply(reply) = c.next_event().await else {
        panic!("closed")
    };
    assert_eq!(reply.id, id);
    assert!(reply.rpc.is_some(), "{reply:?}");
    srv.stop().await;
}

#[tokio::test]
async fn rpc_proxy_backend_down() {
    let srv = TestServer::start(rpc_config(&dead_endpoint().await)).await;
    let mut c = srv.connected(false, "42").await;
    assert_eq!(error_code(&rpc(&mut c, "x", "{}").await), Some(100));
    assert_healthy(&srv).await;
}

/// Connect proxy granting `expire_at` = now + 1 s, and a refresh proxy
/// answering with `refresh`.
async fn refresh_setup(refresh: Answer) -> (Backend, TestServer) {
    let backend = Backend::start(move |path, _| match path {
        "/connect" => Answer::Json(json!({"result": {"user": "7", "expire_at": now() + 1}})),
        _ => refresh.clone(),
    })
    .await;
    let mut cfg = base_config();
    let mut connect = proxy(&backend.url("connect"));
    connect["enabled"] = json!(true);
    let mut refresh = proxy(&backend.url("refresh"));
    refresh["enabled"] = json!(true);
    cfg.client.proxy = typed(json!({"connect": connect, "refresh": refresh}));
    let srv = TestServer::start(cfg).await;
    (backend, srv)
}

/// Waits for the backend's refresh call (the connect call comes first).
async fn refresh_call(backend: &mut Backend) -> Value {
    loop {
        let call = backend.call().await;
        if call.path == "/refresh" {
            return call.body;
        }
    }
}

#[tokio::test]
async fn refresh_proxy_extends_the_connection() {
    let (mut backend, srv) =
        refresh_setup(Answer::Json(json!({"result": {"expire_at": now() + 3600}}))).await;
    let mut c = srv.client(false).await;
    let Event::Reply(r) = connect_with(&mut c, "{}").await else {
        panic!("closed")
    };
    // The server refreshes: the client is not told about the expiry.
    assert!(!r.connect.expect("connect").expires);
    let body = refresh_call(&mut backend).await;
    assert_eq!(body["user"], "7");
    let r = c.subscribe("chat:still-here").await;
    assert!(r.subscribe.is_some(), "still connected: {r:?}");
}

#[tokio::test]
async fn refresh_proxy_expired_closes_with_3005() {
    let (mut backend, srv) =
        refresh_setup(Answer::Json(json!({"result": {"expired": true}}))).await;
    let mut c = srv.client(false).await;
    connect_with(&mut c, "{}").await;
    refresh_call(&mut backend).await;
    assert_eq!(c.closed().await.0, 3005);
}

#[tokio::test]
async fn refresh_proxy_without_result_closes_with_3005() {
    let (mut backend, srv) = refresh_setup(Answer::Json(
        json!({"error": {"code": 1000, "message": "ignored"}}),
    ))
    .await;
    let mut c = srv.client(false).await;
    connect_with(&mut c, "{}").await;
    refresh_call(&mut backend).await;
    assert_eq!(c.closed().await.0, 3005);
}

#[tokio::test]
async fn refresh_proxy_failure_extends_the_connection() {
    let (mut backend, srv) = refresh_setup(Answer::Status(503)).await;
    let mut c = srv.client(false).await;
    connect_with(&mut c, "{}").await;
    refresh_call(&mut backend).await;
    // The connection lives on (a minute more): commands are still served.
    let r = c.subscribe("chat:after-refresh").await;
    assert!(r.subscribe.is_some(), "{r:?}");
}

#[tokio::test]
async fn connect_proxy_binary_encoding_and_forwarded_headers() {
    let mut backend = Backend::start(|_, body| match body["b64data"].as_str() {
        // base64 of `bad`: answer with invalid base64.
        Some("YmFk") => Answer::Json(json!({"result": {"user": "1", "b64info": "%%%"}})),
        _ => Answer::Json(json!({"result": {
            "user": "b1",
            // {"w":1}
            "b64data": "eyJ3IjoxfQ==",
        }})),
    })
    .await;
    let mut cfg = base_config();
    cfg.client.allowed_origins = vec!["*".into()];
    cfg.client.proxy = typed(json!({"connect": {
        "enabled": true,
        "endpoint": backend.url("connect"),
        "timeout": "300ms",
        "binary_encoding": true,
        "http_headers": ["origin"],
        "emulated_headers": ["x-emulated"],
    }}));
    let srv = TestServer::start(cfg).await;
    let mut c = WsClient::open(&srv.ws_url(), false, Some("https://site.example"))
        .await
        .expect("opens");
    // A browser SDK's emulated headers travel inside the connect command.
    let headers = [("X-Emulated", "yes"), ("X-Other", "no")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let r = c
        .call(Command {
            connect: Some(ConnectRequest {
                data: Bytes::from_static(br#"{"k":2}"#),
                headers,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    assert_eq!(&r.connect.expect("connect").data[..], br#"{"w":1}"#);
    let call = backend.call().await;
    assert_eq!(call.body["encoding"], "binary");
    assert_eq!(call.body["b64data"], "eyJrIjoyfQ==");
    assert!(call.body.get("data").is_none(), "{:?}", call.body);
    assert_eq!(
        call.headers.get("origin").and_then(|v| v.to_str().ok()),
        Some("https://site.example")
    );
    assert_eq!(
        call.headers.get("x-emulated").and_then(|v| v.to_str().ok()),
        Some("yes")
    );
    assert!(call.headers.get("x-other").is_none());
    assert_eq!(
        call.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );

    // A Protobuf client may send data that is not JSON.
    let mut c = srv.client(true).await;
    let e = connect_with(&mut c, "bad").await;
    assert_eq!(error_code(&e), Some(100), "{e:?}");
}

#[tokio::test]
async fn connection_meta_reaches_proxies_that_include_it() {
    let mut backend = Backend::start(|path, _| match path {
        "/connect" => Answer::Json(json!({"result": {"user": "m1", "meta": {"tier": "gold"}}})),
        _ => Answer::Json(json!({"result": {}})),
    })
    .await;
    let mut cfg = rpc_config(&backend.url("rpc"));
    cfg.rpc.proxy.include_connection_meta = true;
    with_connect(&mut cfg, &backend.url("connect"));
    let srv = TestServer::start(cfg).await;
    let mut c = srv.client(false).await;
    let Event::Reply(r) = connect_with(&mut c, "{}").await else {
        panic!("closed")
    };
    // Meta stays on the server.
    assert!(r.connect.is_some(), "{r:?}");
    let Event::Reply(r) = rpc(&mut c, "m", "{}").await else {
        panic!("closed")
    };
    assert!(r.rpc.is_some(), "{r:?}");
    assert_eq!(backend.call().await.path, "/connect");
    let call = backend.call().await;
    assert_eq!(call.body["meta"], json!({"tier": "gold"}));
    assert_eq!(call.body["user"], "m1");
}
