//! Proxies (event hooks): Rotor asks an application backend to decide on a
//! connect, refresh, subscribe, publish, RPC or subscription refresh
//! (spec/server-api.md §3). A proxy speaks HTTP JSON (`http(s)://`
//! endpoint) or gRPC (`centrifugal.centrifugo.proxy.CentrifugoProxy`);
//! both carry the messages of [`crate::proto::proxy`].
//!
//! [`Proxies`] holds every configured proxy, built once from the config;
//! the session picks one per event and calls it through [`ProxyClient`].
//! A gRPC proxy can also serve subscription streams
//! ([`ProxyClient::subscribe_stream`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use http::HeaderMap;

use crate::config::Config;
use crate::proto::proxy as pb;

mod grpc;
mod headers;
mod http_proxy;

pub(crate) use crate::config::ProxyConfig;
pub(crate) use pb::{
    ConnectRequest, ConnectResponse, PublishRequest, PublishResponse, RefreshRequest,
    RefreshResponse, RpcRequest, RpcResponse, SubRefreshRequest, SubRefreshResponse,
    SubscribeRequest, SubscribeResponse,
};

/// The name of the unnamed proxy of a section (`channel.proxy.<kind>`,
/// `rpc.proxy`); reserved, so no `proxies[]` item can take it.
pub(crate) use crate::config::DEFAULT_PROXY_NAME as DEFAULT_NAME;

/// What the session knows about the client, for forwarding (§3.6).
/// Captured at connect time and reused for every later proxy call of the
/// connection.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// Headers of the client's transport request (WebSocket upgrade, HTTP
    /// streaming request…), forwarded when listed in `http_headers`.
    pub headers: HeaderMap,
    /// Emulated headers the client sent inside its connect command,
    /// forwarded when listed in `emulated_headers`.
    pub emulated_headers: HeaderMap,
    /// Incoming gRPC metadata of a gRPC client transport, forwarded when
    /// listed in `grpc_metadata` and the client has no HTTP headers.
    pub grpc_metadata: HeaderMap,
    /// The client's address (for logs).
    pub remote_addr: Option<SocketAddr>,
}

impl CallContext {
    /// Builds a header map from name/value pairs (e.g. the emulated
    /// `headers` of a connect command), skipping pairs that are not valid
    /// HTTP headers. Names are lower-cased.
    pub(crate) fn header_map<K: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> HeaderMap {
        let mut out = HeaderMap::new();
        for (k, v) in pairs {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(k.as_ref().to_ascii_lowercase().as_bytes()),
                http::HeaderValue::from_str(v.as_ref()),
            ) {
                out.append(name, value);
            }
        }
        out
    }
}

/// Why a proxy call produced no decision. The session maps every variant
/// to its "unexpected failure" path (§3.7): error 100 for connect /
/// subscribe / publish / rpc, a 60 s extension for refresh / sub_refresh.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Connecting to or talking with the backend failed.
    #[error("proxy transport error: {0}")]
    Transport(String),
    /// No complete answer within the proxy `timeout`.
    #[error("proxy call timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// The HTTP backend answered a non-200 status no transform matched.
    #[error("proxy answered HTTP status {0}")]
    Status(u16),
    /// The gRPC backend answered an error status.
    #[error("proxy answered gRPC status {code:?}: {message}")]
    Grpc {
        /// The gRPC status code.
        code: tonic::Code,
        /// The status message.
        message: String,
    },
    /// The request could not be encoded (e.g. non-JSON data for a JSON
    /// body without `binary_encoding`).
    #[error("cannot encode proxy request: {0}")]
    Encode(String),
    /// The response body was not a valid response message.
    #[error("cannot decode proxy response: {0}")]
    Decode(String),
}

/// A response message carrying `result` / `error` / `disconnect`, which a
/// status transform can fill.
pub(crate) trait ProxyResponse:
    prost::Message + Default + serde::de::DeserializeOwned + Send + 'static
{
    /// A response holding only `error`.
    fn with_error(error: pb::Error) -> Self;
    /// A response holding only `disconnect`.
    fn with_disconnect(disconnect: pb::Disconnect) -> Self;
}

macro_rules! proxy_response {
    ($($t:ty),*) => {$(
        impl ProxyResponse for $t {
            fn with_error(error: pb::Error) -> Self {
                Self { error: Some(error), ..Default::default() }
            }
            fn with_disconnect(disconnect: pb::Disconnect) -> Self {
                Self { disconnect: Some(disconnect), ..Default::default() }
            }
        }
    )*};
}

