//! Redis engine: [`Broker`](crate::engine::Broker) and
//! [`PresenceManager`](crate::engine::PresenceManager) on Redis, so several
//! Rotor nodes share streams, deliveries and presence.
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
//! * `d<offset>:<epoch>:<n>:<previous entry><protobuf Publication>` — a
//!   publication asking for delta, with the previous stream entry (`n`
//!   bytes, a protobuf Publication) whose data subscribers diff against;
//! * `j<protobuf ClientInfo>` — join; `l<protobuf ClientInfo>` — leave.
//!
//! Epochs are alphanumeric, so the two `:` separators are unambiguous.
//!
//! Cluster control messages (`crate::node::cluster`) travel on PUB/SUB
//! channel `<p>.control` (Centrifugo's name) over the same connections.
//!
//! # Topologies
//!
//! * **Standalone**, one address.
//! * **Client-side sharding**, several addresses: one independent shard
//!   (command connection + PUB/SUB delivery) per address; a channel's
//!   stream, presence and deliveries live on the shard
//!   [`consistent_index`] picks (Centrifugo's jump hash, so both agree on
//!   the placement). The control channel lives on shard 0.
//! * **Redis Cluster** (`cluster_address` or `redis+cluster://`): keys wrap
//!   the channel in a `{…}` hash tag (`<p>.stream.{ch}`,
//!   `<p>.stream.meta.{ch}`, `<p>.result.{ch}.<key>`,
//!   `<p>.presence.data.{ch}`, …), so the publish script runs on one node,
//!   and deliveries use sharded PUB/SUB (`SPUBLISH` / `SSUBSCRIBE`, Redis
//!   ≥ 7) on `<p>.client.{ch}`. The control channel stays plain PUB/SUB.
//!   The keys are Centrifugo's cluster keys; its deliveries on a cluster
//!   default to plain `PUBLISH` on `<p>.client.<ch>`, so Rotor and
//!   Centrifugo nodes on one Redis Cluster share history but not
//!   deliveries.
//! * **Sentinel** (`sentinel_address` or `redis+sentinel://`): the master
//!   comes from the Sentinels and is re-checked every 5 s and on any sign of
//!   connection loss ([`sentinel`]).
//!
//! # Connections and timeouts
//!
//! Per shard one multiplexed command connection (commands from concurrent
//! callers are pipelined) and one dedicated RESP3 connection for PUB/SUB,
//! both auto-reconnecting (the PUB/SUB one resubscribes); see [`conn`].
//! `SUBSCRIBE`/`UNSUBSCRIBE` requests that queue up are sent as one command
//! (see `batch`).
//! Every call is bounded by `connect_timeout + io_timeout` (5 s by default),
//! so a dead Redis (or cluster node) fails calls with
//! [`EngineError::Unavailable`] instead of hanging.
//!
//! TLS (`rediss://`) verifies against the system roots unless the `tls`
//! object gives a CA, a client certificate or `insecure_skip_verify`
//! ([`tls`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rand::distr::Alphanumeric;
use redis::{PushInfo, Value};

use super::EngineError;

mod address;
mod batch;
mod broker;
mod config;
mod conn;
mod control;
mod presence;
mod pubsub;
mod scripts;
mod sentinel;
mod tls;

pub use broker::RedisBroker;
pub use config::{RedisSettings, SentinelSettings};
pub(crate) use control::RedisControlBus;
pub use presence::RedisPresenceManager;

/// Stream meta lifetime when neither the publish nor the read gives one.
pub(crate) const DEFAULT_HISTORY_META_TTL: Duration = Duration::from_secs(720 * 3600);

/// Idempotency key lifetime when the options say zero.
pub(crate) const DEFAULT_IDEMPOTENT_RESULT_TTL: Duration = Duration::from_secs(300);

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

/// Key and channel names under one prefix. On a Redis Cluster the channel
/// is wrapped in a `{…}` hash tag, so one channel's stream, meta, result and
/// presence keys and its PUB/SUB channel hash to one slot (the publish
/// script touches them together on one node).
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
    cluster: bool,
}

impl Keys {
    fn tagged<'a>(&self, channel: &'a str) -> std::borrow::Cow<'a, str> {
        if self.cluster {
            format!("{{{channel}}}").into()
        } else {
            channel.into()
        }
    }
    fn stream(&self, channel: &str) -> String {
        format!("{}.stream.{}", self.prefix, self.tagged(channel))
    }
    fn meta(&self, channel: &str) -> String {
        format!("{}.stream.meta.{}", self.prefix, self.tagged(channel))
    }
    fn result(&self, channel: &str, key: &str) -> String {
        format!("{}.result.{}.{key}", self.prefix, self.tagged(channel))
    }
    /// The PUB/SUB channel of cluster control messages.
    fn control(&self) -> String {
        format!("{}.control", self.prefix)
    }
    fn pubsub(&self, channel: &str) -> String {
        format!("{}.client.{}", self.prefix, self.tagged(channel))
    }
    /// The Rotor channel of a PUB/SUB channel name, if it is one of ours.
    fn channel_of<'a>(&self, pubsub: &'a str) -> Option<&'a str> {
        let channel = pubsub
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(".client.")?;
        if self.cluster {
            channel.strip_prefix('{')?.strip_suffix('}')
        } else {
            Some(channel)
        }
    }
    fn presence_data(&self, channel: &str) -> String {
        format!("{}.presence.data.{}", self.prefix, self.tagged(channel))
    }
    fn presence_expire(&self, channel: &str) -> String {
        format!("{}.presence.expire.{}", self.prefix, self.tagged(channel))
    }
    /// `PUBLISH`, or `SPUBLISH` for sharded PUB/SUB on a cluster.
    fn publish_command(&self) -> &'static str {
        if self.cluster { "spublish" } else { "publish" }
    }
}

