//! The cluster [`ControlBus`] on Redis: `PUBLISH <prefix>.control` on the
//! command connection; the PUB/SUB connection subscribes the channel and
//! its reading task hands each message to the node (see
//! [`crate::node::cluster`] for what travels on it). Like the broker's
//! channels, the control channel is resubscribed after a reconnect. It is
//! plain PUB/SUB on every topology (a Redis Cluster forwards `PUBLISH` to
//! all nodes) and lives on shard 0 with client-side sharding.

use std::sync::Arc;

use bytes::Bytes;
use redis::Value;
use tokio::sync::mpsc;

use super::Shard;
use super::pubsub::Delivery;
use crate::engine::EngineError;
use crate::node::cluster::ControlBus;

/// Control messages over Redis PUB/SUB.
pub(crate) struct RedisControlBus {
    shard: Shard,
    delivery: Arc<Delivery>,
}

impl std::fmt::Debug for RedisControlBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisControlBus").finish_non_exhaustive()
    }
}

impl RedisControlBus {
    pub(super) fn new(shard: Shard, delivery: Arc<Delivery>) -> Self {
        Self { shard, delivery }
    }
}

#[async_trait::async_trait]
impl ControlBus for RedisControlBus {
    async fn publish(&self, msg: Bytes) -> Result<(), EngineError> {
        let key = self.shard.keys.control();
        self.shard
            .call(|mut c| async move {
                redis::cmd("PUBLISH")
                    .arg(key)
                    .arg(msg.as_ref())
                    .query_async::<Value>(&mut c)
                    .await
            })
            .await
            .map(|_| ())
    }

    async fn run(&self, sink: mpsc::UnboundedSender<Bytes>) -> Result<(), EngineError> {
        self.delivery.subscribe_control(sink).await
    }
}