proxy_response!(
    ConnectResponse,
    RefreshResponse,
    SubscribeResponse,
    PublishResponse,
    RpcResponse,
    SubRefreshResponse
);

/// One hook: its label and its gRPC method path.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hook {
    /// `connect`, `refresh`, … (logs).
    pub(crate) name: &'static str,
    /// `/centrifugal.centrifugo.proxy.CentrifugoProxy/<Rpc>`.
    pub(crate) path: &'static str,
}

macro_rules! hook {
    ($name:literal, $rpc:literal) => {
        Hook {
            name: $name,
            path: concat!("/centrifugal.centrifugo.proxy.CentrifugoProxy/", $rpc),
        }
    };
}

enum Transport {
    Http(http_proxy::HttpTransport),
    Grpc(grpc::GrpcTransport),
}

/// One configured proxy: its options and a pooled connection to the
/// backend.
pub struct ProxyClient {
    cfg: ProxyConfig,
    transport: Transport,
}

impl std::fmt::Debug for ProxyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Options hold secrets (static headers, credentials): not printed.
        f.debug_struct("ProxyClient")
            .field("name", &self.cfg.label())
            .field("endpoint", &self.cfg.endpoint)
            .finish_non_exhaustive()
    }
}

impl ProxyClient {
    /// Builds the client of one proxy object (`key` names it in errors).
    pub fn new(key: &str, cfg: ProxyConfig) -> Result<Self, String> {
        if cfg.endpoint.is_empty() {
            return Err(format!("{key}.endpoint: proxy endpoint not set"));
        }
        let transport = if cfg.is_http() {
            Transport::Http(http_proxy::HttpTransport::new(key, &cfg)?)
        } else {
            Transport::Grpc(grpc::GrpcTransport::new(key, &cfg)?)
        };
        Ok(Self { cfg, transport })
    }

    /// The proxy's options.
    pub(crate) fn config(&self) -> &ProxyConfig {
        &self.cfg
    }

    /// The proxy's name (`default` for unnamed proxies).
    pub fn name(&self) -> &str {
        self.cfg.label()
    }

    /// Client payloads go base64-encoded into `b64data`, and `encoding` is
    /// `binary` (the `binary_encoding` option).
    pub fn binary_encoding(&self) -> bool {
        self.cfg.binary_encoding
    }

    /// Connection meta is to be included in requests
    /// (`include_connection_meta`).
    pub(crate) fn include_connection_meta(&self) -> bool {
        self.cfg.include_connection_meta
    }

    /// The per-call timeout.
    pub fn timeout(&self) -> std::time::Duration {
        self.cfg.timeout.get()
    }

    /// Asks whether a client without a token may connect, and as whom.
    pub async fn connect(
        &self,
        ctx: &CallContext,
        req: ConnectRequest,
    ) -> Result<ConnectResponse, ProxyError> {
        self.call(hook!("connect", "Connect"), ctx, req).await
    }

    /// Asks to extend an expiring connection.
    pub async fn refresh(
        &self,
        ctx: &CallContext,
        req: RefreshRequest,
    ) -> Result<RefreshResponse, ProxyError> {
        self.call(hook!("refresh", "Refresh"), ctx, req).await
    }

    /// Asks whether a client may subscribe.
    pub async fn subscribe(
        &self,
        ctx: &CallContext,
        req: SubscribeRequest,
    ) -> Result<SubscribeResponse, ProxyError> {
        self.call(hook!("subscribe", "Subscribe"), ctx, req).await
    }

    /// Asks whether (and what) a client may publish.
    pub async fn publish(
        &self,
        ctx: &CallContext,
        req: PublishRequest,
    ) -> Result<PublishResponse, ProxyError> {
        self.call(hook!("publish", "Publish"), ctx, req).await
    }

    /// Forwards a client RPC.
    pub async fn rpc(&self, ctx: &CallContext, req: RpcRequest) -> Result<RpcResponse, ProxyError> {
        self.call(hook!("rpc", "RPC"), ctx, req).await
    }

    /// Asks to extend an expiring subscription.
    pub async fn sub_refresh(
        &self,
        ctx: &CallContext,
        req: SubRefreshRequest,
    ) -> Result<SubRefreshResponse, ProxyError> {
        self.call(hook!("sub_refresh", "SubRefresh"), ctx, req)
            .await
    }

