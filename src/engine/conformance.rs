//! Engine conformance suite: engine-agnostic test bodies that every
//! [`Broker`] and [`PresenceManager`] must pass unchanged (memory, Redis,
//! NATS, ...).
//!
//! Each body takes a fresh engine, registers its own [`RecordingHandler`],
//! works on channels with a random suffix (so a shared external store, or a
//! leftover from an earlier run, cannot interfere) and panics on failure.
//! [`run_broker_suite`] and [`run_presence_suite`] run every body; engines
//! may also call bodies one by one from their own `#[tokio::test]`s for
//! finer-grained reports.
//!
//! Waiting is deadline-based ([`RecordingHandler::wait_for`]): the only
//! sleeps are the ones that let a 1 s TTL pass. Absence of a delivery can
//! only be shown by waiting, so [`RecordingHandler::assert_quiet`] waits a
//! short quiet period for an event that must not come.
//!
//! Bodies assume nothing a remote engine could not provide: they do not rely
//! on deliveries for different channels being ordered with each other, and
//! TTLs are whole seconds (Redis `EXPIRE` granularity).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use rand::Rng;
use rand::distr::Alphanumeric;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{
    Broker, BrokerEventHandler, ClientInfo, EngineError, HistoryFilter, HistoryOptions,
    HistoryResult, PresenceManager, PresenceStats, Publication, PublishOptions, PublishResult,
    StreamPosition,
};

/// How long a body waits for an expected delivery before failing.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a body waits to be confident an unexpected delivery is not
/// coming.
pub const QUIET_PERIOD: Duration = Duration::from_millis(200);

/// TTL used by the expiry bodies (the smallest whole-second TTL).
pub const SHORT_TTL: Duration = Duration::from_secs(1);

/// Sleep that lets [`SHORT_TTL`] pass with margin for engines that expire
/// lazily or with coarse timers.
pub const SHORT_TTL_WAIT: Duration = Duration::from_millis(1600);

/// History TTL of bodies that do not test expiry.
const LONG_TTL: Duration = Duration::from_secs(60);

/// Something a broker delivered to the node.
#[derive(Debug, Clone)]
pub enum Event {
    /// [`BrokerEventHandler::handle_publication`].
    Publication {
        /// Channel.
        channel: String,
        /// The publication as delivered.
        publication: Arc<Publication>,
        /// The position passed alongside it.
        position: StreamPosition,
    },
    /// [`BrokerEventHandler::handle_join`].
    Join {
        /// Channel.
        channel: String,
        /// Who joined.
        info: ClientInfo,
    },
    /// [`BrokerEventHandler::handle_leave`].
    Leave {
        /// Channel.
        channel: String,
        /// Who left.
        info: ClientInfo,
    },
}

impl Event {
    /// The channel the event is for.
    pub fn channel(&self) -> &str {
        match self {
            Event::Publication { channel, .. }
            | Event::Join { channel, .. }
            | Event::Leave { channel, .. } => channel,
        }
    }

    /// The position of a publication event (`None` for join/leave).
    pub fn position(&self) -> Option<&StreamPosition> {
        match self {
            Event::Publication { position, .. } => Some(position),
            _ => None,
        }
    }

    /// The publication of a publication event.
    pub fn publication(&self) -> Option<&Publication> {
        match self {
            Event::Publication { publication, .. } => Some(publication),
            _ => None,
        }
    }
}

/// A [`BrokerEventHandler`] that records everything it receives, so bodies
/// can wait for deliveries with a deadline.
#[derive(Debug, Default)]
pub struct RecordingHandler {
    events: Mutex<Vec<Event>>,
    notify: Notify,
    /// Set when two calls for one channel overlapped (a contract breach the
    /// bodies assert on).
    in_flight: Mutex<Vec<String>>,
    overlapped: Mutex<Option<String>>,
}

impl RecordingHandler {
    /// A new, empty recorder.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Everything received so far, in arrival order.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().clone()
    }

    /// Events received for `channel`, in arrival order.
    pub fn events_for(&self, channel: &str) -> Vec<Event> {
        self.events
            .lock()
            .iter()
            .filter(|e| e.channel() == channel)
            .cloned()
            .collect()
    }

    /// Waits until at least `count` events arrived for `channel` and returns
    /// them all; panics after [`DELIVERY_TIMEOUT`].
    pub async fn wait_for(&self, channel: &str, count: usize) -> Vec<Event> {
        self.wait_for_within(channel, count, DELIVERY_TIMEOUT).await
    }

    /// [`Self::wait_for`] with an explicit deadline.
    pub async fn wait_for_within(
        &self,
        channel: &str,
        count: usize,
        timeout: Duration,
    ) -> Vec<Event> {
        let deadline = Instant::now() + timeout;
        loop {
            // Register interest before checking, so an event recorded between
            // the check and the await still wakes us.
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let events = self.events_for(channel);
            if events.len() >= count {
                return events;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "timed out after {timeout:?} waiting for {count} events on {channel}; got {}: {events:?}",
                    events.len()
                );
            }
        }
    }

    /// Asserts that no more than `expected` events arrive for `channel`
    /// within [`QUIET_PERIOD`].
    pub async fn assert_quiet(&self, channel: &str, expected: usize) {
        let deadline = Instant::now() + QUIET_PERIOD;
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let events = self.events_for(channel);
            assert!(
                events.len() <= expected,
                "expected at most {expected} events on {channel}, got {}: {events:?}",
                events.len()
            );
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return;
            }
        }
    }

    /// Panics if the broker ever called the handler concurrently for one
    /// channel.
    pub fn assert_no_overlap(&self) {
        if let Some(channel) = self.overlapped.lock().clone() {
            panic!("concurrent handler calls for channel {channel}");
        }
    }

    fn record(&self, event: Event) {
        let channel = event.channel().to_owned();
        {
            let mut in_flight = self.in_flight.lock();
            if in_flight.contains(&channel) {
                *self.overlapped.lock() = Some(channel.clone());
            }
            in_flight.push(channel.clone());
        }
        // Widen the window in which an overlapping call would be seen.
        std::thread::yield_now();
        self.events.lock().push(event);
        {
            let mut in_flight = self.in_flight.lock();
            if let Some(i) = in_flight.iter().position(|c| *c == channel) {
                in_flight.swap_remove(i);
            }
        }
        self.notify.notify_waiters();
    }
}

