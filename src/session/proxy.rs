//! The session side of the connection proxies (connect, refresh, rpc): what
//! the session sends to the application backend and how the answer becomes
//! credentials, an extended expiry, a reply, an error or a disconnect.
//!
//! Shared rules (Centrifugo's): a response's `disconnect` wins over its
//! `error`, which wins over its `result`; a failed call (network, timeout,
//! bad status, undecodable body) is error 100 for the client, except for
//! refresh, which extends the connection by a minute and asks again later.
//! In results the `b64*` field wins over the raw one when set; invalid
//! base64 is error 100.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;

use super::{Fail, Session, now_unix};
use crate::auth::SubOptions;
use crate::proto::client::{ConnectRequest, Reply, RpcRequest, RpcResult};
use crate::proto::proxy as pp;
use crate::protocol::{ClientError, Disconnect, Encoding};
use crate::proxy::{CallContext, ProxyClient, ProxyError};

/// How long a connection lives on when the refresh proxy fails.
pub(super) const REFRESH_RETRY_SECS: i64 = 60;

/// The header block of every client-context proxy request.
pub(super) struct Head {
    pub(crate) client: String,
    pub(crate) transport: String,
    pub(crate) protocol: String,
    pub(crate) encoding: String,
}

/// Who the connect proxy says the client is.
pub(super) struct ProxyCredentials {
    pub(crate) user: String,
    pub(crate) info: Bytes,
    pub(crate) data: Bytes,
    pub(crate) expire_at: Option<i64>,
    pub(crate) subs: BTreeMap<String, SubOptions>,
    pub(crate) meta: Option<Bytes>,
}

/// `b64` decoded when set, else `raw`; bad base64 is error 100.
pub(super) fn b64_or(raw: Bytes, b64: &str) -> Result<Bytes, Fail> {
    if b64.is_empty() {
        return Ok(raw);
    }
    STANDARD.decode(b64).map(Bytes::from).map_err(|e| {
        tracing::warn!(error = %e, "proxy result has invalid base64");
        Fail::Error(ClientError::Internal)
    })
}

/// Client data as the proxy wants it: raw JSON in `data`, or base64 in
/// `b64data` with the proxy's `binary_encoding`.
pub(super) fn payload(p: &ProxyClient, data: &Bytes) -> (Bytes, String) {
    if p.binary_encoding() {
        (Bytes::new(), STANDARD.encode(data))
    } else {
        (data.clone(), String::new())
    }
}

/// The `disconnect` or `error` of a response, in that order of precedence.
pub(super) fn rejection(
    error: Option<pp::Error>,
    disconnect: Option<pp::Disconnect>,
) -> Option<Fail> {
    if let Some(d) = disconnect {
        return Some(Fail::Disconnect(Disconnect::custom(d.code, &d.reason)));
    }
    error.map(|e| {
        Fail::Error(ClientError::Custom {
            code: e.code,
            message: e.message,
            temporary: e.temporary,
        })
    })
}

/// A failed call: logged, error 100 for the client.
pub(super) fn failed(hook: &'static str, e: &ProxyError) -> Fail {
    tracing::warn!(hook, error = %e, "proxy call failed");
    ClientError::Internal.into()
}

impl Session {
    /// Keeps the headers a browser SDK sent inside its connect command, for
    /// proxies that forward `emulated_headers`.
    pub(super) fn capture_emulated_headers(&mut self, req: &ConnectRequest) {
        if req.headers.is_empty() {
            return;
        }
        let mut ctx = CallContext::clone(&self.transport.call);
        ctx.emulated_headers = CallContext::header_map(&req.headers);
        self.transport.call = Arc::new(ctx);
    }

    /// The header block for a request to `p`.
    pub(super) fn proxy_head(&self, p: &ProxyClient) -> Head {
        Head {
            client: self.shared.id.to_string(),
            transport: self.transport.name.to_string(),
            protocol: match self.transport.encoding {
                Encoding::Json => "json",
                Encoding::Protobuf => "protobuf",
            }
            .to_string(),
            encoding: if p.binary_encoding() {
                "binary"
            } else {
                "json"
            }
            .to_string(),
        }
    }

    /// Connection meta for `p` when it includes it.
    pub(super) fn meta_for(&self, p: &ProxyClient) -> Bytes {
        if p.include_connection_meta() {
            self.meta.clone().unwrap_or_default()
        } else {
            Bytes::new()
        }
    }

