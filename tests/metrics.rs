//! `/metrics` exposes Centrifugo's metric names; `/health` answers `{}`.

mod support;

use support::{TestServer, base_config};

async fn get(url: &str) -> (u16, String) {
    let resp = reqwest::get(url).await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

#[tokio::test]
async fn metrics_and_health() {
    let mut cfg = base_config();
    cfg.prometheus.enabled = true;
    let srv = TestServer::start(cfg).await;
    let mut sub = srv.connected(false, "m1").await;
    sub.subscribe("news").await.subscribe.expect("subscribed");
    sub.publish("news", "{}").await.publish.expect("published");
    sub.publication("news").await;
    let (status, body) = get(&format!("http://{}/metrics", srv.addr)).await;
    assert_eq!(status, 200);
    for name in [
        "centrifugo_node_num_clients",
        "centrifugo_node_num_subscriptions",
        "centrifugo_node_num_channels",
        "centrifugo_node_messages_sent_count",
        "centrifugo_client_connections_accepted",
        "centrifugo_transport_messages_received",
    ] {
        assert!(body.contains(name), "missing {name} in:\n{body}");
    }
    assert_eq!(
        get(&format!("http://{}/health", srv.addr)).await,
        (200, "{}".to_string())
    );
    srv.stop().await;
}
