//! The engine, broker and presence manager sections, with their Redis and
//! NATS objects, typed. Which of them a node runs on is decided once, by
//! [`crate::engine::Backends::from_config`].

use serde::{Deserialize, Deserializer, Serialize};

use super::{Duration, Tls};

/// `engine.type`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum EngineType {
    #[default]
    Memory,
    Redis,
}

/// `broker.type`: every type Centrifugo knows (Rotor builds memory, redis
/// and nats; the others are refused when the broker section is enabled).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum BrokerType {
    #[default]
    Memory,
    Redis,
    Nats,
    Postgres,
    Redisnats,
}

/// `presence_manager.type`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum PresenceType {
    #[default]
    Memory,
    Redis,
}

/// The `engine` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Engine {
    #[serde(rename = "type")]
    pub(crate) kind: EngineType,
    pub(crate) redis: RedisConfig,
}

/// The `broker` section (replaces the engine's PUB/SUB and history part
/// when enabled). `postgres` and `redisnats` are refused by the key table.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Broker {
    pub(crate) enabled: bool,
    #[serde(rename = "type")]
    pub(crate) kind: BrokerType,
    pub(crate) redis: RedisConfig,
    pub(crate) nats: NatsConfig,
}

/// The `presence_manager` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct PresenceManagerSection {
    pub(crate) enabled: bool,
    #[serde(rename = "type")]
    pub(crate) kind: PresenceType,
    pub(crate) redis: RedisConfig,
}

/// A Redis object (`engine.redis`, `broker.redis`,
/// `presence_manager.redis`). Empty strings and zero durations mean the
/// default, as in Centrifugo.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RedisConfig {
    /// One address, or several for client-side sharding; a string or a list.
    #[serde(deserialize_with = "string_or_list")]
    pub(crate) address: Vec<String>,
    pub(crate) prefix: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) io_timeout: Duration,
    pub(crate) db: u32,
    pub(crate) user: String,
    pub(crate) password: String,
    #[serde(deserialize_with = "string_or_list")]
    pub(crate) cluster_address: Vec<String>,
    pub(crate) tls: BackendTls,
    #[serde(deserialize_with = "string_or_list")]
    pub(crate) sentinel_address: Vec<String>,
    pub(crate) sentinel_user: String,
    pub(crate) sentinel_password: String,
    pub(crate) sentinel_master_name: String,
    pub(crate) sentinel_tls: Tls,
    /// Presence entry lifetime (60s when unset); only `engine.redis` and
    /// `presence_manager.redis` have it, so it is not rendered by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) presence_ttl: Option<Duration>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            address: vec!["redis://127.0.0.1:6379".into()],
            prefix: "centrifugo".into(),
            connect_timeout: Duration::from_secs(1),
            io_timeout: Duration::from_secs(4),
            db: 0,
            user: String::new(),
            password: String::new(),
            cluster_address: Vec::new(),
            tls: BackendTls::default(),
            sentinel_address: Vec::new(),
            sentinel_user: String::new(),
            sentinel_password: String::new(),
            sentinel_master_name: String::new(),
            sentinel_tls: Tls::default(),
            presence_ttl: None,
        }
    }
}

/// The `tls` object of a connection to Redis or NATS: Centrifugo's keys
/// (each PEM as text, base64 or a file path) plus Rotor's older `*_file`
/// keys.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub(crate) struct BackendTls {
    pub(crate) enabled: bool,
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
    pub(crate) server_ca_pem: String,
    pub(crate) insecure_skip_verify: bool,
    pub(crate) server_name: String,
    pub(crate) cert_pem_file: String,
    pub(crate) key_pem_file: String,
    pub(crate) server_ca_pem_file: String,
}

/// The `broker.nats` object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub(crate) struct NatsConfig {
    pub(crate) url: String,
    pub(crate) prefix: String,
    pub(crate) dial_timeout: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) tls: BackendTls,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            prefix: "centrifugo".into(),
            dial_timeout: Duration::from_secs(1),
            write_timeout: Duration::from_secs(1),
            tls: BackendTls::default(),
        }
    }
}

/// A list of strings that may also be written as one string (empty: none).
fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<Raw>::deserialize(d)? {
        None => Vec::new(),
        Some(Raw::One(s)) if s.is_empty() => Vec::new(),
        Some(Raw::One(s)) => vec![s],
        Some(Raw::Many(v)) => v,
    })
}
