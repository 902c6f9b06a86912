//! The NATS broker against the shared conformance suite and as the broker of
//! two real `rotor` processes (nats-server at 127.0.0.1:4222, or
//! `ROTOR_TEST_NATS`), each run under a random subject prefix so runs never
//! see each other's messages.
//!
//! The NATS broker has no history (as Centrifugo's): the conformance bodies
//! that read history, compare offsets or rely on idempotency keys do not
//! apply and are listed below with the reason; NATS-specific equivalents of
//! the delivery ones follow.

#[path = "support/certs.rs"]
mod certs;
#[path = "engine_nats/nats_server.rs"]
mod nats_server;
mod support;
#[path = "engine_nats/tls.rs"]
mod tls;

use std::sync::Arc;
use std::time::{Duration, Instant};

use nats_server::{NatsServer, free_port};
use rand::Rng;
use rand::distr::Alphanumeric;
use rotor::engine::conformance::{self, Event};
use rotor::engine::nats::{NatsBroker, NatsSettings};
use rotor::engine::{Broker, EngineError, PublishOptions, StreamPosition};
use support::WsClient;

fn random(n: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

fn settings() -> NatsSettings {
    NatsSettings {
        url: std::env::var("ROTOR_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into()),
        prefix: format!("rotor-test-{}", random(10)),
        ..NatsSettings::default()
    }
}

async fn broker(s: &NatsSettings) -> Arc<dyn Broker> {
    Arc::new(
        NatsBroker::connect(s)
            .await
            .expect("nats-server at 127.0.0.1:4222"),
    )
}

/// One `#[tokio::test]` per conformance body that applies to a broker
/// without history.
macro_rules! conformance_tests {
    ($($body:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $body() {
                conformance::$body(broker(&settings()).await).await;
            }
        )*
    };
}

conformance_tests!(delivery_only_to_subscribed, join_leave_delivery);

// Not run against NATS, because they need history (NATS carries no offsets,
// history reads fail with NotAvailable, as in Centrifugo):
// offsets_and_epoch, publish_and_deliver (compares with history),
// no_delivery_after_unsubscribe (asserts offsets 1 and 3; see
// `unsubscribe_stops_delivery` below), publish_without_history (reads
// history; see `no_history` below), history_queries, history_epoch_mismatch,
// history_reverse_since_zero, history_size_trimming, recovery_golden_vectors,
// recovery_golden_vectors_expired, history_ttl_expiry, meta_ttl_new_epoch,
// history_on_fresh_channel_keeps_epoch, versioned_publish,
// remove_history_keeps_position, concurrent_publishers (checks offsets; see
// `order_per_publisher` below). idempotent_publish: Centrifugo's NATS broker
// ignores idempotency keys, and so does this one.

/// The `i` of a delivered test payload `{"i":N}`.
fn index_of(event: &Event) -> usize {
    let data = &event.publication().expect("publication").data;
    let value: serde_json::Value = serde_json::from_slice(data).expect("json payload");
    value["i"].as_u64().expect("i") as usize
}

/// Publications carry no position whatever the options say; history and
/// `remove_history` are not available.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_history() {
    let broker = broker(&settings()).await;
    let handler = conformance::start(&broker).await;
    let channel = conformance::unique_channel("nohistory");
    broker.subscribe(&channel).await.expect("subscribe");
    for opts in [PublishOptions::default(), conformance::history_options(10)] {
        let r = broker
            .publish(&channel, conformance::payload(1), &opts)
            .await
            .expect("publish");
        assert_eq!(r.position, StreamPosition::default());
        assert!(!r.suppressed);
    }
    let events = handler.wait_for(&channel, 2).await;
    for event in &events {
        assert_eq!(event.position(), Some(&StreamPosition::default()));
        assert_eq!(event.publication().map(|p| p.offset), Some(0));
    }
    let err = conformance::read_history(&broker, &channel, None, -1, false)
        .await
        .expect_err("no history on NATS");
    assert_eq!(err, EngineError::NotAvailable);
    assert_eq!(
        broker.remove_history(&channel).await,
        Err(EngineError::NotAvailable)
    );
}

/// After `unsubscribe` returns nothing is delivered; subscribe is
/// idempotent and can be redone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_stops_delivery() {
    let broker = broker(&settings()).await;
    let handler = conformance::start(&broker).await;
    let channel = conformance::unique_channel("unsub");
    let opts = PublishOptions::default();
    broker.subscribe(&channel).await.expect("subscribe");
    broker.subscribe(&channel).await.expect("subscribe again");
    broker
        .publish(&channel, conformance::payload(1), &opts)
        .await
        .expect("publish");
    handler.wait_for(&channel, 1).await;
    broker.unsubscribe(&channel).await.expect("unsubscribe");
    broker
        .unsubscribe(&channel)
        .await
        .expect("unsubscribe again");
    broker
        .publish(&channel, conformance::payload(2), &opts)
        .await
        .expect("publish");
    handler.assert_quiet(&channel, 1).await;
    broker.subscribe(&channel).await.expect("resubscribe");
    broker
        .publish(&channel, conformance::payload(3), &opts)
        .await
        .expect("publish");
    let events = handler.wait_for(&channel, 2).await;
    let got: Vec<usize> = events.iter().map(index_of).collect();
    assert_eq!(got, vec![1, 3]);
}

