//! The Redis engine against the shared conformance suite (standalone Redis
//! at 127.0.0.1:6379, or `ROTOR_TEST_REDIS`), each run under a random key
//! prefix so runs never see each other's keys.

#[path = "engine_redis/stall_proxy.rs"]
mod stall_proxy;
mod support;

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rand::distr::Alphanumeric;
use rotor::engine::conformance;
use rotor::engine::redis::{RedisBroker, RedisPresenceManager, RedisSettings, connect_engine};
use rotor::engine::{Broker, EngineError, PresenceManager};
use stall_proxy::StallProxy;
use support::WsClient;

fn settings() -> RedisSettings {
    let prefix: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(10)
        .map(char::from)
        .collect();
    let address =
        std::env::var("ROTOR_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    RedisSettings {
        addresses: vec![address],
        prefix: format!("rotor-test-{prefix}"),
        ..RedisSettings::default()
    }
}

async fn engine(s: &RedisSettings) -> (RedisBroker, RedisPresenceManager) {
    connect_engine(s).await.expect("redis at 127.0.0.1:6379")
}

async fn broker(s: &RedisSettings) -> Arc<dyn Broker> {
    Arc::new(engine(s).await.0)
}

async fn presence(s: &RedisSettings) -> Arc<dyn PresenceManager> {
    Arc::new(engine(s).await.1)
}

/// Deletes every key under the run's prefix (stream metas live 30 days).
async fn cleanup(s: &RedisSettings) {
    let client = redis::Client::open(s.addresses[0].as_str()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}.*", s.prefix))
        .query_async(&mut conn)
        .await
        .expect("keys");
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut conn)
            .await
            .expect("del");
    }
}

/// One `#[tokio::test]` per conformance body.
macro_rules! conformance_tests {
    ($make:ident: $($body:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $body() {
                let s = settings();
                conformance::$body($make(&s).await).await;
                cleanup(&s).await;
            }
        )*
    };
}

rotor::engine_conformance_bodies!(conformance_tests);

/// Two nodes on one Redis: a publish on one reaches the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_across_nodes() {
    let s = settings();
    let (a, _) = connect_engine(&s).await.expect("node a");
    let (b, _) = connect_engine(&s).await.expect("node b");
    let (a, b): (Arc<dyn Broker>, Arc<dyn Broker>) = (Arc::new(a), Arc::new(b));
    let handler = conformance::start(&b).await;
    let _ = conformance::start(&a).await;
    let channel = conformance::unique_channel("nodes");
    b.subscribe(&channel).await.expect("subscribe");
    let results = conformance::publish_n(&a, &channel, 3, &conformance::history_options(10)).await;
    let events = handler.wait_for(&channel, 3).await;
    assert_eq!(conformance::delivered_offsets(&events), vec![1, 2, 3]);
    let on_b = conformance::current_position(&b, &channel).await;
    assert_eq!(on_b, results[2].position);
    cleanup(&s).await;
}

