//! The real `rotor` binary on the Redis topologies: two processes on one
//! Redis Cluster, and two on two client-side shards. In each setup a client
//! on node A receives what node B's API publishes, history is shared, and
//! each node lists the other (control messages cross).

#[path = "engine_redis/servers.rs"]
mod servers;
mod support;

use std::time::{Duration, Instant};

use servers::Servers;
use support::WsClient;

const SECRET: &str = "topology-e2e-secret";
const API_KEY: &str = "topology-e2e-api-key";

async fn api(port: u16, method: &str, body: serde_json::Value) -> serde_json::Value {
    support::binary::api(port, API_KEY, method, body).await
}

/// Two binaries with the Redis object `redis`, checked end to end.
async fn two_binaries_share(redis: serde_json::Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = serde_json::json!({
        "client": {"token": {"hmac_secret_key": SECRET}},
        "http_api": {"key": API_KEY},
        "engine": {"type": "redis", "redis": redis},
        "channel": {"namespaces": [{
            "name": "chat", "allow_subscribe_for_client": true, "presence": true,
            "history_size": 10, "history_ttl": "300s"
        }]},
        "log": {"level": "warn"}
    });
    let a = support::binary::start(dir.path(), "a", &cfg).await;
    let b = support::binary::start(dir.path(), "b", &cfg).await;

    let url = format!("ws://127.0.0.1:{}/connection/websocket", a.port);
    let mut client = WsClient::open(&url, false, None).await.expect("ws");
    let token = support::sign(SECRET, serde_json::json!({"sub": "alice"}));
    client.connect(&token).await.connect.expect("connected");
    for i in 0..5 {
        let channel = format!("chat:room{i}");
        client
            .subscribe(&channel)
            .await
            .subscribe
            .expect("subscribed");
        let published = api(
            b.port,
            "publish",
            serde_json::json!({"channel": channel, "data": {"i": i}}),
        )
        .await;
        assert_eq!(published["result"]["offset"], 1, "{published}");
        let publication = client.publication(&channel).await;
        assert_eq!(publication.offset, 1);
        let history = api(
            a.port,
            "history",
            serde_json::json!({"channel": channel, "limit": 10}),
        )
        .await;
        let count = history["result"]["publications"]
            .as_array()
            .map_or(0, Vec::len);
        assert_eq!(count, 1, "{history}");
    }

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let info = api(a.port, "info", serde_json::json!({})).await;
        let nodes = info["result"]["nodes"].as_array().map_or(0, Vec::len);
        if nodes == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "node A does not list B: {info}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binaries_on_a_cluster() {
    if !servers::available(&["redis-server", "redis-cli"]) {
        return;
    }
    let mut servers = Servers::new();
    let ports = servers.cluster().await;
    let seeds: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    two_binaries_share(serde_json::json!({
        "cluster_address": seeds, "prefix": servers::prefix()
    }))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binaries_on_two_shards() {
    if !servers::available(&["redis-server"]) {
        return;
    }
    let mut servers = Servers::new();
    let a = servers.redis(&[]).await;
    let b = servers.redis(&[]).await;
    two_binaries_share(serde_json::json!({
        "address": [format!("127.0.0.1:{a}"), format!("127.0.0.1:{b}")],
        "prefix": servers::prefix()
    }))
    .await;
}
