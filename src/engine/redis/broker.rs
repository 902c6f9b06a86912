//! The Redis [`Broker`]: publish and history through the Lua scripts of
//! [`super::scripts`], delivery through the PUB/SUB task of
//! [`super::pubsub`].

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use prost::Message;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, PushInfo, Value};

use super::pubsub::{Delivery, encode_presence_event};
use super::{
    DEFAULT_HISTORY_META_TTL, DEFAULT_IDEMPOTENT_RESULT_TTL, Shard, array_of, bad_reply, bytes_of,
    millis, new_epoch, parse_position, scripts, string_of, u64_of, unavailable,
};
use crate::engine::{
    Broker, BrokerEventHandler, ClientInfo, EngineError, HistoryOptions, HistoryResult,
    Publication, PublishOptions, PublishResult, StreamPosition,
};

/// [`Broker`] on standalone Redis.
pub struct RedisBroker {
    shard: Shard,
    delivery: Arc<Delivery>,
}

impl std::fmt::Debug for RedisBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBroker").finish_non_exhaustive()
    }
}

fn or_default(ttl: std::time::Duration, default: std::time::Duration) -> std::time::Duration {
    if ttl.is_zero() { default } else { ttl }
}

impl RedisBroker {
    pub(super) fn new(
        shard: Shard,
        pubsub: ConnectionManager,
        pushes: tokio::sync::mpsc::UnboundedReceiver<PushInfo>,
    ) -> Self {
        let delivery = Delivery::start(shard.keys.clone(), pubsub, pushes, shard.call_timeout);
        Self { shard, delivery }
    }

    /// The cluster control bus on this broker's connections.
    pub fn control_bus(&self) -> Arc<dyn crate::node::cluster::ControlBus> {
        Arc::new(super::RedisControlBus::new(
            self.shard.clone(),
            self.delivery.clone(),
        ))
    }

    async fn publish_event(&self, channel: &str, payload: Vec<u8>) -> Result<(), EngineError> {
        let key = self.shard.keys.pubsub(channel);
        self.shard
            .call(|mut c| async move { c.publish::<_, _, i64>(key, payload).await })
            .await
            .map(|_| ())
    }
}

/// The stored form of a publication: protobuf without the offset (the
/// stream entry id carries it).
fn encode_publication(data: Bytes, opts: &PublishOptions) -> Vec<u8> {
    Publication {
        data,
        info: opts.client_info.clone(),
        tags: opts.tags.clone(),
        ..Publication::default()
    }
    .encode_to_vec()
}

/// Decodes one `XRANGE` entry `[id, [field, value, …]]`.
fn decode_entry(entry: &Value) -> Result<Publication, EngineError> {
    let parts = array_of(entry).ok_or_else(|| bad_reply("history entry"))?;
    let (Some(id), Some(fields)) = (parts.first(), parts.get(1)) else {
        return Err(bad_reply("history entry"));
    };
    let id = string_of(id).ok_or_else(|| bad_reply("history entry id"))?;
    let offset: u64 = id
        .split('-')
        .next()
        .and_then(|o| o.parse().ok())
        .ok_or_else(|| bad_reply("history entry id"))?;
    let fields = array_of(fields).ok_or_else(|| bad_reply("history entry fields"))?;
    let data = fields
        .chunks(2)
        .find(|kv| kv.first().and_then(bytes_of) == Some(b"d"))
        .and_then(|kv| kv.get(1))
        .and_then(bytes_of)
        .ok_or_else(|| bad_reply("history entry data"))?;
    let mut publication = Publication::decode(data)
        .map_err(|e| unavailable(format!("bad stored publication: {e}")))?;
    publication.offset = offset;
    Ok(publication)
}

#[async_trait]
impl Broker for RedisBroker {
    async fn run(&self, handler: Arc<dyn BrokerEventHandler>) -> Result<(), EngineError> {
        self.delivery.set_handler(handler);
        Ok(())
    }

