//! ACME (`http_server.tls_autocert`) against a real ACME server: Debian's
//! `pebble` (RFC 8555), with `pebble-challtestsrv` as its DNS (every name
//! resolves to 127.0.0.1), validating Rotor's challenges for real (no
//! `PEBBLE_VA_ALWAYS_VALID`):
//!
//! * HTTP-01: pebble fetches the token from Rotor's `http_addr`; then
//!   `https://` and `wss://` to the whitelisted name work with pebble's
//!   certificate, a name outside the whitelist is refused, and a restart
//!   with pebble gone serves the certificate from `cache_dir` (no order);
//! * TLS-ALPN-01 (`http` off): pebble validates on Rotor's TLS port; a
//!   client that sends no SNI gets the `server_name` certificate;
//! * renewal: with 9-second certificates, a new one is ordered, served and
//!   cached before the first expires (at two thirds of its life).
//!
//! The real `rotor` binary trusts pebble's HTTPS through the Rotor key
//! `acme_ca_pem` (a test CA made by `openssl`, `tests/support/certs.rs`);
//! the test clients trust pebble's issuing root, fetched from its
//! management port. When pebble is not installed the tests print a loud
//! SKIP line and pass, unless `ROTOR_REQUIRE_SERVICES=1` or
//! `ROTOR_REQUIRE_INTEROP=1` (`tests/run.sh` sets both and installs the
//! `pebble` package).
//!
//! Run: `cargo test --test acme`.

#[path = "support/certs.rs"]
mod certs;
mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use support::binary::{self, free_port, wait_port};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::Message;

/// The whitelisted name, and one that is not.
const HOST: &str = "rotor.example.com";
const OTHER: &str = "other.example.com";
/// Bound on each test: certificates come in about a second.
const TEST_DEADLINE: Duration = Duration::from_secs(90);
/// Bound on waiting for the first certificate.
const CERT_PATIENCE: Duration = Duration::from_secs(45);

