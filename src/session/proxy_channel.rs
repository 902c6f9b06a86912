//! The session side of the channel proxies: subscribe (the backend decides
//! and may set expiry, channel info, reply data and option overrides),
//! publish (the backend decides and may replace the data and publish
//! options) and sub_refresh (the backend extends subscriptions that have an
//! expiry and were not made with a token).
//!
//! Failures follow `proxy.rs`: a failed subscribe or publish call is error
//! 100; a failed sub_refresh call extends the subscription by a minute.

use bytes::Bytes;

use super::proxy::{REFRESH_RETRY_SECS, b64_or, failed, payload, rejection};
use super::subscribe::SubRequest;
use super::{Fail, Session, now_unix};
use crate::engine::PublishOptions;
use crate::proto::proxy as pp;
use crate::protocol::{ClientError, Disconnect, Unsubscribe};

impl Session {
    /// Asks the namespace's subscribe proxy; on success `r` carries what the
    /// result sets. An empty result allows with the namespace defaults.
    pub(super) async fn proxy_subscribe(
        &self,
        r: &mut SubRequest,
        data: &Bytes,
    ) -> Result<(), Fail> {
        let node = self.node.clone();
        let o = &r.opts.opts;
        let Some(p) = node.proxies().subscribe(&o.subscribe_proxy_name) else {
            tracing::warn!(name = %o.subscribe_proxy_name, "subscribe proxy not configured");
            return Err(ClientError::Internal.into());
        };
        let h = self.proxy_head(p);
        let (data, b64data) = payload(p, data);
        let request = pp::SubscribeRequest {
            client: h.client,
            transport: h.transport,
            protocol: h.protocol,
            encoding: h.encoding,
            user: self.user.clone(),
            channel: r.channel.clone(),
            data,
            b64data,
            meta: self.meta_for(p),
            ..Default::default()
        };
        let resp = p
            .subscribe(&self.transport.call, request)
            .await
            .map_err(|e| failed("subscribe", &e))?;
        if let Some(f) = rejection(resp.error, resp.disconnect) {
            return Err(f);
        }
        let Some(res) = resp.result else {
            return Ok(());
        };
        r.chan_info = b64_or(res.info, &res.b64info)?;
        r.data = b64_or(res.data, &res.b64data)?;
        r.override_ = res.r#override.map(Into::into).unwrap_or_default();
        if res.expire_at > 0 {
            if res.expire_at <= now_unix() {
                return Err(ClientError::Expired.into());
            }
            r.expire_at = Some(res.expire_at);
            r.proxy_refresh = r.opts.opts.sub_refresh_proxy_enabled;
        }
        Ok(())
    }

    /// Asks the namespace's publish proxy; returns the data to publish
    /// (possibly replaced) and adjusts `popts` as the result says.
    pub(super) async fn proxy_publish(
        &self,
        proxy_name: &str,
        channel: &str,
        data: Bytes,
        popts: &mut PublishOptions,
    ) -> Result<Bytes, Fail> {
        let node = self.node.clone();
        let Some(p) = node.proxies().publish(proxy_name) else {
            tracing::warn!(name = %proxy_name, "publish proxy not configured");
            return Err(ClientError::Internal.into());
        };
        let h = self.proxy_head(p);
        let (raw, b64data) = payload(p, &data);
        let request = pp::PublishRequest {
            client: h.client,
            transport: h.transport,
            protocol: h.protocol,
            encoding: h.encoding,
            user: self.user.clone(),
            channel: channel.to_string(),
            data: raw,
            b64data,
            meta: self.meta_for(p),
            ..Default::default()
        };
        let resp = p
            .publish(&self.transport.call, request)
            .await
            .map_err(|e| failed("publish", &e))?;
        if let Some(f) = rejection(resp.error, resp.disconnect) {
            return Err(f);
        }
        let Some(res) = resp.result else {
            return Ok(data);
        };
        // Here the raw field wins when present (unlike the other results).
        let data = if !res.data.is_empty() {
            res.data
        } else if !res.b64data.is_empty() {
            b64_or(Bytes::new(), &res.b64data)?
        } else {
            data
        };
        if res.skip_history {
            popts.history_size = 0;
            popts.history_ttl = std::time::Duration::ZERO;
        }
        if !res.tags.is_empty() {
            popts.tags = res.tags.into_iter().collect();
        }
        if !res.idempotency_key.is_empty() {
            popts.idempotency_key = Some(res.idempotency_key);
        }
        popts.use_delta |= res.delta;
        if res.version > 0 {
            popts.version = res.version;
            popts.version_epoch = res.version_epoch;
        }
        Ok(data)
    }

    /// Extends the expired subscriptions the sub_refresh proxy looks after.
    /// A failed call gives a minute more; no result or `expired` drops the
    /// subscription (a server-side one closes the connection with 3006).
    pub(super) async fn refresh_subscriptions(&mut self) -> Result<(), Disconnect> {
        let now = now_unix();
        let due: Vec<String> = self
            .subs
            .iter()
            .filter(|(_, s)| s.proxy_refresh && s.expire_at.is_some_and(|at| at <= now))
            .map(|(ch, _)| ch.clone())
            .collect();
        for ch in due {
            let next = self.proxy_sub_refresh(&ch).await;
            let Some(sub) = self.subs.get_mut(&ch) else {
                continue;
            };
            match next {
                Some((at, info)) => {
                    sub.expire_at = Some(at);
                    if !info.is_empty() {
                        sub.chan_info = info;
                    }
                }
                None if sub.server_side => return Err(Disconnect::SUB_EXPIRED),
                None => {
                    sub.proxy_refresh = false;
                    self.shared.unsubscribe_push(&ch, Unsubscribe::EXPIRED);
                }
            }
        }
        self.schedule_sub_expiry();
        Ok(())
    }

    /// One sub_refresh call: the new expiry and channel info (empty: keep
    /// the old), or `None` when expired.
    async fn proxy_sub_refresh(&self, channel: &str) -> Option<(i64, Bytes)> {
        let sub = self.subs.get(channel)?;
        let node = self.node.clone();
        let name = &sub.opts.opts.sub_refresh_proxy_name;
        let p = node.proxies().sub_refresh(name)?;
        let h = self.proxy_head(p);
        let request = pp::SubRefreshRequest {
            client: h.client,
            transport: h.transport,
            protocol: h.protocol,
            encoding: h.encoding,
            user: self.user.clone(),
            channel: channel.to_string(),
            meta: self.meta_for(p),
            ..Default::default()
        };
        let retry = Some((now_unix() + REFRESH_RETRY_SECS, Bytes::new()));
        let resp = match p.sub_refresh(&self.transport.call, request).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(channel, error = %e, "sub_refresh proxy failed; extending the subscription");
                return retry;
            }
        };
        let r = resp.result.filter(|r| !r.expired)?;
        // No new expiry (0) leaves the old one, which is past.
        if r.expire_at <= now_unix() {
            return None;
        }
        match b64_or(r.info, &r.b64info) {
            Ok(info) => Some((r.expire_at, info)),
            Err(_) => retry,
        }
    }
}
