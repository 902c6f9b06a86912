//! Server API operations on a live connection (subscribe, unsubscribe,
//! refresh), applied by the session task between its own commands.
//!
//! The node ([`crate::node::control`]) has the hub hand each targeted
//! session a [`Control`] through [`super::shared::Shared::push_control`];
//! the session performs it in [`Session::on_signal`], so it is ordered with
//! the client's commands and never runs halfway through one.
//!
//! Semantics follow Centrifugo's:
//! * subscribe goes through the same path as a client subscribe
//!   (engine, hub, recovery, presence, join), then sends a Subscribe push.
//!   With `recover_since` and recovery on for the channel, the push carries
//!   the given position and the missed publications follow it as
//!   publication pushes, before any live one (Centrifugo computes them but
//!   sends only the push). A connection that already holds the channel
//!   (client- or server-side) is left as it is; at the channel limit it is
//!   closed with 3505; an `expire_at` in the past is a no-op.
//! * unsubscribe drops any subscription to the channel (presence, leave)
//!   with an Unsubscribe push 2000; a connection without it gets nothing.
//! * refresh sets the expiry (`expire_at` 0 removes it; in the past closes
//!   with 3005), replaces the connection info when given, and sends a
//!   Refresh push.

use bytes::Bytes;

use super::subscribe::{SubRequest, finalize};
use super::{Fail, Session, now_unix, ttl_secs};
use crate::control::{Control, ServerRefresh, ServerSubscribe};
use crate::proto::client::{Push, Refresh, Subscribe};
use crate::protocol::{Disconnect, Unsubscribe};

impl Session {
    /// Applies a control operation; an error closes the connection.
    pub(super) async fn apply_control(&mut self, control: &Control) -> Result<(), Disconnect> {
        match control {
            Control::Subscribe(req) => self.server_subscribe(req).await,
            Control::Unsubscribe(channel) => {
                if self.shared.drop_with_push(channel, Unsubscribe::SERVER) {
                    self.finish_unsubscribe(channel).await;
                }
                Ok(())
            }
            Control::Refresh(r) => self.server_refresh(r),
            Control::Closed => Ok(()),
        }
    }

    async fn server_subscribe(&mut self, req: &ServerSubscribe) -> Result<(), Disconnect> {
        let channel = &req.channel;
        if channel.is_empty() || self.shared.has_channel(channel) {
            return Ok(());
        }
        let limit = self.node.config().client.channel_limit;
        if limit > 0 && self.shared.channel_count() >= limit {
            return Err(Disconnect::CHANNEL_LIMIT);
        }
        if req.expire_at > 0 && req.expire_at <= now_unix() {
            tracing::debug!(%channel, "server subscription already expired");
            return Ok(());
        }
        let Ok(opts) = self.node.rules().options(channel) else {
            tracing::debug!(%channel, "server subscription to an unknown namespace");
            return Ok(());
        };
        let since = req.recover_since.clone();
        let r = SubRequest {
            channel: channel.clone(),
            opts,
            server_side: true,
            recover: since.is_some(),
            offset: since.as_ref().map_or(0, |p| p.offset),
            epoch: since.map(|p| p.epoch).unwrap_or_default(),
            want_positioned: false,
            want_recoverable: false,
            want_join_leave: false,
            want_delta: false,
            filter: None,
            reject_unrecovered: false,
            chan_info: req.info.clone(),
            data: req.data.clone(),
            expire_at: (req.expire_at > 0).then_some(req.expire_at),
            proxy_refresh: false,
            override_: req.overrides.clone(),
        };
        let mut p = match self.prepare_subscription(r).await {
            Ok(p) => p,
            Err(Fail::Disconnect(d)) => return Err(d),
            Err(Fail::Error(e)) => {
                tracing::warn!(%channel, client = %self.shared.id, error = %e, "server subscription failed");
                return Ok(());
            }
        };
        let shared = self.shared.clone();
        shared
            .with_deliveries(&[channel.as_str()], |ds| {
                finalize(&mut p, &mut *ds[0])?;
                let res = &mut p.result;
                shared.send_push(Push {
                    channel: channel.clone(),
                    subscribe: Some(Subscribe {
                        recoverable: res.recoverable,
                        epoch: res.epoch.clone(),
                        offset: res.offset,
                        positioned: res.positioned,
                        data: std::mem::take(&mut res.data),
                    }),
                    ..Default::default()
                });
                // Under the delivery lock: before any live publication.
                for publication in std::mem::take(&mut res.publications) {
                    shared.send_push(Push {
                        channel: channel.clone(),
                        r#pub: Some(publication),
                        ..Default::default()
                    });
                }
                Ok::<(), Disconnect>(())
            })
            .ok_or(Disconnect::SERVER_ERROR)??;
        self.announce_join(&p).await;
        metrics::counter!("centrifugo_client_subscriptions_accepted").increment(1);
        Ok(())
    }

    fn server_refresh(&mut self, r: &ServerRefresh) -> Result<(), Disconnect> {
        if r.expired {
            return Err(Disconnect::EXPIRED);
        }
        if r.expire_at > 0 && r.expire_at <= now_unix() {
            return Err(Disconnect::EXPIRED);
        }
        if let Some(info) = r.info.as_ref().filter(|i| !i.is_empty()) {
            self.conn_info = Bytes::clone(info);
        }
        self.expire_at = (r.expire_at > 0).then_some(r.expire_at);
        self.schedule_expiry();
        self.shared.send_push(Push {
            refresh: Some(Refresh {
                expires: self.expire_at.is_some(),
                ttl: self.expire_at.map_or(0, ttl_secs),
            }),
            ..Default::default()
        });
        Ok(())
    }
}
