//! The gRPC proxy: unary calls of `CentrifugoProxy` over one lazily
//! connected HTTP/2 channel per proxy (h2c, or TLS with `grpc.tls`), with
//! forwarded and static metadata, optional credentials metadata and gzip;
//! and the subscription streams (`SubscribeUnidirectional`,
//! `SubscribeBidirectional`) over the same channel.

use std::sync::OnceLock;

use http::uri::PathAndQuery;
use tokio::sync::mpsc;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::http_proxy::pem;
use super::{CallContext, Hook, ProxyError, ProxyResponse, SubscribeStream, headers};
use crate::config::ProxyConfig;
use crate::proto::proxy as pb;

/// Client publications that may wait to go up a bidirectional stream.
const UPSTREAM_CAPACITY: usize = 64;

/// A gRPC client bound to one target.
pub(crate) struct GrpcTransport {
    endpoint: Endpoint,
    /// Created on first use (building a channel needs a Tokio runtime).
    channel: OnceLock<Channel>,
    credentials: Option<(AsciiMetadataKey, AsciiMetadataValue)>,
}

impl GrpcTransport {
    /// Checks the target and TLS options; `key` names the proxy in errors.
    pub(crate) fn new(key: &str, cfg: &ProxyConfig) -> Result<Self, String> {
        let target = cfg
            .endpoint
            .strip_prefix("grpc://")
            .unwrap_or(&cfg.endpoint);
        let tls = cfg.grpc.tls.enabled;
        let uri = format!("{}://{target}", if tls { "https" } else { "http" });
        let mut endpoint = Endpoint::from_shared(uri)
            .map_err(|e| format!("{key}.endpoint: invalid gRPC target {target:?}: {e}"))?
            .connect_timeout(cfg.timeout.get())
            .tcp_nodelay(true);
        if tls {
            let k = format!("{key}.grpc.tls");
            let t = &cfg.grpc.tls;
            let mut c = ClientTlsConfig::new();
            // A configured CA is the only trust anchor; without one the
            // system's roots are trusted (a backend with a public cert).
            if t.server_ca_pem.is_empty() {
                c = c.with_native_roots();
            } else {
                c = c.ca_certificate(Certificate::from_pem(pem(
                    &t.server_ca_pem,
                    &format!("{k}.server_ca_pem"),
                )?));
            }
            if !t.cert_pem.is_empty() || !t.key_pem.is_empty() {
                c = c.identity(Identity::from_pem(
                    pem(&t.cert_pem, &format!("{k}.cert_pem"))?,
                    pem(&t.key_pem, &format!("{k}.key_pem"))?,
                ));
            }
            if !t.server_name.is_empty() {
                c = c.domain_name(t.server_name.clone());
            }
            if t.insecure_skip_verify {
                tracing::warn!(key = %k, "insecure_skip_verify is not supported for gRPC proxies");
            }
            endpoint = endpoint.tls_config(c).map_err(|e| format!("{k}: {e}"))?;
        }
        let credentials = if cfg.grpc.credentials_key.is_empty() {
            None
        } else {
            let k = format!("{key}.grpc.credentials_key");
            let name = AsciiMetadataKey::from_bytes(
                cfg.grpc.credentials_key.to_ascii_lowercase().as_bytes(),
            )
            .map_err(|e| format!("{k}: {e}"))?;
            // The value is a secret: the error does not quote it.
            let value = AsciiMetadataValue::try_from(cfg.grpc.credentials_value.as_str())
                .map_err(|_| format!("{key}.grpc.credentials_value: not valid ASCII metadata"))?;
            Some((name, value))
        };
        Ok(Self {
            endpoint,
            channel: OnceLock::new(),
            credentials,
        })
    }

    fn channel(&self) -> Channel {
        self.channel
            .get_or_init(|| self.endpoint.connect_lazy())
            .clone()
    }

    /// Outgoing metadata of a call: forwarded headers, static metadata and
    /// the credentials pair.
    fn metadata(&self, cfg: &ProxyConfig, ctx: &CallContext) -> MetadataMap {
        let mut metadata =
            MetadataMap::from_headers(headers::outgoing(cfg, &cfg.grpc.static_metadata, ctx));
        if let Some((k, v)) = &self.credentials {
            metadata.insert(k.clone(), v.clone());
        }
        metadata
    }

    /// A client over the shared channel with the proxy's compression.
    fn client(&self, cfg: &ProxyConfig) -> tonic::client::Grpc<Channel> {
        let mut grpc =
            tonic::client::Grpc::new(self.channel()).accept_compressed(CompressionEncoding::Gzip);
        if cfg.grpc.compression {
            grpc = grpc.send_compressed(CompressionEncoding::Gzip);
        }
        grpc
    }