impl BrokerEventHandler for RecordingHandler {
    fn handle_publication(
        &self,
        channel: &str,
        publication: Arc<Publication>,
        position: StreamPosition,
    ) {
        self.record(Event::Publication {
            channel: channel.to_owned(),
            publication,
            position,
        });
    }

    fn handle_join(&self, channel: &str, info: ClientInfo) {
        self.record(Event::Join {
            channel: channel.to_owned(),
            info,
        });
    }

    fn handle_leave(&self, channel: &str, info: ClientInfo) {
        self.record(Event::Leave {
            channel: channel.to_owned(),
            info,
        });
    }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A channel name unique to this run: `conformance:<name>:<random>`.
pub fn unique_channel(name: &str) -> String {
    let suffix: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(12)
        .map(char::from)
        .collect();
    format!("conformance:{name}:{suffix}")
}

/// Options of a publish with history (`size` publications, 60 s TTL).
pub fn history_options(size: usize) -> PublishOptions {
    PublishOptions {
        history_size: size,
        history_ttl: LONG_TTL,
        ..PublishOptions::default()
    }
}

/// Payload of the `i`-th test publication (valid JSON, so engines that
/// serialize it as JSON carry it unchanged).
pub fn payload(i: usize) -> Bytes {
    Bytes::from(format!("{{\"i\":{i}}}"))
}

/// Registers a fresh [`RecordingHandler`] with `broker`.
pub async fn start(broker: &Arc<dyn Broker>) -> Arc<RecordingHandler> {
    let handler = RecordingHandler::new();
    broker.run(handler.clone()).await.expect("run");
    handler
}

/// Publishes `payload(1..=n)` sequentially and returns the results.
pub async fn publish_n(
    broker: &Arc<dyn Broker>,
    channel: &str,
    n: usize,
    opts: &PublishOptions,
) -> Vec<PublishResult> {
    let mut results = Vec::with_capacity(n);
    for i in 1..=n {
        results.push(
            broker
                .publish(channel, payload(i), opts)
                .await
                .expect("publish"),
        );
    }
    results
}

/// Reads history with the given filter (default meta TTL).
pub async fn read_history(
    broker: &Arc<dyn Broker>,
    channel: &str,
    since: Option<StreamPosition>,
    limit: i32,
    reverse: bool,
) -> Result<HistoryResult, EngineError> {
    let opts = HistoryOptions {
        filter: HistoryFilter {
            since,
            limit,
            reverse,
        },
        meta_ttl: Duration::ZERO,
    };
    broker.history(channel, &opts).await
}

/// The current stream top (a `limit: 0` read).
pub async fn current_position(broker: &Arc<dyn Broker>, channel: &str) -> StreamPosition {
    read_history(broker, channel, None, 0, false)
        .await
        .expect("position")
        .position
}

/// Offsets of a list of publications.
pub fn offsets(publications: &[Publication]) -> Vec<u64> {
    publications.iter().map(|p| p.offset).collect()
}

/// Offsets of the publication events in `events`.
pub fn delivered_offsets(events: &[Event]) -> Vec<u64> {
    events
        .iter()
        .filter_map(Event::position)
        .map(|p| p.offset)
        .collect()
}

fn position(offset: u64, epoch: &str) -> StreamPosition {
    StreamPosition {
        offset,
        epoch: epoch.to_owned(),
    }
}

fn client_info(user: &str, client: &str) -> ClientInfo {
    ClientInfo {
        user: user.to_owned(),
        client: client.to_owned(),
        conn_info: Bytes::from_static(b"{\"c\":1}"),
        chan_info: Bytes::from_static(b"{\"h\":2}"),
    }
}

// ---------------------------------------------------------------------------
// Recovery decision (stream mode)
// ---------------------------------------------------------------------------

/// The stream-mode recovery rule (client-protocol.md §7.3): recovered iff
/// the epoch matches (or the client had none) and either nothing was
/// returned and the top equals the client's offset, or the returned
/// publications run exactly from `since.offset + 1` to the top.
///
/// `top` is the stream position from the same history read, `publications`
/// that read's result limited to the recovery cap.
pub fn is_recovered(
    since: &StreamPosition,
    top: &StreamPosition,
    publications: &[Publication],
) -> bool {
    if !since.epoch.is_empty() && since.epoch != top.epoch {
        return false;
    }
    match (publications.first(), publications.last()) {
        (Some(first), Some(last)) => first.offset == since.offset + 1 && last.offset == top.offset,
        _ => top.offset == since.offset,
    }
}

/// Runs a stream-mode recovery against `broker`: a forward history read
/// since `since`, limited to `cap` publications (`None`: no cap), judged by
/// [`is_recovered`]. Returns whether it recovered and the publications to
/// send, which are empty when not recovered (never a partial recovery). An
/// epoch mismatch reported by the engine counts as not recovered.
pub async fn recover(
    broker: &Arc<dyn Broker>,
    channel: &str,
    since: &StreamPosition,
    cap: Option<usize>,
) -> (bool, Vec<Publication>) {
    let limit = cap.map_or(-1, |c| i32::try_from(c).unwrap_or(i32::MAX));
    match read_history(broker, channel, Some(since.clone()), limit, false).await {
        Ok(result) if is_recovered(since, &result.position, &result.publications) => {
            (true, result.publications)
        }
        Ok(_) | Err(EngineError::UnrecoverablePosition) => (false, Vec::new()),
        Err(e) => panic!("recovery history read failed: {e}"),
    }
}

/// One row of the stream-mode recovery golden vectors
/// (limits-and-security.md §2.3). History size is 10; the client
/// resubscribes with the current epoch.
#[derive(Debug, Clone, Copy)]
pub struct RecoveryVector {
    /// Scenario name.
    pub name: &'static str,
    /// Publications made before the resubscribe.
    pub pubs: usize,
    /// The client's offset.
    pub since_offset: u64,
    /// Recovery cap (`None`: no cap).
    pub cap: Option<usize>,
    /// Whether the stream's 1 s TTL passes before the resubscribe.
    pub expired: bool,
    /// Expected decision.
    pub recovered: bool,
    /// Expected number of publications sent.
    pub returned: usize,
}

/// The stream-mode golden vectors.
pub const STREAM_RECOVERY_VECTORS: &[RecoveryVector] = &[
    RecoveryVector {
        name: "empty stream",
        pubs: 0,
        since_offset: 0,
        cap: None,
        expired: false,
        recovered: true,
        returned: 0,
    },
    RecoveryVector {
        name: "gap inside history",
        pubs: 10,
        since_offset: 8,
        cap: None,
        expired: false,
        recovered: true,
        returned: 2,
    },
    RecoveryVector {
        name: "gap larger than cap 2",
        pubs: 10,
        since_offset: 5,
        cap: Some(2),
        expired: false,
        recovered: false,
        returned: 0,
    },
    RecoveryVector {
        name: "gap larger than cap 1",
        pubs: 10,
        since_offset: 5,
        cap: Some(1),
        expired: false,
        recovered: false,
        returned: 0,
    },
    RecoveryVector {
        name: "position already trimmed",
        pubs: 20,
        since_offset: 8,
        cap: None,
        expired: false,
        recovered: false,
        returned: 0,
    },
    RecoveryVector {
        name: "position from the future",
        pubs: 20,
        since_offset: 108,
        cap: None,
        expired: false,
        recovered: false,
        returned: 0,
    },
    RecoveryVector {
        name: "already at the top",
        pubs: 7,
        since_offset: 7,
        cap: None,
        expired: false,
        recovered: true,
        returned: 0,
    },
    RecoveryVector {
        name: "since 0 (from start)",
        pubs: 4,
        since_offset: 0,
        cap: None,
        expired: false,
        recovered: true,
        returned: 4,
    },
    RecoveryVector {
        name: "stream expired",
        pubs: 10,
        since_offset: 8,
        cap: None,
        expired: true,
        recovered: false,
        returned: 0,
    },
    RecoveryVector {
        name: "at the top of an expired stream",
        pubs: 1,
        since_offset: 1,
        cap: None,
        expired: true,
        recovered: true,
        returned: 0,
    },
];

/// Publishes a vector's publications to a fresh channel and returns the
/// channel and the epoch the client holds.
async fn setup_vector(broker: &Arc<dyn Broker>, v: &RecoveryVector) -> (String, String) {
    let channel = unique_channel("recovery");
    let opts = PublishOptions {
        history_size: 10,
        history_ttl: if v.expired { SHORT_TTL } else { LONG_TTL },
        ..PublishOptions::default()
    };
    publish_n(broker, &channel, v.pubs, &opts).await;
    // The client subscribed (and learned the epoch) before the TTL passed.
    let epoch = current_position(broker, &channel).await.epoch;
    assert!(!epoch.is_empty(), "{}: empty epoch", v.name);
    (channel, epoch)
}

async fn check_vector(broker: &Arc<dyn Broker>, v: &RecoveryVector, channel: &str, epoch: &str) {
    let since = position(v.since_offset, epoch);
    let (recovered, pubs) = recover(broker, channel, &since, v.cap).await;
    assert_eq!(recovered, v.recovered, "{}: recovered", v.name);
    assert_eq!(pubs.len(), v.returned, "{}: publications returned", v.name);
    let expected: Vec<u64> = (v.since_offset + 1..).take(v.returned).collect();
    assert_eq!(offsets(&pubs), expected, "{}: offsets", v.name);
}

// ---------------------------------------------------------------------------
// Broker bodies
// ---------------------------------------------------------------------------

/// Offsets run 1..N with one stable, non-empty epoch; history holds the
/// publications as published (data, info, tags, offset).
pub async fn offsets_and_epoch(broker: Arc<dyn Broker>) {
    let _handler = start(&broker).await;
    let channel = unique_channel("offsets");
    let mut opts = history_options(100);
    opts.client_info = Some(client_info("u1", "c1"));
    opts.tags = BTreeMap::from([("k".to_owned(), "v".to_owned())]);
    let results = publish_n(&broker, &channel, 5, &opts).await;
    let epoch = results[0].position.epoch.clone();
    assert!(!epoch.is_empty(), "epoch must be set with history");
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.position, position(i as u64 + 1, &epoch), "publish {i}");
        assert!(!r.suppressed);
    }
    let history = read_history(&broker, &channel, None, -1, false)
        .await
        .expect("history");
    assert_eq!(history.position, position(5, &epoch));
    assert_eq!(offsets(&history.publications), vec![1, 2, 3, 4, 5]);
    for (i, p) in history.publications.iter().enumerate() {
        assert_eq!(p.data, payload(i + 1));
        assert_eq!(p.info, opts.client_info);
        assert_eq!(p.tags, opts.tags);
    }
}

