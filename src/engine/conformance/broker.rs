//! Broker conformance bodies and the runner that applies them all.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::engine::{Broker, EngineError, PublishOptions, StreamPosition};

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
    super::delta_publish_hands_previous_data(make().await).await;
    recovery_golden_vectors(make().await).await;
    recovery_golden_vectors_expired(make().await).await;
    history_ttl_expiry(make().await).await;
    meta_ttl_new_epoch(make().await).await;
    history_on_fresh_channel_keeps_epoch(make().await).await;
    idempotent_publish(make().await).await;
    super::versioned_publish(make().await).await;
    remove_history_keeps_position(make().await).await;
    join_leave_delivery(make().await).await;
    concurrent_publishers(make().await).await;
}
