//! Handshakes against the ACME-managed configuration over loopback: the
//! certificate picked by SNI, `server_name` without SNI, names outside the
//! whitelist refused, and the TLS-ALPN-01 challenge certificate.

use std::sync::Arc;
use std::time::SystemTime;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::server::tls::TlsSlot;

fn autocert(hosts: &[&str], server_name: &str) -> TlsAutocert {
    TlsAutocert {
        enabled: true,
        host_whitelist: hosts.iter().map(|h| h.to_string()).collect(),
        server_name: server_name.into(),
        ..Default::default()
    }
}

fn issued(host: &str) -> Issued {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let cert = rcgen::CertificateParams::new(vec![host.to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let pem = format!("{}{}", key.serialize_pem(), cert.pem());
    Issued::from_pem(pem.as_bytes(), host, SystemTime::now()).expect("usable")
}

/// Accepts anything: the tests compare the certificate they got.
#[derive(Debug)]
struct AnyCert;

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::aws_lc_rs::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Handshakes with `slot` as `name` offering `alpn`; the certificate the
/// server showed and the protocol agreed, or the error.
async fn handshake(
    slot: Arc<TlsSlot>,
    name: &str,
    alpn: &[&[u8]],
) -> Result<(CertificateDer<'static>, Option<Vec<u8>>), String> {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        if let Ok((tcp, _)) = listener.accept().await {
            let _ = slot.accept(tcp).await;
        }
    });
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from(name.to_string()).expect("name");
    let tls = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        connector.connect(name, tcp),
    )
    .await
    .map_err(|_| "timeout".to_string())?
    .map_err(|e| e.to_string())?;
    let (_, conn) = tls.get_ref();
    let cert = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or("no certificate")?
        .clone()
        .into_owned();
    Ok((cert, conn.alpn_protocol().map(<[u8]>::to_vec)))
}

fn slot(manager: &Arc<Manager>) -> Arc<TlsSlot> {
    TlsSlot::for_acme(manager.clone())
}

#[tokio::test]
async fn certificates_by_sni_and_server_name() {
    let manager = Manager::new(&autocert(&["a.example", "B.example"], "b.example")).expect("new");
    let (a, b) = (issued("a.example"), issued("b.example"));
    let (a_der, b_der) = (a.key.cert[0].clone(), b.key.cert[0].clone());
    manager.store.install("a.example", a);
    manager.store.install("b.example", b);
    let (cert, alpn) = handshake(slot(&manager), "A.EXAMPLE", &[b"h2"])
        .await
        .expect("a");
    assert_eq!(cert, a_der);
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    // An IP address sends no SNI: server_name stands in.
    let (cert, _) = handshake(slot(&manager), "127.0.0.1", &[])
        .await
        .expect("no sni");
    assert_eq!(cert, b_der);
    // Not whitelisted, and not started: refused at once.
    let e = handshake(slot(&manager), "c.example", &[])
        .await
        .expect_err("not whitelisted");
    assert_ne!(e, "timeout");
}

#[tokio::test]
async fn any_host_when_the_whitelist_is_empty_and_none_without_sni() {
    let manager = Manager::new(&autocert(&[], "")).expect("new");
    let c = issued("c.example");
    let c_der = c.key.cert[0].clone();
    manager.store.install("c.example", c);
    let (cert, _) = handshake(slot(&manager), "c.example", &[])
        .await
        .expect("c");
    assert_eq!(cert, c_der);
    assert!(handshake(slot(&manager), "127.0.0.1", &[]).await.is_err());
    // Not started: nothing is ordered, the handshake fails without waiting.
    assert_ne!(
        handshake(slot(&manager), "d.example", &[])
            .await
            .expect_err("no certificate"),
        "timeout"
    );
}

#[tokio::test]
async fn tls_alpn_01_gets_the_challenge_certificate() {
    let manager = Manager::new(&autocert(&["a.example"], "")).expect("new");
    manager.store.install("a.example", issued("a.example"));
    let challenge = challenge::alpn_certificate("a.example", &[1; 32]).expect("cert");
    let challenge_der = challenge.cert[0].clone();
    manager.store.challenges.put_alpn("a.example", challenge);
    let (cert, alpn) = handshake(slot(&manager), "a.example", &[ACME_TLS_ALPN])
        .await
        .expect("challenge");
    assert_eq!(cert, challenge_der);
    assert_eq!(alpn.as_deref(), Some(ACME_TLS_ALPN));
    // A client that offers other protocols too is not a validation.
    let (cert, alpn) = handshake(slot(&manager), "a.example", &[b"h2", ACME_TLS_ALPN])
        .await
        .expect("normal");
    assert_ne!(cert, challenge_der);
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    manager.store.challenges.remove_alpn("a.example");
    assert!(
        handshake(slot(&manager), "a.example", &[ACME_TLS_ALPN])
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_whitelisted_host_is_ordered_at_start_and_failures_are_retried() {
    // A directory nobody serves: the order fails, the handshake that waited
    // for it fails with it, and the host stays managed for the retry.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let mut cfg = autocert(&["a.example"], "");
    cfg.acme_directory_url = format!("https://127.0.0.1:{port}/dir");
    let manager = Manager::new(&cfg).expect("new");
    let stop = CancellationToken::new();
    assert!(manager.start(&stop).expect("start").is_none());
    let e = handshake(slot(&manager), "a.example", &[])
        .await
        .expect_err("no certificate");
    assert_ne!(e, "timeout");
    assert!(manager.store.hosts.lock().contains_key("a.example"));
    assert!(manager.start(&stop).is_err(), "started twice");
    stop.cancel();
}