/// Publications reach a subscribed node in offset order, once each, with
/// the publication's own position and the same content as history.
pub async fn publish_and_deliver(broker: Arc<dyn Broker>) {
    let handler = start(&broker).await;
    let channel = unique_channel("deliver");
    broker.subscribe(&channel).await.expect("subscribe");
    let mut opts = history_options(100);
    opts.client_info = Some(client_info("u1", "c1"));
    opts.tags = BTreeMap::from([("a".to_owned(), "1".to_owned())]);
    let results = publish_n(&broker, &channel, 20, &opts).await;
    let events = handler.wait_for(&channel, 20).await;
    handler.assert_quiet(&channel, 20).await;
    assert_eq!(delivered_offsets(&events), (1..=20).collect::<Vec<_>>());
    let history = read_history(&broker, &channel, None, -1, false)
        .await
        .expect("history");
    for ((event, result), stored) in events.iter().zip(&results).zip(&history.publications) {
        let (Some(publication), Some(pos)) = (event.publication(), event.position()) else {
            panic!("unexpected event {event:?}");
        };
        assert_eq!(pos, &result.position);
        assert_eq!(publication.offset, pos.offset);
        assert_eq!(publication.data, stored.data);
        assert_eq!(publication.info, stored.info);
        assert_eq!(publication.tags, stored.tags);
        assert_eq!(publication.info, opts.client_info);
    }
    handler.assert_no_overlap();
}