/// Channel names that are not subject tails are bad requests, not silent
/// losses.
#[tokio::test]
async fn unusable_channel_names_are_bad_requests() {
    let broker = broker(&settings()).await;
    let _ = conformance::start(&broker).await;
    for channel in ["a b", "news.*", "news.>", "a..b", "trailing.", ""] {
        let publish = broker
            .publish(channel, conformance::payload(1), &PublishOptions::default())
            .await;
        assert!(
            matches!(publish, Err(EngineError::BadRequest(_))),
            "{channel:?}: {publish:?}"
        );
        let subscribe = broker.subscribe(channel).await;
        assert!(
            matches!(subscribe, Err(EngineError::BadRequest(_))),
            "{channel:?}: {subscribe:?}"
        );
    }
    // Dots and Centrifugo's namespace / user separators are fine.
    for channel in ["news.sport", "chat:room", "$private:x", "dm:#1,2"] {
        broker.subscribe(channel).await.expect(channel);
    }
}

/// Two brokers (two nodes) on one NATS: 4 publishers × 100 on node A reach
/// node B once each, each publisher's publications in order, never
/// concurrently for the channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_per_publisher_across_nodes() {
    let s = settings();
    let a = broker(&s).await;
    let b = broker(&s).await;
    let _ = conformance::start(&a).await;
    let handler = conformance::start(&b).await;
    let channel = conformance::unique_channel("order");
    b.subscribe(&channel).await.expect("subscribe");
    let mut tasks = Vec::new();
    for publisher in 0..4 {
        let a = a.clone();
        let channel = channel.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..100 {
                a.publish(
                    &channel,
                    conformance::payload(publisher * 1000 + i),
                    &PublishOptions::default(),
                )
                .await
                .expect("publish");
            }
        }));
    }
    for task in tasks {
        task.await.expect("publisher");
    }
    let events = handler.wait_for(&channel, 400).await;
    handler.assert_quiet(&channel, 400).await;
    let got: Vec<usize> = events.iter().map(index_of).collect();
    for publisher in 0..4 {
        let mine: Vec<usize> = got
            .iter()
            .copied()
            .filter(|i| i / 1000 == publisher)
            .collect();
        let expected: Vec<usize> = (0..100).map(|i| publisher * 1000 + i).collect();
        assert_eq!(mine, expected, "publisher {publisher}");
    }
}

