//! The memory engine's presence store.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use parking_lot::Mutex;

use super::{NUM_SHARDS, channel_hash};
use crate::engine::{ClientInfo, EngineError, PresenceManager, PresenceStats};

/// channel → client id → info.
type PresenceShard = HashMap<String, HashMap<String, ClientInfo>>;

/// In-memory [`PresenceManager`]: entries live until removed (no TTL, since
/// a single node always knows when its clients go away).
pub(crate) struct MemoryPresenceManager {
    shards: Box<[Mutex<PresenceShard>]>,
}

impl Default for MemoryPresenceManager {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryPresenceManager {
    /// An empty presence store.
    pub(crate) fn new() -> Self {
        Self {
            shards: (0..NUM_SHARDS)
                .map(|_| Mutex::new(HashMap::new()))
                .collect(),
        }
    }

    fn shard(&self, channel: &str) -> &Mutex<PresenceShard> {
        &self.shards[channel_hash(channel) % NUM_SHARDS]
    }
}

#[async_trait]
impl PresenceManager for MemoryPresenceManager {
    async fn presence(&self, channel: &str) -> Result<HashMap<String, ClientInfo>, EngineError> {
        Ok(self
            .shard(channel)
            .lock()
            .get(channel)
            .cloned()
            .unwrap_or_default())
    }

    async fn presence_stats(&self, channel: &str) -> Result<PresenceStats, EngineError> {
        let shard = self.shard(channel).lock();
        let Some(clients) = shard.get(channel) else {
            return Ok(PresenceStats::default());
        };
        let users: HashSet<&str> = clients.values().map(|info| info.user.as_str()).collect();
        Ok(PresenceStats {
            num_clients: u32::try_from(clients.len()).unwrap_or(u32::MAX),
            num_users: u32::try_from(users.len()).unwrap_or(u32::MAX),
        })
    }

    async fn add_presence(
        &self,
        channel: &str,
        client_id: &str,
        info: &ClientInfo,
    ) -> Result<(), EngineError> {
        let mut shard = self.shard(channel).lock();
        let clients = match shard.get_mut(channel) {
            Some(clients) => clients,
            None => shard.entry(channel.to_owned()).or_default(),
        };
        clients.insert(client_id.to_owned(), info.clone());
        Ok(())
    }

    async fn remove_presence(
        &self,
        channel: &str,
        client_id: &str,
        _user_id: &str,
    ) -> Result<(), EngineError> {
        let mut shard = self.shard(channel).lock();
        if let Some(clients) = shard.get_mut(channel) {
            clients.remove(client_id);
            if clients.is_empty() {
                // Empty channels must not accumulate: presence of a channel
                // nobody is in costs nothing.
                shard.remove(channel);
            }
        }
        Ok(())
    }
}
