//! `connect`: credentials (JWT, connect proxy or anonymous), limits,
//! server-side subscriptions (token or proxy `channels`/`subs`, personal
//! channel) with their recovery, and the connect reply, which precedes
//! every push.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::subscribe::{PreparedSub, SubRequest, finalize};
use super::{Fail, Session, Status, now_unix, ttl_secs};
use crate::auth::SubOptions;
use crate::node::VERSION;
use crate::proto::client::{ConnectRequest, ConnectResult, Reply};
use crate::protocol::{ClientError, Disconnect};

/// Who the client is, once credentials are checked.
struct Credentials {
    user: String,
    info: Bytes,
    expire_at: Option<i64>,
    subs: BTreeMap<String, SubOptions>,
    /// Connection meta (never sent to the client).
    meta: Option<Bytes>,
    /// Data for the connect reply (connect proxy result).
    data: Bytes,
}

impl Credentials {
    fn anonymous() -> Self {
        Self {
            user: String::new(),
            info: Bytes::new(),
            expire_at: None,
            subs: BTreeMap::new(),
            meta: None,
            data: Bytes::new(),
        }
    }
}

impl Session {
    pub(super) async fn connect(&mut self, id: u32, req: ConnectRequest) -> Result<(), Fail> {
        let node = self.node.clone();
        let cfg = &node.config().client;
        self.capture_emulated_headers(&req);
        let mut creds = self.credentials(&req).await?;
        if cfg.insecure {
            creds.expire_at = None;
        }
        if creds.expire_at.is_some_and(|at| at <= now_unix()) {
            return Err(ClientError::TokenExpired.into());
        }
        if cfg.user_connection_limit > 0
            && !creds.user.is_empty()
            && node.hub.user_connection_count(&creds.user) >= cfg.user_connection_limit
        {
            return Err(Disconnect::CONNECTION_LIMIT.into());
        }
        let rules = node.rules();
        let personal = &cfg.subscribe_to_user_personal_channel;
        if personal.enabled && !creds.user.is_empty() {
            let ch = rules.personal_channel(&personal.personal_channel_namespace, &creds.user);
            creds.subs.entry(ch).or_default();
        }
        if self.transport.uni && !req.token.is_empty() {
            self.add_requested_channels(&req, &creds.user, &mut creds.subs)?;
        }
        if cfg.channel_limit > 0 && creds.subs.len() > cfg.channel_limit {
            return Err(Disconnect::CHANNEL_LIMIT.into());
        }
        let mut requests = Vec::with_capacity(creds.subs.len());
        for (channel, o) in creds.subs {
            let opts = rules.options(&channel)?;
            let rec = req.subs.get(&channel);
            requests.push(SubRequest {
                channel,
                opts,
                server_side: true,
                recover: rec.is_some_and(|s| s.recover),
                offset: rec.map_or(0, |s| s.offset),
                epoch: rec.map(|s| s.epoch.clone()).unwrap_or_default(),
                want_positioned: false,
                want_recoverable: false,
                want_join_leave: false,
                // A reconnecting SDK repeats the delta it had (Centrifugo
                // reads it from the same map).
                want_delta: rec.is_some_and(|s| s.delta == "fossil"),
                filter: None,
                reject_unrecovered: false,
                chan_info: o.info,
                data: o.data,
                expire_at: None,
                proxy_refresh: false,
                override_: o.override_,
            });
        }

        self.user = creds.user;
        self.conn_info = creds.info;
        self.expire_at = creds.expire_at;
        self.meta = creds.meta;
        // With a refresh proxy the server, not the client, extends the
        // connection: the reply does not announce the expiry.
        self.proxy_refresh = node.proxies().refresh().is_some();
        self.shared.set_user(&self.user);
        if self.transport.emulated {
            self.shared.set_session(&self.shared.id);
        }
        node.hub.add_connection(&self.shared);
        self.status = Status::Connected;

        let mut prepared: Vec<PreparedSub> = Vec::with_capacity(requests.len());
        for r in requests {
            match self.prepare_subscription(r).await {
                Ok(p) => prepared.push(p),
                // The connection is registered: a failure here ends it.
                Err(Fail::Error(e)) => {
                    tracing::warn!(client = %self.shared.id, error = %e, "server-side subscription failed");
                    return Err(Disconnect::SERVER_ERROR.into());
                }
                Err(d) => return Err(d),
            }
        }

        let mut result = ConnectResult {
            client: self.shared.id.to_string(),
            version: VERSION.to_string(),
            ping: u32::try_from(cfg.ping_interval.get().as_secs()).unwrap_or(0),
            pong: self.pong_expected(),
            ..Default::default()
        };
        result.data = creds.data;
        if let Some(at) = self.expire_at.filter(|_| !self.proxy_refresh) {
            result.expires = true;
            result.ttl = ttl_secs(at);
        }
        if self.transport.emulated || self.transport.uni {
            result.session = self.shared.id.to_string();
        }
        if self.transport.emulated {
            result.node = node.id.clone();
        }
        if cfg.connect_include_server_time {
            result.time = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
        }
        let shared = self.shared.clone();
        let uni = self.transport.uni;
        let names: Vec<String> = prepared.iter().map(|p| p.channel.clone()).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        shared
            .with_deliveries(&names, |ds| {
                for (p, d) in prepared.iter_mut().zip(ds.iter_mut()) {
                    finalize(p, d)?;
                    result
                        .subs
                        .insert(p.channel.clone(), std::mem::take(&mut p.result));
                }
                if uni {
                    shared.send_push(super::uni::connect_push(result));
                } else {
                    shared.send_reply(&Reply {
                        id,
                        connect: Some(result),
                        ..Default::default()
                    });
                }
                Ok::<(), Disconnect>(())
            })
            .ok_or(Disconnect::SERVER_ERROR)??;
        self.start_timers();
        for p in &prepared {
            self.announce_join(p).await;
        }
        metrics::counter!("centrifugo_client_connections_accepted", "transport" => self.transport.name).increment(1);
        Ok(())
    }

    async fn credentials(&self, req: &ConnectRequest) -> Result<Credentials, Fail> {
        let cfg = &self.node.config().client;
        if req.token.is_empty() {
            let node = self.node.clone();
            if let Some(p) = node.proxies().connect()
                && let Some(c) = self.proxy_connect(p, req).await?
            {
                return Ok(Credentials {
                    user: c.user,
                    info: c.info,
                    expire_at: c.expire_at,
                    subs: c.subs,
                    meta: c.meta,
                    data: c.data,
                });
            }
            if cfg.insecure || cfg.allow_anonymous_connect_without_token {
                return Ok(Credentials::anonymous());
            }
            return Err(Disconnect::BAD_REQUEST.into());
        }
        let claims = self
            .check_connect_token(
                &req.token,
                ClientError::TokenExpired.into(),
                Disconnect::INVALID_TOKEN.into(),
            )
            .await?;
        if claims.user.is_empty() && cfg.disallow_anonymous_connection_tokens {
            return Err(Disconnect::PERMISSION_DENIED.into());
        }
        let subs = if claims.subs.is_empty() {
            claims
                .channels
                .into_iter()
                .map(|ch| (ch, SubOptions::default()))
                .collect()
        } else {
            claims.subs
        };
        Ok(Credentials {
            user: claims.user,
            info: claims.info,
            expire_at: claims.expire_at,
            subs,
            meta: claims
                .meta
                .and_then(|m| serde_json::to_vec(&m).ok())
                .map(Bytes::from),
            data: Bytes::new(),
        })
    }
}