    /// Asks the connect proxy who a client without a token is. `None`: the
    /// backend returned no result (no credentials).
    pub(super) async fn proxy_connect(
        &self,
        p: &ProxyClient,
        req: &ConnectRequest,
    ) -> Result<Option<ProxyCredentials>, Fail> {
        let h = self.proxy_head(p);
        let (data, b64data) = payload(p, &req.data);
        let request = pp::ConnectRequest {
            client: h.client,
            transport: h.transport,
            protocol: h.protocol,
            encoding: h.encoding,
            data,
            b64data,
            name: req.name.clone(),
            version: req.version.clone(),
            channels: req.subs.keys().cloned().collect(),
        };
        let resp = p
            .connect(&self.transport.call, request)
            .await
            .map_err(|e| failed("connect", &e))?;
        if let Some(f) = rejection(resp.error, resp.disconnect) {
            return Err(f);
        }
        let Some(r) = resp.result else {
            return Ok(None);
        };
        let mut subs: BTreeMap<String, SubOptions> = r
            .channels
            .into_iter()
            .map(|ch| (ch, SubOptions::default()))
            .collect();
        for (ch, o) in r.subs {
            subs.insert(
                ch,
                SubOptions {
                    info: b64_or(o.info, &o.b64info)?,
                    data: b64_or(o.data, &o.b64data)?,
                    override_: o.r#override.map(Into::into).unwrap_or_default(),
                },
            );
        }
        Ok(Some(ProxyCredentials {
            user: r.user,
            info: b64_or(r.info, &r.b64info)?,
            data: b64_or(r.data, &r.b64data)?,
            expire_at: (r.expire_at > 0).then_some(r.expire_at),
            subs,
            meta: (!r.meta.is_empty()).then_some(r.meta),
        }))
    }

    /// Server-side refresh of an expired connection through the refresh
    /// proxy. A failed call extends the connection by a minute; no result or
    /// `expired` ends it with 3005.
    pub(super) async fn proxy_refresh_connection(&mut self) -> Result<(), Disconnect> {
        let node = self.node.clone();
        let Some(p) = node.proxies().refresh() else {
            return Err(Disconnect::EXPIRED);
        };
        let h = self.proxy_head(p);
        let request = pp::RefreshRequest {
            client: h.client,
            transport: h.transport,
            protocol: h.protocol,
            encoding: h.encoding,
            user: self.user.clone(),
            meta: self.meta_for(p),
            ..Default::default()
        };
        let resp = match p.refresh(&self.transport.call, request).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(client = %self.shared.id, error = %e, "refresh proxy failed; extending the connection");
                self.expire_at = Some(now_unix() + REFRESH_RETRY_SECS);
                return Ok(());
            }
        };
        let Some(r) = resp.result.filter(|r| !r.expired) else {
            return Err(Disconnect::EXPIRED);
        };
        let Ok(info) = b64_or(r.info, &r.b64info) else {
            self.expire_at = Some(now_unix() + REFRESH_RETRY_SECS);
            return Ok(());
        };
        if r.expire_at > 0 {
            self.expire_at = Some(r.expire_at);
        }
        if !info.is_empty() {
            self.conn_info = info;
        }
        if !r.meta.is_empty() {
            self.meta = Some(r.meta);
        }
        if self.expire_at.is_some_and(|at| at <= now_unix()) {
            return Err(Disconnect::EXPIRED);
        }
        Ok(())
    }

    /// `rpc` through the proxy of the method's rpc namespace. Without any
    /// rpc proxy only `rpc.ping` exists: 108 for other methods (104 when
    /// ping is on, as the RPC handler then exists). Unknown namespace → 104;
    /// proxy off for the namespace → 108.
    pub(super) async fn proxy_rpc(&self, id: u32, req: RpcRequest) -> Result<(), Fail> {
        let node = self.node.clone();
        let rpc = &node.config().rpc;
        let any = rpc.without_namespace.proxy_enabled
            || rpc.namespaces.iter().any(|n| n.options.proxy_enabled);
        if !any {
            return Err(if rpc.ping.enabled {
                ClientError::MethodNotFound
            } else {
                ClientError::NotAvailable
            }
            .into());
        }
        let boundary = rpc.namespace_boundary.as_str();
        let opts = match (!boundary.is_empty())
            .then(|| req.method.split_once(boundary))
            .flatten()
        {
            Some((ns, _)) => match rpc.namespaces.iter().find(|n| n.name == ns) {
                Some(n) => &n.options,
                None => return Err(ClientError::MethodNotFound.into()),
            },
            None => &rpc.without_namespace,
        };
        if !opts.proxy_enabled {
            return Err(ClientError::NotAvailable.into());
        }
        let Some(p) = node.proxies().rpc(&opts.proxy_name) else {
            tracing::warn!(name = %opts.proxy_name, "rpc proxy not configured");
            return Err(ClientError::Internal.into());
        };
        let h = self.proxy_head(p);
        let (data, b64data) = payload(p, &req.data);
        let request = pp::RpcRequest {
            client: h.client,
            transport: h.transport,
            protocol: h.protocol,
            encoding: h.encoding,
            user: self.user.clone(),
            method: req.method,
            data,
            b64data,
            meta: self.meta_for(p),
            ..Default::default()
        };
        let resp = p
            .rpc(&self.transport.call, request)
            .await
            .map_err(|e| failed("rpc", &e))?;
        if let Some(f) = rejection(resp.error, resp.disconnect) {
            return Err(f);
        }
        let data = match resp.result {
            Some(r) => b64_or(r.data, &r.b64data)?,
            None => Bytes::new(),
        };
        self.reply(Reply {
            id,
            rpc: Some(RpcResult { data }),
            ..Default::default()
        });
        Ok(())
    }
}
