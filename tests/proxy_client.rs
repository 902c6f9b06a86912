//! Proxy clients against real HTTP and gRPC backends on port 0: every hook
//! round-trips over both transports with Centrifugo's JSON, headers and
//! metadata are forwarded per the allow-lists, and failures (backend down,
//! slow, malformed, non-200) surface as errors or transformed results.
//! Also: proxy config validation errors name the key.

#[path = "support/proxy_backend.rs"]
mod proxy_backend;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use proxy_backend::{Backend, Reply, grpc_backend, http_backend};
use rotor::config::{ChannelOptions, Config, Namespace, validate};
use rotor::proto::proxy as pb;
use rotor::proxy::{CallContext, Proxies, ProxyClient, ProxyError};
use serde_json::{Value, json};

fn ctx() -> CallContext {
    let mut headers = HeaderMap::new();
    headers.insert("authorization", HeaderValue::from_static("Bearer abc"));
    headers.insert("cookie", HeaderValue::from_static("session=1"));
    headers.insert("x-forward-me", HeaderValue::from_static("yes"));
    CallContext {
        headers,
        ..Default::default()
    }
}

/// A client for one proxy object.
fn client(proxy: Value) -> ProxyClient {
    let cfg: rotor::config::ProxyConfig = typed(proxy);
    cfg.check("test").expect("proxy config");
    ProxyClient::new("test", cfg).expect("proxy client")
}

/// A JSON value typed as the config loader would.
fn typed<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("a well-typed config value")
}

/// The key a type error names when `config` is loaded from a file.
fn load_error_key(config: Value) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.json");
    std::fs::write(&path, config.to_string()).expect("write");
    rotor::config::load_with_env(&path, &[], &|_| None)
        .expect_err("type error")
        .key()
        .to_string()
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn head() -> (String, String, String, String) {
    (
        "c1".into(),
        "websocket".into(),
        "json".into(),
        "json".into(),
    )
}

