//! The Redis [`Broker`]: publish and history through the Lua scripts of
//! [`super::scripts`], delivery through the PUB/SUB task of
//! [`super::pubsub`]. With several shards every call for a channel goes to
//! the shard [`super::consistent_index`] picks; each shard has its own
//! delivery, and the cluster control bus lives on shard 0.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use prost::Message;
use redis::Value;

use super::pubsub::{Delivery, encode_presence_event};
use super::{
    DEFAULT_HISTORY_META_TTL, DEFAULT_IDEMPOTENT_RESULT_TTL, Node, Shard, array_of, bad_reply,
    bytes_of, consistent_index, millis, new_epoch, parse_position, scripts, string_of, u64_of,
    unavailable,
};
use crate::engine::{
    Broker, BrokerEventHandler, ClientInfo, EngineError, HistoryOptions, HistoryResult,
    Publication, PublishOptions, PublishResult, StreamPosition,
};

/// [`Broker`] on Redis (standalone shards, a Cluster or a Sentinel-managed
/// master).
pub struct RedisBroker {
    /// Never empty (`connect_engine` makes at least one).
    shards: Vec<(Shard, Arc<Delivery>)>,
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
    pub(super) fn new(nodes: Vec<Node>) -> Self {
        let shards = nodes
            .into_iter()
            .map(|node| {
                let on_loss = node.sentinel.as_ref().map(|s| s.refresh_signal());
                let delivery = Delivery::start(
                    node.shard.keys.clone(),
                    node.pubsub,
                    node.pushes,
                    node.shard.call_timeout,
                    on_loss,
                );
                if let Some(sentinel) = node.sentinel {
                    sentinel.watch(Arc::downgrade(&delivery));
                }
                (node.shard, delivery)
            })
            .collect();
        Self { shards }
    }

    /// The shard and delivery of `channel`.
    fn shard(&self, channel: &str) -> &(Shard, Arc<Delivery>) {
        let i = consistent_index(channel, self.shards.len());
        // `shards` is never empty and `i < len`; fall back to shard 0 anyway.
        self.shards.get(i).unwrap_or(&self.shards[0])
    }

    /// The cluster control bus on this broker's connections (shard 0).
    pub fn control_bus(&self) -> Arc<dyn crate::node::cluster::ControlBus> {
        let (shard, delivery) = &self.shards[0];
        Arc::new(super::RedisControlBus::new(shard.clone(), delivery.clone()))
    }

    async fn publish_event(&self, channel: &str, payload: Vec<u8>) -> Result<(), EngineError> {
        let shard = &self.shard(channel).0;
        let mut command = redis::cmd(shard.keys.publish_command());
        command.arg(shard.keys.pubsub(channel)).arg(payload);
        shard
            .call(|mut c| async move { command.query_async::<Value>(&mut c).await })
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
        for (_, delivery) in &self.shards {
            delivery.set_handler(handler.clone());
        }
        Ok(())
    }

    async fn publish(
        &self,
        channel: &str,
        data: Bytes,
        opts: &PublishOptions,
    ) -> Result<PublishResult, EngineError> {
        let shard = &self.shard(channel).0;
        let keys = &shard.keys;
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
            .arg(opts.version_epoch.as_str())
            .arg(keys.publish_command())
            .arg(if opts.use_delta { "1" } else { "0" });
        let reply: Value = shard
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
        self.shard(channel).1.subscribe(channel).await
    }

    async fn unsubscribe(&self, channel: &str) -> Result<(), EngineError> {
        self.shard(channel).1.unsubscribe(channel).await
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
        let shard = &self.shard(channel).0;
        let keys = &shard.keys;
        let mut invocation = scripts::HISTORY.prepare_invoke();
        invocation
            .key(keys.stream(channel))
            .key(keys.meta(channel))
            .arg(new_epoch())
            .arg(millis(or_default(opts.meta_ttl, DEFAULT_HISTORY_META_TTL)))
            .arg(mode)
            .arg(bound)
            .arg(count);
        let reply: Value = shard
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
        let shard = &self.shard(channel).0;
        let key = shard.keys.stream(channel);
        shard
            .call(
                |mut c| async move { redis::cmd("DEL").arg(key).query_async::<i64>(&mut c).await },
            )
            .await
            .map(|_| ())
    }
}
