//! Memory engine: the single-node reference [`Broker`] and
//! [`PresenceManager`].
//!
//! Everything lives in process memory, so history and epochs die with the
//! process; a restart therefore means new epochs, which clients detect as
//! `recovered: false`. State is sharded by a hash of the channel name so that
//! unrelated channels do not contend on one lock, and no shard lock is ever
//! held across an `.await` (those critical sections are synchronous).
//!
//! Ordering and atomicity of publish+deliver come from a second, finer lock
//! table ("delivery locks": async mutexes, also indexed by channel hash): a
//! publish holds its channel's delivery lock while it appends to history
//! (under the shard lock) and then calls the handler (after the shard lock is
//! released, so history readers never wait on fan-out). One channel's
//! deliveries are therefore strictly sequential and in offset order, and a
//! delivered offset is always already in history. The delivery lock is the
//! only thing awaited, before any state changes: a publish future dropped
//! while waiting has no effect, and one holding the lock runs to completion
//! without yielding.
//!
//! Publications expire individually `history_ttl` after their publish (so the
//! whole stream is empty `history_ttl` after the last publish) while the meta
//! (epoch, top offset) lives `history_meta_ttl` after the last publish or
//! history read; a publish after the meta expired starts a new epoch.
//!
//! Expired state is reclaimed on access and by a background sweep task that
//! holds only a [`Weak`] reference, so it ends when the broker is dropped.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use rand::Rng;
use rand::distr::Alphanumeric;

use super::{
    Broker, BrokerEventHandler, ClientInfo, EngineError, HistoryOptions, HistoryResult,
    Publication, PublishOptions, PublishResult, StreamPosition,
};

/// Stream meta lifetime when neither the publish nor the history read gives
/// one (Centrifugo's `history_meta_ttl` default, 30 days).
pub(crate) const DEFAULT_HISTORY_META_TTL: Duration = Duration::from_secs(720 * 3600);

/// How long an idempotency key is remembered when the options say zero.
pub(crate) const DEFAULT_IDEMPOTENT_RESULT_TTL: Duration = Duration::from_secs(300);

/// How often the background task reclaims expired streams and keys.
pub(crate) const DEFAULT_CLEANUP_INTERVAL: Duration = Duration::from_secs(2);

/// Shards of channel state: enough that unrelated channels rarely share a
/// lock, few enough that a sweep over all of them stays cheap.
const NUM_SHARDS: usize = 64;

/// Delivery locks are held during fan-out, so they are finer than shards to
/// make two busy channels serialising each other unlikely. They are Tokio
/// mutexes: many publishers to one hot channel then queue as tasks (FIFO, so
/// in arrival order) instead of parking runtime worker threads, which would
/// stall unrelated channels.
const NUM_DELIVERY_LOCKS: usize = 4096;

/// Epoch length: 62^8 values make a repeat practically impossible, and a
/// short epoch keeps every positioned reply small.
const EPOCH_LEN: usize = 8;

/// Cap for user-provided TTLs so `Instant + ttl` cannot overflow.
const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// FNV-1a: stable, fast on short channel names, and no per-process seed is
/// needed since the hash only picks a lock.
fn channel_hash(channel: &str) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in channel.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // Fold the high bits in: the low bits of FNV alone spread less evenly.
    (h ^ (h >> 32)) as usize
}

/// A fresh random epoch, different from `previous` (the epoch of the stream
/// incarnation being replaced, when known) so an epoch is never reused.
fn new_epoch(previous: Option<&str>) -> String {
    loop {
        let epoch: String = rand::rng()
            .sample_iter(Alphanumeric)
            .take(EPOCH_LEN)
            .map(char::from)
            .collect();
        if previous != Some(epoch.as_str()) {
            return epoch;
        }
    }
}

/// `now + ttl` without overflow for absurd TTLs.
fn deadline(now: Instant, ttl: Duration) -> Instant {
    now.checked_add(ttl.min(MAX_TTL)).unwrap_or(now)
}

fn or_default(ttl: Duration, default: Duration) -> Duration {
    if ttl.is_zero() { default } else { ttl }
}

mod presence;
mod stream;
#[cfg(test)]
mod tests;

pub(crate) use presence::MemoryPresenceManager;
use stream::Shard;

