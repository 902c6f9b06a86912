//! Pluggable engines: PUB/SUB with history ([`Broker`]) and presence
//! ([`PresenceManager`]).
//!
//! The memory engine ([`memory`]) is the reference implementation and the
//! default. Every other engine must pass the same conformance suite
//! (`conformance`, compiled for tests and with the `conformance` feature
//! only), so the contracts written on the traits below are what the rest of
//! Rotor may rely on, whatever engine runs underneath.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

pub use crate::proto::client::{ClientInfo, Publication};
pub(crate) use backends::{Backends, BrokerChoice, PresenceChoice};

pub(crate) mod backends;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub(crate) mod memory;
pub mod nats;
pub mod redis;
pub(crate) mod settings;

/// Position in a channel stream.
///
/// `offset` is the offset of the newest publication (0 when none was ever
/// published). `epoch` names this incarnation of the stream: when it changes,
/// offsets from before are meaningless.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct StreamPosition {
    /// Offset of the newest publication; offsets start at 1.
    pub offset: u64,
    /// Stream incarnation id; empty only for channels that never had a stream.
    pub epoch: String,
}

/// How a publication is stored and delivered.
#[derive(Debug, Clone, Default)]
pub struct PublishOptions {
    /// Keep at most this many publications in the channel stream; 0 with a
    /// zero `history_ttl` means no history (offsets are not assigned).
    pub(crate) history_size: usize,
    /// How long publications stay in history; zero means no history.
    pub(crate) history_ttl: Duration,
    /// How long the stream meta (epoch, top offset) outlives activity; zero
    /// means the engine default.
    pub(crate) history_meta_ttl: Duration,
    /// Publisher info (for client publications).
    pub(crate) client_info: Option<ClientInfo>,
    /// Publication tags.
    pub(crate) tags: BTreeMap<String, String>,
    /// With a key: a publish with the same key within
    /// `idempotent_result_ttl` is not repeated and returns the first result.
    pub(crate) idempotency_key: Option<String>,
    /// How long an idempotency key is remembered; zero means 5 minutes.
    pub(crate) idempotent_result_ttl: Duration,
    /// Ask subscribers that negotiated delta to receive a delta: with
    /// history, the broker hands the previous publication's data to
    /// [`BrokerEventHandler::handle_publication`] with this one, read in the
    /// same atomic step as the append.
    pub(crate) use_delta: bool,
    /// With history: a publication whose `version` is not greater than the
    /// last accepted version of the same `version_epoch` in this channel is
    /// stale and dropped (`suppressed`, current position returned). 0 = no
    /// version check.
    pub(crate) version: u64,
    /// Scope of `version`: a new epoch starts a new sequence.
    pub(crate) version_epoch: String,
}

impl PublishOptions {
    /// True when this publication goes to a channel stream with history.
    pub(crate) fn with_history(&self) -> bool {
        self.history_size > 0 && !self.history_ttl.is_zero()
    }
}

/// Which part of a stream to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryFilter {
    /// Read after this position (forward) or before it (reverse). `None`
    /// means from the oldest retained publication (forward) or the newest
    /// (reverse).
    pub since: Option<StreamPosition>,
    /// How many publications to return: 0 returns none (only the current
    /// position), a negative value returns all.
    pub limit: i32,
    /// Newest first.
    pub reverse: bool,
}

/// A history query.
#[derive(Debug, Clone, Default)]
pub struct HistoryOptions {
    /// What to read.
    pub(crate) filter: HistoryFilter,
    /// Meta TTL of the stream (extends the meta lifetime on read); zero means
    /// the engine default.
    pub(crate) meta_ttl: Duration,
}

/// Result of a history query.
#[derive(Debug, Clone, Default)]
pub struct HistoryResult {
    /// Publications in the order asked for.
    pub publications: Vec<Publication>,
    /// Current top of the stream.
    pub position: StreamPosition,
}

/// Result of a publish.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishResult {
    /// Position of this publication (offset 0 and empty epoch without
    /// history).
    pub position: StreamPosition,
    /// True when the idempotency key matched an earlier publish, which was
    /// therefore not repeated.
    pub suppressed: bool,
}

/// Engine failures. Callers map them to error 100 (temporary) unless noted.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum EngineError {
    /// The `since` epoch does not match the stream's epoch (error 112).
    #[error("unrecoverable position")]
    UnrecoverablePosition,
    /// The request is invalid (e.g. reverse with offset 0; error 107).
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// The engine does not provide this (history on the NATS broker;
    /// error 108).
    #[error("not available")]
    NotAvailable,
    /// The backing store failed or timed out.
    #[error("engine unavailable: {0}")]
    Unavailable(String),
}

