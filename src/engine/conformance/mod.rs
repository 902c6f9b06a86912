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

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use rand::Rng;
use rand::distr::Alphanumeric;
use tokio::sync::Notify;
use tokio::time::Instant;

mod broker;
mod delta;
mod presence;
mod recovery;
mod versions;

pub use broker::*;
pub use delta::*;
pub use presence::*;
pub use recovery::*;
pub use versions::*;

/// Every body of the suite, listed once: expands to `$m!(broker: …)` with
/// the broker bodies and `$m!(presence: …)` with the presence bodies, so an
/// engine's test file generates one test per body and a new body reaches
/// every full engine.
#[macro_export]
macro_rules! engine_conformance_bodies {
    ($m:ident) => {
        $m!(broker:
            offsets_and_epoch,
            publish_and_deliver,
            delivery_only_to_subscribed,
            no_delivery_after_unsubscribe,
            publish_without_history,
            history_queries,
            history_epoch_mismatch,
            history_reverse_since_zero,
            history_size_trimming,
            delta_publish_hands_previous_data,
            recovery_golden_vectors,
            recovery_golden_vectors_expired,
            history_ttl_expiry,
            meta_ttl_new_epoch,
            history_on_fresh_channel_keeps_epoch,
            idempotent_publish,
            versioned_publish,
            remove_history_keeps_position,
            join_leave_delivery,
            concurrent_publishers,
        );
        $m!(presence:
            presence_add_get_remove,
            presence_stats_distinct_users,
            presence_refresh_replaces_info,
            presence_channels_isolated,
        );
    };
}

use super::{
    Broker, BrokerEventHandler, ClientInfo, EngineError, HistoryFilter, HistoryOptions,
    HistoryResult, Publication, PublishOptions, PublishResult, StreamPosition,
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
        /// The previous publication's data passed alongside it.
        prev: Option<Bytes>,
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
        prev: Option<Bytes>,
    ) {
        self.record(Event::Publication {
            channel: channel.to_owned(),
            publication,
            position,
            prev,
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

/// Publishes payload `i` on `channel` every 200 ms until `resumed` holds
/// for what the handler recorded there (deliveries are at most once, so
/// publications made while a connection is down may be lost); panics after
/// `limit`.
pub async fn publish_until_delivered(
    broker: &Arc<dyn Broker>,
    handler: &RecordingHandler,
    channel: &str,
    opts: &PublishOptions,
    (i, limit): (usize, Duration),
    resumed: impl Fn(&[Event]) -> bool,
) {
    let deadline = Instant::now() + limit;
    loop {
        assert!(Instant::now() < deadline, "deliveries did not resume");
        let _ = broker.publish(channel, payload(i), opts).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        if resumed(&handler.events_for(channel)) {
            return;
        }
    }
}

/// Runs `broker` with a recording handler, subscribes it to a fresh channel
/// named after `name`, publishes payload 1 with history of `history` and
/// waits for its delivery: the common start of the failure tests.
pub async fn first_delivery(
    broker: &Arc<dyn Broker>,
    name: &str,
    history: usize,
) -> (Arc<RecordingHandler>, String, PublishOptions) {
    let handler = start(broker).await;
    let channel = unique_channel(name);
    broker.subscribe(&channel).await.expect("subscribe");
    let opts = history_options(history);
    broker
        .publish(&channel, payload(1), &opts)
        .await
        .expect("first publish");
    handler.wait_for(&channel, 1).await;
    (handler, channel, opts)
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
