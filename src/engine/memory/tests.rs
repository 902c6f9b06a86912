//! Tests of the memory engine: the shared conformance suite plus
//! memory-specific behaviour (cleanup, expiry).

use std::collections::HashSet;

use super::*;
use crate::engine::conformance::{self, RecordingHandler};
use crate::engine::{HistoryFilter, PresenceManager};

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

crate::engine_conformance_bodies!(conformance_tests);

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
