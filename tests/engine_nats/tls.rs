//! The NATS broker over TLS: a private nats-server with a certificate from a
//! throwaway CA (made with `openssl`), reached with `tls.server_ca_pem`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rotor::engine::conformance;
use rotor::engine::nats::{NatsBroker, NatsSettings, NatsTls};
use rotor::engine::{Broker, EngineError, PublishOptions};

use super::nats_server::{NatsServer, free_port};

fn openssl(dir: &Path, args: &[&str]) {
    let status = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl");
    assert!(status.success(), "openssl {args:?}");
}

/// A CA and a server certificate for 127.0.0.1 in `dir`: `ca.pem`,
/// `server.pem`, `server.key`.
fn make_certs(dir: &Path) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    let mut ca = vec![
        "req",
        "-x509",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=rotor-test-ca",
    ];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    openssl(dir, &ca);
    let mut csr = vec!["req", "-nodes", "-subj", "/CN=127.0.0.1"];
    csr.extend(ec);
    csr.extend(["-keyout", "server.key", "-out", "server.csr"]);
    openssl(dir, &csr);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ],
    );
}

/// With the CA configured, publish and delivery work over TLS; without it
/// (system roots do not know the throwaway CA) connecting fails fast.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_server_ca_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_certs(dir.path());
    let port = free_port();
    let cert = dir.path().join("server.pem");
    let key = dir.path().join("server.key");
    let server = NatsServer::start_with(
        port,
        &[
            "--tls",
            "--tlscert",
            cert.to_str().expect("utf-8"),
            "--tlskey",
            key.to_str().expect("utf-8"),
        ],
    )
    .await;
    let base = NatsSettings {
        url: format!("nats://127.0.0.1:{}", server.port),
        prefix: format!("rotor-tls-{port}"),
        ..NatsSettings::default()
    };
    let s = NatsSettings {
        tls: Some(NatsTls {
            server_ca_pem: Some(std::fs::read(dir.path().join("ca.pem")).expect("ca.pem")),
            client_cert: None,
        }),
        ..base.clone()
    };
    let broker: Arc<dyn Broker> = Arc::new(NatsBroker::connect(&s).await.expect("tls connect"));
    let handler = conformance::start(&broker).await;
    let channel = conformance::unique_channel("tls");
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

    let s = NatsSettings {
        tls: Some(NatsTls::default()),
        ..base
    };
    let started = Instant::now();
    let err = NatsBroker::connect(&s).await.expect_err("unknown CA");
    assert!(matches!(err, EngineError::Unavailable(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// A client certificate signed by the test CA in `dir`: `client.pem`,
/// `client.key`.
fn make_client_cert(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-nodes",
            "-subj",
            "/CN=rotor-client",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-keyout",
            "client.key",
            "-out",
            "client.csr",
        ],
    );
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").expect("ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "client.ext",
            "-out",
            "client.pem",
        ],
    );
}

/// Mutual TLS: a server that verifies clients accepts the configured client
/// certificate (PEM text, as Centrifugo's `cert_pem` / `key_pem` take it)
/// and turns a client without one away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_with_client_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_certs(dir.path());
    make_client_cert(dir.path());
    let port = free_port();
    let path = |name: &str| dir.path().join(name).to_str().expect("utf-8").to_owned();
    let server = NatsServer::start_with(
        port,
        &[
            "--tlsverify",
            "--tlscert",
            &path("server.pem"),
            "--tlskey",
            &path("server.key"),
            "--tlscacert",
            &path("ca.pem"),
        ],
    )
    .await;
    let read = |name: &str| std::fs::read(dir.path().join(name)).expect("pem");
    let base = NatsSettings {
        url: format!("nats://127.0.0.1:{}", server.port),
        prefix: format!("rotor-mtls-{port}"),
        ..NatsSettings::default()
    };
    let with_cert = NatsSettings {
        tls: Some(NatsTls {
            server_ca_pem: Some(read("ca.pem")),
            client_cert: Some((read("client.pem"), read("client.key"))),
        }),
        ..base.clone()
    };
    let broker: Arc<dyn Broker> = Arc::new(
        NatsBroker::connect(&with_cert)
            .await
            .expect("mutual tls connect"),
    );
    let handler = conformance::start(&broker).await;
    let channel = conformance::unique_channel("mtls");
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

    let without = NatsSettings {
        tls: Some(NatsTls {
            server_ca_pem: Some(read("ca.pem")),
            client_cert: None,
        }),
        ..base
    };
    let err = NatsBroker::connect(&without)
        .await
        .expect_err("no client certificate");
    assert!(matches!(err, EngineError::Unavailable(_)), "{err:?}");
}
