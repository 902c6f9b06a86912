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

use std::collections::hash_map::Entry as MapEntry;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use rand::Rng;
use rand::distr::Alphanumeric;

use super::{
    Broker, BrokerEventHandler, ClientInfo, EngineError, HistoryFilter, HistoryOptions,
    HistoryResult, PresenceManager, PresenceStats, Publication, PublishOptions, PublishResult,
    StreamPosition,
};

/// Stream meta lifetime when neither the publish nor the history read gives
/// one (Centrifugo's `history_meta_ttl` default, 30 days).
pub const DEFAULT_HISTORY_META_TTL: Duration = Duration::from_secs(720 * 3600);

/// How long an idempotency key is remembered when the options say zero.
pub const DEFAULT_IDEMPOTENT_RESULT_TTL: Duration = Duration::from_secs(300);

/// How often the background task reclaims expired streams and keys.
pub const DEFAULT_CLEANUP_INTERVAL: Duration = Duration::from_secs(2);

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

/// One retained publication.
struct StreamEntry {
    publication: Arc<Publication>,
    /// Publish time + the publish's `history_ttl`.
    expires_at: Instant,
}

/// One channel stream: meta (epoch, top) plus retained publications.
///
/// Retained offsets are always contiguous and end at `top`: entries are only
/// appended at the back and removed from the front (size trim, TTL) or all at
/// once (`remove_history`), so the offset of entry `i` is
/// `top - len + 1 + i` and reads are index arithmetic, not searches.
struct Stream {
    epoch: String,
    top: u64,
    entries: VecDeque<StreamEntry>,
    /// Last activity + meta TTL; past it the stream is treated as absent.
    meta_expires_at: Instant,
}

impl Stream {
    fn new(now: Instant, meta_ttl: Duration, previous_epoch: Option<&str>) -> Self {
        Self {
            epoch: new_epoch(previous_epoch),
            top: 0,
            entries: VecDeque::new(),
            meta_expires_at: deadline(now, meta_ttl),
        }
    }

    fn meta_expired(&self, now: Instant) -> bool {
        now >= self.meta_expires_at
    }

    fn position(&self) -> StreamPosition {
        StreamPosition {
            offset: self.top,
            epoch: self.epoch.clone(),
        }
    }

    /// Drops publications past their TTL. Only the front is inspected: with
    /// a constant TTL entries expire in order, and keeping the retained
    /// offsets contiguous matters more than evicting an entry early when the
    /// TTL option changes between publishes.
    fn drop_expired(&mut self, now: Instant) {
        while self.entries.front().is_some_and(|e| e.expires_at <= now) {
            self.entries.pop_front();
        }
        if self.entries.is_empty() && self.entries.capacity() > 0 {
            // Give the buffer back: an idle channel should cost only its meta.
            self.entries = VecDeque::new();
        }
    }

    fn append(
        &mut self,
        mut publication: Publication,
        expires_at: Instant,
        size: usize,
    ) -> Arc<Publication> {
        self.top += 1;
        publication.offset = self.top;
        let publication = Arc::new(publication);
        self.entries.push_back(StreamEntry {
            publication: Arc::clone(&publication),
            expires_at,
        });
        while self.entries.len() > size {
            self.entries.pop_front();
        }
        publication
    }

    /// Offset of the oldest retained entry (top + 1 when empty).
    fn first_offset(&self) -> u64 {
        self.top + 1 - self.entries.len() as u64
    }

    /// Publications selected by `filter`; the caller validated the epoch and
    /// the reverse-since-0 case.
    fn read(&self, filter: &HistoryFilter) -> Vec<Publication> {
        if filter.limit == 0 || self.entries.is_empty() {
            return Vec::new();
        }
        let limit = usize::try_from(filter.limit).unwrap_or(usize::MAX);
        let first = self.first_offset();
        let len = self.entries.len();
        // Index range [start, end) of candidate entries.
        let (start, end) = match (&filter.since, filter.reverse) {
            (None, _) => (0, len),
            (Some(since), false) => {
                // Offsets > since; if since+1 was trimmed, from the oldest.
                let start = since.offset.saturating_add(1).saturating_sub(first);
                (usize::try_from(start).unwrap_or(len).min(len), len)
            }
            (Some(since), true) => {
                // Offsets < since, i.e. indexes below since - first.
                let end = since.offset.saturating_sub(first);
                (0, usize::try_from(end).unwrap_or(len).min(len))
            }
        };
        let range = self.entries.range(start..end);
        let clone = |e: &StreamEntry| Publication::clone(&e.publication);
        if filter.reverse {
            range.rev().take(limit).map(clone).collect()
        } else {
            range.take(limit).map(clone).collect()
        }
    }
}

