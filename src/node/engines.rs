//! Assembles the node's broker, presence manager and cluster control bus
//! from the configuration ([`Backends`] decides which; this builds only
//! what is used).
//!
//! * Broker and presence on Redis with the same settings (the Redis
//!   engine, or identical `broker.redis` / `presence_manager.redis`) share
//!   one connection set.
//! * The control bus follows the broker: Redis broker → `<prefix>.control`
//!   on its PUB/SUB connection; NATS broker → the NATS control subject;
//!   memory broker → no bus (one node, even with Redis presence).
//! * A Redis presence manager on its own: the Redis module's only public
//!   constructor is [`connect_engine`], which builds a broker too; that
//!   broker is dropped at once, which closes its PUB/SUB connection (its
//!   background tasks end with it). The presence manager keeps the command
//!   connection.

use std::sync::Arc;

use crate::engine::memory::{MemoryBroker, MemoryPresenceManager};
use crate::engine::nats::NatsBroker;
use crate::engine::redis::{RedisBroker, RedisPresenceManager, RedisSettings, connect_engine};
use crate::engine::{Backends, BrokerChoice, PresenceChoice};
use crate::engine::{Broker, PresenceManager};

use super::cluster::ControlBus;

/// What a node runs on.
pub(super) struct Built {
    pub(super) broker: Arc<dyn Broker>,
    pub(super) presence: Arc<dyn PresenceManager>,
    /// Cluster control (none with the memory broker).
    pub(super) bus: Option<Arc<dyn ControlBus>>,
}

/// The error prefix for a Redis object's section: `engine` for the
/// engine's, else the overriding section's name.
fn label(section: &str) -> &str {
    section.strip_suffix(".redis").unwrap_or(section)
}

async fn redis(
    section: &str,
    settings: &RedisSettings,
) -> Result<(RedisBroker, RedisPresenceManager), String> {
    connect_engine(settings)
        .await
        .map_err(|e| format!("{}: {e}", label(section)))
}

/// Connects whatever the config names.
pub(super) async fn build(backends: &Backends) -> Result<Built, String> {
    if let (Some(settings), BrokerChoice::Redis { section, .. }) =
        (backends.shared_redis(), &backends.broker)
    {
        let (broker, presence) = redis(section, settings).await?;
        return Ok(Built {
            bus: Some(broker.control_bus()),
            broker: Arc::new(broker),
            presence: Arc::new(presence),
        });
    }
    let (broker, bus): (Arc<dyn Broker>, Option<Arc<dyn ControlBus>>) = match &backends.broker {
        BrokerChoice::Memory => (Arc::new(MemoryBroker::new()), None),
        BrokerChoice::Redis { section, settings } => {
            // The presence handle is only a clone of the command
            // connection; dropping it costs nothing.
            let (broker, _presence) = redis(section, settings).await?;
            let bus = broker.control_bus();
            (Arc::new(broker), Some(bus))
        }
        BrokerChoice::Nats(settings) => {
            let nats = NatsBroker::connect(settings)
                .await
                .map_err(|e| format!("broker: {e}"))?;
            let bus: Arc<dyn ControlBus> = Arc::new(nats.control_bus());
            (Arc::new(nats), Some(bus))
        }
    };
    let presence: Arc<dyn PresenceManager> = match &backends.presence {
        PresenceChoice::Memory => Arc::new(MemoryPresenceManager::new()),
        PresenceChoice::Redis { section, settings } => {
            let (unused_broker, presence) = redis(section, settings).await?;
            drop(unused_broker);
            Arc::new(presence)
        }
    };
    Ok(Built {
        broker,
        presence,
        bus,
    })
}
