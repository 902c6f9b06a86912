//! `subscribe`: authorization, positioning and recovery, and the ordering
//! promise that the reply (with recovered publications) precedes every live
//! publication of the channel.
//!
//! A subscription is set up in two steps. [`Session::prepare_subscription`]
//! registers it (live publications are buffered from then on), reads the
//! stream position or the missed publications, and adds presence.
//! [`finalize`] then runs under the delivery lock: it merges what was
//! buffered, marks the subscription live and lets the caller enqueue the
//! reply before any live publication can be enqueued.

use std::sync::Arc;

use bytes::Bytes;

use super::permissions::{Who, can_presence, can_subscribe};
use super::recovery::{is_recovered, merge_buffered};
use super::shared::Delivery;
use super::{Fail, Session, SubInfo, effective, ttl_secs};
use crate::channel::ResolvedOptions;
use crate::control::SubscribeOverride;
use crate::engine::{EngineError, HistoryFilter, StreamPosition};
use crate::hub::Hub;
use crate::proto::client::{FilterNode, Reply, SubscribeRequest, SubscribeResult};
use crate::protocol::{ClientError, Disconnect, Encoding, delta, filter};

/// Bit of `SubscribeRequest.flag`: answer 112 instead of `recovered: false`.
const FLAG_REJECT_UNRECOVERED: i64 = 2;

/// Everything decided before a subscription is set up.
#[derive(Debug, Clone)]
pub(super) struct SubRequest {
    pub(crate) channel: String,
    pub(crate) opts: Arc<ResolvedOptions>,
    pub(crate) server_side: bool,
    pub(crate) recover: bool,
    pub(crate) offset: u64,
    pub(crate) epoch: String,
    pub(crate) want_positioned: bool,
    pub(crate) want_recoverable: bool,
    pub(crate) want_join_leave: bool,
    /// The client asked for fossil delta.
    pub(crate) want_delta: bool,
    /// The client's tags filter (validated).
    pub(crate) filter: Option<Arc<FilterNode>>,
    pub(crate) reject_unrecovered: bool,
    pub(crate) chan_info: Bytes,
    pub(crate) data: Bytes,
    pub(crate) expire_at: Option<i64>,
    /// The sub_refresh proxy extends this subscription.
    pub(crate) proxy_refresh: bool,
    pub(crate) override_: SubscribeOverride,
}

/// A registered subscription waiting for [`finalize`].
#[derive(Debug)]
pub(super) struct PreparedSub {
    pub(crate) channel: String,
    pub(crate) result: SubscribeResult,
    /// Offset the merge continues from (stream top at read time).
    pub(crate) after: u64,
    pub(crate) recovered: bool,
    pub(crate) join: bool,
    pub(crate) chan_info: Bytes,
    /// Wire encoding of the session (recovered delta chains depend on it).
    pub(crate) encoding: Encoding,
}

/// Merges buffered publications and makes the subscription live. Runs under
/// the delivery lock.
pub(super) fn finalize(p: &mut PreparedSub, d: &mut Delivery) -> Result<(), Disconnect> {
    let buffered = d.buffer.take().unwrap_or_default();
    if d.positioned {
        if p.recovered {
            let epoch = p.result.epoch.clone();
            d.offset = merge_buffered(&mut p.result.publications, p.after, &epoch, buffered)
                .map_err(|()| Disconnect::INSUFFICIENT_STATE)?;
        } else {
            let newest = buffered
                .iter()
                .filter(|(_, pos)| pos.epoch == p.result.epoch)
                .map(|(_, pos)| pos.offset)
                .max()
                .unwrap_or(0);
            p.result.offset = p.result.offset.max(newest);
            d.offset = p.result.offset;
        }
        d.epoch = p.result.epoch.clone();
    }
    if let Some(f) = &d.filter {
        // Filtered publications count for the continuity check above but
        // are not sent.
        p.result
            .publications
            .retain(|publication| filter::matches(f, &publication.tags));
    }
    if d.delta && p.recovered {
        // The client keeps its last value across a recovery, so the
        // recovered publications continue its chain and live ones may
        // follow as deltas.
        delta::chain(&mut p.result.publications, p.encoding == Encoding::Json);
        d.delta_ready = true;
    }
    d.active = true;
    Ok(())
}