/// A bounded command connection to one shard.
#[derive(Clone)]
pub(crate) struct Shard {
    conn: conn::Conn,
    keys: Keys,
    call_timeout: Duration,
    /// Woken when a call fails (a Sentinel setup then re-asks the
    /// Sentinels at once instead of at the next periodic check).
    on_error: Option<Arc<tokio::sync::Notify>>,
}

impl Shard {
    fn new(
        settings: &RedisSettings,
        conn: conn::Conn,
        on_error: Option<Arc<tokio::sync::Notify>>,
    ) -> Self {
        Self {
            keys: Keys {
                prefix: settings.prefix.clone(),
                cluster: conn.sharded(),
            },
            conn,
            call_timeout: settings.connect_timeout + settings.io_timeout,
            on_error,
        }
    }

    /// Runs one call on the command connection within the call timeout.
    async fn call<T, F, Fut>(&self, f: F) -> Result<T, EngineError>
    where
        F: FnOnce(conn::Conn) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let result = match tokio::time::timeout(self.call_timeout, f(self.conn.clone())).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => Err(unavailable(e)),
            Err(_) => Err(unavailable("timed out")),
        };
        if let Some(notify) = &self.on_error {
            notify.notify_one();
        }
        result
    }
}

/// One shard's connections before the broker starts its delivery.
pub(crate) struct Node {
    shard: Shard,
    pubsub: conn::Conn,
    pushes: tokio::sync::mpsc::UnboundedReceiver<PushInfo>,
    /// The Sentinel watcher, for a Sentinel-managed master.
    sentinel: Option<Arc<sentinel::Sentinel>>,
}

/// Connects the command and PUB/SUB connections of one standalone Redis.
async fn connect_single(settings: &RedisSettings, address: &str) -> Result<Node, EngineError> {
    let commands = conn::manager(settings, address, None).await?;
    let (tx, pushes) = tokio::sync::mpsc::unbounded_channel();
    let pubsub = conn::manager(settings, address, Some(tx)).await?;
    Ok(Node {
        shard: Shard::new(settings, conn::Conn::Single(commands), None),
        pubsub: conn::Conn::Single(pubsub),
        pushes,
        sentinel: None,
    })
}

/// Connects the command and PUB/SUB connections of a Redis Cluster.
async fn connect_cluster(settings: &RedisSettings) -> Result<Node, EngineError> {
    let commands = conn::cluster(settings, None).await?;
    let (tx, pushes) = tokio::sync::mpsc::unbounded_channel();
    let pubsub = conn::cluster(settings, Some(tx)).await?;
    Ok(Node {
        shard: Shard::new(settings, conn::Conn::Cluster(commands), None),
        pubsub: conn::Conn::Cluster(pubsub),
        pushes,
        sentinel: None,
    })
}

/// Connects the Redis engine described by the `engine.redis` object: the
/// broker and the presence manager share the command connections.
pub async fn connect_engine(
    settings: &RedisSettings,
) -> Result<(RedisBroker, RedisPresenceManager), EngineError> {
    let nodes = if settings.sentinel.is_some() {
        vec![sentinel::connect(settings).await?]
    } else if settings.cluster {
        vec![connect_cluster(settings).await?]
    } else {
        if settings.addresses.is_empty() {
            return Err(unavailable("no address"));
        }
        let connects = settings
            .addresses
            .iter()
            .map(|a| connect_single(settings, a));
        futures_util::future::try_join_all(connects).await?
    };
    let addresses: Vec<String> = settings
        .addresses
        .iter()
        .map(|a| config::redact(a))
        .collect();
    tracing::info!(
        ?addresses,
        cluster = settings.cluster,
        sentinel = ?settings.sentinel,
        prefix = %settings.prefix,
        "redis engine connected"
    );
    let shards: Vec<Shard> = nodes.iter().map(|n| n.shard.clone()).collect();
    let presence = RedisPresenceManager::new(shards, settings.presence_ttl);
    let broker = RedisBroker::new(nodes);
    Ok((broker, presence))
}

/// The shard of `channel` among `buckets` shards: jump consistent hash
/// (Lamping & Veach) over the 64-bit FNV-1a hash of the channel name, as
/// Centrifugo picks a shard, so Rotor and Centrifugo nodes configured with
/// the same address list agree, and adding a shard moves few channels.
pub fn consistent_index(channel: &str, buckets: usize) -> usize {
    if buckets <= 1 {
        return 0;
    }
    let mut key: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in channel.bytes() {
        key ^= u64::from(byte);
        key = key.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let buckets = i64::try_from(buckets).unwrap_or(i64::MAX);
    let (mut b, mut j): (i64, i64) = (-1, 0);
    while j < buckets {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        {
            j = ((b + 1) as f64 * ((1_i64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
        }
    }
    usize::try_from(b).unwrap_or(0)
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
