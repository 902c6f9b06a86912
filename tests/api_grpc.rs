//! gRPC API adapter: API key metadata, error modes, gzip, reflection v1 and
//! v1alpha, health (`spec/server-api.md` §2.8). A tonic client built from
//! our own generated code talks to a server on port 0.

mod support;

use futures_util::StreamExt;
use rotor::proto::api::{BatchRequest, Command, InfoRequest, RpcRequest};
use support::TestServer;
use support::api::{api_config, grpc_channel, grpc_client, rate_limited_config, with_key};
use tonic::Code;
use tonic::codec::CompressionEncoding;

#[tokio::test]
async fn api_key_is_required_in_metadata() {
    let srv = TestServer::start(api_config()).await;
    let mut c = grpc_client(&srv).await;
    let err = c.info(InfoRequest {}).await.expect_err("no key");
    assert_eq!(
        (err.code(), err.message()),
        (Code::Unauthenticated, "unauthenticated")
    );
    let mut req = tonic::Request::new(InfoRequest {});
    req.metadata_mut()
        .insert("authorization", "apikey wrong".parse().expect("md"));
    let err = c.info(req).await.expect_err("wrong key");
    assert_eq!(err.code(), Code::Unauthenticated);
    let mut req = tonic::Request::new(InfoRequest {});
    let upper = format!("APIKEY {}", support::api::API_KEY);
    req.metadata_mut()
        .insert("authorization", upper.parse().expect("md"));
    assert_eq!(
        c.info(req).await.expect_err("scheme is exact").code(),
        Code::Unauthenticated
    );
    c.info(with_key(InfoRequest {}))
        .await
        .expect("keyed call passes");
    srv.stop().await;
}

#[tokio::test]
async fn no_key_configured_means_open() {
    let mut cfg = api_config();
    cfg.grpc_api.key = String::new();
    let srv = TestServer::start(cfg).await;
    let mut c = grpc_client(&srv).await;
    c.info(InfoRequest {}).await.expect("open");
    srv.stop().await;
}

fn empty_rpc() -> RpcRequest {
    RpcRequest {
        method: String::new(),
        params: Default::default(),
    }
}

#[tokio::test]
async fn errors_in_message_or_as_status() {
    let srv = TestServer::start(api_config()).await;
    let mut c = grpc_client(&srv).await;
    let resp = c.rpc(with_key(empty_rpc())).await.expect("status OK");
    let error = resp.into_inner().error.expect("error in message");
    let mut req = with_key(empty_rpc());
    req.metadata_mut()
        .insert("x-centrifugo-error-mode", "transport".parse().expect("md"));
    let status = c.rpc(req).await.expect_err("transport mode");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), error.message);
    assert!(!status.details().is_empty(), "Error attached as a detail");
    // Batch never converts.
    let mut req = with_key(BatchRequest {
        commands: vec![Command {
            rpc: Some(empty_rpc()),
            ..Default::default()
        }],
        parallel: false,
    });
    req.metadata_mut()
        .insert("x-centrifugo-error-mode", "transport".parse().expect("md"));
    let replies = c.batch(req).await.expect("batch OK").into_inner().replies;
    assert_eq!(replies[0].error.as_ref().map(|e| e.code), Some(error.code));
    srv.stop().await;

    let mut cfg = api_config();
    cfg.grpc_api.error_mode = rotor::config::ErrorMode::Transport;
    let srv = TestServer::start(cfg).await;
    let mut c = grpc_client(&srv).await;
    let status = c.rpc(with_key(empty_rpc())).await.expect_err("transport");
    assert_eq!(status.code(), Code::InvalidArgument);
    srv.stop().await;
}

#[tokio::test]
async fn gzip_and_zstd_are_accepted_and_sent() {
    let srv = TestServer::start(api_config()).await;
    for enc in [CompressionEncoding::Gzip, CompressionEncoding::Zstd] {
        let mut c = grpc_client(&srv)
            .await
            .send_compressed(enc)
            .accept_compressed(enc);
        let resp = c
            .batch(with_key(BatchRequest::default()))
            .await
            .expect("compressed call");
        assert!(resp.into_inner().replies.is_empty());
        let batch = BatchRequest {
            commands: vec![Command::default(); 1000],
            parallel: true,
        };
        let resp = c.batch(with_key(batch)).await.expect("compressed batch");
        let replies = resp.into_inner().replies;
        assert_eq!(replies.len(), 1000);
        assert!(
            replies
                .iter()
                .all(|r| r.error.as_ref().map(|e| e.code) == Some(104))
        );
    }
    srv.stop().await;
}