/// Whether pebble is here; when not, a loud SKIP, or a failure when the
/// run requires services.
fn pebble_here() -> bool {
    let found = |bin: &str| {
        Command::new(bin)
            .arg("-h")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    if found("pebble") && found("pebble-challtestsrv") {
        return true;
    }
    let required = ["ROTOR_REQUIRE_SERVICES", "ROTOR_REQUIRE_INTEROP"]
        .iter()
        .any(|v| std::env::var(v).as_deref() == Ok("1"));
    assert!(
        !required,
        "pebble and pebble-challtestsrv are required (Debian package `pebble`; `bash tests/run.sh` installs it)"
    );
    eprintln!(
        "\n!!!!!!!! SKIP acme: pebble is not installed (apt-get install pebble, or run \
         `bash tests/run.sh`; set ROTOR_REQUIRE_SERVICES=1 to make this a failure) !!!!!!!!\n"
    );
    false
}

/// A running pebble and its DNS; both killed on drop.
struct Pebble {
    children: Vec<Child>,
    /// The ACME directory URL.
    directory: String,
    /// Pebble's issuing root (PEM), which the test clients trust.
    root: String,
}

impl Pebble {
    /// Starts pebble validating HTTP-01 on `http_port` and TLS-ALPN-01 on
    /// `tls_port` of 127.0.0.1; its own HTTPS uses `dir`'s test CA.
    async fn start(dir: &Path, http_port: u16, tls_port: u16) -> Self {
        Self::start_with_validity(dir, http_port, tls_port, None).await
    }

    /// [`Pebble::start`] issuing certificates valid for `validity_secs`
    /// (pebble's default is five years).
    async fn start_with_validity(
        dir: &Path,
        http_port: u16,
        tls_port: u16,
        validity_secs: Option<u64>,
    ) -> Self {
        certs::make_certs(dir);
        let (dns, dns_mgmt, acme, mgmt) = (free_port(), free_port(), free_port(), free_port());
        let log = |name: &str| std::fs::File::create(dir.join(name)).expect("log file");
        let challtestsrv = Command::new("pebble-challtestsrv")
            .args(["-dns01", &format!("127.0.0.1:{dns}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{dns_mgmt}")])
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .stdout(log("challtestsrv.log"))
            .stderr(log("challtestsrv.err"))
            .spawn()
            .expect("spawn pebble-challtestsrv");
        let mut me = Self {
            children: vec![challtestsrv],
            directory: format!("https://127.0.0.1:{acme}/dir"),
            root: String::new(),
        };
        let config = json!({ "pebble": {
            "listenAddress": format!("127.0.0.1:{acme}"),
            "managementListenAddress": format!("127.0.0.1:{mgmt}"),
            "certificate": dir.join("server.crt"),
            "privateKey": dir.join("server.key"),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        let mut config = config;
        if let Some(secs) = validity_secs {
            config["pebble"]["certificateValidityPeriod"] = json!(secs);
        }
        let config_path = dir.join("pebble.json");
        std::fs::write(&config_path, config.to_string()).expect("write pebble config");
        wait_port(dns_mgmt, "pebble-challtestsrv").await;
        let pebble = Command::new("pebble")
            .arg("-config")
            .arg(&config_path)
            .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .stdout(log("pebble.log"))
            .stderr(log("pebble.err"))
            .spawn()
            .expect("spawn pebble");
        me.children.push(pebble);
        wait_port(acme, "pebble").await;
        wait_port(mgmt, "pebble management").await;
        let ca = reqwest::Certificate::from_pem(certs::read(dir, "ca.crt").as_bytes()).expect("ca");
        let http = reqwest::Client::builder()
            .tls_certs_only([ca])
            .build()
            .expect("client");
        me.root = http
            .get(format!("https://127.0.0.1:{mgmt}/roots/0"))
            .send()
            .await
            .expect("pebble root")
            .text()
            .await
            .expect("pebble root text");
        me
    }

    /// Stops pebble (the cached certificate must do from now on).
    fn stop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Rotor's config: `autocert` merged into a `tls_autocert` that trusts
/// the test CA for pebble's HTTPS and caches in `dir/cache`.
fn rotor_config(dir: &Path, pebble: &Pebble, autocert: Value) -> Value {
    let mut tls_autocert = json!({
        "enabled": true,
        "host_whitelist": [HOST],
        "cache_dir": dir.join("cache"),
        "email": "ops@rotor.example.com",
        "acme_directory_url": pebble.directory,
        "acme_ca_pem": dir.join("ca.crt"),
    });
    for (k, v) in autocert.as_object().expect("object") {
        tls_autocert[k] = v.clone();
    }
    json!({
        "client": { "token": { "hmac_secret_key": support::SECRET } },
        "health": { "enabled": true },
        "http_server": { "tls_autocert": tls_autocert },
    })
}

/// A TLS connection to 127.0.0.1:`port` checking the certificate for
/// `name` against pebble's root; SNI is sent unless `sni` is false.
async fn tls(root: &str, port: u16, name: &str, sni: bool) -> Result<TlsStream<TcpStream>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(root.as_bytes()) {
        roots.add(cert.expect("root pem")).expect("root");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.enable_sni = sni;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from(name.to_string()).expect("server name");
    tokio::time::timeout(Duration::from_secs(20), connector.connect(name, tcp))
        .await
        .map_err(|_| "handshake timed out".to_string())?
        .map_err(|e| e.to_string())
}

/// `GET /health` over a verified TLS connection; the status line and the
/// certificate the server showed.
async fn https_health(
    root: &str,
    port: u16,
    name: &str,
    sni: bool,
) -> Result<(String, CertificateDer<'static>), String> {
    let mut stream = tls(root, port, name, sni).await?;
    let cert = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or("no certificate")?
        .clone()
        .into_owned();
    let req = format!("GET /health HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
        .await
        .map_err(|_| "response timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out);
    let status = text.lines().next().unwrap_or_default().to_string();
    Ok((status, cert))
}

/// Retries [`https_health`] until it answers 200 (the first certificate
/// is on its way), within [`CERT_PATIENCE`].
async fn first_certificate(root: &str, port: u16, log: &Path) -> CertificateDer<'static> {
    let deadline = Instant::now() + CERT_PATIENCE;
    loop {
        match https_health(root, port, HOST, true).await {
            Ok((status, cert)) if status.contains(" 200 ") => return cert,
            other => {
                if Instant::now() > deadline {
                    let log = std::fs::read_to_string(log).unwrap_or_default();
                    panic!("no certificate for {HOST}: {other:?}\nrotor log:\n{log}");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// A Centrifugo `connect` over `wss://` to the whitelisted name.
async fn wss_connect(root: &str, port: u16) {
    let stream = tls(root, port, HOST, true).await.expect("tls for wss");
    let url = format!("wss://{HOST}:{port}/connection/websocket");
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .expect("websocket over tls");
    let token = support::token("acme-user", 3600);
    let connect = json!({ "id": 1, "connect": { "token": token } });
    ws.send(Message::Text(connect.to_string().into()))
        .await
        .expect("send connect");
    let reply = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("reply in time")
        .expect("a frame")
        .expect("a message");
    let reply: Value = serde_json::from_str(reply.to_text().expect("text")).expect("json");
    assert_eq!(reply["id"], 1, "{reply}");
    assert!(reply["connect"]["client"].is_string(), "{reply}");
}

#[tokio::test]
async fn http_01_certificate_then_restart_from_cache() {
    if !pebble_here() {
        return;
    }
    tokio::time::timeout(TEST_DEADLINE, async {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        // TLS-ALPN-01 cannot pass (pebble's tlsPort is closed): the
        // certificate comes from HTTP-01 on http_addr.
        let (http_port, closed) = (free_port(), free_port());
        let mut pebble = Pebble::start(d, http_port, closed).await;
        let cfg = rotor_config(
            d,
            &pebble,
            json!({ "http": true, "http_addr": format!("127.0.0.1:{http_port}") }),
        );
        let rotor = binary::start(d, "rotor", &cfg).await;
        let cert = first_certificate(&pebble.root, rotor.port, &d.join("rotor.log")).await;
        wss_connect(&pebble.root, rotor.port).await;
        let refused = https_health(&pebble.root, rotor.port, OTHER, true).await;
        assert!(refused.is_err(), "{OTHER} is not whitelisted: {refused:?}");
        // The HTTP-01 port redirects anything else to HTTPS.
        let (status, head) = support::raw_http(
            format!("127.0.0.1:{http_port}").parse().expect("addr"),
            format!("GET /x?y=1 HTTP/1.1\r\nHost: {HOST}:{http_port}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await;
        assert_eq!(status, 302);
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        assert!(
            head.contains(&format!("location: https://{HOST}/x?y=1")),
            "{head}"
        );
        for entry in [HOST, "acme_account+key"] {
            assert!(d.join("cache").join(entry).is_file(), "cache_dir/{entry}");
        }
        drop(rotor);

        // With pebble gone, a restart serves the cached certificate.
        pebble.stop();
        let rotor = binary::start(d, "rotor-again", &cfg).await;
        let (status, again) = https_health(&pebble.root, rotor.port, HOST, true)
            .await
            .expect("cached certificate");
        assert!(status.contains(" 200 "), "{status}");
        assert_eq!(again, cert, "the same certificate, from cache_dir");
        let log = std::fs::read_to_string(d.join("rotor-again.log")).expect("log");
        assert!(log.contains("loaded from cache_dir"), "{log}");
        assert!(!log.contains("ordering a certificate"), "{log}");
    })
    .await
    .expect("the ACME HTTP-01 test takes too long");
}

#[tokio::test]
async fn tls_alpn_01_certificate_and_server_name_without_sni() {
    if !pebble_here() {
        return;
    }
    tokio::time::timeout(TEST_DEADLINE, async {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        // Pebble validates on Rotor's TLS port; its HTTP port is closed.
        let (port, closed) = (free_port(), free_port());
        let pebble = Pebble::start(d, closed, port).await;
        let cfg = rotor_config(d, &pebble, json!({ "server_name": HOST }));
        let rotor = binary::start_at(d, "rotor", &cfg, port).await;
        let cert = first_certificate(&pebble.root, rotor.port, &d.join("rotor.log")).await;
        let (status, no_sni) = https_health(&pebble.root, rotor.port, HOST, false)
            .await
            .expect("no SNI: server_name");
        assert!(status.contains(" 200 "), "{status}");
        assert_eq!(no_sni, cert);
        assert!(
            https_health(&pebble.root, rotor.port, OTHER, true)
                .await
                .is_err()
        );
    })
    .await
    .expect("the ACME TLS-ALPN-01 test takes too long");
}

#[tokio::test]
async fn renews_before_expiry() {
    if !pebble_here() {
        return;
    }
    tokio::time::timeout(TEST_DEADLINE, async {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let (port, closed) = (free_port(), free_port());
        let pebble = Pebble::start_with_validity(d, closed, port, Some(9)).await;
        let cfg = rotor_config(d, &pebble, json!({}));
        let rotor = binary::start_at(d, "rotor", &cfg, port).await;
        let first = first_certificate(&pebble.root, rotor.port, &d.join("rotor.log")).await;
        let cached = std::fs::read(d.join("cache").join(HOST)).expect("cached");
        // Renewal is due 6 s after issuance; the old certificate serves
        // until the new one is in.
        let deadline = Instant::now() + Duration::from_secs(30);
        let renewed = loop {
            let (status, cert) = https_health(&pebble.root, rotor.port, HOST, true)
                .await
                .expect("served throughout");
            assert!(status.contains(" 200 "), "{status}");
            if cert != first {
                break cert;
            }
            assert!(Instant::now() < deadline, "not renewed in time");
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        assert_ne!(renewed, first);
        let recached = std::fs::read(d.join("cache").join(HOST)).expect("cached");
        assert_ne!(recached, cached, "the renewed certificate is cached");
    })
    .await
    .expect("the ACME renewal test takes too long");
}