/// State shared between the broker handle and its cleanup task.
struct BrokerState {
    shards: Box<[Mutex<Shard>]>,
    delivery_locks: Box<[tokio::sync::Mutex<()>]>,
    handler: OnceLock<Arc<dyn BrokerEventHandler>>,
    cleanup_started: AtomicBool,
    cleanup_interval: Duration,
}

impl BrokerState {
    fn shard(&self, channel: &str) -> &Mutex<Shard> {
        &self.shards[channel_hash(channel) % NUM_SHARDS]
    }

    fn delivery_lock(&self, channel: &str) -> &tokio::sync::Mutex<()> {
        // Different bits than the shard index, so channels sharing a shard
        // do not also share a delivery lock.
        &self.delivery_locks[(channel_hash(channel) / NUM_SHARDS) % NUM_DELIVERY_LOCKS]
    }

    /// Starts the cleanup task once, from inside a Tokio runtime. Lazy because
    /// `new()` may run outside one; called from `run` and from the calls
    /// that create state, so state is never created without a reclaimer
    /// (unless no runtime exists, where access-time expiry still applies).
    fn ensure_cleanup(self: &Arc<Self>) {
        if self.cleanup_started.load(Ordering::Acquire) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.cleanup_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let state = Arc::downgrade(self);
        let interval = self.cleanup_interval;
        runtime.spawn(cleanup_loop(state, interval));
    }

    fn sweep(&self, now: Instant) {
        // One shard at a time: the sweep never blocks more than one shard.
        for shard in self.shards.iter() {
            shard.lock().sweep(now);
        }
    }

    fn is_subscribed(&self, channel: &str) -> bool {
        self.shard(channel).lock().subscribed.contains(channel)
    }
}

async fn cleanup_loop(state: Weak<BrokerState>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        // Upgrade only for the sweep itself, so dropping the broker frees the
        // state and ends this task at the next tick.
        let Some(state) = state.upgrade() else {
            return;
        };
        state.sweep(Instant::now());
    }
}

/// In-memory [`Broker`] (single node).
pub(crate) struct MemoryBroker {
    state: Arc<BrokerState>,
}

impl Default for MemoryBroker {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBroker {
    /// A broker with the default cleanup interval.
    pub(crate) fn new() -> Self {
        Self::with_cleanup_interval(DEFAULT_CLEANUP_INTERVAL)
    }

    /// A broker whose background task reclaims expired state every
    /// `interval` (tests use a short one).
    pub(crate) fn with_cleanup_interval(interval: Duration) -> Self {
        Self {
            state: Arc::new(BrokerState {
                shards: (0..NUM_SHARDS)
                    .map(|_| Mutex::new(Shard::default()))
                    .collect(),
                delivery_locks: (0..NUM_DELIVERY_LOCKS)
                    .map(|_| tokio::sync::Mutex::new(()))
                    .collect(),
                handler: OnceLock::new(),
                cleanup_started: AtomicBool::new(false),
                cleanup_interval: interval.max(Duration::from_millis(1)),
            }),
        }
    }

    /// Joins and leaves go through the same delivery lock as publications, so
    /// for one channel they are ordered with them and never concurrent.
    async fn deliver_presence_event(&self, channel: &str, info: &ClientInfo, join: bool) {
        let _ordered = self.state.delivery_lock(channel).lock().await;
        if !self.state.is_subscribed(channel) {
            return;
        }
        if let Some(handler) = self.state.handler.get() {
            if join {
                handler.handle_join(channel, info.clone());
            } else {
                handler.handle_leave(channel, info.clone());
            }
        }
    }
}

#[async_trait]
impl Broker for MemoryBroker {
    async fn run(&self, handler: Arc<dyn BrokerEventHandler>) -> Result<(), EngineError> {
        // A second call keeps the first handler: the contract says run is
        // called once, and swapping handlers mid-stream would split a
        // channel's ordered delivery between two receivers.
        let _ = self.state.handler.set(handler);
        self.state.ensure_cleanup();
        Ok(())
    }

