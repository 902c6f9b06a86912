//! TLS on the HTTP ports (`http_server.tls`, `internal_tls`,
//! `tls_external`), with an own test CA made by `openssl`:
//!
//! * the official SDKs over `wss://` (npm `centrifuge` in JSON and
//!   Protobuf, `centrifuge-python`) and the API clients over `https://`
//!   (PyPI `cent`, npm `cent.js`), and `grpcio` to the gRPC API over TLS
//!   (`grpc_api.tls`), all trusting the test CA;
//! * `https://` health, a plain-HTTP request to the TLS port failing;
//! * mutual TLS (`client_ca_pem`): refused without a client certificate,
//!   served with one;
//! * `tls_external`: TLS on the external port only, the internal one plain;
//! * SIGHUP: new connections get the new certificate, open ones stay, a bad
//!   one on reload keeps the running one;
//! * a missing key file refused by `checkconfig` and at start-up, naming
//!   the key; an unusable `tls_autocert` (a host name without a dot, a
//!   missing CA file) and `http3` refused by name.
//!
//! Run: `cargo test --test interop_tls`.

#[path = "support/certs.rs"]
mod certs;
#[path = "support/interop.rs"]
mod runner;
mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use runner::{CaseOpts, Sdk};
use serde_json::{Value, json};
use support::binary;

/// A directory with the test CA and certificates.
fn pki() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    certs::make_certs(dir.path());
    dir
}

/// `http_server.tls` with the server certificate, as file paths.
fn server_tls(dir: &Path) -> Value {
    json!({
        "enabled": true,
        "cert_pem": dir.join("server.crt"),
        "key_pem": dir.join("server.key"),
    })
}

/// `scenario` with the HTTP ports and the gRPC API on TLS.
fn sdk_case(sdk: Sdk, scenario: &str, encoding: &str, packages: &[&str]) {
    let dir = pki();
    let tls = server_tls(dir.path());
    let opts = CaseOpts {
        config_patch: Some(json!({
            "http_server": { "tls": tls },
            "grpc_api": { "tls": tls },
        })),
        tls_ca: Some(dir.path().join("ca.crt")),
        label: Some(format!("tls/{sdk:?}/{encoding}/{scenario}").to_lowercase()),
        ..CaseOpts::default()
    };
    runner::run_case_with(sdk, scenario, encoding, packages, false, &opts);
}

#[test]
fn js_sdk_over_wss_json() {
    sdk_case(Sdk::Js, "pubsub", "json", &["centrifuge", "ws"]);
}

#[test]
fn js_sdk_over_wss_protobuf() {
    sdk_case(Sdk::Js, "pubsub", "protobuf", &["centrifuge", "ws"]);
}

#[test]
fn python_sdk_over_wss() {
    sdk_case(Sdk::Python, "pubsub", "json", &["centrifuge"]);
}

#[test]
fn cent_python_over_https() {
    sdk_case(Sdk::Python, "api_cent", "json", &["centrifuge", "cent"]);
}

#[test]
fn grpcio_api_over_tls() {
    sdk_case(
        Sdk::Python,
        "api_grpc",
        "json",
        &["centrifuge", "grpc", "grpc_reflection", "grpc_health"],
    );
}

#[test]
fn cent_js_over_https() {
    sdk_case(
        Sdk::Js,
        "api_cent",
        "json",
        &["centrifuge", "ws", "cent.js"],
    );
}

/// A config for the binary: health on, `http_server` as given.
fn config(http_server: Value) -> Value {
    json!({
        "health": { "enabled": true },
        "http_server": http_server,
    })
}

/// An HTTPS client trusting the test CA, with the client certificate when
/// `identity`.
fn https_client(dir: &Path, identity: bool) -> reqwest::Client {
    let ca = std::fs::read(dir.join("ca.crt")).expect("ca");
    let mut builder = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).expect("ca pem")])
        .timeout(Duration::from_secs(5));
    if identity {
        let mut pem = std::fs::read(dir.join("client.crt")).expect("client crt");
        pem.extend(std::fs::read(dir.join("client.key")).expect("client key"));
        builder = builder.identity(reqwest::Identity::from_pem(&pem).expect("identity"));
    }
    builder.build().expect("client")
}

async fn health(client: &reqwest::Client, url: String) -> Result<u16, String> {
    client
        .get(url)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| format!("{e:?}"))
}

#[tokio::test]
async fn https_serves_and_plain_http_to_the_tls_port_fails() {
    let dir = pki();
    let d = dir.path();
    let srv = binary::start(d, "tls", &config(json!({ "tls": server_tls(d) }))).await;
    let url = format!("https://127.0.0.1:{}/health", srv.port);
    assert_eq!(health(&https_client(d, false), url).await, Ok(200));
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/health", srv.port))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP answered: {plain:?}");
}

#[tokio::test]
async fn mutual_tls_needs_a_client_certificate() {
    let dir = pki();
    let d = dir.path();
    let mut tls = server_tls(d);
    tls["client_ca_pem"] = json!(d.join("ca.crt"));
    let srv = binary::start(d, "mtls", &config(json!({ "tls": tls }))).await;
    let url = format!("https://127.0.0.1:{}/health", srv.port);
    let without = health(&https_client(d, false), url.clone()).await;
    assert!(
        without.is_err(),
        "served without a certificate: {without:?}"
    );
    assert_eq!(health(&https_client(d, true), url).await, Ok(200));
}

