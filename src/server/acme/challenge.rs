//! The two ways Rotor proves to the ACME CA that it answers for a host:
//!
//! * TLS-ALPN-01 (RFC 8737) on the TLS port itself: a handshake that offers
//!   only the `acme-tls/1` protocol gets a self-signed certificate carrying
//!   the key authorization's digest;
//! * HTTP-01 on `http_addr` (when `tls_autocert.http` is on): the key
//!   authorization at `/.well-known/acme-challenge/<token>`. Tokens are also
//!   written to `cache_dir`, so a node that shares the directory answers
//!   for another. Any other request there is redirected to HTTPS, as Go's
//!   autocert handler does.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use parking_lot::RwLock;
use rustls::pki_types::PrivateKeyDer;
use rustls::sign::CertifiedKey;

use super::Store;

/// The ALPN protocol of TLS-ALPN-01.
pub(crate) const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

const CHALLENGE_PATH: &str = "/.well-known/acme-challenge/";

/// Challenge responses being served.
#[derive(Debug, Default)]
pub(crate) struct Challenges {
    /// HTTP-01: token → key authorization.
    http: RwLock<HashMap<String, String>>,
    /// TLS-ALPN-01: host → certificate.
    alpn: RwLock<HashMap<String, Arc<CertifiedKey>>>,
}

impl Challenges {
    pub(crate) fn put_http(&self, token: &str, key_authorization: &str) {
        self.http
            .write()
            .insert(token.to_string(), key_authorization.to_string());
    }

    pub(crate) fn remove_http(&self, token: &str) {
        self.http.write().remove(token);
    }

    pub(crate) fn http(&self, token: &str) -> Option<String> {
        self.http.read().get(token).cloned()
    }

    pub(crate) fn put_alpn(&self, host: &str, cert: Arc<CertifiedKey>) {
        self.alpn.write().insert(host.to_string(), cert);
    }

    pub(crate) fn remove_alpn(&self, host: &str) {
        self.alpn.write().remove(host);
    }

    pub(crate) fn alpn(&self, host: &str) -> Option<Arc<CertifiedKey>> {
        self.alpn.read().get(host).cloned()
    }
}

/// The TLS-ALPN-01 certificate for `host`: self-signed, with the
/// `acmeIdentifier` extension holding `digest` (SHA-256 of the key
/// authorization).
pub(crate) fn alpn_certificate(host: &str, digest: &[u8]) -> Result<Arc<CertifiedKey>, String> {
    let key =
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| e.to_string())?;
    let mut params =
        rcgen::CertificateParams::new(vec![host.to_string()]).map_err(|e| e.to_string())?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    // Not `CertifiedKey::from_der`: its key check parses the certificate
    // with webpki, which refuses the critical `acmeIdentifier` extension.
    let signer = rustls::crypto::aws_lc_rs::default_provider()
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(key.serialize_der().into()))
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signer,
    )))
}

/// The cache entry of an HTTP-01 token.
pub(crate) fn http_token_entry(token: &str) -> String {
    format!("{token}+http-01")
}

/// The HTTP-01 server's routes.
pub(crate) fn router(store: Arc<Store>) -> Router {
    Router::new().fallback(handle).with_state(store)
}

async fn handle(State(store): State<Arc<Store>>, req: Request) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host())
        .unwrap_or_default();
    let host = strip_port(host).to_string();
    let Some(token) = req.uri().path().strip_prefix(CHALLENGE_PATH) else {
        return redirect(req.method(), &host, req.uri());
    };
    if store.policy(&host).is_none() {
        return (StatusCode::FORBIDDEN, "host not allowed\n").into_response();
    }
    let answer = match store.challenges.http(token) {
        Some(answer) => Some(answer),
        None => store.cached_http_token(token).await,
    };
    match answer {
        Some(answer) => ([(header::CONTENT_TYPE, "text/plain")], answer).into_response(),
        None => (StatusCode::NOT_FOUND, "404 page not found\n").into_response(),
    }
}

/// GET and HEAD go to the same URL over HTTPS (the default port); anything
/// else is told to use HTTPS.
fn redirect(method: &Method, host: &str, uri: &axum::http::Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (StatusCode::BAD_REQUEST, "Use HTTPS\n").into_response();
    }
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let target = format!("https://{host}{path}");
    match header::HeaderValue::from_str(&target) {
        Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        Err(_) => (StatusCode::BAD_REQUEST, "Use HTTPS\n").into_response(),
    }
}

/// `host` without its `:port` (IPv6 literals keep their brackets).
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(h, _)| &host[..=h.len()]);
    }
    host.split_once(':').map_or(host, |(h, _)| h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_stripped() {
        assert_eq!(strip_port("a.example:80"), "a.example");
        assert_eq!(strip_port("a.example"), "a.example");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
    }

    #[test]
    fn alpn_certificate_carries_the_digest() {
        let digest = [0x5a; 32];
        let cert = alpn_certificate("a.example", &digest).expect("cert");
        assert_eq!(cert.cert.len(), 1);
        let der = cert.cert[0].as_ref();
        assert!(der.windows(32).any(|w| w == digest), "digest inside");
        assert!(der.windows(9).any(|w| w == b"a.example"), "host inside");
    }
}