impl Session {
    /// Client-side `subscribe`.
    pub(super) async fn subscribe(&mut self, id: u32, req: SubscribeRequest) -> Result<(), Fail> {
        let r = self.authorize_subscribe(req).await?;
        let channel = r.channel.clone();
        let mut p = match self.prepare_subscription(r).await {
            Ok(p) => p,
            Err(e) => {
                self.stop_proxy_stream(&channel);
                return Err(e);
            }
        };
        let shared = self.shared.clone();
        shared
            .with_deliveries(&[&channel], |ds| {
                finalize(&mut p, &mut *ds[0])?;
                shared.send_reply(&Reply {
                    id,
                    subscribe: Some(std::mem::take(&mut p.result)),
                    ..Default::default()
                });
                Ok::<(), Disconnect>(())
            })
            .ok_or(Disconnect::SERVER_ERROR)??;
        self.start_proxy_stream(&channel);
        self.announce_join(&p).await;
        metrics::counter!("centrifugo_client_subscriptions_accepted").increment(1);
        Ok(())
    }

    /// Validation and permission checks of a client subscribe.
    async fn authorize_subscribe(&mut self, req: SubscribeRequest) -> Result<SubRequest, Fail> {
        let channel = req.channel;
        if channel.is_empty() || !(req.delta.is_empty() || req.delta == "fossil") {
            return Err(Disconnect::BAD_REQUEST.into());
        }
        let rules = self.node.rules();
        let opts = rules.options(&channel)?;
        rules.validate_client_channel(&channel, &opts)?;
        // Every namespace is a stream namespace (map and shared poll ones
        // are refused by the key table): a map subscribe does not match it.
        if req.r#type != 0 {
            return Err(ClientError::PermissionDenied.into());
        }
        if self.shared.has_channel(&channel) {
            return Err(ClientError::AlreadySubscribed.into());
        }
        let limit = self.node.config().client.channel_limit;
        if limit > 0 && self.shared.channel_count() >= limit {
            return Err(ClientError::LimitExceeded.into());
        }
        let filter = match req.tf {
            None => None,
            // A delta chain cannot skip publications, so the two do not mix
            // (the SDKs refuse the combination too).
            Some(_) if !opts.opts.allow_tags_filter || !req.delta.is_empty() => {
                return Err(ClientError::BadRequest.into());
            }
            Some(tf) => {
                if let Err(why) = filter::validate(&tf) {
                    tracing::info!(channel = %channel, user = %self.user, %why, "invalid tags filter");
                    return Err(ClientError::BadRequest.into());
                }
                Some(Arc::new(tf))
            }
        };
        let mut r = SubRequest {
            channel,
            opts: opts.clone(),
            server_side: false,
            recover: req.recover,
            offset: req.offset,
            epoch: req.epoch,
            want_positioned: req.positioned,
            want_recoverable: req.recoverable,
            want_join_leave: req.join_leave,
            want_delta: !req.delta.is_empty(),
            filter,
            reject_unrecovered: req.flag & FLAG_REJECT_UNRECOVERED != 0,
            chan_info: Bytes::new(),
            data: Bytes::new(),
            expire_at: None,
            proxy_refresh: false,
            override_: SubscribeOverride::default(),
        };
        if opts.opts.subscribe_stream_proxy_enabled {
            // The stream's backend decides (it receives the token).
            self.proxy_stream_subscribe(&mut r, &req.data, req.token)
                .await?;
            return Ok(r);
        }
        let insecure = self.node.config().client.insecure;
        if !req.token.is_empty() {
            let claims = self
                .check_sub_token(&req.token, &r.channel, ClientError::PermissionDenied.into())
                .await?;
            r.chan_info = claims.info;
            r.data = claims.data;
            r.expire_at = if insecure { None } else { claims.expire_at };
            r.override_ = claims.override_;
            return Ok(r);
        }
        let who = Who {
            user: &self.user,
            subscribed: true,
            insecure,
        };
        let allowed = if rules.is_private(&r.channel) {
            false
        } else if opts.opts.allow_user_limited_channels && rules.is_user_limited(&r.channel) {
            rules.user_allowed(&r.channel, &self.user)
        } else if opts.opts.subscribe_proxy_enabled {
            self.proxy_subscribe(&mut r, &req.data).await?;
            true
        } else {
            can_subscribe(who, &opts)
        };
        if !allowed {
            return Err(ClientError::PermissionDenied.into());
        }
        Ok(r)
    }

    /// Registers a subscription and reads what the reply needs.
    pub(super) async fn prepare_subscription(
        &mut self,
        r: SubRequest,
    ) -> Result<PreparedSub, Fail> {
        let o = &r.opts;
        let (presence, join_leave, force_recovery, force_positioning, force_push) =
            effective(o, &r.override_);
        let history = o.has_history();
        let recoverable =
            history && (force_recovery || (r.want_recoverable && o.opts.allow_recovery));
        let positioned = history
            && (recoverable
                || force_positioning
                || (r.want_positioned && o.opts.allow_positioning));
        let recover = recoverable && (r.recover || (o.cache_mode() && o.opts.auto_cache_recover));
        let insecure = self.node.config().client.insecure;
        let who = Who {
            user: &self.user,
            subscribed: true,
            insecure,
        };
        let push_join_leave = force_push || (r.want_join_leave && can_presence(who, o));
        let delta = r.want_delta && o.opts.allowed_delta_types.iter().any(|t| t == "fossil");
        let delivery = Delivery {
            active: false,
            buffer: positioned.then(Vec::new),
            positioned,
            offset: 0,
            epoch: String::new(),
            push_join_leave,
            server_side: r.server_side,
            delta,
            delta_ready: false,
            filter: r.filter.clone(),
        };
        if !self.shared.begin_subscription(&r.channel, delivery) {
            return Err(ClientError::AlreadySubscribed.into());
        }
        let shared = &self.shared;
        let add = |hub: &Hub| hub.add_subscriber(&r.channel, shared);
        if let Err(e) = self
            .node
            .add_subscription(&r.channel, &shared.id, add)
            .await
        {
            self.shared.remove_subscription(&r.channel);
            tracing::warn!(channel = %r.channel, error = %e, "engine subscribe failed");
            return Err(ClientError::Internal.into());
        }
        let mut result = SubscribeResult {
            recoverable,
            positioned,
            was_recovering: r.recover,
            delta,
            data: r.data.clone(),
            publish_debounce: u32::try_from(
                o.opts.client_publish_debounce_interval.get().as_millis(),
            )
            .unwrap_or(u32::MAX),
            ..Default::default()
        };
        // A subscription the sub_refresh proxy extends is refreshed by the
        // server: the client is not told about its expiry.
        if let Some(at) = r.expire_at.filter(|_| !r.proxy_refresh) {
            result.expires = true;
            result.ttl = ttl_secs(at);
        }
        let mut after = 0;
        let mut recovered = false;
        if positioned {
            let read = if recover {
                self.recover(&r, &mut result).await
            } else {
                self.position(&r).await
            };
            match read {
                Ok((top, ok)) => {
                    recovered = ok;
                    after = top.offset;
                    result.epoch = top.epoch;
                    if !ok {
                        result.offset = top.offset;
                        result.publications.clear();
                    }
                }
                Err(e) => {
                    self.abort_subscription(&r.channel).await;
                    return Err(e);
                }
            }
            if recover && !recovered && r.reject_unrecovered {
                self.abort_subscription(&r.channel).await;
                return Err(ClientError::UnrecoverablePosition.into());
            }
            result.recovered = recovered;
        }
        if presence {
            let info = self.client_info(&r.chan_info);
            if let Err(e) = self
                .node
                .add_presence(&r.channel, &self.shared.id, &info)
                .await
            {
                tracing::warn!(channel = %r.channel, error = %e, "presence add failed");
                self.abort_subscription(&r.channel).await;
                return Err(ClientError::Internal.into());
            }
        }
        self.subs.insert(
            r.channel.clone(),
            SubInfo {
                opts: r.opts.clone(),
                chan_info: r.chan_info.clone(),
                server_side: r.server_side,
                presence,
                join_leave,
                expire_at: r.expire_at,
                proxy_refresh: r.proxy_refresh,
                position_failures: 0,
            },
        );
        self.schedule_sub_expiry();
        Ok(PreparedSub {
            channel: r.channel,
            result,
            after,
            recovered,
            join: join_leave,
            chan_info: r.chan_info,
            encoding: self.shared.encoding,
        })
    }

    /// Reads missed publications; returns the stream top and whether the
    /// recovery succeeded (publications go into `result`).
    async fn recover(
        &self,
        r: &SubRequest,
        result: &mut SubscribeResult,
    ) -> Result<(StreamPosition, bool), Fail> {
        let cap = self.node.config().client.recovery_max_publication_limit;
        let meta_ttl = r.opts.history_meta_ttl;
        let limit = if cap == 0 {
            -1
        } else {
            i32::try_from(cap).unwrap_or(i32::MAX)
        };
        if r.opts.cache_mode() {
            // With a tags filter the newest *matching* publication is the
            // one to send, so read back as far as recovery may go.
            let filter = HistoryFilter {
                since: None,
                limit: if r.filter.is_some() { limit } else { 1 },
                reverse: true,
            };
            let h = self
                .node
                .history(&r.channel, filter, meta_ttl)
                .await
                .map_err(engine_error)?;
            let top = h.position;
            if r.offset > 0 && r.epoch == top.epoch && r.offset == top.offset {
                result.offset = top.offset;
                return Ok((top, true));
            }
            let newest = h.publications.first().map(|p| p.offset);
            let wanted = h.publications.into_iter().find(|p| {
                r.filter
                    .as_ref()
                    .is_none_or(|f| filter::matches(f, &p.tags))
            });
            return match (newest, wanted) {
                (Some(offset), Some(publication)) if offset == top.offset => {
                    result.offset = top.offset;
                    result.publications = vec![publication];
                    Ok((top, true))
                }
                _ => Ok((top, false)),
            };
        }
        let since = StreamPosition {
            offset: r.offset,
            epoch: r.epoch.clone(),
        };
        let filter = HistoryFilter {
            since: Some(since),
            limit,
            reverse: false,
        };
        match self.node.history(&r.channel, filter, meta_ttl).await {
            Ok(h) => {
                let ok = is_recovered(r.offset, &r.epoch, &h.publications, &h.position);
                if ok {
                    result.offset = r.offset;
                    result.publications = h.publications;
                }
                Ok((h.position, ok))
            }
            Err(EngineError::UnrecoverablePosition) => Ok((self.position(r).await?.0, false)),
            Err(e) => Err(engine_error(e)),
        }
    }

    /// Reads the stream top.
    async fn position(&self, r: &SubRequest) -> Result<(StreamPosition, bool), Fail> {
        let filter = HistoryFilter {
            since: None,
            limit: 0,
            reverse: false,
        };
        let h = self
            .node
            .history(&r.channel, filter, r.opts.history_meta_ttl)
            .await
            .map_err(engine_error)?;
        Ok((h.position, false))
    }

    /// Undoes a partly set-up subscription.
    async fn abort_subscription(&mut self, channel: &str) {
        self.shared.remove_subscription(channel);
        self.node
            .remove_subscription(channel, &self.shared.id)
            .await;
        self.subs.remove(channel);
    }

    /// Publishes the join event of a new subscription.
    pub(super) async fn announce_join(&self, p: &PreparedSub) {
        if !p.join {
            return;
        }
        let info = self.client_info(&p.chan_info);
        if let Err(e) = self.node.publish_join(&p.channel, &info).await {
            tracing::debug!(channel = %p.channel, error = %e, "join publication failed");
        }
    }
}

/// Engine failures during subscribe are temporary for the client.
pub(super) fn engine_error(e: EngineError) -> Fail {
    match e {
        EngineError::UnrecoverablePosition => ClientError::UnrecoverablePosition.into(),
        EngineError::BadRequest(_) => ClientError::BadRequest.into(),
        EngineError::NotAvailable => ClientError::NotAvailable.into(),
        EngineError::Unavailable(reason) => {
            tracing::warn!(%reason, "engine unavailable");
            ClientError::Internal.into()
        }
    }
}