/// Presence entries expire when not refreshed within the TTL.
#[tokio::test]
async fn presence_ttl_expires_entries() {
    let s = RedisSettings {
        presence_ttl: Duration::from_millis(300),
        ..settings()
    };
    let (_, presence) = connect_engine(&s).await.expect("connect");
    let info = rotor::engine::ClientInfo {
        user: "u".into(),
        client: "c".into(),
        ..Default::default()
    };
    presence.add_presence("ch", "c", &info).await.expect("add");
    assert_eq!(presence.presence("ch").await.expect("get").len(), 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(presence.presence("ch").await.expect("get").is_empty());
}

/// A Redis that does not answer fails calls within the timeouts instead of
/// hanging: connecting to a closed port fails fast, and a listener that
/// accepts but never replies fails within connect + io timeout.
#[tokio::test]
async fn dead_redis_fails_fast() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let s = RedisSettings {
        addresses: vec![format!("redis://127.0.0.1:{port}")],
        ..settings()
    };
    let started = std::time::Instant::now();
    let err = connect_engine(&s).await.expect_err("nothing listens");
    assert!(matches!(err, EngineError::Unavailable(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(6));

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
    let s = RedisSettings {
        addresses: vec![format!("redis://{addr}")],
        connect_timeout: Duration::from_millis(300),
        io_timeout: Duration::from_millis(500),
        ..settings()
    };
    let started = std::time::Instant::now();
    let err = connect_engine(&s).await.expect_err("nothing answers");
    assert!(matches!(err, EngineError::Unavailable(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    accept.abort();
}

/// A Redis that stops answering mid-run makes publish, history and presence
/// fail with `Unavailable` within connect + io timeout; when it answers again
/// the same engine works again, deliveries included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_redis_fails_calls_then_recovers() {
    let proxy = StallProxy::start().await;
    let s = through_proxy(&proxy);
    let (broker, presence) = connect_engine(&s).await.expect("connect via proxy");
    let broker: Arc<dyn Broker> = Arc::new(broker);
    let (handler, channel, opts) = conformance::first_delivery(&broker, "stall", 10).await;

    proxy.stall(true);
    let started = std::time::Instant::now();
    let err = broker
        .publish(&channel, conformance::payload(2), &opts)
        .await
        .expect_err("stalled redis must fail the publish");
    assert!(matches!(err, EngineError::Unavailable(_)), "{err:?}");
    let err = conformance::read_history(&broker, &channel, None, -1, false)
        .await
        .expect_err("stalled redis must fail history");
    assert!(matches!(err, EngineError::Unavailable(_)), "{err:?}");
    let err = presence.presence(&channel).await.expect_err("presence");
    assert!(matches!(err, EngineError::Unavailable(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "three calls took {:?}",
        started.elapsed()
    );

    proxy.stall(false);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let next = loop {
        match broker
            .publish(&channel, conformance::payload(3), &opts)
            .await
        {
            Ok(r) => break r,
            Err(e) => {
                assert!(std::time::Instant::now() < deadline, "no recovery: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    // A timed-out publish is not known to have failed: the stalled one was
    // still applied when Redis answered again (as with Centrifugo). Either
    // way, every offset is delivered once, in order.
    let top = usize::try_from(next.position.offset).expect("offset");
    let events = handler.wait_for(&channel, top).await;
    assert_eq!(
        conformance::delivered_offsets(&events),
        (1..=next.position.offset).collect::<Vec<_>>()
    );
    cleanup(&settings_with_prefix(&s)).await;
}

/// Connections dropped under the engine are re-established: commands work
/// again and the PUB/SUB connection resubscribes, so deliveries resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_and_resubscribes_after_connection_loss() {
    let proxy = StallProxy::start().await;
    let s = RedisSettings {
        addresses: vec![format!("redis://{}", proxy.addr)],
        ..settings()
    };
    let (broker, _) = connect_engine(&s).await.expect("connect via proxy");
    let broker: Arc<dyn Broker> = Arc::new(broker);
    let (handler, channel, opts) = conformance::first_delivery(&broker, "reconnect", 100).await;

    proxy.cut();
    // Publications made while the PUB/SUB connection is down are lost (at
    // most once); keep publishing until one after the resubscribe arrives.
    let resumed = |events: &[conformance::Event]| {
        let offsets = conformance::delivered_offsets(events);
        assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
        offsets.len() > 1
    };
    conformance::publish_until_delivered(
        &broker,
        &handler,
        &channel,
        &opts,
        (2, Duration::from_secs(10)),
        resumed,
    )
    .await;
    cleanup(&settings_with_prefix(&s)).await;
}

/// Redis unreachable for longer than the reconnect attempts: once it is
/// back, the PUB/SUB liveness probe brings the subscription back, so the
/// node does not stay connected-but-deaf (centrifugo #1189).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_resume_after_long_outage() {
    let proxy = StallProxy::start().await;
    let s = through_proxy(&proxy);
    let (broker, _) = connect_engine(&s).await.expect("connect via proxy");
    let broker: Arc<dyn Broker> = Arc::new(broker);
    let handler = conformance::start(&broker).await;
    let channel = conformance::unique_channel("outage");
    broker.subscribe(&channel).await.expect("subscribe");
    proxy.set_down(true);
    proxy.cut();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let opts = conformance::history_options(100);
    let err = broker
        .publish(&channel, conformance::payload(1), &opts)
        .await
        .expect_err("redis is down");
    assert!(matches!(err, EngineError::Unavailable(_)), "{err:?}");
    proxy.set_down(false);
    conformance::publish_until_delivered(
        &broker,
        &handler,
        &channel,
        &opts,
        (2, Duration::from_secs(20)),
        |events| !events.is_empty(),
    )
    .await;
    cleanup(&settings_with_prefix(&s)).await;
}

/// `s` pointed at the real Redis (for cleanup after proxied tests).
/// Test settings that reach Redis through `proxy`, with short timeouts.
fn through_proxy(proxy: &StallProxy) -> RedisSettings {
    RedisSettings {
        addresses: vec![format!("redis://{}", proxy.addr)],
        connect_timeout: Duration::from_millis(300),
        io_timeout: Duration::from_millis(700),
        ..settings()
    }
}

fn settings_with_prefix(s: &RedisSettings) -> RedisSettings {
    RedisSettings {
        prefix: s.prefix.clone(),
        ..settings()
    }
}

// ---------------------------------------------------------------------------
// The real binary on `engine.type: redis`
// ---------------------------------------------------------------------------

const E2E_SECRET: &str = "redis-e2e-secret";
const E2E_API_KEY: &str = "redis-e2e-api-key";

/// Starts `rotor` on Redis with `prefix`; returns it and its port once it
/// serves HTTP.
async fn start_binary(
    dir: &std::path::Path,
    prefix: &str,
    name: &str,
) -> (support::binary::Binary, u16) {
    let cfg = serde_json::json!({
        "client": {"token": {"hmac_secret_key": E2E_SECRET}},
        "http_api": {"key": E2E_API_KEY},
        "engine": {"type": "redis", "redis": {"address": "127.0.0.1:6379", "prefix": prefix}},
        "channel": {"namespaces": [{
            "name": "chat", "allow_subscribe_for_client": true, "presence": true,
            "history_size": 10, "history_ttl": "300s", "force_recovery": true
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

/// Two `rotor` processes on one Redis: a client on node A receives what the
/// API of node B publishes, and history and presence are shared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_nodes_share_redis() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = settings();
    let (_a, port_a) = start_binary(dir.path(), &s.prefix, "a").await;
    let (_b, port_b) = start_binary(dir.path(), &s.prefix, "b").await;

    let url = format!("ws://127.0.0.1:{port_a}/connection/websocket");
    let mut client = WsClient::open(&url, false, None).await.expect("ws");
    let token = support::sign(E2E_SECRET, serde_json::json!({"sub": "alice"}));
    client.connect(&token).await.connect.expect("connected");
    let sub = client.subscribe("chat:room").await;
    let sub = sub.subscribe.expect("subscribed");
    assert!(!sub.epoch.is_empty(), "positioned subscribe has an epoch");

    let published = api(
        port_b,
        "publish",
        serde_json::json!({"channel": "chat:room", "data": {"text": "hi"}}),
    )
    .await;
    let result = &published["result"];
    assert_eq!(result["offset"], 1, "{published}");
    assert_eq!(
        result["epoch"],
        sub.epoch.as_str(),
        "epoch kept from subscribe"
    );

    let publication = client.publication("chat:room").await;
    assert_eq!(publication.offset, 1);
    assert_eq!(&publication.data[..], br#"{"text":"hi"}"#);

    let history = api(
        port_a,
        "history",
        serde_json::json!({"channel": "chat:room", "limit": 10}),
    )
    .await;
    let pubs = history["result"]["publications"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(pubs.len(), 1, "{history}");
    assert_eq!(pubs[0]["data"], serde_json::json!({"text": "hi"}));
    assert_eq!(history["result"]["epoch"], sub.epoch.as_str());

    let presence = api(
        port_b,
        "presence",
        serde_json::json!({"channel": "chat:room"}),
    )
    .await;
    let clients = presence["result"]["presence"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert_eq!(clients.len(), 1, "{presence}");
    let entry = clients.values().next().expect("one client");
    assert_eq!(entry["user"], "alice");

    // A client that saw offset 1 recovers 2 and 3 from the shared stream on
    // the other node; a stale epoch is not recovered.
    for i in 2..=3 {
        api(
            port_a,
            "publish",
            serde_json::json!({"channel": "chat:room", "data": {"i": i}}),
        )
        .await;
    }
    let url_b = format!("ws://127.0.0.1:{port_b}/connection/websocket");
    let mut late = WsClient::open(&url_b, false, None).await.expect("ws");
    let token = support::sign(E2E_SECRET, serde_json::json!({"sub": "bob"}));
    late.connect(&token).await.connect.expect("connected");
    let recover = |epoch: &str| rotor::proto::client::SubscribeRequest {
        channel: "chat:room".into(),
        recover: true,
        offset: 1,
        epoch: epoch.into(),
        ..Default::default()
    };
    let r = late.subscribe_with(recover(&sub.epoch)).await;
    let r = r.subscribe.expect("subscribed");
    assert!(r.recovered, "{r:?}");
    let offsets: Vec<u64> = r.publications.iter().map(|p| p.offset).collect();
    assert_eq!(offsets, vec![2, 3]);
    let mut stale = WsClient::open(&url_b, false, None).await.expect("ws");
    stale.connect(&token).await.connect.expect("connected");
    let r = stale.subscribe_with(recover("stale")).await;
    let r = r.subscribe.expect("subscribed");
    assert!(!r.recovered && r.publications.is_empty(), "{r:?}");
    cleanup(&s).await;
}

/// A burst of concurrent subscribes and unsubscribes (batched into few
/// commands) leaves exactly the intended channels delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_burst() {
    let s = settings();
    let b = broker(&s).await;
    let handler = conformance::start(&b).await;
    let channels: Vec<String> = (0..300)
        .map(|i| conformance::unique_channel(&format!("burst{i}")))
        .collect();
    let subscribes = channels.iter().map(|c| b.subscribe(c));
    for r in futures_util::future::join_all(subscribes).await {
        r.expect("subscribe");
    }
    // Every other channel unsubscribed again, concurrently.
    let unsubscribes = channels.iter().step_by(2).map(|c| b.unsubscribe(c));
    for r in futures_util::future::join_all(unsubscribes).await {
        r.expect("unsubscribe");
    }
    let opts = rotor::engine::PublishOptions::default();
    for c in &channels {
        b.publish(c, conformance::payload(1), &opts)
            .await
            .expect("publish");
    }
    for c in channels.iter().skip(1).step_by(2) {
        handler.wait_for(c, 1).await;
    }
    for c in channels.iter().step_by(2) {
        assert!(handler.events_for(c).is_empty(), "{c} was unsubscribed");
    }
}