/// Receives what a broker delivers to this node. Implemented by the hub.
///
/// Calls for one channel arrive in publish order and never concurrently for
/// the same channel. Implementations must not block: fan-out only enqueues.
pub trait BrokerEventHandler: Send + Sync + 'static {
    /// A publication for a channel this node subscribed to. `position` is
    /// the publication's own position (offset 0 without history). `prev` is
    /// the data of the publication just before it in the stream (offset
    /// − 1), given when the publish asked for delta (`use_delta`) and the
    /// stream still held it; subscribers that negotiated delta get a delta
    /// against it.
    fn handle_publication(
        &self,
        channel: &str,
        publication: Arc<Publication>,
        position: StreamPosition,
        prev: Option<Bytes>,
    );
    /// A client joined a channel (somewhere in the cluster).
    fn handle_join(&self, channel: &str, info: ClientInfo);
    /// A client left a channel.
    fn handle_leave(&self, channel: &str, info: ClientInfo);
}

/// PUB/SUB with per-channel history streams.
///
/// Contract:
/// * **Delivery** is at most once to the nodes subscribed to the channel at
///   publish time (through [`BrokerEventHandler`]); nothing is buffered for
///   nodes that subscribe later. History is the only replay mechanism.
/// * **Ordering**: publications of one channel reach each node in offset
///   order. Publications from one `publish` caller awaiting each result are
///   ordered; concurrent publishes are ordered the same for every node.
/// * **Atomicity**: with history, appending to the stream and delivering
///   happen as one step: a publication with offset N is never delivered
///   before N−1 is in history, and every delivered offset is in history
///   (until trimmed by size or TTL).
/// * **Offsets** start at 1 and grow by 1 per publication with history.
///   Without history no offset is assigned (0) and nothing is stored.
/// * **Epochs**: a stream keeps its epoch while its meta lives
///   (`history_meta_ttl`); when the meta expires or is lost, the next
///   publish starts a new epoch and offsets restart at 1. An epoch is never
///   reused.
/// * **Idempotency**: a publish repeating an idempotency key within its TTL
///   returns the first result with `suppressed: true` and delivers nothing.
#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// Registers the handler that receives deliveries. Called once, before
    /// any subscribe.
    async fn run(&self, handler: Arc<dyn BrokerEventHandler>) -> Result<(), EngineError>;

    /// Publishes `data` to `channel`, appending to history when the options
    /// ask for it.
    async fn publish(
        &self,
        channel: &str,
        data: Bytes,
        opts: &PublishOptions,
    ) -> Result<PublishResult, EngineError>;

    /// Delivers a join event to subscribed nodes (not stored).
    async fn publish_join(&self, channel: &str, info: &ClientInfo) -> Result<(), EngineError>;

    /// Delivers a leave event to subscribed nodes (not stored).
    async fn publish_leave(&self, channel: &str, info: &ClientInfo) -> Result<(), EngineError>;

    /// Starts delivering `channel` to this node. Idempotent.
    async fn subscribe(&self, channel: &str) -> Result<(), EngineError>;

    /// Stops delivering `channel` to this node. Idempotent.
    async fn unsubscribe(&self, channel: &str) -> Result<(), EngineError>;

    /// Reads history. A `since` epoch that is non-empty and differs from the
    /// stream's epoch fails with [`EngineError::UnrecoverablePosition`];
    /// `reverse` with a `since` offset of 0 fails with
    /// [`EngineError::BadRequest`]. Forward reads return publications with
    /// offset > `since.offset` (from the oldest retained one if that is
    /// later); reverse reads return offsets < `since.offset`, newest first.
    /// The position is the current top, also when nothing is returned. A
    /// channel that never had a stream yields offset 0 and a fresh epoch,
    /// which the next publish will keep.
    async fn history(
        &self,
        channel: &str,
        opts: &HistoryOptions,
    ) -> Result<HistoryResult, EngineError>;

    /// Drops a channel's stored publications; the epoch and top offset stay.
    async fn remove_history(&self, channel: &str) -> Result<(), EngineError>;
}

/// Who is in a channel.
///
/// Contract: an entry added with [`PresenceManager::add_presence`] is visible
/// to every node until removed or until it is not refreshed within the
/// engine's presence TTL (the memory engine has no TTL: entries live until
/// removed). Adding an existing client id refreshes and replaces its info.
#[async_trait]
pub trait PresenceManager: Send + Sync + 'static {
    /// Client id → info of everyone present.
    async fn presence(&self, channel: &str) -> Result<HashMap<String, ClientInfo>, EngineError>;
    /// Counts of clients and distinct users.
    async fn presence_stats(&self, channel: &str) -> Result<PresenceStats, EngineError>;
    /// Adds or refreshes a client's entry.
    async fn add_presence(
        &self,
        channel: &str,
        client_id: &str,
        info: &ClientInfo,
    ) -> Result<(), EngineError>;
    /// Removes a client's entry.
    async fn remove_presence(
        &self,
        channel: &str,
        client_id: &str,
        user_id: &str,
    ) -> Result<(), EngineError>;
}

/// Presence counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PresenceStats {
    /// Connections present.
    pub(crate) num_clients: u32,
    /// Distinct users among them.
    pub(crate) num_users: u32,
}
