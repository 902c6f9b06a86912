//! TLS to Redis with the `tls` object's certificates: an own TLS-only
//! `redis-server` with a test CA (made by `openssl`). A server CA makes the
//! connection work where the system roots refuse it, `insecure_skip_verify`
//! accepts any certificate, and a server that requires client
//! certificates takes the configured `cert_pem` / `key_pem`.

#[path = "support/certs.rs"]
mod certs;
#[path = "engine_redis/servers.rs"]
mod servers;

use certs::{make_certs, read};
use rotor::engine::conformance;
use rotor::engine::redis::{RedisSettings, connect_engine};
use rotor::engine::{Broker, EngineError};
use servers::Servers;

async fn tls_server(require_client_cert: bool) -> Option<(Servers, u16)> {
    if !servers::available(&["redis-server", "openssl"]) {
        return None;
    }
    let mut servers = Servers::new();
    let dir = servers.dir.path().to_owned();
    make_certs(&dir);
    let path = |n: &str| dir.join(n).to_string_lossy().into_owned();
    let (crt, key, ca) = (path("server.crt"), path("server.key"), path("ca.crt"));
    let auth = if require_client_cert { "yes" } else { "no" };
    let port = servers
        .redis_tls(&[
            "--tls-cert-file",
            &crt,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            auth,
        ])
        .await;
    Some((servers, port))
}

fn settings(port: u16, tls: serde_json::Value) -> RedisSettings {
    RedisSettings::from_config(
        &serde_json::from_value(serde_json::json!({
            "address": format!("rediss://127.0.0.1:{port}"),
            "prefix": servers::prefix(),
            "connect_timeout": "500ms",
            "io_timeout": "1s",
            "tls": tls,
        }))
        .expect("redis object"),
    )
    .expect("settings")
}

async fn publish_and_read(s: &RedisSettings) {
    let (broker, _) = connect_engine(s).await.expect("connect over TLS");
    let broker: std::sync::Arc<dyn Broker> = std::sync::Arc::new(broker);
    let channel = conformance::unique_channel("tls");
    conformance::publish_n(&broker, &channel, 2, &conformance::history_options(5)).await;
    let history = conformance::read_history(&broker, &channel, None, -1, false)
        .await
        .expect("history");
    assert_eq!(history.publications.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_ca_and_insecure_skip_verify() {
    let Some((servers, port)) = tls_server(false).await else {
        return;
    };
    let ca = read(servers.dir.path(), "ca.crt");
    publish_and_read(&settings(
        port,
        serde_json::json!({"enabled": true, "server_ca_pem": ca}),
    ))
    .await;
    publish_and_read(&settings(
        port,
        serde_json::json!({"enabled": true, "insecure_skip_verify": true}),
    ))
    .await;
    let err = connect_engine(&settings(port, serde_json::json!({"enabled": true})))
        .await
        .expect_err("the system roots do not know the test CA");
    assert!(matches!(err, EngineError::Unavailable(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate() {
    let Some((servers, port)) = tls_server(true).await else {
        return;
    };
    let dir = servers.dir.path();
    let ca = read(dir, "ca.crt");
    publish_and_read(&settings(
        port,
        serde_json::json!({
            "enabled": true, "server_ca_pem": ca,
            "cert_pem": read(dir, "client.crt"), "key_pem": read(dir, "client.key"),
        }),
    ))
    .await;
    let err = connect_engine(&settings(
        port,
        serde_json::json!({"enabled": true, "server_ca_pem": ca}),
    ))
    .await
    .expect_err("the server requires a client certificate");
    assert!(matches!(err, EngineError::Unavailable(_)), "{err:?}");
}