/// A remembered idempotent publish result.
struct IdempotentResult {
    position: StreamPosition,
    expires_at: Instant,
}

/// Channel state of one shard.
#[derive(Default)]
struct Shard {
    streams: HashMap<String, Stream>,
    /// channel → idempotency key → result.
    idempotency: HashMap<String, HashMap<String, IdempotentResult>>,
    /// Channels this node subscribed to.
    subscribed: HashSet<String>,
}

impl Shard {
    /// The live stream of `channel` with its meta lifetime extended,
    /// replacing an expired incarnation (new epoch, offsets from 1) or
    /// creating a missing one.
    fn live_stream(&mut self, channel: &str, now: Instant, meta_ttl: Duration) -> &mut Stream {
        let stream = match self.streams.entry(channel.to_owned()) {
            MapEntry::Occupied(o) => {
                let stream = o.into_mut();
                if stream.meta_expired(now) {
                    let previous = std::mem::take(&mut stream.epoch);
                    *stream = Stream::new(now, meta_ttl, Some(&previous));
                }
                stream
            }
            MapEntry::Vacant(v) => v.insert(Stream::new(now, meta_ttl, None)),
        };
        stream.meta_expires_at = deadline(now, meta_ttl);
        stream.drop_expired(now);
        stream
    }

    fn idempotent_result(&self, channel: &str, key: &str, now: Instant) -> Option<StreamPosition> {
        let found = self.idempotency.get(channel)?.get(key)?;
        (found.expires_at > now).then(|| found.position.clone())
    }

    fn remember_result(
        &mut self,
        channel: &str,
        key: &str,
        position: StreamPosition,
        expires_at: Instant,
    ) {
        let keys = match self.idempotency.get_mut(channel) {
            Some(keys) => keys,
            None => self.idempotency.entry(channel.to_owned()).or_default(),
        };
        keys.insert(
            key.to_owned(),
            IdempotentResult {
                position,
                expires_at,
            },
        );
    }

    /// Removes everything expired; called by the background task.
    fn sweep(&mut self, now: Instant) {
        self.streams.retain(|_, stream| {
            if stream.meta_expired(now) {
                return false;
            }
            stream.drop_expired(now);
            true
        });
        self.idempotency.retain(|_, keys| {
            keys.retain(|_, r| r.expires_at > now);
            !keys.is_empty()
        });
        // `retain` keeps capacity; after a burst of dead channels, give the
        // memory back instead of keeping the high-water mark forever.
        shrink_if_sparse(&mut self.streams);
        shrink_if_sparse(&mut self.idempotency);
    }
}

fn shrink_if_sparse<K: Eq + std::hash::Hash, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > 64 && map.len() * 4 < map.capacity() {
        map.shrink_to_fit();
    }
}

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
pub struct MemoryBroker {
    state: Arc<BrokerState>,
}

impl Default for MemoryBroker {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBroker {
    /// A broker with the default cleanup interval.
    pub fn new() -> Self {
        Self::with_cleanup_interval(DEFAULT_CLEANUP_INTERVAL)
    }