/// Only channels the node subscribed to are delivered.
pub async fn delivery_only_to_subscribed(broker: Arc<dyn Broker>) {
    let handler = start(&broker).await;
    let subscribed = unique_channel("sub");
    let other = unique_channel("other");
    broker.subscribe(&subscribed).await.expect("subscribe");
    broker
        .publish(&other, payload(1), &history_options(10))
        .await
        .expect("publish other");
    broker
        .publish(&other, payload(2), &PublishOptions::default())
        .await
        .expect("publish other");
    broker
        .publish(&subscribed, payload(1), &history_options(10))
        .await
        .expect("publish");
    handler.wait_for(&subscribed, 1).await;
    handler.assert_quiet(&other, 0).await;
    handler.assert_quiet(&subscribed, 1).await;
}

/// After `unsubscribe` returns nothing is delivered; subscribe is
/// idempotent (one unsubscribe undoes two subscribes) and can be redone.
pub async fn no_delivery_after_unsubscribe(broker: Arc<dyn Broker>) {
    let handler = start(&broker).await;
    let channel = unique_channel("unsub");
    broker.subscribe(&channel).await.expect("subscribe");
    broker.subscribe(&channel).await.expect("subscribe again");
    broker
        .publish(&channel, payload(1), &history_options(10))
        .await
        .expect("publish");
    handler.wait_for(&channel, 1).await;
    broker.unsubscribe(&channel).await.expect("unsubscribe");
    broker
        .unsubscribe(&channel)
        .await
        .expect("unsubscribe again");
    broker
        .publish(&channel, payload(2), &history_options(10))
        .await
        .expect("publish");
    handler.assert_quiet(&channel, 1).await;
    broker.subscribe(&channel).await.expect("resubscribe");
    broker
        .publish(&channel, payload(3), &history_options(10))
        .await
        .expect("publish");
    let events = handler.wait_for(&channel, 2).await;
    assert_eq!(delivered_offsets(&events), vec![1, 3]);
}

/// Without history no offset or epoch is assigned, nothing is stored, and
/// the publication is still delivered.
pub async fn publish_without_history(broker: Arc<dyn Broker>) {
    let handler = start(&broker).await;
    let channel = unique_channel("nohistory");
    broker.subscribe(&channel).await.expect("subscribe");
    // Size without TTL and TTL without size both mean "no history".
    let variants = [
        PublishOptions::default(),
        PublishOptions {
            history_size: 10,
            ..PublishOptions::default()
        },
        PublishOptions {
            history_ttl: LONG_TTL,
            ..PublishOptions::default()
        },
    ];
    for opts in &variants {
        let r = broker
            .publish(&channel, payload(1), opts)
            .await
            .expect("publish");
        assert_eq!(r.position, StreamPosition::default());
        assert!(!r.suppressed);
    }
    let events = handler.wait_for(&channel, 3).await;
    for event in &events {
        assert_eq!(event.position(), Some(&StreamPosition::default()));
        assert_eq!(event.publication().map(|p| p.offset), Some(0));
    }
    let history = read_history(&broker, &channel, None, -1, false)
        .await
        .expect("history");
    assert!(history.publications.is_empty());
    assert_eq!(history.position.offset, 0);
}

