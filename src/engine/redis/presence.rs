//! The Redis [`PresenceManager`]: per channel a hash (client → protobuf
//! `ClientInfo`) and a sorted set (client → expiry, unix ms). Entries not
//! refreshed within the presence TTL are dropped on the next read; both keys
//! expire with the TTL too, so an abandoned channel costs nothing. With
//! several shards a channel's presence lives on the shard that holds its
//! stream ([`super::consistent_index`]).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use prost::Message;
use redis::Value;

use super::{Shard, array_of, bad_reply, bytes_of, consistent_index, millis, scripts};
use crate::engine::{ClientInfo, EngineError, PresenceManager, PresenceStats};

/// [`PresenceManager`] on Redis.
pub struct RedisPresenceManager {
    /// Never empty (`connect_engine` makes at least one).
    shards: Vec<Shard>,
    ttl: Duration,
}

impl std::fmt::Debug for RedisPresenceManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPresenceManager")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl RedisPresenceManager {
    pub(super) fn new(shards: Vec<Shard>, ttl: Duration) -> Self {
        Self { shards, ttl }
    }

    fn shard(&self, channel: &str) -> &Shard {
        let i = consistent_index(channel, self.shards.len());
        self.shards.get(i).unwrap_or(&self.shards[0])
    }

    /// Client id → info of the live entries.
    async fn entries(&self, channel: &str) -> Result<HashMap<String, ClientInfo>, EngineError> {
        let shard = self.shard(channel);
        let keys = &shard.keys;
        let mut invocation = scripts::PRESENCE_GET.prepare_invoke();
        invocation
            .key(keys.presence_expire(channel))
            .key(keys.presence_data(channel))
            .arg(now_ms());
        let reply: Value = shard
            .call(|mut c| async move { invocation.invoke_async(&mut c).await })
            .await?;
        let flat = array_of(&reply).ok_or_else(|| bad_reply("presence"))?;
        let mut out = HashMap::with_capacity(flat.len() / 2);
        for pair in flat.chunks(2) {
            let (Some(id), Some(info)) = (
                pair.first().and_then(bytes_of),
                pair.get(1).and_then(bytes_of),
            ) else {
                return Err(bad_reply("presence"));
            };
            // One corrupt entry must not hide everyone else.
            match ClientInfo::decode(info) {
                Ok(info) => {
                    out.insert(String::from_utf8_lossy(id).into_owned(), info);
                }
                Err(e) => tracing::warn!(channel, error = %e, "undecodable presence entry"),
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl PresenceManager for RedisPresenceManager {
    async fn presence(&self, channel: &str) -> Result<HashMap<String, ClientInfo>, EngineError> {
        self.entries(channel).await
    }

    async fn presence_stats(&self, channel: &str) -> Result<PresenceStats, EngineError> {
        let entries = self.entries(channel).await?;
        let users: HashSet<&str> = entries.values().map(|i| i.user.as_str()).collect();
        Ok(PresenceStats {
            num_clients: u32::try_from(entries.len()).unwrap_or(u32::MAX),
            num_users: u32::try_from(users.len()).unwrap_or(u32::MAX),
        })
    }

    async fn add_presence(
        &self,
        channel: &str,
        client_id: &str,
        info: &ClientInfo,
    ) -> Result<(), EngineError> {
        let shard = self.shard(channel);
        let keys = &shard.keys;
        let ttl = millis(self.ttl);
        let mut invocation = scripts::PRESENCE_ADD.prepare_invoke();
        invocation
            .key(keys.presence_expire(channel))
            .key(keys.presence_data(channel))
            .arg(now_ms().saturating_add(ttl))
            .arg(client_id)
            .arg(info.encode_to_vec())
            .arg(ttl);
        shard
            .call(|mut c| async move { invocation.invoke_async::<Value>(&mut c).await })
            .await
            .map(|_| ())
    }

    async fn remove_presence(
        &self,
        channel: &str,
        client_id: &str,
        _user_id: &str,
    ) -> Result<(), EngineError> {
        let shard = self.shard(channel);
        let keys = &shard.keys;
        let mut invocation = scripts::PRESENCE_REMOVE.prepare_invoke();
        invocation
            .key(keys.presence_expire(channel))
            .key(keys.presence_data(channel))
            .arg(client_id);
        shard
            .call(|mut c| async move { invocation.invoke_async::<Value>(&mut c).await })
            .await
            .map(|_| ())
    }
}