    /// A broker whose background task reclaims expired state every
    /// `interval` (tests use a short one).
    pub fn with_cleanup_interval(interval: Duration) -> Self {
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
        let (position, delivery) = {
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
            let (publication, position) = if opts.with_history() {
                let meta_ttl = or_default(opts.history_meta_ttl, DEFAULT_HISTORY_META_TTL);
                let stream = shard.live_stream(channel, now, meta_ttl);
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
            (position, delivery)
        };
        // The shard lock is released (history readers and other channels of
        // the shard proceed); the delivery lock still orders this channel.
        if let Some(publication) = delivery
            && let Some(handler) = self.state.handler.get()
        {
            handler.handle_publication(channel, publication, position.clone());
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

/// channel → client id → info.
type PresenceShard = HashMap<String, HashMap<String, ClientInfo>>;

/// In-memory [`PresenceManager`]: entries live until removed (no TTL, since
/// a single node always knows when its clients go away).
pub struct MemoryPresenceManager {
    shards: Box<[Mutex<PresenceShard>]>,
}

impl Default for MemoryPresenceManager {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryPresenceManager {
    /// An empty presence store.
    pub fn new() -> Self {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::conformance::{self, RecordingHandler};

    fn broker() -> Arc<dyn Broker> {
        Arc::new(MemoryBroker::new())
    }

    fn presence() -> Arc<dyn PresenceManager> {
        Arc::new(MemoryPresenceManager::new())
    }

    /// One `#[tokio::test]` per conformance body, so failures name the body
    /// and the bodies run in parallel.
    macro_rules! conformance_tests {
        ($make:ident: $($body:ident),* $(,)?) => {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $body() {
                    conformance::$body($make()).await;
                }
            )*
        };
    }

    conformance_tests!(broker:
        offsets_and_epoch,
        publish_and_deliver,
        delivery_only_to_subscribed,
        no_delivery_after_unsubscribe,
        publish_without_history,
        history_queries,
        history_epoch_mismatch,
        history_reverse_since_zero,
        history_size_trimming,
        recovery_golden_vectors,
        recovery_golden_vectors_expired,
        history_ttl_expiry,
        meta_ttl_new_epoch,
        history_on_fresh_channel_keeps_epoch,
        idempotent_publish,
        remove_history_keeps_position,
        join_leave_delivery,
        concurrent_publishers,
    );

    conformance_tests!(presence:
        presence_add_get_remove,
        presence_stats_distinct_users,
        presence_refresh_replaces_info,
        presence_channels_isolated,
    );

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn whole_broker_suite() {
        conformance::run_broker_suite(|| async { broker() }).await;
    }

    #[tokio::test]
    async fn whole_presence_suite() {
        conformance::run_presence_suite(|| async { presence() }).await;
    }

    impl MemoryBroker {
        fn stream_count(&self) -> usize {
            self.state
                .shards
                .iter()
                .map(|s| s.lock().streams.len())
                .sum()
        }

        fn idempotency_count(&self) -> usize {
            self.state
                .shards
                .iter()
                .map(|s| s.lock().idempotency.len())
                .sum()
        }

        fn retained_count(&self) -> usize {
            self.state
                .shards
                .iter()
                .map(|s| {
                    s.lock()
                        .streams
                        .values()
                        .map(|st| st.entries.len())
                        .sum::<usize>()
                })
                .sum()
        }
    }

    /// Polls `cond` until it holds or 5 s pass.
    async fn eventually(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn cleanup_reclaims_expired_channels() {
        let broker = MemoryBroker::with_cleanup_interval(Duration::from_millis(50));
        broker.run(RecordingHandler::new()).await.expect("run");
        let short = PublishOptions {
            history_size: 10,
            history_ttl: Duration::from_millis(200),
            history_meta_ttl: Duration::from_millis(400),
            idempotent_result_ttl: Duration::from_millis(200),
            ..PublishOptions::default()
        };
        for i in 0..500 {
            let opts = PublishOptions {
                idempotency_key: Some(format!("k{i}")),
                ..short.clone()
            };
            broker
                .publish(&format!("dead:{i}"), conformance::payload(i), &opts)
                .await
                .expect("publish");
        }
        // A live channel with long TTLs must survive every sweep.
        broker
            .publish(
                "live",
                conformance::payload(0),
                &conformance::history_options(10),
            )
            .await
            .expect("publish");
        assert_eq!(broker.stream_count(), 501);
        assert_eq!(broker.idempotency_count(), 500);

        // Publications go first (history TTL), then the metas.
        eventually("publications reclaimed", || broker.retained_count() == 1).await;
        eventually("metas reclaimed", || broker.stream_count() == 1).await;
        eventually("idempotency keys reclaimed", || {
            broker.idempotency_count() == 0
        })
        .await;
        let live = broker
            .history(
                "live",
                &HistoryOptions {
                    filter: HistoryFilter {
                        limit: -1,
                        ..Default::default()
                    },
                    ..Default::default()
                },
            )
            .await
            .expect("history");
        assert_eq!(live.publications.len(), 1);
    }

    #[tokio::test]
    async fn cleanup_task_stops_when_broker_dropped() {
        let broker = MemoryBroker::with_cleanup_interval(Duration::from_millis(20));
        broker.run(RecordingHandler::new()).await.expect("run");
        let state = Arc::downgrade(&broker.state);
        drop(broker);
        // The task holds only a Weak between sweeps, so the state is freed
        // at once (or right after a sweep in progress).
        eventually("state freed", || state.upgrade().is_none()).await;
    }

    #[tokio::test]
    async fn idempotency_key_expires() {
        let broker = MemoryBroker::new();
        let opts = PublishOptions {
            idempotency_key: Some("k".to_owned()),
            idempotent_result_ttl: Duration::from_millis(100),
            ..conformance::history_options(10)
        };
        let first = broker
            .publish("ch", conformance::payload(1), &opts)
            .await
            .expect("publish");
        tokio::time::sleep(Duration::from_millis(150)).await;
        let second = broker
            .publish("ch", conformance::payload(2), &opts)
            .await
            .expect("publish");
        assert!(!second.suppressed);
        assert_eq!(second.position.offset, first.position.offset + 1);
    }

    #[tokio::test]
    async fn expired_entries_dropped_on_access_without_cleanup() {
        // No runtime-driven sweep can help here: the interval is an hour.
        let broker = MemoryBroker::with_cleanup_interval(Duration::from_secs(3600));
        let opts = PublishOptions {
            history_size: 10,
            history_ttl: Duration::from_millis(100),
            ..Default::default()
        };
        broker
            .publish("ch", conformance::payload(1), &opts)
            .await
            .expect("publish");
        tokio::time::sleep(Duration::from_millis(60)).await;
        broker
            .publish("ch", conformance::payload(2), &opts)
            .await
            .expect("publish");
        tokio::time::sleep(Duration::from_millis(60)).await;
        // Entry 1 is past its own TTL, entry 2 is not.
        let all = HistoryOptions {
            filter: HistoryFilter {
                limit: -1,
                ..Default::default()
            },
            ..Default::default()
        };
        let h = broker.history("ch", &all).await.expect("history");
        assert_eq!(conformance::offsets(&h.publications), vec![2]);
        assert_eq!(h.position.offset, 2);
    }

    #[tokio::test]
    async fn epochs_are_random_per_stream() {
        let broker = MemoryBroker::new();
        let mut epochs = HashSet::new();
        for i in 0..100 {
            let r = broker
                .publish(
                    &format!("ch{i}"),
                    conformance::payload(i),
                    &conformance::history_options(1),
                )
                .await;
            let epoch = r.expect("publish").position.epoch;
            assert_eq!(epoch.len(), EPOCH_LEN);
            epochs.insert(epoch);
        }
        assert_eq!(epochs.len(), 100);
    }

    #[tokio::test]
    async fn history_meta_ttl_from_read_keeps_stream_alive() {
        let broker = MemoryBroker::new();
        let opts = PublishOptions {
            history_meta_ttl: Duration::from_millis(150),
            ..conformance::history_options(10)
        };
        let first = broker
            .publish("ch", conformance::payload(1), &opts)
            .await
            .expect("publish");
        let read = HistoryOptions {
            meta_ttl: Duration::from_millis(150),
            ..Default::default()
        };
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(75)).await;
            broker.history("ch", &read).await.expect("history");
        }
        // 300 ms passed, but reads kept extending the meta.
        let next = broker
            .publish("ch", conformance::payload(2), &opts)
            .await
            .expect("publish");
        assert_eq!(next.position.epoch, first.position.epoch);
        assert_eq!(next.position.offset, 2);
    }

    #[test]
    fn works_without_runtime_for_construction() {
        // Construction must not need Tokio (config code builds engines
        // before the runtime exists).
        let _ = MemoryBroker::default();
        let _ = MemoryPresenceManager::default();
    }
}