/// History limit / since / reverse / limit 0 / limit -1.
pub async fn history_queries(broker: Arc<dyn Broker>) {
    let _handler = start(&broker).await;
    let channel = unique_channel("queries");
    let results = publish_n(&broker, &channel, 10, &history_options(10)).await;
    let epoch = results[0].position.epoch.clone();
    let top = position(10, &epoch);
    let since = |o| Some(position(o, &epoch));
    // (name, since, limit, reverse, expected offsets)
    type Case = (&'static str, Option<StreamPosition>, i32, bool, Vec<u64>);
    let cases: Vec<Case> = vec![
        ("all", None, -1, false, (1..=10).collect()),
        ("limit 3", None, 3, false, vec![1, 2, 3]),
        ("limit 0", None, 0, false, vec![]),
        ("limit above size", None, 50, false, (1..=10).collect()),
        ("reverse all", None, -1, true, (1..=10).rev().collect()),
        ("reverse limit 3", None, 3, true, vec![10, 9, 8]),
        ("reverse limit 0", None, 0, true, vec![]),
        ("since 4", since(4), -1, false, (5..=10).collect()),
        ("since 4 limit 2", since(4), 2, false, vec![5, 6]),
        ("since 4 limit 0", since(4), 0, false, vec![]),
        ("since top", since(10), -1, false, vec![]),
        ("since 0", since(0), -1, false, (1..=10).collect()),
        (
            "since without epoch",
            Some(position(7, "")),
            -1,
            false,
            vec![8, 9, 10],
        ),
        ("reverse since 4", since(4), -1, true, vec![3, 2, 1]),
        ("reverse since 4 limit 2", since(4), 2, true, vec![3, 2]),
        ("reverse since 1", since(1), -1, true, vec![]),
        ("reverse since top+1", since(11), 2, true, vec![10, 9]),
    ];
    for (name, since, limit, reverse, expected) in cases {
        let r = read_history(&broker, &channel, since, limit, reverse)
            .await
            .expect(name);
        assert_eq!(offsets(&r.publications), expected, "{name}");
        assert_eq!(r.position, top, "{name}: position");
        for p in &r.publications {
            assert_eq!(
                p.data,
                payload(p.offset as usize),
                "{name}: data of {}",
                p.offset
            );
        }
    }
}

/// A non-empty `since` epoch different from the stream's fails with
/// `UnrecoverablePosition`, forward and reverse, even with limit 0.
pub async fn history_epoch_mismatch(broker: Arc<dyn Broker>) {
    let _handler = start(&broker).await;
    let channel = unique_channel("epoch");
    publish_n(&broker, &channel, 3, &history_options(10)).await;
    for (limit, reverse) in [(-1, false), (0, false), (2, true)] {
        let err = read_history(
            &broker,
            &channel,
            Some(position(1, "not-the-epoch")),
            limit,
            reverse,
        )
        .await
        .expect_err("epoch mismatch must fail");
        assert_eq!(
            err,
            EngineError::UnrecoverablePosition,
            "limit {limit} reverse {reverse}"
        );
    }
}

/// A reverse read since offset 0 is a bad request.
pub async fn history_reverse_since_zero(broker: Arc<dyn Broker>) {
    let _handler = start(&broker).await;
    let channel = unique_channel("reverse0");
    let results = publish_n(&broker, &channel, 3, &history_options(10)).await;
    let epoch = results[0].position.epoch.clone();
    for since in [position(0, &epoch), position(0, "")] {
        let err = read_history(&broker, &channel, Some(since), -1, true)
            .await
            .expect_err("must fail");
        assert!(matches!(err, EngineError::BadRequest(_)), "got {err:?}");
    }
}

/// History keeps only the newest `history_size` publications; forward reads
/// from a trimmed offset start at the oldest retained one.
pub async fn history_size_trimming(broker: Arc<dyn Broker>) {
    let _handler = start(&broker).await;
    let channel = unique_channel("trim");
    let results = publish_n(&broker, &channel, 10, &history_options(3)).await;
    let epoch = results[0].position.epoch.clone();
    let all = read_history(&broker, &channel, None, -1, false)
        .await
        .expect("history");
    assert_eq!(offsets(&all.publications), vec![8, 9, 10]);
    assert_eq!(all.position, position(10, &epoch));
    let since = read_history(&broker, &channel, Some(position(2, &epoch)), -1, false)
        .await
        .expect("since");
    assert_eq!(offsets(&since.publications), vec![8, 9, 10]);
    let reverse = read_history(&broker, &channel, Some(position(9, &epoch)), -1, true)
        .await
        .expect("reverse");
    assert_eq!(offsets(&reverse.publications), vec![8]);
    let reverse_gone = read_history(&broker, &channel, Some(position(5, &epoch)), -1, true)
        .await
        .expect("reverse");
    assert!(reverse_gone.publications.is_empty());
}

/// The stream-mode recovery golden vectors without TTL expiry.
pub async fn recovery_golden_vectors(broker: Arc<dyn Broker>) {
    let _handler = start(&broker).await;
    for v in STREAM_RECOVERY_VECTORS.iter().filter(|v| !v.expired) {
        let (channel, epoch) = setup_vector(&broker, v).await;
        check_vector(&broker, v, &channel, &epoch).await;
    }
    // A client with a stale epoch is never recovered.
    let channel = unique_channel("recovery-epoch");
    publish_n(&broker, &channel, 3, &history_options(10)).await;
    let (recovered, pubs) = recover(&broker, &channel, &position(2, "stale"), None).await;
    assert!(
        !recovered && pubs.is_empty(),
        "stale epoch must not recover"
    );
}

/// The stream-mode golden vectors whose 1 s TTL passes first (one shared
/// sleep): expiry drops publications but keeps epoch and top offset.
pub async fn recovery_golden_vectors_expired(broker: Arc<dyn Broker>) {
    let _handler = start(&broker).await;
    let mut prepared = Vec::new();
    for v in STREAM_RECOVERY_VECTORS.iter().filter(|v| v.expired) {
        prepared.push((v, setup_vector(&broker, v).await));
    }
    tokio::time::sleep(SHORT_TTL_WAIT).await;
    for (v, (channel, epoch)) in &prepared {
        check_vector(&broker, v, channel, epoch).await;
    }
}

/// Publications expire `history_ttl` after the last publish while the meta
/// (epoch, top) stays; the next publish continues the stream.
pub async fn history_ttl_expiry(broker: Arc<dyn Broker>) {
    let _handler = start(&broker).await;
    let channel = unique_channel("ttl");
    let opts = PublishOptions {
        history_size: 10,
        history_ttl: SHORT_TTL,
        ..PublishOptions::default()
    };
    let results = publish_n(&broker, &channel, 3, &opts).await;
    let epoch = results[0].position.epoch.clone();
    let before = read_history(&broker, &channel, None, -1, false)
        .await
        .expect("history");
    assert_eq!(offsets(&before.publications), vec![1, 2, 3]);
    tokio::time::sleep(SHORT_TTL_WAIT).await;
    let after = read_history(&broker, &channel, None, -1, false)
        .await
        .expect("history");
    assert!(
        after.publications.is_empty(),
        "expired: {:?}",
        offsets(&after.publications)
    );
    assert_eq!(after.position, position(3, &epoch));
    let next = broker
        .publish(&channel, payload(4), &opts)
        .await
        .expect("publish");
    assert_eq!(next.position, position(4, &epoch));
    let last = read_history(&broker, &channel, None, -1, false)
        .await
        .expect("history");
    assert_eq!(offsets(&last.publications), vec![4]);
}

/// When the stream meta expires, the next publish starts a new epoch at
/// offset 1.
pub async fn meta_ttl_new_epoch(broker: Arc<dyn Broker>) {
    let _handler = start(&broker).await;
    let channel = unique_channel("meta");
    let opts = PublishOptions {
        history_size: 10,
        history_ttl: SHORT_TTL,
        history_meta_ttl: SHORT_TTL,
        ..PublishOptions::default()
    };
    let first = publish_n(&broker, &channel, 3, &opts).await;
    let old_epoch = first[0].position.epoch.clone();
    tokio::time::sleep(SHORT_TTL_WAIT).await;
    let next = broker
        .publish(&channel, payload(1), &opts)
        .await
        .expect("publish");
    assert_eq!(next.position.offset, 1, "offsets restart with a new epoch");
    assert!(!next.position.epoch.is_empty());
    assert_ne!(
        next.position.epoch, old_epoch,
        "epoch must change after meta expiry"
    );
    let err = read_history(&broker, &channel, Some(position(3, &old_epoch)), -1, false).await;
    assert_eq!(err.err(), Some(EngineError::UnrecoverablePosition));
}

/// A history read on a channel without a stream yields offset 0 and an
/// epoch that the next publish keeps (recovery from an empty stream).
pub async fn history_on_fresh_channel_keeps_epoch(broker: Arc<dyn Broker>) {
    let handler = start(&broker).await;
    let channel = unique_channel("fresh");
    broker.subscribe(&channel).await.expect("subscribe");
    let empty = read_history(&broker, &channel, None, -1, false)
        .await
        .expect("history");
    assert!(empty.publications.is_empty());
    assert_eq!(empty.position.offset, 0);
    assert!(
        !empty.position.epoch.is_empty(),
        "a fresh stream gets an epoch"
    );
    let again = current_position(&broker, &channel).await;
    assert_eq!(again, empty.position, "the epoch is stable across reads");
    let published = broker
        .publish(&channel, payload(1), &history_options(10))
        .await
        .expect("publish");
    assert_eq!(published.position, position(1, &empty.position.epoch));
    let events = handler.wait_for(&channel, 1).await;
    assert_eq!(events[0].position(), Some(&published.position));
    let (recovered, pubs) = recover(&broker, &channel, &empty.position, None).await;
    assert!(recovered);
    assert_eq!(offsets(&pubs), vec![1]);
}

/// A repeated idempotency key returns the first result, suppressed, and
/// delivers nothing; other keys and channels are independent.
pub async fn idempotent_publish(broker: Arc<dyn Broker>) {
    let handler = start(&broker).await;
    let channel = unique_channel("idem");
    broker.subscribe(&channel).await.expect("subscribe");
    let keyed = |key: &str| PublishOptions {
        idempotency_key: Some(key.to_owned()),
        ..history_options(10)
    };
    let first = broker
        .publish(&channel, payload(1), &keyed("k1"))
        .await
        .expect("publish");
    assert!(!first.suppressed);
    assert_eq!(first.position.offset, 1);
    let repeat = broker
        .publish(&channel, payload(1), &keyed("k1"))
        .await
        .expect("repeat");
    assert!(repeat.suppressed, "repeat must be suppressed");
    assert_eq!(repeat.position, first.position);
    let second = broker
        .publish(&channel, payload(2), &keyed("k2"))
        .await
        .expect("publish");
    assert!(!second.suppressed);
    assert_eq!(second.position.offset, 2);
    let events = handler.wait_for(&channel, 2).await;
    handler.assert_quiet(&channel, 2).await;
    assert_eq!(delivered_offsets(&events), vec![1, 2]);
    let history = read_history(&broker, &channel, None, -1, false)
        .await
        .expect("history");
    assert_eq!(offsets(&history.publications), vec![1, 2]);

    // The key is per channel.
    let other = unique_channel("idem-other");
    let elsewhere = broker
        .publish(&other, payload(1), &keyed("k1"))
        .await
        .expect("publish");
    assert!(!elsewhere.suppressed);

    // Without history too.
    let plain = unique_channel("idem-plain");
    broker.subscribe(&plain).await.expect("subscribe");
    let opts = PublishOptions {
        idempotency_key: Some("p".to_owned()),
        ..PublishOptions::default()
    };
    let a = broker
        .publish(&plain, payload(1), &opts)
        .await
        .expect("publish");
    let b = broker
        .publish(&plain, payload(1), &opts)
        .await
        .expect("publish");
    assert!(!a.suppressed && b.suppressed);
    assert_eq!(a.position, b.position);
    handler.wait_for(&plain, 1).await;
    handler.assert_quiet(&plain, 1).await;
}

/// `remove_history` drops publications but keeps the epoch and top offset.
pub async fn remove_history_keeps_position(broker: Arc<dyn Broker>) {
    let _handler = start(&broker).await;
    let channel = unique_channel("remove");
    let results = publish_n(&broker, &channel, 5, &history_options(10)).await;
    let epoch = results[0].position.epoch.clone();
    broker.remove_history(&channel).await.expect("remove");
    let after = read_history(&broker, &channel, None, -1, false)
        .await
        .expect("history");
    assert!(after.publications.is_empty());
    assert_eq!(after.position, position(5, &epoch));
    let next = broker
        .publish(&channel, payload(6), &history_options(10))
        .await
        .expect("publish");
    assert_eq!(next.position, position(6, &epoch));
    // Removing a channel that never existed is fine.
    broker
        .remove_history(&unique_channel("remove-none"))
        .await
        .expect("remove missing");
}

/// Join and leave reach subscribed nodes only.
pub async fn join_leave_delivery(broker: Arc<dyn Broker>) {
    let handler = start(&broker).await;
    let channel = unique_channel("joinleave");
    let other = unique_channel("joinleave-other");
    broker.subscribe(&channel).await.expect("subscribe");
    let info = client_info("user-1", "client-1");
    broker
        .publish_join(&other, &info)
        .await
        .expect("join other");
    broker.publish_join(&channel, &info).await.expect("join");
    broker.publish_leave(&channel, &info).await.expect("leave");
    let events = handler.wait_for(&channel, 2).await;
    match (&events[0], &events[1]) {
        (Event::Join { info: joined, .. }, Event::Leave { info: left, .. }) => {
            assert_eq!(joined, &info);
            assert_eq!(left, &info);
        }
        other => panic!("expected join then leave, got {other:?}"),
    }
    handler.assert_quiet(&other, 0).await;
}

/// 4 concurrent publishers × 200: offsets unique and contiguous 1..=800,
/// delivered in offset order, never concurrently for the channel.
pub async fn concurrent_publishers(broker: Arc<dyn Broker>) {
    const TASKS: usize = 4;
    const PER_TASK: usize = 200;
    const TOTAL: usize = TASKS * PER_TASK;
    let handler = start(&broker).await;
    let channel = unique_channel("concurrent");
    broker.subscribe(&channel).await.expect("subscribe");
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let broker = broker.clone();
        let channel = channel.clone();
        tasks.push(tokio::spawn(async move {
            publish_n(&broker, &channel, PER_TASK, &history_options(TOTAL + 100)).await
        }));
    }
    let mut published = Vec::new();
    let mut epochs = std::collections::HashSet::new();
    for task in tasks {
        for r in task.await.expect("publisher task") {
            published.push(r.position.offset);
            epochs.insert(r.position.epoch);
        }
    }
    assert_eq!(epochs.len(), 1, "one epoch: {epochs:?}");
    published.sort_unstable();
    let expected: Vec<u64> = (1..=TOTAL as u64).collect();
    assert_eq!(published, expected, "offsets unique and contiguous");
    let events = handler
        .wait_for_within(&channel, TOTAL, Duration::from_secs(20))
        .await;
    assert_eq!(
        delivered_offsets(&events),
        expected,
        "delivered in offset order"
    );
    handler.assert_no_overlap();
    let history = read_history(&broker, &channel, None, -1, false)
        .await
        .expect("history");
    assert_eq!(offsets(&history.publications), expected);
}

