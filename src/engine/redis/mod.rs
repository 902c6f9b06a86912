//! Redis engine: [`Broker`](crate::engine::Broker) and
//! [`PresenceManager`](crate::engine::PresenceManager) on a standalone
//! Redis, so several Rotor nodes share streams, deliveries and presence.
//!
//! # Data model (keys under the configured prefix `<p>`)
//!
//! * `<p>.stream.<ch>` — a Redis **STREAM** holding the channel history. The
//!   entry id *is* the publication offset (`XADD … <offset>` makes id
//!   `<offset>-0`), so `since`/`reverse` reads are plain `XRANGE` /
//!   `XREVRANGE` bounds. One field `d` holds the protobuf `Publication`
//!   (without its offset). Trimmed exactly with `MAXLEN history_size`;
//!   `PEXPIRE history_ttl` after each publish.
//! * `<p>.stream.meta.<ch>` — hash with `e` (epoch), `s` (top offset), `v` /
//!   `ve` (last accepted version and its epoch); `PEXPIRE history_meta_ttl`
//!   on each publish and history read. A lost meta means a new epoch and
//!   offsets from 1; the old stream is deleted when offset 1 is assigned.
//! * `<p>.result.<ch>.<key>` — remembered `offset:epoch` of an idempotent
//!   publish, `PX idempotent_result_ttl`.
//! * `<p>.presence.data.<ch>` (hash client → protobuf `ClientInfo`) and
//!   `<p>.presence.expire.<ch>` (sorted set client → expiry in unix ms).
//!
//! Publish is one Lua script per call (idempotency check, version check,
//! meta/epoch, `HINCRBY`, `XADD`, expiries and the `PUBLISH`), so the
//! append and the delivery are atomic and Redis delivers one channel's
//! publications in offset order.
//!
//! # Wire format on PUB/SUB channel `<p>.client.<ch>`
//!
//! The first byte says what follows:
//! * `p<offset>:<epoch>:<protobuf Publication>` — a publication; offset `0`
//!   and an empty epoch without history;
//! * `j<protobuf ClientInfo>` — join; `l<protobuf ClientInfo>` — leave.
//!
//! Epochs are alphanumeric, so the two `:` separators are unambiguous.
//!
//! Cluster control messages (`crate::node::cluster`) travel on PUB/SUB
//! channel `<p>.control` (Centrifugo's name) over the same connections.
//!
//! # Connections and timeouts
//!
//! One multiplexed command connection (commands from concurrent callers are
//! pipelined) and one dedicated RESP3 connection for PUB/SUB per node, both
//! auto-reconnecting (`ConnectionManager`; the PUB/SUB one resubscribes).
//! `SUBSCRIBE`/`UNSUBSCRIBE` requests that queue up are sent as one command
//! (see `batch`).
//! Every call is bounded by `connect_timeout + io_timeout` (5 s by default),
//! so a dead Redis fails calls with [`EngineError::Unavailable`] instead of
//! hanging.
//!
//! Only standalone Redis is built; [`RedisSettings`] already keeps a list of
//! addresses for client-side sharding, Cluster and Sentinel later.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use rand::distr::Alphanumeric;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, ProtocolVersion, PushInfo, Value};

use super::EngineError;

mod batch;
mod broker;
mod config;
mod control;
mod presence;
mod pubsub;
mod scripts;

pub use broker::RedisBroker;
pub use config::RedisSettings;
pub use control::RedisControlBus;
pub use presence::RedisPresenceManager;

/// Stream meta lifetime when neither the publish nor the read gives one.
pub const DEFAULT_HISTORY_META_TTL: Duration = Duration::from_secs(720 * 3600);

/// Idempotency key lifetime when the options say zero.
pub const DEFAULT_IDEMPOTENT_RESULT_TTL: Duration = Duration::from_secs(300);

/// Epoch length, as in the memory engine.
const EPOCH_LEN: usize = 8;

/// A fresh random epoch.
fn new_epoch() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(EPOCH_LEN)
        .map(char::from)
        .collect()
}

/// Milliseconds for `PEXPIRE`/`PX`, at least 1 (0 would be an error).
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 2).max(1)
}

fn unavailable(e: impl std::fmt::Display) -> EngineError {
    EngineError::Unavailable(format!("redis: {e}"))
}

/// Key and channel names under one prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    fn stream(&self, channel: &str) -> String {
        format!("{}.stream.{channel}", self.prefix)
    }
    fn meta(&self, channel: &str) -> String {
        format!("{}.stream.meta.{channel}", self.prefix)
    }
    fn result(&self, channel: &str, key: &str) -> String {
        format!("{}.result.{channel}.{key}", self.prefix)
    }
    /// The PUB/SUB channel of cluster control messages.
    fn control(&self) -> String {
        format!("{}.control", self.prefix)
    }
    fn pubsub(&self, channel: &str) -> String {
        format!("{}.client.{channel}", self.prefix)
    }
    /// The Rotor channel of a PUB/SUB channel name, if it is one of ours.
    fn channel_of<'a>(&self, pubsub: &'a str) -> Option<&'a str> {
        pubsub
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(".client.")
    }
    fn presence_data(&self, channel: &str) -> String {
        format!("{}.presence.data.{channel}", self.prefix)
    }
    fn presence_expire(&self, channel: &str) -> String {
        format!("{}.presence.expire.{channel}", self.prefix)
    }
}

/// A bounded command connection to one Redis.
#[derive(Clone)]
pub(crate) struct Shard {
    conn: ConnectionManager,
    keys: Keys,
    call_timeout: Duration,
}