#[tokio::test]
async fn tls_external_leaves_the_internal_port_plain() {
    let dir = pki();
    let d = dir.path();
    let internal = binary::free_port();
    let cfg = config(json!({
        "tls": server_tls(d),
        "tls_external": true,
        "internal_port": internal.to_string(),
    }));
    let srv = binary::start(d, "external", &cfg).await;
    binary::wait_port(internal, "internal port").await;
    // Health is an internal endpoint: plain HTTP on the internal port.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{internal}/health"))
        .send()
        .await
        .expect("plain internal port");
    assert_eq!(plain.status().as_u16(), 200);
    // The external port speaks TLS (and has no health route: 404).
    let url = format!("https://127.0.0.1:{}/health", srv.port);
    assert_eq!(health(&https_client(d, false), url).await, Ok(404));
}

/// `rotor checkconfig` on `cfg`: its exit success and its output.
fn checkconfig(dir: &Path, cfg: &Value) -> (bool, String) {
    let path = dir.join("check.json");
    std::fs::write(&path, cfg.to_string()).expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_rotor"))
        .arg("checkconfig")
        .arg("--config")
        .arg(&path)
        .output()
        .expect("run checkconfig");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn unusable_or_unsupported_tls_is_refused_by_name() {
    let dir = pki();
    let d = dir.path();
    let (ok, text) = checkconfig(d, &config(json!({ "tls": server_tls(d) })));
    assert!(ok, "{text}");
    let mut missing = server_tls(d);
    missing["key_pem"] = json!(d.join("nonexistent.key"));
    for (cfg, key) in [
        (config(json!({ "tls": missing })), "http_server.tls.key_pem"),
        (
            config(json!({ "internal_tls": { "enabled": true } })),
            "http_server.internal_tls.cert_pem",
        ),
        (
            config(json!({ "tls_autocert": { "enabled": true, "host_whitelist": ["localhost"] } })),
            "http_server.tls_autocert.host_whitelist[0]",
        ),
        (
            config(json!({ "tls_autocert": {
                "enabled": true,
                "host_whitelist": ["rotor.example"],
                "acme_ca_pem": d.join("nonexistent.crt"),
            } })),
            "http_server.tls_autocert.acme_ca_pem",
        ),
        (
            config(json!({ "http3": { "enabled": true } })),
            "http_server.http3.enabled",
        ),
    ] {
        let (ok, text) = checkconfig(d, &cfg);
        assert!(!ok && text.contains(key), "{key}: {text}");
    }
    // Start-up refuses the missing key file too, before binding anything.
    let mut missing = server_tls(d);
    missing["key_pem"] = json!(d.join("nonexistent.key"));
    let path = d.join("start.json");
    std::fs::write(&path, config(json!({ "tls": missing })).to_string()).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_rotor"))
        .arg("--config")
        .arg(&path)
        .arg("--http_server.port")
        .arg(binary::free_port().to_string())
        .output()
        .expect("run rotor");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("http_server.tls.key_pem"), "{text}");
}

/// The leaf certificate the server presented for `resp` (DER).
fn peer_certificate(resp: &reqwest::Response) -> Vec<u8> {
    resp.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("TLS info with the peer certificate")
        .to_vec()
}

/// A keep-alive HTTPS client trusting both test CAs, reporting the peer
/// certificate.
fn trusting(cas: &[&Path]) -> reqwest::Client {
    let roots = cas.iter().map(|dir| {
        let pem = std::fs::read(dir.join("ca.crt")).expect("ca");
        reqwest::Certificate::from_pem(&pem).expect("ca pem")
    });
    reqwest::Client::builder()
        .tls_certs_only(roots)
        .tls_info(true)
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

#[tokio::test]
async fn sighup_swaps_the_certificate_and_keeps_open_connections() {
    let (old, new) = (pki(), pki());
    let live = tempfile::tempdir().expect("tempdir");
    let put = |from: &Path| {
        for (src, dst) in [("server.crt", "live.crt"), ("server.key", "live.key")] {
            std::fs::copy(from.join(src), live.path().join(dst)).expect("copy");
        }
    };
    put(old.path());
    let cfg = config(json!({ "tls": {
        "enabled": true,
        "cert_pem": live.path().join("live.crt"),
        "key_pem": live.path().join("live.key"),
    }}));
    let srv = binary::start(live.path(), "reload", &cfg).await;
    let url = format!("https://127.0.0.1:{}/health", srv.port);
    let cas = [old.path(), new.path()];
    let open = trusting(&cas);
    let first = open.get(&url).send().await.expect("first request");
    assert_eq!(first.status().as_u16(), 200);
    let before = peer_certificate(&first);

    put(new.path());
    let status = Command::new("kill")
        .args(["-HUP", &srv.child.id().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
    // A new connection gets the new certificate once the reload is done.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let resp = trusting(&cas)
            .get(&url)
            .send()
            .await
            .expect("new connection");
        if peer_certificate(&resp) != before {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the certificate was not replaced after SIGHUP"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The connection opened before the reload is still the same one.
    let again = open
        .get(&url)
        .send()
        .await
        .expect("request on the open connection");
    assert_eq!(again.status().as_u16(), 200);
    assert_eq!(
        peer_certificate(&again),
        before,
        "the open connection was replaced"
    );

    // A bad certificate on reload keeps the running one.
    std::fs::write(live.path().join("live.crt"), "not a certificate").expect("write");
    let status = Command::new("kill")
        .args(["-HUP", &srv.child.id().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let resp = trusting(&cas).get(&url).send().await.expect("still served");
    assert_eq!(resp.status().as_u16(), 200);
    assert_ne!(peer_certificate(&resp), before);
}