#[tokio::test]
async fn reflection_v1_and_v1alpha_list_the_service() {
    let srv = TestServer::start(api_config()).await;
    let channel = grpc_channel(&srv).await;
    {
        use tonic_reflection::pb::v1::ServerReflectionRequest;
        use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
        let mut c = ServerReflectionClient::new(channel.clone());
        let req = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut stream = c
            .server_reflection_info(futures_util::stream::iter(vec![req]))
            .await
            .expect("v1 reflection")
            .into_inner();
        let resp = stream.next().await.expect("one reply").expect("ok");
        let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
            panic!("unexpected v1 reply {resp:?}");
        };
        let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        assert!(
            names.contains(&"centrifugal.centrifugo.api.CentrifugoApi".to_string()),
            "{names:?}"
        );
        assert!(
            names.contains(&"grpc.health.v1.Health".to_string()),
            "{names:?}"
        );
    }
    {
        use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
        use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
        let mut c = ServerReflectionClient::new(channel);
        let req = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "centrifugal.centrifugo.api.CentrifugoApi".into(),
            )),
        };
        let mut stream = c
            .server_reflection_info(futures_util::stream::iter(vec![req]))
            .await
            .expect("v1alpha reflection")
            .into_inner();
        let resp = stream.next().await.expect("one reply").expect("ok");
        let Some(MessageResponse::FileDescriptorResponse(files)) = resp.message_response else {
            panic!("unexpected v1alpha reply {resp:?}");
        };
        assert!(!files.file_descriptor_proto.is_empty());
    }
    srv.stop().await;
}

#[tokio::test]
async fn health_is_serving_without_a_key() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    let srv = TestServer::start(api_config()).await;
    let channel = grpc_channel(&srv).await;
    let mut c = HealthClient::new(channel);
    for service in ["", "centrifugal.centrifugo.api.CentrifugoApi"] {
        let resp = c
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health check")
            .into_inner();
        assert_eq!(resp.status(), ServingStatus::Serving, "{service:?}");
    }
    srv.stop().await;
}

#[tokio::test]
async fn max_receive_message_size_is_enforced() {
    let mut cfg = api_config();
    cfg.grpc_api.max_receive_message_size = 1024;
    let srv = TestServer::start(cfg).await;
    let mut c = grpc_client(&srv).await;
    let small = RpcRequest {
        method: "m".into(),
        params: "1".into(),
    };
    c.rpc(with_key(small)).await.expect("small message passes");
    let big = RpcRequest {
        method: "m".into(),
        params: format!("\"{}\"", "x".repeat(2048)).into(),
    };
    let found = prost::Message::encoded_len(&big);
    let status = c.rpc(with_key(big)).await.expect_err("too large");
    // grpc-go's status and text (tonic's own would be OUT_OF_RANGE).
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        status.message(),
        format!("grpc: received message larger than max ({found} vs. 1024)")
    );
    // Batch takes its own path and is refused the same way.
    let batch = BatchRequest {
        commands: vec![Command::default(); 600],
        parallel: false,
    };
    let status = c.batch(with_key(batch)).await.expect_err("too large");
    assert_eq!(
        (status.code(), status.message()),
        (
            Code::ResourceExhausted,
            "grpc: received message larger than max (1200 vs. 1024)"
        )
    );
    srv.stop().await;
}

/// The tower stack sits in front of the gRPC API of the real server: with
/// a per-key budget of 2 calls, the third is RESOURCE_EXHAUSTED (before the
/// key check, so a flood of bad keys is limited too).
#[tokio::test]
async fn rate_limit_per_api_key_is_in_front_of_the_grpc_api() {
    let srv = TestServer::start(rate_limited_config(2)).await;
    let mut c = grpc_client(&srv).await;
    for _ in 0..2 {
        c.info(with_key(InfoRequest {}))
            .await
            .expect("within budget");
    }
    let err = c
        .info(with_key(InfoRequest {}))
        .await
        .expect_err("over budget");
    assert_eq!(err.code(), Code::ResourceExhausted);
    srv.stop().await;
}

/// `grpc_api.tls`: the gRPC API serves TLS (a self-signed certificate made
/// by the `openssl` command for `localhost`) and a client trusting that
/// certificate calls it; a plaintext client cannot.
#[tokio::test]
async fn tls_is_served_when_configured() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("the openssl command is needed for this test");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let cert_pem = std::fs::read_to_string(&cert).expect("cert");
    let mut cfg = api_config();
    cfg.grpc_api.tls.enabled = true;
    cfg.grpc_api.tls.cert_pem = cert_pem.clone();
    cfg.grpc_api.tls.key_pem = key.to_string_lossy().into_owned();
    let srv = TestServer::start(cfg).await;

    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(cert_pem))
        .domain_name("localhost");
    let channel = tonic::transport::Endpoint::from_shared(format!("https://{}", srv.grpc_addr))
        .expect("endpoint")
        .tls_config(tls)
        .expect("tls config")
        .connect()
        .await
        .expect("TLS handshake");
    let mut c = rotor::proto::api::centrifugo_api_client::CentrifugoApiClient::new(channel);
    c.info(with_key(InfoRequest {}))
        .await
        .expect("call over TLS");

    let mut plain = grpc_client(&srv).await;
    assert!(plain.info(with_key(InfoRequest {})).await.is_err());
    srv.stop().await;
}