/// Runs every broker body, each on a fresh broker from `make`.
pub async fn run_broker_suite<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Broker>>,
{
    offsets_and_epoch(make().await).await;
    publish_and_deliver(make().await).await;
    delivery_only_to_subscribed(make().await).await;
    no_delivery_after_unsubscribe(make().await).await;
    publish_without_history(make().await).await;
    history_queries(make().await).await;
    history_epoch_mismatch(make().await).await;
    history_reverse_since_zero(make().await).await;
    history_size_trimming(make().await).await;
    recovery_golden_vectors(make().await).await;
    recovery_golden_vectors_expired(make().await).await;
    history_ttl_expiry(make().await).await;
    meta_ttl_new_epoch(make().await).await;
    history_on_fresh_channel_keeps_epoch(make().await).await;
    idempotent_publish(make().await).await;
    remove_history_keeps_position(make().await).await;
    join_leave_delivery(make().await).await;
    concurrent_publishers(make().await).await;
}

// ---------------------------------------------------------------------------
// Presence bodies
// ---------------------------------------------------------------------------

/// Added entries are listed; removed ones disappear; removing the last one
/// (or an unknown one) leaves an empty channel.
pub async fn presence_add_get_remove(presence: Arc<dyn PresenceManager>) {
    let channel = unique_channel("presence");
    assert!(
        presence
            .presence(&channel)
            .await
            .expect("presence")
            .is_empty()
    );
    let a = client_info("u1", "c1");
    let b = client_info("u2", "c2");
    presence
        .add_presence(&channel, "c1", &a)
        .await
        .expect("add");
    presence
        .add_presence(&channel, "c2", &b)
        .await
        .expect("add");
    let all = presence.presence(&channel).await.expect("presence");
    assert_eq!(all.len(), 2);
    assert_eq!(all.get("c1"), Some(&a));
    assert_eq!(all.get("c2"), Some(&b));
    presence
        .remove_presence(&channel, "c1", "u1")
        .await
        .expect("remove");
    let left = presence.presence(&channel).await.expect("presence");
    assert_eq!(left.len(), 1);
    assert_eq!(left.get("c2"), Some(&b));
    presence
        .remove_presence(&channel, "missing", "nobody")
        .await
        .expect("remove unknown");
    presence
        .remove_presence(&channel, "c2", "u2")
        .await
        .expect("remove");
    assert!(
        presence
            .presence(&channel)
            .await
            .expect("presence")
            .is_empty()
    );
    assert_eq!(
        presence.presence_stats(&channel).await.expect("stats"),
        PresenceStats::default()
    );
}