    /// Opens a subscription stream (bidirectional when `bidirectional`);
    /// returns the backend's subscribe decision (its first message) and the
    /// open stream. Only gRPC proxies can stream.
    pub(crate) async fn subscribe_stream(
        &self,
        ctx: &CallContext,
        req: SubscribeRequest,
        bidirectional: bool,
    ) -> Result<(SubscribeResponse, SubscribeStream), ProxyError> {
        let res = match &self.transport {
            Transport::Http(_) => Err(ProxyError::Transport(
                "subscription streams need a gRPC proxy".into(),
            )),
            Transport::Grpc(t) => t.subscribe_stream(&self.cfg, ctx, req, bidirectional).await,
        };
        if let Err(e) = &res {
            tracing::warn!(
                proxy = self.cfg.label(),
                hook = "subscribe_stream",
                error = %e,
                "proxy call failed"
            );
        }
        res
    }

    async fn call<Req, Resp>(
        &self,
        hook: Hook,
        ctx: &CallContext,
        req: Req,
    ) -> Result<Resp, ProxyError>
    where
        Req: prost::Message + serde::Serialize + Send + 'static,
        Resp: ProxyResponse,
    {
        let res = match &self.transport {
            Transport::Http(t) => t.call(&self.cfg, ctx, &req).await,
            Transport::Grpc(t) => t.call(&self.cfg, hook, ctx, req).await,
        };
        if let Err(e) = &res {
            tracing::warn!(
                proxy = self.cfg.label(),
                hook = hook.name,
                error = %e,
                "proxy call failed"
            );
        }
        res
    }
}

/// An open subscription stream after its first message: the backend's
/// later messages and, for a bidirectional stream, the way up. Dropping it
/// cancels the stream at the backend.
#[derive(Debug)]
pub(crate) struct SubscribeStream {
    replies: tonic::Streaming<pb::StreamSubscribeResponse>,
    upstream: Option<tokio::sync::mpsc::Sender<pb::StreamSubscribeRequest>>,
}

impl SubscribeStream {
    /// Splits the stream into its reading half and, when bidirectional, its
    /// writing half.
    pub(crate) fn split(self) -> (StreamReader, Option<StreamWriter>) {
        (
            StreamReader {
                replies: self.replies,
            },
            self.upstream.map(|tx| StreamWriter { tx }),
        )
    }
}

/// The reading half of a subscription stream.
#[derive(Debug)]
pub(crate) struct StreamReader {
    replies: tonic::Streaming<pb::StreamSubscribeResponse>,
}

impl StreamReader {
    /// The next publication; `Ok(None)` when the backend ended the stream.
    /// Messages without a publication are skipped.
    pub(crate) async fn next(&mut self) -> Result<Option<pb::Publication>, ProxyError> {
        loop {
            let msg = self.replies.message().await.map_err(|s| ProxyError::Grpc {
                code: s.code(),
                message: s.message().to_string(),
            })?;
            match msg {
                None => return Ok(None),
                Some(m) => {
                    if let Some(p) = m.publication {
                        return Ok(Some(p));
                    }
                }
            }
        }
    }
}

/// The writing half of a bidirectional subscription stream.
#[derive(Debug, Clone)]
pub(crate) struct StreamWriter {
    tx: tokio::sync::mpsc::Sender<pb::StreamSubscribeRequest>,
}

impl StreamWriter {
    /// Sends client data up the stream (waits while the stream is full).
    pub(crate) async fn publish(&self, data: bytes::Bytes) -> Result<(), ProxyError> {
        let msg = pb::StreamSubscribeRequest {
            subscribe_request: None,
            publication: Some(pb::Publication {
                data,
                ..Default::default()
            }),
        };
        self.tx
            .send(msg)
            .await
            .map_err(|_| ProxyError::Transport("subscription stream closed".into()))
    }
}

/// Every configured proxy, built once from the config.
#[derive(Debug, Default)]
pub struct Proxies {
    connect: Option<Arc<ProxyClient>>,
    refresh: Option<Arc<ProxyClient>>,
    subscribe: Option<Arc<ProxyClient>>,
    publish: Option<Arc<ProxyClient>>,
    sub_refresh: Option<Arc<ProxyClient>>,
    subscribe_stream: Option<Arc<ProxyClient>>,
    rpc: Option<Arc<ProxyClient>>,
    named: HashMap<String, Arc<ProxyClient>>,
    /// Some proxy forwards client headers (`http_headers` not empty).
    forwards_headers: bool,
}

