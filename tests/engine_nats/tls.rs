//! The NATS broker over TLS: private nats-servers with a certificate from
//! the shared throwaway test CA (`support/certs.rs`), reached with
//! `tls.server_ca_pem`, one of them verifying client certificates.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rotor::engine::conformance;
use rotor::engine::nats::{NatsBroker, NatsSettings, NatsTls};
use rotor::engine::{Broker, EngineError, PublishOptions};

use super::certs::make_certs;
use super::nats_server::{NatsServer, free_port};

/// A nats-server with TLS from the test CA in `dir` (`extra` args added),
/// and settings for it without TLS material yet.
async fn tls_server(dir: &Path, extra: &[&str], label: &str) -> (NatsServer, NatsSettings) {
    let port = free_port();
    let path = |name: &str| dir.join(name).to_str().expect("utf-8").to_owned();
    let mut args = vec![
        "--tls".to_owned(),
        "--tlscert".to_owned(),
        path("server.crt"),
        "--tlskey".to_owned(),
        path("server.key"),
    ];
    args.extend(
        extra
            .iter()
            .map(|a| a.replace("{dir}", dir.to_str().expect("utf-8"))),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = NatsServer::start_with(port, &args).await;
    let settings = NatsSettings {
        url: format!("nats://127.0.0.1:{}", server.port),
        prefix: format!("rotor-{label}-{port}"),
        ..NatsSettings::default()
    };
    (server, settings)
}

/// Connects with `settings`, publishes one message and waits for it.
async fn delivers(settings: &NatsSettings, label: &str) {
    let broker: Arc<dyn Broker> =
        Arc::new(NatsBroker::connect(settings).await.expect("tls connect"));
    let handler = conformance::start(&broker).await;
    let channel = conformance::unique_channel(label);
    broker.subscribe(&channel).await.expect("subscribe");
    broker
        .publish(
            &channel,
            conformance::payload(1),
            &PublishOptions::default(),
        )
        .await
        .expect("publish");
    handler.wait_for(&channel, 1).await;
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).expect("pem")
}

/// With the CA configured, publish and delivery work over TLS; without it
/// (system roots do not know the throwaway CA) connecting fails fast.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_server_ca_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_certs(dir.path());
    let (_server, base) = tls_server(dir.path(), &[], "tls").await;
    let s = NatsSettings {
        tls: Some(NatsTls {
            server_ca_pem: Some(read(dir.path(), "ca.crt")),
            client_cert: None,
        }),
        ..base.clone()
    };
    delivers(&s, "tls").await;

    let s = NatsSettings {
        tls: Some(NatsTls::default()),
        ..base
    };
    let started = Instant::now();
    let err = NatsBroker::connect(&s).await.expect_err("unknown CA");
    assert!(matches!(err, EngineError::Unavailable(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Mutual TLS: a server that verifies clients accepts the configured client
/// certificate (PEM text, as Centrifugo's `cert_pem` / `key_pem` take it)
/// and turns a client without one away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_with_client_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_certs(dir.path());
    let (_server, base) = tls_server(
        dir.path(),
        &["--tlsverify", "--tlscacert", "{dir}/ca.crt"],
        "mtls",
    )
    .await;
    let with_cert = NatsSettings {
        tls: Some(NatsTls {
            server_ca_pem: Some(read(dir.path(), "ca.crt")),
            client_cert: Some((
                read(dir.path(), "client.crt"),
                read(dir.path(), "client.key"),
            )),
        }),
        ..base.clone()
    };
    delivers(&with_cert, "mtls").await;

    let without = NatsSettings {
        tls: Some(NatsTls {
            server_ca_pem: Some(read(dir.path(), "ca.crt")),
            client_cert: None,
        }),
        ..base
    };
    let err = NatsBroker::connect(&without)
        .await
        .expect_err("no client certificate");
    assert!(matches!(err, EngineError::Unavailable(_)), "{err:?}");
}
