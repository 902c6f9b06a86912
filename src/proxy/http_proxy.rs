//! The HTTP JSON proxy (spec/server-api.md §3.4): `POST <endpoint>` with
//! the request message as Centrifugo's JSON, answered by HTTP 200 and the
//! response message as JSON. Non-200 statuses go through
//! `http.status_to_code_transforms`.

use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue};

use super::{CallContext, ProxyError, ProxyResponse, headers};
use crate::config::Tls;
use crate::config::{ProxyConfig, StatusTransform};
use crate::proto::proxy as pb;

/// Idle keep-alive connections kept per backend host (as Centrifugo).
const MAX_IDLE_PER_HOST: usize = 255;

/// A pooled HTTP client bound to one endpoint.
pub(crate) struct HttpTransport {
    client: reqwest::Client,
    url: reqwest::Url,
}

impl HttpTransport {
    /// Builds the client; `key` names the proxy in errors.
    pub(crate) fn new(key: &str, cfg: &ProxyConfig) -> Result<Self, String> {
        let url = reqwest::Url::parse(&cfg.endpoint)
            .map_err(|e| format!("{key}.endpoint: invalid URL: {e}"))?;
        let mut builder = reqwest::Client::builder()
            .pool_max_idle_per_host(MAX_IDLE_PER_HOST)
            .connect_timeout(cfg.timeout.get())
            .timeout(cfg.timeout.get());
        if cfg.http.tls.enabled {
            builder = tls(builder, &cfg.http.tls, &format!("{key}.http.tls"))?;
        }
        let client = builder
            .build()
            .map_err(|e| format!("{key}: cannot build HTTP client: {e}"))?;
        Ok(Self { client, url })
    }

    /// Posts `req` and decodes the answer.
    pub(crate) async fn call<Req, Resp>(
        &self,
        cfg: &ProxyConfig,
        ctx: &CallContext,
        req: &Req,
    ) -> Result<Resp, ProxyError>
    where
        Req: serde::Serialize,
        Resp: ProxyResponse,
    {
        let body = serde_json::to_vec(req).map_err(|e| ProxyError::Encode(e.to_string()))?;
        let mut hdrs: HeaderMap = headers::outgoing(cfg, &cfg.http.static_headers, ctx);
        hdrs.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let timeout = cfg.timeout.get();
        let send = async {
            let resp = self
                .client
                .post(self.url.clone())
                .headers(hdrs)
                .body(body)
                .send()
                .await
                .map_err(|e| request_error(e, timeout))?;
            let status = resp.status().as_u16();
            if status != 200 {
                return match transform(&cfg.http.status_to_code_transforms, status) {
                    Some(r) => Ok(r),
                    None => Err(ProxyError::Status(status)),
                };
            }
            let bytes = resp.bytes().await.map_err(|e| request_error(e, timeout))?;
            serde_json::from_slice::<Resp>(&bytes).map_err(|e| ProxyError::Decode(e.to_string()))
        };
        // The client timeout covers the body too; this bounds everything.
        match tokio::time::timeout(timeout, send).await {
            Ok(r) => r,
            Err(_) => Err(ProxyError::Timeout(timeout)),
        }
    }
}

/// Maps a reqwest failure, leaving the URL out (it may carry credentials).
fn request_error(e: reqwest::Error, timeout: std::time::Duration) -> ProxyError {
    if e.is_timeout() {
        return ProxyError::Timeout(timeout);
    }
    if e.is_decode() || e.is_body() {
        return ProxyError::Decode(e.without_url().to_string());
    }
    ProxyError::Transport(error_chain(&e.without_url()))
}

/// An error with its sources ("connection refused" sits deep in the chain).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The response a status transform makes of a non-200 status, if any.
fn transform<Resp: ProxyResponse>(rules: &[StatusTransform], status: u16) -> Option<Resp> {
    let rule = rules.iter().find(|r| r.status_code == status)?;
    if let Some(d) = &rule.to_disconnect {
        return Some(Resp::with_disconnect(pb::Disconnect {
            code: d.code,
            reason: d.reason.clone(),
        }));
    }
    let e = rule.to_error.as_ref()?;
    Some(Resp::with_error(pb::Error {
        code: e.code,
        message: e.message.clone(),
        temporary: e.temporary,
    }))
}

/// Reads a PEM value: inline PEM text, or else a path to a PEM file.
pub(crate) fn pem(value: &str, key: &str) -> Result<Vec<u8>, String> {
    if value.trim_start().starts_with("-----BEGIN") {
        return Ok(value.as_bytes().to_vec());
    }
    std::fs::read(value).map_err(|e| format!("{key}: {e}"))
}

/// Applies a client TLS object to the HTTP client.
fn tls(
    mut builder: reqwest::ClientBuilder,
    tls: &Tls,
    key: &str,
) -> Result<reqwest::ClientBuilder, String> {
    if !tls.server_ca_pem.is_empty() {
        let ca = pem(&tls.server_ca_pem, &format!("{key}.server_ca_pem"))?;
        let certs = reqwest::Certificate::from_pem_bundle(&ca)
            .map_err(|e| format!("{key}.server_ca_pem: {e}"))?;
        for c in certs {
            builder = builder.add_root_certificate(c);
        }
    }
    if !tls.cert_pem.is_empty() || !tls.key_pem.is_empty() {
        let mut both = pem(&tls.cert_pem, &format!("{key}.cert_pem"))?;
        both.push(b'\n');
        both.extend(pem(&tls.key_pem, &format!("{key}.key_pem"))?);
        let id = reqwest::Identity::from_pem(&both).map_err(|e| format!("{key}.cert_pem: {e}"))?;
        builder = builder.identity(id);
    }
    if tls.insecure_skip_verify {
        builder = builder.tls_danger_accept_invalid_certs(true);
    }
    Ok(builder)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{TransformDisconnect, TransformError};

    #[test]
    fn transforms_pick_by_status() {
        let rules = vec![
            StatusTransform {
                status_code: 403,
                to_error: Some(TransformError {
                    code: 1403,
                    message: "forbidden".into(),
                    temporary: false,
                }),
                to_disconnect: None,
            },
            StatusTransform {
                status_code: 401,
                to_error: None,
                to_disconnect: Some(TransformDisconnect {
                    code: 4501,
                    reason: "unauthorized".into(),
                }),
            },
        ];
        let r: pb::ConnectResponse = transform(&rules, 403).expect("rule");
        assert_eq!(r.error.expect("error").code, 1403);
        let r: pb::RpcResponse = transform(&rules, 401).expect("rule");
        assert_eq!(r.disconnect.expect("disconnect").code, 4501);
        assert!(transform::<pb::RpcResponse>(&rules, 500).is_none());
    }
}
