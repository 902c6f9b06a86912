//! Which broker and presence manager a configuration asks for, read the way
//! Centrifugo v6 reads it.
//!
//! `engine.type` (`memory` | `redis`, object `engine.redis`) supplies both
//! parts. `broker.enabled` replaces the PUB/SUB + history part with
//! `broker.type` (`memory` | `redis` with its own `broker.redis` object |
//! `nats` with `broker.nats`); `presence_manager.enabled` replaces the
//! presence part with `presence_manager.type` (`memory` | `redis` with
//! `presence_manager.redis`). A section that is not enabled is not read at
//! all, so a disabled `broker.type: postgres` is fine.
//!
//! `checkconfig` and [`crate::node::Node::new`] both start from
//! [`Backends::from_config`], so what is checked is exactly what is built.
//! (It lives in `engine`, not `config`: the configuration knows nothing of
//! the engines it selects.)

use crate::config::{BrokerType, Config, ConfigError, EngineType, PresenceType, RedisConfig};
use crate::engine::nats::NatsSettings;
use crate::engine::redis::RedisSettings;

/// The PUB/SUB + history part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BrokerChoice {
    /// In-process broker (one node).
    Memory,
    /// Redis; `section` is the object it was read from (`engine.redis` or
    /// `broker.redis`).
    Redis {
        /// Config path of the Redis object.
        section: &'static str,
        /// Its settings.
        settings: RedisSettings,
    },
    /// NATS (at-most-once PUB/SUB, no history).
    Nats(NatsSettings),
}

/// The presence part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PresenceChoice {
    /// In-process presence (one node).
    Memory,
    /// Redis, read from `section` (`engine.redis` or
    /// `presence_manager.redis`).
    Redis {
        /// Config path of the Redis object.
        section: &'static str,
        /// Its settings.
        settings: RedisSettings,
    },
}

/// What a node runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Backends {
    /// PUB/SUB and history.
    pub(crate) broker: BrokerChoice,
    /// Presence.
    pub(crate) presence: PresenceChoice,
}

/// Names an engine settings error `(key, message)` under `section`.
fn under(section: &str, (key, message): (String, String)) -> ConfigError {
    let key = if key.is_empty() {
        section.to_owned()
    } else {
        format!("{section}.{key}")
    };
    ConfigError::invalid(key, message)
}

fn redis(section: &'static str, cfg: &RedisConfig) -> Result<RedisSettings, ConfigError> {
    RedisSettings::from_config(cfg).map_err(|e| under(section, e))
}

impl Backends {
    /// Reads the engine, broker and presence manager sections.
    pub(crate) fn from_config(cfg: &Config) -> Result<Self, ConfigError> {
        let engine_redis = match cfg.engine.kind {
            EngineType::Redis => Some(redis("engine.redis", &cfg.engine.redis)?),
            EngineType::Memory => None,
        };
        let broker = if cfg.broker.enabled {
            match cfg.broker.kind {
                BrokerType::Memory => BrokerChoice::Memory,
                BrokerType::Redis => BrokerChoice::Redis {
                    section: "broker.redis",
                    settings: redis("broker.redis", &cfg.broker.redis)?,
                },
                BrokerType::Nats => BrokerChoice::Nats(
                    NatsSettings::from_config(&cfg.broker.nats)
                        .map_err(|e| under("broker.nats", e))?,
                ),
                BrokerType::Postgres | BrokerType::Redisnats => {
                    let name = if cfg.broker.kind == BrokerType::Postgres {
                        "postgres"
                    } else {
                        "redisnats"
                    };
                    return Err(ConfigError::invalid(
                        "broker.type",
                        format!("{name:?} is not supported by this build yet"),
                    ));
                }
            }
        } else {
            match &engine_redis {
                Some(settings) => BrokerChoice::Redis {
                    section: "engine.redis",
                    settings: settings.clone(),
                },
                None => BrokerChoice::Memory,
            }
        };
        let presence = if cfg.presence_manager.enabled {
            match cfg.presence_manager.kind {
                PresenceType::Redis => PresenceChoice::Redis {
                    section: "presence_manager.redis",
                    settings: redis("presence_manager.redis", &cfg.presence_manager.redis)?,
                },
                PresenceType::Memory => PresenceChoice::Memory,
            }
        } else {
            match engine_redis {
                Some(settings) => PresenceChoice::Redis {
                    section: "engine.redis",
                    settings,
                },
                None => PresenceChoice::Memory,
            }
        };
        Ok(Self { broker, presence })
    }