    async fn publish(
        &self,
        channel: &str,
        data: Bytes,
        opts: &PublishOptions,
    ) -> Result<PublishResult, EngineError> {
        let keys = &self.shard.keys;
        let idempotency_key = opts.idempotency_key.as_deref().filter(|k| !k.is_empty());
        let result_ttl = match idempotency_key {
            Some(_) => millis(or_default(
                opts.idempotent_result_ttl,
                DEFAULT_IDEMPOTENT_RESULT_TTL,
            )),
            None => 0,
        };
        let with_history = opts.with_history();
        let mut invocation = scripts::PUBLISH.prepare_invoke();
        invocation
            .key(keys.stream(channel))
            .key(keys.meta(channel))
            .key(keys.result(channel, idempotency_key.unwrap_or("")))
            .key(keys.pubsub(channel))
            .arg(encode_publication(data, opts))
            .arg(opts.history_size)
            .arg(millis(opts.history_ttl))
            .arg(millis(or_default(
                opts.history_meta_ttl,
                DEFAULT_HISTORY_META_TTL,
            )))
            .arg(new_epoch())
            .arg(if with_history { "1" } else { "0" })
            .arg(result_ttl)
            .arg(if with_history { opts.version } else { 0 })
            .arg(opts.version_epoch.as_str());
        let reply: Value = self
            .shard
            .call(|mut c| async move { invocation.invoke_async(&mut c).await })
            .await?;
        let parts = array_of(&reply).ok_or_else(|| bad_reply("publish"))?;
        let (Some(kind), Some(position)) = (
            parts.first().and_then(string_of),
            parts.get(1).and_then(string_of),
        ) else {
            return Err(bad_reply("publish"));
        };
        let position = parse_position(&position).ok_or_else(|| bad_reply("publish"))?;
        Ok(PublishResult {
            position,
            suppressed: kind != "p",
        })
    }

    async fn publish_join(&self, channel: &str, info: &ClientInfo) -> Result<(), EngineError> {
        self.publish_event(channel, encode_presence_event(true, info))
            .await
    }

    async fn publish_leave(&self, channel: &str, info: &ClientInfo) -> Result<(), EngineError> {
        self.publish_event(channel, encode_presence_event(false, info))
            .await
    }

    async fn subscribe(&self, channel: &str) -> Result<(), EngineError> {
        self.delivery.subscribe(channel).await
    }

    async fn unsubscribe(&self, channel: &str) -> Result<(), EngineError> {
        self.delivery.unsubscribe(channel).await
    }

    async fn history(
        &self,
        channel: &str,
        opts: &HistoryOptions,
    ) -> Result<HistoryResult, EngineError> {
        let filter = &opts.filter;
        if filter.reverse && filter.since.as_ref().is_some_and(|s| s.offset == 0) {
            return Err(EngineError::BadRequest("reverse history since offset 0"));
        }
        let (mode, bound) = match (&filter.since, filter.reverse) {
            _ if filter.limit == 0 => ("none", String::new()),
            (None, false) => ("fwd", "-".to_owned()),
            (None, true) => ("rev", "+".to_owned()),
            (Some(since), false) => ("fwd", since.offset.saturating_add(1).to_string()),
            (Some(since), true) => ("rev", since.offset.saturating_sub(1).to_string()),
        };
        let count = if filter.limit < 0 {
            -1
        } else {
            i64::from(filter.limit)
        };
        let keys = &self.shard.keys;
        let mut invocation = scripts::HISTORY.prepare_invoke();
        invocation
            .key(keys.stream(channel))
            .key(keys.meta(channel))
            .arg(new_epoch())
            .arg(millis(or_default(opts.meta_ttl, DEFAULT_HISTORY_META_TTL)))
            .arg(mode)
            .arg(bound)
            .arg(count);
        let reply: Value = self
            .shard
            .call(|mut c| async move { invocation.invoke_async(&mut c).await })
            .await?;
        let parts = array_of(&reply).ok_or_else(|| bad_reply("history"))?;
        let (Some(top), Some(epoch)) = (
            parts.first().and_then(u64_of),
            parts.get(1).and_then(string_of),
        ) else {
            return Err(bad_reply("history"));
        };
        if let Some(since) = &filter.since
            && !since.epoch.is_empty()
            && since.epoch != epoch
        {
            return Err(EngineError::UnrecoverablePosition);
        }
        let publications = match parts.get(2) {
            Some(entries) => array_of(entries)
                .unwrap_or_default()
                .iter()
                .map(decode_entry)
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        Ok(HistoryResult {
            publications,
            position: StreamPosition { offset: top, epoch },
        })
    }

    async fn remove_history(&self, channel: &str) -> Result<(), EngineError> {
        let key = self.shard.keys.stream(channel);
        self.shard
            .call(|mut c| async move { c.del::<_, i64>(key).await })
            .await
            .map(|_| ())
    }
}
