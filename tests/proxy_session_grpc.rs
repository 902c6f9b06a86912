//! Connect and RPC proxies over gRPC: the real server calling a real tonic
//! `CentrifugoProxy` backend for raw WebSocket clients. Covers results,
//! error and disconnect results, gRPC failures, and the upgrade request's
//! headers travelling as metadata on every call of the connection.

#[path = "support/session_grpc_backend.rs"]
mod session_grpc_backend;
mod support;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rotor::config::{Config, RpcOptions};
use rotor::proto::client::{Command, ConnectRequest, Reply, RpcRequest};
use rotor::proto::proxy as pp;
use serde_json::json;
use session_grpc_backend::GrpcBackend;
use support::{Event, TestServer, WsClient, assert_healthy, base_config, typed};
use tonic::Status;

fn config(endpoint: &str) -> Config {
    let mut cfg = base_config();
    cfg.client.allowed_origins = vec!["*".into()];
    let p = json!({
        "endpoint": endpoint,
        "timeout": "500ms",
        "http_headers": ["origin"],
    });
    let mut connect = p.clone();
    connect["enabled"] = json!(true);
    cfg.client.proxy = typed(json!({ "connect": connect }));
    cfg.rpc.proxy = typed(p);
    cfg.rpc.without_namespace = RpcOptions {
        proxy_enabled: true,
        proxy_name: "default".into(),
    };
    cfg
}

async fn connect(c: &mut WsClient, data: &str) -> Event {
    let id = c.id();
    c.send(vec![Command {
        id,
        connect: Some(ConnectRequest {
            data: Bytes::copy_from_slice(data.as_bytes()),
            ..Default::default()
        }),
        ..Default::default()
    }])
    .await;
    c.next_event().await
}

/// Calls `method` and waits for its reply (pushes are skipped).
async fn rpc(c: &mut WsClient, method: &str) -> Reply {
    c.call(Command {
        rpc: Some(RpcRequest {
            method: method.into(),
            data: Bytes::from_static(b"{\"q\":1}"),
        }),
        ..Default::default()
    })
    .await
}

fn connect_script(req: pp::ConnectRequest) -> Result<pp::ConnectResponse, Status> {
    match &req.data[..] {
        b"\"deny\"" => Ok(pp::ConnectResponse {
            error: Some(pp::Error {
                code: 4001,
                message: "denied".into(),
                temporary: false,
            }),
            ..Default::default()
        }),
        b"\"kick\"" => Ok(pp::ConnectResponse {
            disconnect: Some(pp::Disconnect {
                code: 4502,
                reason: "kicked".into(),
            }),
            ..Default::default()
        }),
        b"\"fail\"" => Err(Status::unavailable("backend busy")),
        _ => Ok(pp::ConnectResponse {
            result: Some(pp::ConnectResult {
                user: "g1".into(),
                info: Bytes::from_static(b"{\"via\":\"grpc\"}"),
                channels: vec!["chat:grpc".into()],
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

#[tokio::test]
async fn grpc_connect_and_rpc_with_forwarded_headers() {
    let requests: Arc<Mutex<Vec<pp::RpcRequest>>> = Arc::default();
    let seen_rpc = requests.clone();
    let mut backend = GrpcBackend::start(connect_script, move |req| {
        seen_rpc.lock().expect("lock").push(req.clone());
        match req.method.as_str() {
            "fail" => Ok(pp::RpcResponse {
                error: Some(pp::Error {
                    code: 1404,
                    message: "no such thing".into(),
                    temporary: false,
                }),
                ..Default::default()
            }),
            "crash" => Err(Status::internal("crash")),
            _ => Ok(pp::RpcResponse {
                result: Some(pp::RpcResult {
                    data: Bytes::from_static(b"{\"ok\":true}"),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }
    })
    .await;
    let srv = TestServer::start(config(&backend.endpoint())).await;
    let mut c = WsClient::open(&srv.ws_url(), true, Some("https://app.example"))
        .await
        .expect("opens");
    let Event::Reply(r) = connect(&mut c, "{}").await else {
        panic!("closed")
    };
    let res = r.connect.expect("connected");
    assert!(res.subs.contains_key("chat:grpc"), "{res:?}");
    let seen = backend.seen().await;
    assert_eq!(seen.rpc, "connect");
    assert_eq!(
        seen.metadata.get("origin").and_then(|v| v.to_str().ok()),
        Some("https://app.example")
    );

    let r = rpc(&mut c, "echo").await;
    assert_eq!(&r.rpc.expect("rpc").data[..], b"{\"ok\":true}");
    let seen = backend.seen().await;
    assert_eq!(seen.rpc, "rpc");
    // Headers captured at connect are reused for later calls.
    assert!(seen.metadata.get("origin").is_some(), "{seen:?}");
    {
        let reqs = requests.lock().expect("lock");
        let req = reqs.last().expect("rpc request");
        assert_eq!(req.user, "g1");
        assert_eq!(req.client, res.client);
        assert_eq!(req.transport, "websocket");
        assert_eq!(req.protocol, "protobuf");
        assert_eq!(req.encoding, "json");
        assert_eq!(&req.data[..], b"{\"q\":1}");
    }

    let r = rpc(&mut c, "fail").await;
    assert_eq!(r.error.expect("error").code, 1404);
    let r = rpc(&mut c, "crash").await;
    assert_eq!(r.error.expect("error").code, 100);
    assert_healthy(&srv).await;
}

#[tokio::test]
async fn grpc_connect_error_disconnect_and_failure() {
    let backend = GrpcBackend::start(connect_script, |_| Err(Status::unimplemented("rpc"))).await;
    let srv = TestServer::start(config(&backend.endpoint())).await;

    let mut c = srv.client(false).await;
    let Event::Reply(r) = connect(&mut c, "\"deny\"").await else {
        panic!("closed")
    };
    let e = r.error.expect("error");
    assert_eq!((e.code, e.message.as_str()), (4001, "denied"));

    let mut c = srv.client(false).await;
    let e = connect(&mut c, "\"kick\"").await;
    assert!(
        matches!(&e, Event::Closed(4502, r) if r == "kicked"),
        "{e:?}"
    );

    let mut c = srv.client(false).await;
    let Event::Reply(r) = connect(&mut c, "\"fail\"").await else {
        panic!("closed")
    };
    assert_eq!(r.error.expect("error").code, 100);
    assert_healthy(&srv).await;
}