    /// The Redis settings broker and presence can share one connection set
    /// under: both on Redis with identical settings.
    pub(crate) fn shared_redis(&self) -> Option<&RedisSettings> {
        match (&self.broker, &self.presence) {
            (
                BrokerChoice::Redis { settings: b, .. },
                PresenceChoice::Redis { settings: p, .. },
            ) if b == p => Some(b),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backends(change: impl FnOnce(&mut Config)) -> Result<Backends, ConfigError> {
        let mut cfg = Config::default();
        change(&mut cfg);
        Backends::from_config(&cfg)
    }

    fn redis_at(prefix: &str) -> RedisSettings {
        RedisSettings {
            prefix: prefix.into(),
            ..RedisSettings::default()
        }
    }

    #[test]
    fn memory_by_default() {
        let b = backends(|_| {}).expect("defaults");
        assert_eq!(b.broker, BrokerChoice::Memory);
        assert_eq!(b.presence, PresenceChoice::Memory);
        assert!(b.shared_redis().is_none());
    }

    #[test]
    fn redis_engine_supplies_both_parts_on_one_connection_set() {
        let b = backends(|c| {
            c.engine.kind = EngineType::Redis;
            c.engine.redis.prefix = "e".into();
        })
        .expect("redis engine");
        let section = "engine.redis";
        let settings = redis_at("e");
        assert_eq!(
            b.broker,
            BrokerChoice::Redis {
                section,
                settings: settings.clone()
            }
        );
        assert_eq!(
            b.presence,
            PresenceChoice::Redis {
                section,
                settings: settings.clone()
            }
        );
        assert_eq!(b.shared_redis(), Some(&settings));
    }

    #[test]
    fn broker_and_presence_sections_override_the_engine() {
        let b = backends(|c| {
            c.engine.kind = EngineType::Redis;
            c.broker.enabled = true;
            c.broker.kind = BrokerType::Nats;
        })
        .expect("nats broker on redis engine");
        assert!(matches!(b.broker, BrokerChoice::Nats(_)));
        assert!(
            matches!(b.presence, PresenceChoice::Redis { section, .. } if section == "engine.redis")
        );

        let b = backends(|c| {
            c.broker.enabled = true;
            c.broker.kind = BrokerType::Redis;
            c.broker.redis.prefix = "b".into();
            c.presence_manager.enabled = true;
            c.presence_manager.kind = PresenceType::Redis;
            c.presence_manager.redis.prefix = "p".into();
        })
        .expect("memory engine, redis broker and presence");
        assert_eq!(
            b.broker,
            BrokerChoice::Redis {
                section: "broker.redis",
                settings: redis_at("b")
            }
        );
        assert_eq!(
            b.presence,
            PresenceChoice::Redis {
                section: "presence_manager.redis",
                settings: redis_at("p")
            }
        );
        assert!(b.shared_redis().is_none(), "different prefixes");

        let b = backends(|c| {
            c.engine.kind = EngineType::Redis;
            c.broker.enabled = true;
            c.broker.kind = BrokerType::Memory;
            c.presence_manager.enabled = true;
            c.presence_manager.kind = PresenceType::Memory;
        })
        .expect("both parts back to memory");
        assert_eq!(b.broker, BrokerChoice::Memory);
        assert_eq!(b.presence, PresenceChoice::Memory);
    }

    #[test]
    fn disabled_sections_are_not_read() {
        let b = backends(|c| {
            c.broker.kind = BrokerType::Redis;
            c.broker.redis.address = vec!["bad://".into()];
            c.presence_manager.kind = PresenceType::Redis;
            c.presence_manager.redis.sentinel_address = vec!["x:1".into()];
        })
        .expect("disabled sections");
        assert_eq!(b.broker, BrokerChoice::Memory);
        assert_eq!(b.presence, PresenceChoice::Memory);
    }

    #[test]
    fn errors_name_the_section_they_come_from() {
        let key = |change: fn(&mut Config)| backends(change).expect_err("invalid").key().to_owned();
        assert_eq!(
            key(|c| {
                c.broker.enabled = true;
                c.broker.kind = BrokerType::Redis;
                c.broker.redis.address = vec!["bad://".into()];
            }),
            "broker.redis.address"
        );
        assert_eq!(
            key(|c| {
                c.presence_manager.enabled = true;
                c.presence_manager.kind = PresenceType::Redis;
                c.presence_manager.redis.sentinel_address = vec!["x:1".into()];
            }),
            "presence_manager.redis.sentinel_master_name"
        );
        let e = backends(|c| {
            c.broker.enabled = true;
            c.broker.kind = BrokerType::Redisnats;
        })
        .expect_err("not built");
        assert_eq!(
            e.to_string(),
            "broker.type: \"redisnats\" is not supported by this build yet"
        );
    }
}