    async fn publish(
        &self,
        channel: &str,
        data: Bytes,
        opts: &PublishOptions,
    ) -> Result<PublishResult, EngineError> {
        self.state.ensure_cleanup();
        let now = Instant::now();
        let idempotency_key = opts.idempotency_key.as_deref().filter(|k| !k.is_empty());

        // Held until the handler returns: one channel's publishes (and their
        // deliveries) are strictly sequential, in offset order.
        let _ordered = self.state.delivery_lock(channel).lock().await;
        let (position, delivery, prev) = {
            let mut shard = self.state.shard(channel).lock();
            if let Some(key) = idempotency_key
                && let Some(position) = shard.idempotent_result(channel, key, now)
            {
                return Ok(PublishResult {
                    position,
                    suppressed: true,
                });
            }
            let publication = Publication {
                data,
                info: opts.client_info.clone(),
                tags: opts.tags.clone(),
                ..Publication::default()
            };
            let mut prev = None;
            let (publication, position) = if opts.with_history() {
                let meta_ttl = or_default(opts.history_meta_ttl, DEFAULT_HISTORY_META_TTL);
                let stream = shard.live_stream(channel, now, meta_ttl);
                if !stream.accept_version(opts.version, &opts.version_epoch) {
                    return Ok(PublishResult {
                        position: stream.position(),
                        suppressed: true,
                    });
                }
                if opts.use_delta {
                    prev = stream.entries.back().map(|e| e.publication.data.clone());
                }
                let publication = stream.append(
                    publication,
                    deadline(now, opts.history_ttl),
                    opts.history_size,
                );
                (publication, stream.position())
            } else {
                (Arc::new(publication), StreamPosition::default())
            };
            if let Some(key) = idempotency_key {
                let ttl = or_default(opts.idempotent_result_ttl, DEFAULT_IDEMPOTENT_RESULT_TTL);
                shard.remember_result(channel, key, position.clone(), deadline(now, ttl));
            }
            let delivery = shard.subscribed.contains(channel).then_some(publication);
            (position, delivery, prev)
        };
        // The shard lock is released (history readers and other channels of
        // the shard proceed); the delivery lock still orders this channel.
        if let Some(publication) = delivery
            && let Some(handler) = self.state.handler.get()
        {
            handler.handle_publication(channel, publication, position.clone(), prev);
        }
        Ok(PublishResult {
            position,
            suppressed: false,
        })
    }

    async fn publish_join(&self, channel: &str, info: &ClientInfo) -> Result<(), EngineError> {
        self.deliver_presence_event(channel, info, true).await;
        Ok(())
    }

    async fn publish_leave(&self, channel: &str, info: &ClientInfo) -> Result<(), EngineError> {
        self.deliver_presence_event(channel, info, false).await;
        Ok(())
    }

    async fn subscribe(&self, channel: &str) -> Result<(), EngineError> {
        let _ordered = self.state.delivery_lock(channel).lock().await;
        let mut shard = self.state.shard(channel).lock();
        if !shard.subscribed.contains(channel) {
            shard.subscribed.insert(channel.to_owned());
        }
        Ok(())
    }

    async fn unsubscribe(&self, channel: &str) -> Result<(), EngineError> {
        // Taking the delivery lock waits out an in-flight delivery, so once
        // this returns nothing more reaches the handler for the channel.
        let _ordered = self.state.delivery_lock(channel).lock().await;
        self.state.shard(channel).lock().subscribed.remove(channel);
        Ok(())
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
        self.state.ensure_cleanup();
        let now = Instant::now();
        let meta_ttl = or_default(opts.meta_ttl, DEFAULT_HISTORY_META_TTL);
        let mut shard = self.state.shard(channel).lock();
        // Reading creates the meta of a missing stream: the epoch handed out
        // here must be the one the next publish uses, or a client that
        // subscribed to an empty channel could never recover.
        let stream = shard.live_stream(channel, now, meta_ttl);
        if let Some(since) = &filter.since
            && !since.epoch.is_empty()
            && since.epoch != stream.epoch
        {
            return Err(EngineError::UnrecoverablePosition);
        }
        Ok(HistoryResult {
            publications: stream.read(filter),
            position: stream.position(),
        })
    }

    async fn remove_history(&self, channel: &str) -> Result<(), EngineError> {
        let now = Instant::now();
        let mut shard = self.state.shard(channel).lock();
        if let Some(stream) = shard.streams.get_mut(channel) {
            if stream.meta_expired(now) {
                shard.streams.remove(channel);
            } else {
                stream.entries = VecDeque::new();
            }
        }
        Ok(())
    }
}
