//! Client-side sharding: the Redis engine over two own `redis-server`
//! processes (several `address` entries). The whole conformance suite runs
//! on the sharded engine, and channels really spread over both servers,
//! each where the consistent index puts it.

#[path = "engine_redis/servers.rs"]
mod servers;
#[path = "engine_redis/suite.rs"]
mod suite;

use std::sync::Arc;

use rotor::engine::conformance;
use rotor::engine::redis::{RedisSettings, connect_engine, consistent_index};
use rotor::engine::{Broker, PresenceManager};
use servers::Servers;

fn settings(ports: &[u16]) -> RedisSettings {
    RedisSettings {
        addresses: ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect(),
        prefix: servers::prefix(),
        ..RedisSettings::default()
    }
}

async fn two_servers() -> Option<(Servers, Vec<u16>)> {
    if !servers::available(&["redis-server"]) {
        return None;
    }
    let mut servers = Servers::new();
    let a = servers.redis(&[]).await;
    let b = servers.redis(&[]).await;
    Some((servers, vec![a, b]))
}

/// Every conformance body, one after the other, each on a fresh engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_on_two_shards() {
    let Some((_servers, ports)) = two_servers().await else {
        return;
    };
    let s = settings(&ports);
    suite::conformance_suite(&s).await;
}

/// Streams and presence of many channels land on both servers, each on
/// the server the consistent index names; deliveries and the control bus
/// work across two engines on the same shards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_spread_over_both_servers() {
    let Some((_servers, ports)) = two_servers().await else {
        return;
    };
    let s = settings(&ports);
    let (a, presence) = connect_engine(&s).await.expect("node a");
    let (b, _) = connect_engine(&s).await.expect("node b");
    let (a, b): (Arc<dyn Broker>, Arc<dyn Broker>) = (Arc::new(a), Arc::new(b));
    let handler = conformance::start(&b).await;
    let _ = conformance::start(&a).await;
    let channels: Vec<String> = (0..40).map(|i| format!("spread-{i}")).collect();
    for channel in &channels {
        b.subscribe(channel).await.expect("subscribe");
    }
    let opts = conformance::history_options(10);
    for channel in &channels {
        a.publish(channel, conformance::payload(1), &opts)
            .await
            .expect("publish");
        let info = rotor::engine::ClientInfo {
            user: "u".into(),
            client: "c".into(),
            ..Default::default()
        };
        presence
            .add_presence(channel, "c", &info)
            .await
            .expect("presence");
    }
    for channel in &channels {
        handler.wait_for(channel, 1).await;
    }
    let mut per_server = [0usize; 2];
    for channel in &channels {
        let home = consistent_index(channel, 2);
        for (i, port) in ports.iter().enumerate() {
            for key in [
                format!("{}.stream.{channel}", s.prefix),
                format!("{}.presence.data.{channel}", s.prefix),
            ] {
                let exists: i64 = servers::query(*port, redis::cmd("EXISTS").arg(&key))
                    .await
                    .expect("exists");
                assert_eq!(exists == 1, i == home, "{key} on server {i}");
            }
        }
        per_server[home] += 1;
    }
    assert!(
        per_server.iter().all(|n| *n > 5),
        "channels not spread: {per_server:?}"
    );
}

/// The index is stable, in range, and adding a shard moves only about a
/// third of the channels (2 → 3 shards), as a consistent hash should.
#[test]
fn consistent_index_is_consistent() {
    let channels: Vec<String> = (0..3000).map(|i| format!("chan:{i}")).collect();
    let mut moved = 0;
    let mut counts = [0usize; 3];
    for c in &channels {
        let two = consistent_index(c, 2);
        let three = consistent_index(c, 3);
        assert!(two < 2 && three < 3);
        assert_eq!(two, consistent_index(c, 2));
        assert_eq!(consistent_index(c, 1), 0);
        counts[three] += 1;
        if two != three {
            moved += 1;
            assert_eq!(three, 2, "a channel only moves to the new shard");
        }
    }
    assert!((800..1200).contains(&moved), "moved {moved}");
    assert!(counts.iter().all(|n| (800..1200).contains(n)), "{counts:?}");
}