    /// Opens a subscription stream (`SubscribeUnidirectional`, or
    /// `SubscribeBidirectional` whose first message carries `req`) and waits
    /// up to the proxy timeout for the first message, which must hold the
    /// subscribe response. The stream itself has no deadline.
    pub(crate) async fn subscribe_stream(
        &self,
        cfg: &ProxyConfig,
        ctx: &CallContext,
        req: pb::SubscribeRequest,
        bidirectional: bool,
    ) -> Result<(pb::SubscribeResponse, SubscribeStream), ProxyError> {
        let timeout = cfg.timeout.get();
        let metadata = self.metadata(cfg, ctx);
        let mut grpc = self.client(cfg);
        let open = async move {
            grpc.ready()
                .await
                .map_err(|e| ProxyError::Transport(e.to_string()))?;
            let (mut replies, upstream) = if bidirectional {
                let (tx, rx) = mpsc::channel(UPSTREAM_CAPACITY);
                let first = pb::StreamSubscribeRequest {
                    subscribe_request: Some(req),
                    publication: None,
                };
                tx.try_send(first)
                    .map_err(|e| ProxyError::Transport(e.to_string()))?;
                let body = futures_util::stream::unfold(rx, |mut rx| async move {
                    rx.recv().await.map(|m| (m, rx))
                });
                let request = tonic::Request::from_parts(metadata, Default::default(), body);
                let codec = tonic_prost::ProstCodec::<
                    pb::StreamSubscribeRequest,
                    pb::StreamSubscribeResponse,
                >::default();
                let path = PathAndQuery::from_static(concat!(
                    "/centrifugal.centrifugo.proxy.CentrifugoProxy/",
                    "SubscribeBidirectional"
                ));
                let resp = grpc
                    .streaming(request, path, codec)
                    .await
                    .map_err(|s| status_error(s, timeout))?;
                (resp.into_inner(), Some(tx))
            } else {
                let request = tonic::Request::from_parts(metadata, Default::default(), req);
                let codec = tonic_prost::ProstCodec::<
                    pb::SubscribeRequest,
                    pb::StreamSubscribeResponse,
                >::default();
                let path = PathAndQuery::from_static(concat!(
                    "/centrifugal.centrifugo.proxy.CentrifugoProxy/",
                    "SubscribeUnidirectional"
                ));
                let resp = grpc
                    .server_streaming(request, path, codec)
                    .await
                    .map_err(|s| status_error(s, timeout))?;
                (resp.into_inner(), None)
            };
            let first = replies
                .message()
                .await
                .map_err(|s| status_error(s, timeout))?
                .ok_or_else(|| {
                    ProxyError::Decode("stream ended before its first message".into())
                })?;
            let resp = first.subscribe_response.ok_or_else(|| {
                ProxyError::Decode("no subscribe response in the first stream message".into())
            })?;
            Ok((resp, SubscribeStream { replies, upstream }))
        };
        match tokio::time::timeout(timeout, open).await {
            Ok(r) => r,
            Err(_) => Err(ProxyError::Timeout(timeout)),
        }
    }

    /// One unary call of `hook`.
    pub(crate) async fn call<Req, Resp>(
        &self,
        cfg: &ProxyConfig,
        hook: Hook,
        ctx: &CallContext,
        req: Req,
    ) -> Result<Resp, ProxyError>
    where
        Req: prost::Message + Send + 'static,
        Resp: ProxyResponse,
    {
        let timeout = cfg.timeout.get();
        let mut request =
            tonic::Request::from_parts(self.metadata(cfg, ctx), Default::default(), req);
        request.set_timeout(timeout);
        let mut grpc = self.client(cfg);
        let call = async move {
            grpc.ready()
                .await
                .map_err(|e| ProxyError::Transport(e.to_string()))?;
            let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
            grpc.unary(request, PathAndQuery::from_static(hook.path), codec)
                .await
                .map(tonic::Response::into_inner)
                .map_err(|s| status_error(s, timeout))
        };
        match tokio::time::timeout(timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(ProxyError::Timeout(timeout)),
        }
    }
}

/// Maps a call's error status: client-side deadlines become
/// [`ProxyError::Timeout`], client-side connection failures
/// [`ProxyError::Transport`], anything the backend answered
/// [`ProxyError::Grpc`].
fn status_error(s: tonic::Status, timeout: std::time::Duration) -> ProxyError {
    let source = std::error::Error::source(&s);
    let mut chain = source;
    let mut expired = false;
    while let Some(e) = chain {
        expired |= e.is::<tonic::TimeoutExpired>();
        chain = e.source();
    }
    if s.code() == tonic::Code::DeadlineExceeded || expired {
        return ProxyError::Timeout(timeout);
    }
    if source.is_some() {
        return ProxyError::Transport(s.message().to_string());
    }
    ProxyError::Grpc {
        code: s.code(),
        message: s.message().to_string(),
    }
}
