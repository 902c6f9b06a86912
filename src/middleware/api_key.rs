//! API key authentication for the server API, as a tower layer.
//!
//! HTTP (`spec/server-api.md` §2.2): skipped when `http_api.insecure`; with
//! an empty key every request is refused; else `X-API-Key` (when present and
//! non-empty it alone decides), then `Authorization: apikey <KEY>` (scheme
//! case-insensitive), then `?api_key=<KEY>`. Refusal: 401, empty body.
//!
//! gRPC (§2.8): only when a key is set, and only for the `CentrifugoApi`
//! service (health and reflection stay open): the first `authorization`
//! metadata value must be exactly `apikey <KEY>`. Refusal: status
//! `UNAUTHENTICATED`, message `unauthenticated`.
//!
//! Keys are compared in constant time and never logged.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::{Either, Ready, ready};
use http::{HeaderMap, Request, Response, StatusCode, Uri, header};
use subtle::ConstantTimeEq;
use tower::{Layer, Service};

/// gRPC path prefix of the API service that the key protects.
const GRPC_API_PATH: &str = "/centrifugal.centrifugo.api.CentrifugoApi/";

#[derive(Debug, Clone)]
enum Mode {
    /// No check at all.
    Open,
    /// HTTP rules; an empty key refuses everything.
    Http(Arc<[u8]>),
    /// gRPC metadata rule.
    Grpc(Arc<[u8]>),
}

/// The API key layer (see the module docs for the rules).
#[derive(Debug, Clone)]
pub(crate) struct ApiKeyLayer {
    mode: Mode,
}

impl ApiKeyLayer {
    /// HTTP API rules for `key`; `insecure` turns the check off.
    pub(crate) fn http(key: &str, insecure: bool) -> Self {
        let mode = if insecure {
            Mode::Open
        } else {
            Mode::Http(Arc::from(key.as_bytes()))
        };
        Self { mode }
    }

    /// gRPC API rules; an empty `key` turns the check off.
    pub(crate) fn grpc(key: &str) -> Self {
        let mode = if key.is_empty() {
            Mode::Open
        } else {
            Mode::Grpc(Arc::from(format!("apikey {key}").as_bytes()))
        };
        Self { mode }
    }
}

impl<S> Layer<S> for ApiKeyLayer {
    type Service = ApiKey<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ApiKey {
            inner,
            mode: self.mode.clone(),
        }
    }
}

/// The service produced by [`ApiKeyLayer`].
#[derive(Debug, Clone)]
pub(crate) struct ApiKey<S> {
    inner: S,
    mode: Mode,
}

fn eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Decodes a `%XX`/`+` escaped query component.
fn unescape(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// The HTTP API key rules.
pub(crate) fn http_authorized(key: &[u8], headers: &HeaderMap, uri: &Uri) -> bool {
    if key.is_empty() {
        return false;
    }
    if let Some(v) = headers.get("x-api-key").filter(|v| !v.is_empty()) {
        return eq(v.as_bytes(), key);
    }
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let text = String::from_utf8_lossy(auth.as_bytes());
        let parts: Vec<&str> = text.split_whitespace().collect();
        if let [scheme, value] = parts[..]
            && scheme.eq_ignore_ascii_case("apikey")
            && eq(value.as_bytes(), key)
        {
            return true;
        }
    }
    if let Some(query) = uri.query() {
        let value = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("api_key="));
        if let Some(value) = value {
            return eq(&unescape(value), key);
        }
    }
    false
}

/// The gRPC API key rule: `expected` is `apikey <KEY>`.
fn grpc_authorized(expected: &[u8], headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .is_some_and(|v| eq(v.as_bytes(), expected))
}

impl<S, B, RB> Service<Request<B>> for ApiKey<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    RB: Default,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response<RB>, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let refusal = match &self.mode {
            Mode::Open => None,
            Mode::Http(key) => (!http_authorized(key, req.headers(), req.uri())).then(|| {
                let mut resp = Response::new(RB::default());
                *resp.status_mut() = StatusCode::UNAUTHORIZED;
                resp
            }),
            Mode::Grpc(expected) => (req.uri().path().starts_with(GRPC_API_PATH)
                && !grpc_authorized(expected, req.headers()))
            .then(|| tonic::Status::unauthenticated("unauthenticated").into_http()),
        };
        match refusal {
            Some(resp) => Either::Left(ready(Ok(resp))),
            None => Either::Right(self.inner.call(req)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                v.parse().expect("value"),
            );
        }
        h
    }

    fn uri(s: &str) -> Uri {
        s.parse().expect("uri")
    }

    #[test]
    fn http_rules_in_order() {
        let key = b"secret";
        let plain = uri("/api/publish");
        assert!(http_authorized(
            key,
            &headers(&[("x-api-key", "secret")]),
            &plain
        ));
        assert!(!http_authorized(
            key,
            &headers(&[("x-api-key", "nope")]),
            &plain
        ));
        // X-API-Key present decides alone, even with a valid Authorization.
        assert!(!http_authorized(
            key,
            &headers(&[("x-api-key", "nope"), ("authorization", "apikey secret")]),
            &plain
        ));
        assert!(http_authorized(
            key,
            &headers(&[("authorization", "APIKEY secret")]),
            &plain
        ));
        assert!(!http_authorized(
            key,
            &headers(&[("authorization", "Bearer secret")]),
            &plain
        ));
        assert!(!http_authorized(
            key,
            &headers(&[("authorization", "apikey secret x")]),
            &plain
        ));
        assert!(http_authorized(
            key,
            &HeaderMap::new(),
            &uri("/api?a=1&api_key=secret")
        ));
        assert!(http_authorized(
            b"a b+",
            &HeaderMap::new(),
            &uri("/api?api_key=a+b%2B")
        ));
        assert!(!http_authorized(
            key,
            &HeaderMap::new(),
            &uri("/api?api_key=other")
        ));
        assert!(!http_authorized(
            b"",
            &headers(&[("x-api-key", "")]),
            &plain
        ));
    }

    #[test]
    fn grpc_rule_is_exact() {
        assert!(grpc_authorized(
            b"apikey k",
            &headers(&[("authorization", "apikey k")])
        ));
        assert!(!grpc_authorized(
            b"apikey k",
            &headers(&[("authorization", "APIKEY k")])
        ));
        assert!(!grpc_authorized(b"apikey k", &HeaderMap::new()));
    }

    #[test]
    fn unescape_handles_bad_escapes() {
        assert_eq!(unescape("%zz%4"), b"%zz%4".to_vec());
        assert_eq!(unescape("%41"), b"A".to_vec());
    }
}
