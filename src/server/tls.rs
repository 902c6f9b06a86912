//! TLS for Rotor's own listeners: a rustls server configuration from a
//! Centrifugo `tls` object (`cert_pem`, `key_pem`, optional `client_ca_pem`
//! for client certificates), with the ALPN protocols the listener speaks.
//! The handshake runs in the connection's task, inside its header-read
//! deadline, never in the accept loop.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio_rustls::TlsAcceptor;

use crate::config::types::Tls;

/// Reads a PEM value: inline PEM text, or else a path to a PEM file.
/// `section` and `what` name the key in errors.
pub(crate) fn pem(value: &str, section: &str, what: &str) -> Result<Vec<u8>, String> {
    if value.trim_start().starts_with("-----BEGIN") {
        return Ok(value.as_bytes().to_vec());
    }
    std::fs::read(value).map_err(|e| format!("{section}.{what}: {e}"))
}

/// The acceptor for a listener whose `tls` object is `tls` (`section` names
/// it in errors); `alpn` lists the protocols offered, preferred first.
pub(crate) fn acceptor(tls: &Tls, section: &str, alpn: &[&[u8]]) -> Result<TlsAcceptor, String> {
    let certs = CertificateDer::pem_slice_iter(&pem(&tls.cert_pem, section, "cert_pem")?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{section}.cert_pem: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{section}.cert_pem: no certificate found"));
    }
    let key = PrivateKeyDer::from_pem_slice(&pem(&tls.key_pem, section, "key_pem")?)
        .map_err(|e| format!("{section}.key_pem: {e}"))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("{section}: {e}"))?;
    let builder = if tls.client_ca_pem.is_empty() {
        builder.with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        let pem_bytes = pem(&tls.client_ca_pem, section, "client_ca_pem")?;
        for cert in CertificateDer::pem_slice_iter(&pem_bytes) {
            let cert = cert.map_err(|e| format!("{section}.client_ca_pem: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("{section}.client_ca_pem: {e}"))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| format!("{section}.client_ca_pem: {e}"))?;
        builder.with_client_cert_verifier(verifier)
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("{section}: {e}"))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_key() {
        let tls = Tls {
            enabled: true,
            cert_pem: "/nonexistent/cert.pem".into(),
            key_pem: "/nonexistent/key.pem".into(),
            ..Default::default()
        };
        let e = acceptor(&tls, "grpc_api.tls", &[b"h2"])
            .err()
            .expect("fails");
        assert!(e.starts_with("grpc_api.tls.cert_pem:"), "{e}");
        let tls = Tls {
            cert_pem: "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n".into(),
            ..tls
        };
        let e = acceptor(&tls, "uni_grpc.tls", &[b"h2"])
            .err()
            .expect("fails");
        assert!(e.starts_with("uni_grpc.tls."), "{e}");
    }
}