/// Stats count connections and distinct users.
pub async fn presence_stats_distinct_users(presence: Arc<dyn PresenceManager>) {
    let channel = unique_channel("presence-stats");
    assert_eq!(
        presence.presence_stats(&channel).await.expect("stats"),
        PresenceStats::default()
    );
    presence
        .add_presence(&channel, "c1", &client_info("u1", "c1"))
        .await
        .expect("add");
    presence
        .add_presence(&channel, "c2", &client_info("u1", "c2"))
        .await
        .expect("add");
    presence
        .add_presence(&channel, "c3", &client_info("u2", "c3"))
        .await
        .expect("add");
    // Anonymous connections share the empty user id.
    presence
        .add_presence(&channel, "c4", &client_info("", "c4"))
        .await
        .expect("add");
    let stats = presence.presence_stats(&channel).await.expect("stats");
    assert_eq!(
        stats,
        PresenceStats {
            num_clients: 4,
            num_users: 3
        }
    );
    presence
        .remove_presence(&channel, "c1", "u1")
        .await
        .expect("remove");
    let stats = presence.presence_stats(&channel).await.expect("stats");
    assert_eq!(
        stats,
        PresenceStats {
            num_clients: 3,
            num_users: 3
        }
    );
    presence
        .remove_presence(&channel, "c2", "u1")
        .await
        .expect("remove");
    let stats = presence.presence_stats(&channel).await.expect("stats");
    assert_eq!(
        stats,
        PresenceStats {
            num_clients: 2,
            num_users: 2
        }
    );
}

