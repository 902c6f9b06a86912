//! Redis Cluster: the Redis engine on an own 3-master cluster (hash-tagged
//! keys, sharded PUB/SUB). The whole conformance suite runs on it, two
//! engines on the same cluster see each other's publications and control
//! messages, and a channel's keys share one slot.

#[path = "engine_redis/servers.rs"]
mod servers;
#[path = "engine_redis/suite.rs"]
mod suite;

use std::sync::Arc;
use std::time::Duration;

use rotor::engine::conformance;
use rotor::engine::redis::{RedisSettings, connect_engine};
use rotor::engine::{Broker, EngineError};
use servers::Servers;

async fn cluster() -> Option<(Servers, RedisSettings)> {
    cluster_with(serde_json::json!({})).await
}

/// A cluster and settings for it; `extra` adds keys to the Redis object.
async fn cluster_with(extra: serde_json::Value) -> Option<(Servers, RedisSettings)> {
    if !servers::available(&["redis-server", "redis-cli"]) {
        return None;
    }
    let mut servers = Servers::new();
    let ports = servers.cluster().await;
    let mut object = serde_json::json!({
        "cluster_address": ports.iter().map(|p| format!("127.0.0.1:{p}")).collect::<Vec<_>>(),
        "prefix": servers::prefix(),
    });
    if let (Some(object), Some(extra)) = (object.as_object_mut(), extra.as_object()) {
        object.extend(extra.clone());
    }
    let settings =
        RedisSettings::from_config(&serde_json::from_value(object).expect("redis object"))
            .expect("settings");
    assert!(settings.cluster);
    Some((servers, settings))
}

/// Every conformance body, one after the other, each on a fresh engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_on_cluster() {
    let Some((_servers, s)) = cluster().await else {
        return;
    };
    suite::conformance_suite(&s).await;
}

/// Two engines (two Rotor nodes) on one cluster: publications on many
/// channels (so on every master) cross from one to the other in order,
/// history is shared, and control messages reach the other node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_see_each_other() {
    let Some((_servers, s)) = cluster().await else {
        return;
    };
    let (a, _) = connect_engine(&s).await.expect("node a");
    let (b, _) = connect_engine(&s).await.expect("node b");
    let control_a = a.control_bus();
    let control_b = b.control_bus();
    let (a, b): (Arc<dyn Broker>, Arc<dyn Broker>) = (Arc::new(a), Arc::new(b));
    let handler = conformance::start(&b).await;
    let _ = conformance::start(&a).await;
    let channels: Vec<String> = (0..30)
        .map(|i| conformance::unique_channel(&format!("nodes{i}")))
        .collect();
    for channel in &channels {
        b.subscribe(channel).await.expect("subscribe");
    }
    let opts = conformance::history_options(10);
    for channel in &channels {
        let results = conformance::publish_n(&a, channel, 3, &opts).await;
        let on_b = conformance::current_position(&b, channel).await;
        assert_eq!(on_b, results[2].position);
    }
    for channel in &channels {
        let events = handler.wait_for(channel, 3).await;
        assert_eq!(conformance::delivered_offsets(&events), vec![1, 2, 3]);
    }

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    control_b.run(tx).await.expect("control subscribe");
    let (tx_a, _rx_a) = tokio::sync::mpsc::unbounded_channel();
    control_a.run(tx_a).await.expect("control subscribe");
    control_a
        .publish(bytes::Bytes::from_static(b"hello"))
        .await
        .expect("control publish");
    let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("control message in time")
        .expect("control message");
    assert_eq!(&got[..], b"hello");
}

/// One channel's stream, meta, result and presence keys and its PUB/SUB
/// channel hash to one slot.
#[tokio::test]
async fn keys_of_a_channel_share_a_slot() {
    let Some((_servers, s)) = cluster().await else {
        return;
    };
    let port: u16 = s.addresses[0]
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let channel = "slot:test";
    let slot = |key: String| async move {
        servers::query::<i64>(port, redis::cmd("CLUSTER").arg("KEYSLOT").arg(key))
            .await
            .expect("keyslot")
    };
    let p = &s.prefix;
    let stream = slot(format!("{p}.stream.{{{channel}}}")).await;
    for key in [
        format!("{p}.stream.meta.{{{channel}}}"),
        format!("{p}.client.{{{channel}}}"),
        format!("{p}.result.{{{channel}}}.key"),
        format!("{p}.presence.data.{{{channel}}}"),
        format!("{p}.presence.expire.{{{channel}}}"),
    ] {
        assert_eq!(slot(key.clone()).await, stream, "{key}");
    }
}

/// A dead master fails the calls for its slots within connect + io
/// timeout (with margin) instead of hanging; the other masters still
/// serve their channels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_node_fails_calls_in_time() {
    let Some((mut servers, s)) =
        cluster_with(serde_json::json!({"connect_timeout": "300ms", "io_timeout": "700ms"})).await
    else {
        return;
    };
    let (broker, _) = connect_engine(&s).await.expect("connect");
    let opts = conformance::history_options(5);
    let channels: Vec<String> = (0..30)
        .map(|i| conformance::unique_channel(&format!("dead{i}")))
        .collect();
    for channel in &channels {
        broker
            .publish(channel, conformance::payload(1), &opts)
            .await
            .expect("publish before the crash");
    }
    let victim: u16 = s.addresses[0]
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    servers.kill(victim);
    let (mut failed, mut served) = (0, 0);
    for channel in &channels {
        let started = std::time::Instant::now();
        match broker
            .publish(channel, conformance::payload(2), &opts)
            .await
        {
            Ok(_) => served += 1,
            Err(e) => {
                assert!(matches!(e, EngineError::Unavailable(_)), "{e:?}");
                failed += 1;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "a call took {:?}",
            started.elapsed()
        );
    }
    assert!(failed > 0, "no channel lived on the dead node");
    assert!(served > 0, "the live nodes served nothing");
}

/// The node owning a channel's slot restarts (same port and nodes file):
/// the sharded subscription is re-established on it and deliveries resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_subscription_survives_node_restart() {
    let Some((mut servers, s)) =
        cluster_with(serde_json::json!({"connect_timeout": "300ms", "io_timeout": "700ms"})).await
    else {
        return;
    };
    let ports: Vec<u16> = s
        .addresses
        .iter()
        .filter_map(|a| a.rsplit(':').next().and_then(|p| p.parse().ok()))
        .collect();
    let (broker, _) = connect_engine(&s).await.expect("connect");
    let broker: Arc<dyn Broker> = Arc::new(broker);
    let (handler, channel, opts) = conformance::first_delivery(&broker, "restart", 100).await;
    let key = format!("{}.stream.{{{channel}}}", s.prefix);
    let mut owner = None;
    for port in &ports {
        let exists: Option<i64> = servers::query(*port, redis::cmd("EXISTS").arg(&key)).await;
        if exists == Some(1) {
            owner = Some(*port);
        }
    }
    let owner = owner.expect("a node holds the stream");
    servers.kill(owner);
    tokio::time::sleep(Duration::from_millis(500)).await;
    servers.cluster_node_on(owner).await;
    servers.cluster_ok(owner).await;

    conformance::publish_until_delivered(
        &broker,
        &handler,
        &channel,
        &opts,
        (2, Duration::from_secs(30)),
        |events| events.len() > 1,
    )
    .await;
}
