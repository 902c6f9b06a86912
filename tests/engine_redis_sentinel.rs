//! Redis Sentinel: the Redis engine finds its master through an own
//! `redis-server --sentinel` that monitors an own master, and works through
//! it (publish, deliveries, history, presence). When the Sentinel names
//! another master, the engine moves there and deliveries resume.

#[path = "engine_redis/servers.rs"]
mod servers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rotor::engine::conformance;
use rotor::engine::redis::{RedisSettings, connect_engine};
use rotor::engine::{Broker, PresenceManager};
use servers::Servers;

const MASTER: &str = "mymaster";

async fn sentinel_setup() -> Option<(Servers, u16, RedisSettings)> {
    if !servers::available(&["redis-server"]) {
        return None;
    }
    let mut servers = Servers::new();
    let master = servers.redis(&[]).await;
    let sentinel = servers.sentinel(master, MASTER).await;
    let settings = RedisSettings::from_config(&serde_json::from_value(serde_json::json!({
        "address": format!("redis+sentinel://127.0.0.1:{sentinel}?sentinel_master_name={MASTER}"),
        "prefix": servers::prefix(),
    })).expect("redis object"))
    .expect("settings");
    Some((servers, master, settings))
}

/// Publish, deliveries, history and presence bodies of the conformance
/// suite through the Sentinel-found master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_subset_through_sentinel() {
    let Some((_servers, _, s)) = sentinel_setup().await else {
        return;
    };
    let broker = || async {
        let (b, _) = connect_engine(&s).await.expect("connect");
        Arc::new(b) as Arc<dyn Broker>
    };
    let presence = || async {
        let (_, p) = connect_engine(&s).await.expect("connect");
        Arc::new(p) as Arc<dyn PresenceManager>
    };
    conformance::offsets_and_epoch(broker().await).await;
    conformance::publish_and_deliver(broker().await).await;
    conformance::no_delivery_after_unsubscribe(broker().await).await;
    conformance::history_queries(broker().await).await;
    conformance::idempotent_publish(broker().await).await;
    conformance::join_leave_delivery(broker().await).await;
    conformance::presence_add_get_remove(presence().await).await;
    conformance::presence_stats_distinct_users(presence().await).await;
}

/// A Sentinel that knows no such master fails the connect with a clear
/// error instead of hanging.
#[tokio::test]
async fn unknown_master_fails_connect() {
    let Some((_servers, _, s)) = sentinel_setup().await else {
        return;
    };
    let mut s = s;
    if let Some(sentinel) = s.sentinel.as_mut() {
        sentinel.master_name = "nosuchmaster".into();
    }
    let started = Instant::now();
    let err = connect_engine(&s).await.expect_err("unknown master");
    assert!(err.to_string().contains("nosuchmaster"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(6));
}

/// The Sentinel is told to monitor another master (as after a failover):
/// within the periodic refresh the engine publishes there, and deliveries
/// resume on the resubscribed new PUB/SUB connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_a_new_master() {
    let Some((mut servers, old_master, s)) = sentinel_setup().await else {
        return;
    };
    let sentinel_port = sentinel_port(&s);
    let (broker, _) = connect_engine(&s).await.expect("connect");
    let broker: Arc<dyn Broker> = Arc::new(broker);
    let (handler, channel, opts) = conformance::first_delivery(&broker, "failover", 10).await;

    // Another master, then the Sentinel is re-pointed at it.
    let new_master = servers.redis(&[]).await;
    let _: Option<String> = servers::query(
        sentinel_port,
        redis::cmd("SENTINEL").arg("REMOVE").arg(MASTER),
    )
    .await;
    let _: Option<String> = servers::query(
        sentinel_port,
        redis::cmd("SENTINEL")
            .arg("MONITOR")
            .arg(MASTER)
            .arg("127.0.0.1")
            .arg(new_master)
            .arg(1),
    )
    .await;

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        assert!(
            Instant::now() < deadline,
            "the engine did not move to the new master"
        );
        let _ = broker
            .publish(&channel, conformance::payload(2), &opts)
            .await;
        let on_new: i64 = servers::query(
            new_master,
            redis::cmd("EXISTS").arg(format!("{}.stream.{channel}", s.prefix)),
        )
        .await
        .unwrap_or(0);
        let delivered = handler.events_for(&channel).len();
        if on_new == 1 && delivered > 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_ne!(old_master, new_master);
}

/// A real failover: master plus one replica, `SENTINEL FAILOVER` promotes
/// the replica; the engine then publishes to the promoted node (the old
/// master refuses writes as a replica) and deliveries resume there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_sentinel_failover() {
    let Some((mut servers, master, s)) = sentinel_setup().await else {
        return;
    };
    let replica = servers
        .redis(&["--replicaof", "127.0.0.1", &master.to_string()])
        .await;
    let sentinel_port = sentinel_port(&s);
    let (broker, _) = connect_engine(&s).await.expect("connect");
    let broker: Arc<dyn Broker> = Arc::new(broker);
    let (handler, channel, opts) = conformance::first_delivery(&broker, "realfailover", 100).await;

    // The Sentinel needs to have seen the synced replica before it can
    // promote it; retry until it accepts.
    servers::wait_until(Duration::from_secs(30), || async move {
        let ok: Option<String> = servers::query(
            sentinel_port,
            redis::cmd("SENTINEL").arg("FAILOVER").arg(MASTER),
        )
        .await;
        ok.map(|_| ())
    })
    .await;
    servers::wait_until(Duration::from_secs(30), || async move {
        let addr: Option<(String, u16)> = servers::query(
            sentinel_port,
            redis::cmd("SENTINEL")
                .arg("get-master-addr-by-name")
                .arg(MASTER),
        )
        .await;
        addr.filter(|(_, p)| *p == replica).map(|_| ())
    })
    .await;

    let deadline = Instant::now() + Duration::from_secs(20);
    let before = handler.events_for(&channel).len();
    loop {
        assert!(
            Instant::now() < deadline,
            "no publish and delivery through the promoted master"
        );
        let published = broker
            .publish(&channel, conformance::payload(2), &opts)
            .await;
        let role: Option<Vec<redis::Value>> = servers::query(replica, &redis::cmd("ROLE")).await;
        let promoted = role
            .and_then(|r| r.into_iter().next())
            .is_some_and(|v| matches!(v, redis::Value::BulkString(ref b) if b == b"master"));
        if published.is_ok() && promoted && handler.events_for(&channel).len() > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let offsets = conformance::delivered_offsets(&handler.events_for(&channel));
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
}

/// Port of the (first) Sentinel the settings name.
fn sentinel_port(s: &RedisSettings) -> u16 {
    s.sentinel
        .as_ref()
        .and_then(|x| x.addresses.first())
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("sentinel port")
}