/// Nothing listening, or a listener that never speaks NATS: connecting fails
/// within the dial timeout instead of hanging.
#[tokio::test]
async fn unreachable_nats_fails_connect_fast() {
    let s = NatsSettings {
        url: format!("nats://127.0.0.1:{}", free_port()),
        ..settings()
    };
    let started = Instant::now();
    let err = NatsBroker::connect(&s).await.expect_err("nothing listens");
    assert!(matches!(err, EngineError::Unavailable(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));

    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = silent.local_addr().expect("addr");
    let accept = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = silent.accept().await {
            held.push(sock);
        }
    });
    let s = NatsSettings {
        url: format!("nats://{addr}"),
        dial_timeout: Duration::from_millis(300),
        ..settings()
    };
    let started = Instant::now();
    let err = NatsBroker::connect(&s).await.expect_err("nothing answers");
    assert!(matches!(err, EngineError::Unavailable(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    accept.abort();
}

/// NATS dies under a running broker: publishes fail within 5 s (no hang);
/// when it is back the client reconnects and re-subscribes by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_nats_fails_publishes_then_recovers() {
    let server = NatsServer::start().await;
    let port = server.port;
    let s = NatsSettings {
        url: format!("nats://127.0.0.1:{port}"),
        ..settings()
    };
    let broker = broker(&s).await;
    let handler = conformance::start(&broker).await;
    let channel = conformance::unique_channel("dead");
    let opts = PublishOptions::default();
    broker.subscribe(&channel).await.expect("subscribe");
    broker
        .publish(&channel, conformance::payload(1), &opts)
        .await
        .expect("publish while up");
    handler.wait_for(&channel, 1).await;

    drop(server);
    let started = Instant::now();
    let err = loop {
        match broker
            .publish(&channel, conformance::payload(2), &opts)
            .await
        {
            Err(e) => break e,
            Ok(_) => {
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "publishes still succeed 5 s after NATS died"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert!(matches!(err, EngineError::Unavailable(_)), "{err:?}");
    let started = Instant::now();
    let _ = broker
        .publish(&channel, conformance::payload(2), &opts)
        .await;
    assert!(started.elapsed() < Duration::from_secs(2), "publish hung");

    let _server = NatsServer::start_on(port).await;
    conformance::publish_until_delivered(
        &broker,
        &handler,
        &channel,
        &opts,
        (3, Duration::from_secs(15)),
        |events| events.iter().any(|e| index_of(e) == 3),
    )
    .await;
}

/// NATS stops answering without closing the connection (the server process
/// is frozen): publishes start failing within ~5 s, and work again once it
/// answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_nats_fails_publishes_within_seconds() {
    let server = NatsServer::start().await;
    let s = NatsSettings {
        url: format!("nats://127.0.0.1:{}", server.port),
        ..settings()
    };
    let broker = broker(&s).await;
    let handler = conformance::start(&broker).await;
    let channel = conformance::unique_channel("frozen");
    let opts = PublishOptions::default();
    broker.subscribe(&channel).await.expect("subscribe");
    broker
        .publish(&channel, conformance::payload(1), &opts)
        .await
        .expect("publish while up");
    handler.wait_for(&channel, 1).await;

    server.signal("STOP");
    let started = Instant::now();
    let err = loop {
        let call = Instant::now();
        let result = broker
            .publish(&channel, conformance::payload(2), &opts)
            .await;
        assert!(call.elapsed() < Duration::from_secs(2), "publish hung");
        match result {
            Err(e) => break e,
            Ok(_) => {
                assert!(
                    started.elapsed() < Duration::from_secs(8),
                    "publishes still succeed 8 s after NATS froze"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert!(matches!(err, EngineError::Unavailable(_)), "{err:?}");

    server.signal("CONT");
    conformance::publish_until_delivered(
        &broker,
        &handler,
        &channel,
        &opts,
        (3, Duration::from_secs(15)),
        |events| events.iter().any(|e| index_of(e) == 3),
    )
    .await;
}

// ---------------------------------------------------------------------------
// The real binary on `broker.type: nats`
// ---------------------------------------------------------------------------

const E2E_SECRET: &str = "nats-e2e-secret";
const E2E_API_KEY: &str = "nats-e2e-api-key";

/// Starts `rotor` with the NATS broker under `prefix`; returns it and its
/// port once it serves HTTP.
async fn start_binary(
    dir: &std::path::Path,
    prefix: &str,
    name: &str,
    engine: serde_json::Value,
) -> (support::binary::Binary, u16) {
    let cfg = serde_json::json!({
        "engine": engine,
        "client": {"token": {"hmac_secret_key": E2E_SECRET}},
        "http_api": {"key": E2E_API_KEY},
        "broker": {"enabled": true, "type": "nats", "nats": {
            "url": "nats://127.0.0.1:4222", "prefix": prefix
        }},
        "channel": {"namespaces": [{
            "name": "chat", "allow_subscribe_for_client": true, "presence": true,
            "join_leave": true, "force_push_join_leave": true
        }, {
            "name": "hist", "history_size": 10, "history_ttl": "300s"
        }]},
        "log": {"level": "warn"}
    });
    let server = support::binary::start(dir, name, &cfg).await;
    let port = server.port;
    (server, port)
}

async fn api(port: u16, method: &str, body: serde_json::Value) -> serde_json::Value {
    support::binary::api(port, E2E_API_KEY, method, body).await
}

/// Two `rotor` processes on one NATS: a client on node A receives what the
/// API of node B publishes, in order, and joins on B; history is not
/// available.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_nodes_share_nats() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = format!("rotor-e2e-{}", random(10));
    let memory = serde_json::json!({"type": "memory"});
    let (_a, port_a) = start_binary(dir.path(), &prefix, "a", memory.clone()).await;
    let (_b, port_b) = start_binary(dir.path(), &prefix, "b", memory).await;

    let url = format!("ws://127.0.0.1:{port_a}/connection/websocket");
    let mut client = WsClient::open(&url, false, None).await.expect("ws");
    let token = support::sign(E2E_SECRET, serde_json::json!({"sub": "alice"}));
    client.connect(&token).await.connect.expect("connected");
    client
        .subscribe("chat:room")
        .await
        .subscribe
        .expect("subscribed");

    for i in 1..=5 {
        let published = api(
            port_b,
            "publish",
            serde_json::json!({"channel": "chat:room", "data": {"i": i}}),
        )
        .await;
        assert!(published.get("error").is_none(), "{published}");
        assert!(
            published["result"].get("offset").is_none_or(|o| o == 0),
            "no offsets on NATS: {published}"
        );
    }
    for i in 1..=5 {
        let publication = client.publication("chat:room").await;
        assert_eq!(publication.offset, 0);
        assert_eq!(publication.data, format!("{{\"i\":{i}}}").into_bytes());
    }

    let url_b = format!("ws://127.0.0.1:{port_b}/connection/websocket");
    let mut bob = WsClient::open(&url_b, false, None).await.expect("ws");
    let token = support::sign(E2E_SECRET, serde_json::json!({"sub": "bob"}));
    bob.connect(&token).await.connect.expect("connected");
    bob.subscribe("chat:room")
        .await
        .subscribe
        .expect("subscribed");
    client.join_of("chat:room", "bob").await;

    // A namespace with history: publishing works (no offset), history is
    // not available (108), as with Centrifugo's NATS broker.
    let published = api(
        port_b,
        "publish",
        serde_json::json!({"channel": "hist:x", "data": {}}),
    )
    .await;
    assert!(published.get("error").is_none(), "{published}");
    let history = api(
        port_a,
        "history",
        serde_json::json!({"channel": "hist:x", "limit": 10}),
    )
    .await;
    assert_eq!(history["error"]["code"], 108, "{history}");
}

/// `engine.type: redis` with the NATS broker: publications travel over NATS
/// while presence is the engine's, shared through Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_nodes_nats_broker_redis_presence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = format!("rotor-e2e-{}", random(10));
    let engine = serde_json::json!({
        "type": "redis", "redis": {"address": "127.0.0.1:6379", "prefix": prefix}
    });
    let (_a, port_a) = start_binary(dir.path(), &prefix, "a", engine.clone()).await;
    let (_b, port_b) = start_binary(dir.path(), &prefix, "b", engine).await;

    let url = format!("ws://127.0.0.1:{port_a}/connection/websocket");
    let mut client = WsClient::open(&url, false, None).await.expect("ws");
    let token = support::sign(E2E_SECRET, serde_json::json!({"sub": "alice"}));
    client.connect(&token).await.connect.expect("connected");
    client
        .subscribe("chat:r")
        .await
        .subscribe
        .expect("subscribed");

    api(
        port_b,
        "publish",
        serde_json::json!({"channel": "chat:r", "data": {"i": 1}}),
    )
    .await;
    let publication = client.publication("chat:r").await;
    assert_eq!(publication.offset, 0);
    assert_eq!(&publication.data[..], br#"{"i":1}"#);

    let presence = api(port_b, "presence", serde_json::json!({"channel": "chat:r"})).await;
    let clients = presence["result"]["presence"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert_eq!(clients.len(), 1, "{presence}");
    let entry = clients.values().next().expect("one client");
    assert_eq!(entry["user"], "alice");
}