impl Proxies {
    /// Builds every proxy the config defines. Connect and refresh proxies
    /// are built when enabled; the unnamed channel and RPC proxies and the
    /// `proxies[]` items whenever they have an endpoint. Errors name the
    /// config key.
    pub fn from_config(cfg: &Config) -> Result<Self, String> {
        let mut out = Self::default();
        let c = &cfg.client.proxy;
        for (kind, p, slot) in [
            ("connect", &c.connect, &mut out.connect),
            ("refresh", &c.refresh, &mut out.refresh),
        ] {
            let key = format!("client.proxy.{kind}");
            p.check(&key)?;
            if p.enabled {
                *slot = Some(Arc::new(ProxyClient::new(&key, p.clone())?));
            }
        }
        let ch = &cfg.channel.proxy;
        for (kind, p, slot) in [
            ("subscribe", &ch.subscribe, &mut out.subscribe),
            ("publish", &ch.publish, &mut out.publish),
            ("sub_refresh", &ch.sub_refresh, &mut out.sub_refresh),
            (
                "subscribe_stream",
                &ch.subscribe_stream,
                &mut out.subscribe_stream,
            ),
        ] {
            *slot = optional(&format!("channel.proxy.{kind}"), p)?;
        }
        out.rpc = optional("rpc.proxy", &cfg.rpc.proxy)?;
        for (i, p) in cfg.proxies.iter().enumerate() {
            let key = format!("proxies[{i}]");
            p.check(&key)?;
            if p.name.is_empty() || p.name == DEFAULT_NAME {
                return Err(format!(
                    "{key}.name: a proxy name other than \"default\" is required"
                ));
            }
            if out.named.contains_key(&p.name) {
                return Err(format!("{key}.name: duplicate proxy name {:?}", p.name));
            }
            let name = p.name.clone();
            out.named
                .insert(name, Arc::new(ProxyClient::new(&key, p.clone())?));
        }
        out.forwards_headers = [
            &out.connect,
            &out.refresh,
            &out.subscribe,
            &out.publish,
            &out.sub_refresh,
            &out.subscribe_stream,
            &out.rpc,
        ]
        .into_iter()
        .flatten()
        .chain(out.named.values())
        .any(|p| !p.config().http_headers.is_empty());
        Ok(out)
    }

    /// Whether any proxy forwards headers of the client's HTTP request, so
    /// transports must keep them.
    pub(crate) fn forwards_headers(&self) -> bool {
        self.forwards_headers
    }

    /// The connect proxy, when `client.proxy.connect.enabled`.
    pub fn connect(&self) -> Option<&ProxyClient> {
        self.connect.as_deref()
    }

    /// The refresh proxy, when `client.proxy.refresh.enabled`.
    pub fn refresh(&self) -> Option<&ProxyClient> {
        self.refresh.as_deref()
    }

    /// The subscribe proxy called `name` (`""`/`default`: `channel.proxy.subscribe`).
    pub fn subscribe(&self, name: &str) -> Option<&ProxyClient> {
        self.pick(&self.subscribe, name)
    }

    /// The publish proxy called `name` (`""`/`default`: `channel.proxy.publish`).
    pub fn publish(&self, name: &str) -> Option<&ProxyClient> {
        self.pick(&self.publish, name)
    }

    /// The sub_refresh proxy called `name` (`""`/`default`: `channel.proxy.sub_refresh`).
    pub fn sub_refresh(&self, name: &str) -> Option<&ProxyClient> {
        self.pick(&self.sub_refresh, name)
    }

    /// The subscribe stream proxy called `name` (`""`/`default`:
    /// `channel.proxy.subscribe_stream`).
    pub(crate) fn subscribe_stream(&self, name: &str) -> Option<&ProxyClient> {
        self.pick(&self.subscribe_stream, name)
    }

    /// The RPC proxy called `name` (`""`/`default`: `rpc.proxy`).
    pub fn rpc(&self, name: &str) -> Option<&ProxyClient> {
        self.pick(&self.rpc, name)
    }

    fn pick<'a>(
        &'a self,
        default: &'a Option<Arc<ProxyClient>>,
        name: &str,
    ) -> Option<&'a ProxyClient> {
        if name.is_empty() || name == DEFAULT_NAME {
            default.as_deref()
        } else {
            self.named.get(name).map(|p| &**p)
        }
    }
}

/// A proxy section without `enabled`: built when it has an endpoint.
fn optional(key: &str, p: &ProxyConfig) -> Result<Option<Arc<ProxyClient>>, String> {
    p.check(key)?;
    if p.endpoint.is_empty() {
        return Ok(None);
    }
    Ok(Some(Arc::new(ProxyClient::new(key, p.clone())?)))
}