impl Shard {
    /// Runs one call on the command connection within the call timeout.
    async fn call<T, F, Fut>(&self, f: F) -> Result<T, EngineError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        match tokio::time::timeout(self.call_timeout, f(self.conn.clone())).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(unavailable(e)),
            Err(_) => Err(unavailable("timed out")),
        }
    }
}

/// Connection info for `address` with the object's db and credentials.
fn connection_info(
    settings: &RedisSettings,
    address: &str,
    protocol: ProtocolVersion,
) -> Result<redis::ConnectionInfo, EngineError> {
    let info = address
        .into_connection_info()
        .map_err(|e| unavailable(format!("bad address {}: {e}", config::redact(address))))?;
    let mut redis_settings = info.redis_settings().clone().set_protocol(protocol);
    if settings.db != 0 {
        redis_settings = redis_settings.set_db(settings.db);
    }
    if !settings.user.is_empty() {
        redis_settings = redis_settings.set_username(&settings.user);
    }
    if !settings.password.is_empty() {
        redis_settings = redis_settings.set_password(&settings.password);
    }
    Ok(info
        .set_redis_settings(redis_settings)
        .set_tcp_settings(tcp_settings(settings)))
}

/// Keepalive probes find a dead peer on an idle connection (the PUB/SUB one
/// is idle whenever nothing is published), and `TCP_USER_TIMEOUT` drops a
/// connection whose writes go unacknowledged for `io_timeout`; both end in
/// an I/O error, which makes the connection manager reconnect.
fn tcp_settings(settings: &RedisSettings) -> redis::io::tcp::TcpSettings {
    use redis::io::tcp::socket2::TcpKeepalive;
    let keepalive = TcpKeepalive::new()
        .with_time(Duration::from_secs(1))
        .with_interval(Duration::from_secs(1))
        .with_retries(3);
    redis::io::tcp::TcpSettings::default()
        .set_nodelay(true)
        .set_keepalive(keepalive)
        .set_user_timeout(settings.io_timeout)
}

fn manager_config(settings: &RedisSettings) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(settings.connect_timeout))
        .set_response_timeout(Some(settings.io_timeout))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(1))
}

async fn manager(
    info: redis::ConnectionInfo,
    config: ConnectionManagerConfig,
    settings: &RedisSettings,
) -> Result<ConnectionManager, EngineError> {
    let client = redis::Client::open(info).map_err(unavailable)?;
    let budget = settings.connect_timeout + settings.io_timeout;
    match tokio::time::timeout(budget, ConnectionManager::new_with_config(client, config)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(unavailable(e)),
        Err(_) => Err(unavailable("connect timed out")),
    }
}

/// Connects the command connection and the PUB/SUB connection; pushes
/// (messages) arrive on the returned receiver.
async fn connect(
    settings: &RedisSettings,
) -> Result<
    (
        Shard,
        ConnectionManager,
        tokio::sync::mpsc::UnboundedReceiver<PushInfo>,
    ),
    EngineError,
> {
    let address = settings
        .addresses
        .first()
        .ok_or_else(|| unavailable("no address"))?;
    if address.starts_with("rediss://") {
        // The TLS connector builds its rustls config from the process
        // default provider; make sure there is one (a no-op if installed).
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
    let keys = Keys {
        prefix: settings.prefix.clone(),
    };
    let commands = manager(
        connection_info(settings, address, ProtocolVersion::RESP2)?,
        manager_config(settings),
        settings,
    )
    .await?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let pubsub = manager(
        connection_info(settings, address, ProtocolVersion::RESP3)?,
        manager_config(settings)
            .set_push_sender(tx)
            .set_automatic_resubscription(),
        settings,
    )
    .await?;
    let shard = Shard {
        conn: commands,
        keys,
        call_timeout: settings.connect_timeout + settings.io_timeout,
    };
    Ok((shard, pubsub, rx))
}

/// Connects the Redis engine described by the `engine.redis` object: the
/// broker and the presence manager share the command connection.
pub async fn connect_engine(
    settings: &RedisSettings,
) -> Result<(RedisBroker, RedisPresenceManager), EngineError> {
    let (shard, pubsub, pushes) = connect(settings).await?;
    let addresses: Vec<String> = settings
        .addresses
        .iter()
        .map(|a| config::redact(a))
        .collect();
    tracing::info!(?addresses, prefix = %settings.prefix, "redis engine connected");
    let presence = RedisPresenceManager::new(shard.clone(), settings.presence_ttl);
    let broker = RedisBroker::new(shard, pubsub, pushes);
    Ok((broker, presence))
}

// ---------------------------------------------------------------------------
// Reply decoding
// ---------------------------------------------------------------------------

fn bytes_of(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        Value::Okay => Some(b"OK"),
        _ => None,
    }
}

fn string_of(v: &Value) -> Option<String> {
    match v {
        Value::Int(i) => Some(i.to_string()),
        other => bytes_of(other).map(|b| String::from_utf8_lossy(b).into_owned()),
    }
}

fn u64_of(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) => u64::try_from(*i).ok(),
        other => string_of(other)?.parse().ok(),
    }
}

fn array_of(v: &Value) -> Option<&[Value]> {
    match v {
        Value::Array(items) | Value::Set(items) => Some(items),
        _ => None,
    }
}

fn bad_reply(what: &str) -> EngineError {
    unavailable(format!("unexpected reply to {what}"))
}

/// Parses `"<offset>:<epoch>"`.
fn parse_position(text: &str) -> Option<crate::engine::StreamPosition> {
    let (offset, epoch) = text.split_once(':')?;
    Some(crate::engine::StreamPosition {
        offset: offset.parse().ok()?,
        epoch: epoch.to_owned(),
    })
}