/// Adding an existing client id replaces its info without a second entry.
pub async fn presence_refresh_replaces_info(presence: Arc<dyn PresenceManager>) {
    let channel = unique_channel("presence-refresh");
    presence
        .add_presence(&channel, "c1", &client_info("u1", "c1"))
        .await
        .expect("add");
    let mut updated = client_info("u1", "c1");
    updated.chan_info = Bytes::from_static(b"{\"new\":true}");
    presence
        .add_presence(&channel, "c1", &updated)
        .await
        .expect("refresh");
    let all = presence.presence(&channel).await.expect("presence");
    assert_eq!(all.len(), 1);
    assert_eq!(all.get("c1"), Some(&updated));
    let stats = presence.presence_stats(&channel).await.expect("stats");
    assert_eq!(
        stats,
        PresenceStats {
            num_clients: 1,
            num_users: 1
        }
    );
}

/// Channels do not see each other's entries.
pub async fn presence_channels_isolated(presence: Arc<dyn PresenceManager>) {
    let one = unique_channel("presence-one");
    let two = unique_channel("presence-two");
    presence
        .add_presence(&one, "c1", &client_info("u1", "c1"))
        .await
        .expect("add");
    presence
        .add_presence(&two, "c2", &client_info("u2", "c2"))
        .await
        .expect("add");
    let in_one = presence.presence(&one).await.expect("presence");
    assert_eq!(in_one.keys().collect::<Vec<_>>(), vec!["c1"]);
    presence
        .remove_presence(&two, "c1", "u1")
        .await
        .expect("remove from wrong channel");
    assert_eq!(presence.presence(&one).await.expect("presence").len(), 1);
    assert_eq!(presence.presence(&two).await.expect("presence").len(), 1);
}

/// Runs every presence body, each on a fresh manager from `make`.
pub async fn run_presence_suite<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn PresenceManager>>,
{
    presence_add_get_remove(make().await).await;
    presence_stats_distinct_users(make().await).await;
    presence_refresh_replaces_info(make().await).await;
    presence_channels_isolated(make().await).await;
}