/// Calls every hook once, checking the request body the backend got and
/// the decoded response.
async fn every_hook(backend: &mut Backend, p: &ProxyClient) {
    let c = ctx();
    let (client, transport, protocol, encoding) = head();
    let h = r#""client":"c1","transport":"websocket","protocol":"json","encoding":"json""#;

    backend.reply_json(
        r#"{"result":{"user":"56","expire_at":1700000000,"info":{"n":1},"b64data":"AQI=",
            "channels":["news"],"subs":{"chat":{"override":{"presence":{"value":true}}}},
            "meta":{"m":true}}}"#,
    );
    let r = p
        .connect(
            &c,
            pb::ConnectRequest {
                client: client.clone(),
                transport: transport.clone(),
                protocol: protocol.clone(),
                encoding: encoding.clone(),
                data: Bytes::from_static(b"{\"a\":1}"),
                name: "js".into(),
                version: "1.0".into(),
                channels: vec!["news".into()],
                ..Default::default()
            },
        )
        .await
        .expect("connect");
    let call = backend.next_call().await;
    assert_eq!(
        call.body,
        format!(r#"{{{h},"data":{{"a":1}},"name":"js","version":"1.0","channels":["news"]}}"#)
    );
    let res = r.result.expect("result");
    assert_eq!(res.user, "56");
    assert_eq!(res.expire_at, 1_700_000_000);
    assert_eq!(&res.info[..], b"{\"n\":1}");
    assert_eq!(res.b64data, "AQI=");
    assert_eq!(&res.meta[..], b"{\"m\":true}");
    let presence = res.subs["chat"]
        .r#override
        .as_ref()
        .and_then(|o| o.presence);
    assert_eq!(presence.map(|b| b.value), Some(true));

    backend.reply_json(r#"{"result":{"expired":false,"expire_at":1800000000}}"#);
    let r = p
        .refresh(
            &c,
            pb::RefreshRequest {
                client: client.clone(),
                transport: transport.clone(),
                protocol: protocol.clone(),
                encoding: encoding.clone(),
                ..Default::default()
            },
        )
        .await
        .expect("refresh");
    // `user` is always present, even empty.
    assert_eq!(
        backend.next_call().await.body,
        format!(r#"{{{h},"user":""}}"#)
    );
    assert_eq!(r.result.expect("result").expire_at, 1_800_000_000);

    backend.reply_json(r#"{"error":{"code":1403,"message":"nope","temporary":true}}"#);
    let r = p
        .subscribe(
            &c,
            pb::SubscribeRequest {
                client: client.clone(),
                transport: transport.clone(),
                protocol: protocol.clone(),
                encoding: encoding.clone(),
                user: "u1".into(),
                channel: "news".into(),
                meta: Bytes::from_static(b"{\"m\":1}"),
                data: Bytes::from_static(b"\"hi\""),
                ..Default::default()
            },
        )
        .await
        .expect("subscribe");
    assert_eq!(
        backend.next_call().await.body,
        format!(r#"{{{h},"user":"u1","channel":"news","meta":{{"m":1}},"data":"hi"}}"#)
    );
    let e = r.error.expect("error");
    assert_eq!(
        (e.code, e.message.as_str(), e.temporary),
        (1403, "nope", true)
    );
    assert!(r.result.is_none());

    backend.reply_json(
        r#"{"result":{"data":{"x":2},"skip_history":true,"tags":{"t":"1"},"idempotency_key":"k","version":3,"version_epoch":"e"}}"#,
    );
    let r = p
        .publish(
            &c,
            pb::PublishRequest {
                client: client.clone(),
                transport: transport.clone(),
                protocol: protocol.clone(),
                encoding: "binary".into(),
                user: "u1".into(),
                channel: "news".into(),
                b64data: "AQID".into(),
                ..Default::default()
            },
        )
        .await
        .expect("publish");
    let h_bin = r#""client":"c1","transport":"websocket","protocol":"json","encoding":"binary""#;
    assert_eq!(
        backend.next_call().await.body,
        format!(r#"{{{h_bin},"user":"u1","channel":"news","b64data":"AQID"}}"#)
    );
    let res = r.result.expect("result");
    assert_eq!(&res.data[..], b"{\"x\":2}");
    assert!(res.skip_history);
    assert_eq!(res.tags["t"], "1");
    assert_eq!((res.version, res.version_epoch.as_str()), (3, "e"));
    assert_eq!(res.idempotency_key, "k");

    backend.reply_json(r#"{"disconnect":{"code":4501,"reason":"go away"}}"#);
    let r = p
        .rpc(
            &c,
            pb::RpcRequest {
                client: client.clone(),
                transport: transport.clone(),
                protocol: protocol.clone(),
                encoding: encoding.clone(),
                user: String::new(),
                method: "ns:getUser".into(),
                data: Bytes::from_static(b"[1,2]"),
                ..Default::default()
            },
        )
        .await
        .expect("rpc");
    assert_eq!(
        backend.next_call().await.body,
        format!(r#"{{{h},"user":"","method":"ns:getUser","data":[1,2]}}"#)
    );
    let d = r.disconnect.expect("disconnect");
    assert_eq!((d.code, d.reason.as_str()), (4501, "go away"));

    backend.reply_json(r#"{"result":{"expire_at":1900000000,"b64info":"AA=="}}"#);
    let r = p
        .sub_refresh(
            &c,
            pb::SubRefreshRequest {
                client,
                transport,
                protocol,
                encoding,
                user: "u1".into(),
                channel: "news".into(),
                ..Default::default()
            },
        )
        .await
        .expect("sub_refresh");
    assert_eq!(
        backend.next_call().await.body,
        format!(r#"{{{h},"user":"u1","channel":"news"}}"#)
    );
    let res = r.result.expect("result");
    assert_eq!(
        (res.expire_at, res.b64info.as_str()),
        (1_900_000_000, "AA==")
    );
}

#[tokio::test]
async fn http_proxy_round_trips_every_hook() {
    let mut b = http_backend().await;
    let p = client(json!({
        "endpoint": b.http_url("/hook"),
        "http_headers": ["Authorization", "X-Forward-Me"],
        "http": {"static_headers": {"X-Api-Key": "secret", "x-forward-me": "static"}},
    }));
    every_hook(&mut b, &p).await;
    // Headers of a call: content type forced, allow-listed client headers
    // (overriding static ones), static headers, nothing else of the client.
    p.rpc(&ctx(), pb::RpcRequest::default()).await.expect("rpc");
    let call = b.next_call().await;
    assert_eq!(call.path, "/hook");
    assert_eq!(
        header(&call.headers, "content-type"),
        Some("application/json")
    );
    assert_eq!(header(&call.headers, "authorization"), Some("Bearer abc"));
    assert_eq!(header(&call.headers, "x-forward-me"), Some("yes"));
    assert_eq!(header(&call.headers, "x-api-key"), Some("secret"));
    assert!(call.headers.get("cookie").is_none());
    // An empty request still carries `user`.
    assert_eq!(call.body, r#"{"user":""}"#);
}

#[tokio::test]
async fn grpc_proxy_round_trips_every_hook() {
    let mut b = grpc_backend().await;
    let p = client(json!({
        "endpoint": b.grpc_url(),
        "http_headers": ["authorization"],
        "grpc": {
            "static_metadata": {"x-static": "s"},
            "credentials_key": "x-credentials",
            "credentials_value": "token-1",
            "compression": true,
        },
    }));
    every_hook(&mut b, &p).await;
    p.connect(&ctx(), pb::ConnectRequest::default())
        .await
        .expect("connect");
    let call = b.next_call().await;
    assert_eq!(call.path, "Connect");
    assert_eq!(header(&call.headers, "authorization"), Some("Bearer abc"));
    assert_eq!(header(&call.headers, "x-static"), Some("s"));
    assert_eq!(header(&call.headers, "x-credentials"), Some("token-1"));
    assert_eq!(header(&call.headers, "grpc-encoding"), Some("gzip"));
    assert!(call.headers.get("cookie").is_none());
    assert!(call.headers.get("x-forward-me").is_none());
    assert_eq!(call.body, "{}");
}

#[tokio::test]
async fn grpc_bare_target_and_backend_error_status() {
    let mut b = grpc_backend().await;
    let p = client(json!({"endpoint": b.addr.to_string()}));
    b.reply(Reply {
        grpc_error: Some((tonic::Code::PermissionDenied, "no".into())),
        ..Reply::default()
    });
    let e = p
        .rpc(&ctx(), pb::RpcRequest::default())
        .await
        .expect_err("error status");
    assert!(
        matches!(
            e,
            ProxyError::Grpc {
                code: tonic::Code::PermissionDenied,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(b.next_call().await.path, "RPC");
}

/// An address nothing listens on.
async fn closed_addr() -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    l.local_addr().expect("addr")
}

#[tokio::test]
async fn backend_down_fails_quickly() {
    let addr = closed_addr().await;
    for endpoint in [format!("http://{addr}/hook"), format!("grpc://{addr}")] {
        let p = client(json!({"endpoint": endpoint, "timeout": "10s"}));
        let start = Instant::now();
        let e = p
            .connect(&ctx(), pb::ConnectRequest::default())
            .await
            .expect_err("backend down");
        assert!(matches!(e, ProxyError::Transport(_)), "{endpoint}: {e:?}");
        assert!(start.elapsed() < Duration::from_secs(3), "{endpoint}");
    }
}

#[tokio::test]
async fn slow_backend_times_out() {
    let http = http_backend().await;
    let grpc = grpc_backend().await;
    let slow = Reply {
        delay: Duration::from_secs(3),
        ..Reply::default()
    };
    http.reply(slow.clone());
    grpc.reply(slow);
    for endpoint in [http.http_url("/"), grpc.grpc_url()] {
        let p = client(json!({"endpoint": endpoint, "timeout": "200ms"}));
        let start = Instant::now();
        let e = p
            .subscribe(&ctx(), pb::SubscribeRequest::default())
            .await
            .expect_err("timeout");
        let elapsed = start.elapsed();
        assert!(
            matches!(
                e,
                ProxyError::Timeout(_)
                    | ProxyError::Grpc {
                        code: tonic::Code::DeadlineExceeded,
                        ..
                    }
            ),
            "{endpoint}: {e:?}"
        );
        assert!(
            elapsed < Duration::from_millis(1500),
            "{endpoint}: {elapsed:?}"
        );
    }
}

#[tokio::test]
async fn http_malformed_and_non_200_answers() {
    let b = http_backend().await;
    let p = client(json!({
        "endpoint": b.http_url("/"),
        "http": {"status_to_code_transforms": [
            {"status_code": 403, "to_error": {"code": 1403, "message": "forbidden", "temporary": true}},
            {"status_code": 401, "to_disconnect": {"code": 4501, "reason": "unauthorized"}},
        ]},
    }));
    for body in ["not json", "", "[1]", r#"{"result":{"user":5}}"#] {
        b.reply_json(body);
        let e = p
            .connect(&ctx(), pb::ConnectRequest::default())
            .await
            .expect_err("malformed");
        assert!(matches!(e, ProxyError::Decode(_)), "{body:?}: {e:?}");
    }
    b.reply(Reply {
        status: 500,
        ..Reply::default()
    });
    let e = p
        .rpc(&ctx(), pb::RpcRequest::default())
        .await
        .expect_err("500");
    assert!(matches!(e, ProxyError::Status(500)), "{e:?}");
    // 201 is not 200 either.
    b.reply(Reply {
        status: 201,
        ..Reply::default()
    });
    assert!(matches!(
        p.rpc(&ctx(), pb::RpcRequest::default()).await,
        Err(ProxyError::Status(201))
    ));

    b.reply(Reply {
        status: 403,
        body: "denied".into(),
        ..Reply::default()
    });
    let r = p
        .subscribe(&ctx(), pb::SubscribeRequest::default())
        .await
        .expect("transformed");
    let e = r.error.expect("error");
    assert_eq!(
        (e.code, e.message.as_str(), e.temporary),
        (1403, "forbidden", true)
    );
    b.reply(Reply {
        status: 401,
        ..Reply::default()
    });
    let r = p
        .connect(&ctx(), pb::ConnectRequest::default())
        .await
        .expect("transformed");
    let d = r.disconnect.expect("disconnect");
    assert_eq!((d.code, d.reason.as_str()), (4501, "unauthorized"));
}

#[tokio::test]
async fn http_non_json_data_cannot_be_sent() {
    let b = http_backend().await;
    let p = client(json!({"endpoint": b.http_url("/")}));
    let e = p
        .publish(
            &ctx(),
            pb::PublishRequest {
                data: Bytes::from_static(&[0xff, 0x00]),
                ..Default::default()
            },
        )
        .await
        .expect_err("binary data in JSON");
    assert!(matches!(e, ProxyError::Encode(_)), "{e:?}");
}

fn with_proxies(proxies: Value, change: impl FnOnce(&mut Config)) -> Config {
    let mut cfg = Config {
        proxies: typed(proxies),
        ..Default::default()
    };
    change(&mut cfg);
    cfg
}

fn invalid_key(cfg: &Config) -> String {
    let e = validate(cfg).expect_err("invalid config");
    e.key().to_string()
}

#[tokio::test]
async fn proxies_from_config_pick_by_name() {
    let b = http_backend().await;
    let url = b.http_url("/");
    let cfg = with_proxies(
        json!([{"name": "p1", "endpoint": url, "binary_encoding": true}]),
        |c| {
            c.client.proxy = typed(json!({
                "connect": {"enabled": true, "endpoint": url},
                "refresh": {"enabled": false, "endpoint": url},
            }));
            c.channel.proxy = typed(json!({"subscribe": {"endpoint": url, "timeout": "3s"}}));
            c.rpc.proxy = typed(json!({"endpoint": "grpc://127.0.0.1:1"}));
        },
    );
    validate(&cfg).expect("valid");
    let p = Proxies::from_config(&cfg).expect("proxies");
    assert!(p.connect().is_some());
    assert!(p.refresh().is_none());
    let s = p.subscribe("").expect("default subscribe");
    assert_eq!((s.name(), s.timeout()), ("default", Duration::from_secs(3)));
    assert!(p.subscribe("default").is_some());
    assert!(p.publish("").is_none());
    assert!(p.sub_refresh("").is_none());
    assert!(p.rpc("default").is_some());
    let named = p.publish("p1").expect("named");
    assert!(named.binary_encoding());
    assert_eq!(named.name(), "p1");
    assert!(p.rpc("p1").is_some());
    assert!(p.rpc("p2").is_none());
}

#[test]
fn config_validation_names_the_key() {
    let key = |proxies: Value| invalid_key(&with_proxies(proxies, |_| {}));
    assert_eq!(
        key(json!([{"name": "a", "endpoint": "http://x"}])),
        "proxies[0].name"
    );
    assert_eq!(
        key(json!([{"name": "default", "endpoint": "http://x"}])),
        "proxies[0].name"
    );
    assert_eq!(
        key(
            json!([{"name": "p1", "endpoint": "http://x"}, {"name": "p1", "endpoint": "http://y"}])
        ),
        "proxies[1].name"
    );
    assert_eq!(key(json!([{"name": "p1"}])), "proxies[0].endpoint");
    assert_eq!(
        key(json!([{"name": "p1", "endpoint": "http://x", "timeout": "0s"}])),
        "proxies[0].timeout"
    );
    assert_eq!(
        key(json!([{"name": "p1", "endpoint": "http://x",
                    "http": {"status_to_code_transforms": [{"status_code": 500}]}}])),
        "proxies[0].http.status_to_code_transforms[0]"
    );
    assert_eq!(
        load_error_key(json!({"proxies": [
            {"name": "p1", "endpoint": "http://x", "http_headers": "Authorization"}
        ]})),
        "proxies[0].http_headers"
    );

    let cfg = with_proxies(json!([]), |c| {
        c.client.proxy = typed(json!({"connect": {"enabled": true}}));
    });
    assert_eq!(invalid_key(&cfg), "client.proxy.connect.endpoint");

    let cfg = with_proxies(json!([]), |c| {
        c.channel.namespaces.push(Namespace {
            name: "ns".into(),
            options: ChannelOptions {
                subscribe_proxy_enabled: true,
                subscribe_proxy_name: "missing".into(),
                ..Default::default()
            },
        });
    });
    assert!(invalid_key(&cfg).ends_with("subscribe_proxy_name"));

    let cfg = with_proxies(json!([]), |c| {
        c.channel.without_namespace.publish_proxy_enabled = true;
    });
    assert_eq!(invalid_key(&cfg), "channel.proxy.publish.endpoint");

    let cfg = with_proxies(json!([]), |c| {
        c.rpc.without_namespace.proxy_enabled = true;
        c.rpc.without_namespace.proxy_name = "nope".into();
    });
    assert_eq!(invalid_key(&cfg), "rpc.without_namespace.proxy_name");

    assert_eq!(
        load_error_key(
            json!({"rpc": {"proxy": {"endpoint": "http://x", "grpc": {"compression": "yes"}}}})
        ),
        "rpc.proxy.grpc.compression"
    );
}

#[tokio::test]
async fn node_start_fails_on_bad_proxy_config() {
    let cfg = with_proxies(json!([{"name": "p1", "endpoint": "http://[bad"}]), |_| {});
    let e = rotor::node::Node::new(cfg).await.expect_err("bad endpoint");
    assert!(e.starts_with("proxies[0].endpoint"), "{e}");
}

#[test]
fn proxies_from_env_vars() {
    let env = |name: &str| -> Option<String> {
        match name {
            "CENTRIFUGO_CLIENT_PROXY_CONNECT_ENABLED" => Some("true".into()),
            "CENTRIFUGO_CLIENT_PROXY_CONNECT_ENDPOINT" => Some("http://127.0.0.1:1/connect".into()),
            "CENTRIFUGO_CHANNEL_PROXY_SUBSCRIBE_ENDPOINT" => Some("grpc://127.0.0.1:1".into()),
            "CENTRIFUGO_CHANNEL_PROXY_SUBSCRIBE_TIMEOUT" => Some("2s".into()),
            "CENTRIFUGO_PROXIES" => {
                Some(r#"[{"name":"p-1","endpoint":"http://127.0.0.1:1/p1"}]"#.into())
            }
            "CENTRIFUGO_PROXIES_P_1_TIMEOUT" => Some("300ms".into()),
            _ => None,
        }
    };
    let loaded =
        rotor::config::load_with_env(std::path::Path::new(""), &[], &env).expect("config loads");
    let p = Proxies::from_config(&loaded.config).expect("proxies");
    assert!(p.connect().is_some());
    assert_eq!(
        p.subscribe("").expect("subscribe").timeout(),
        Duration::from_secs(2)
    );
    assert_eq!(
        p.rpc("p-1").expect("named").timeout(),
        Duration::from_millis(300)
    );
}
