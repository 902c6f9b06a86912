//! Write batching over a real WebSocket (`client.write_delay`,
//! `client.max_messages_in_frame`, `client.reply_without_queue`: Centrifugo
//! PRO's options): held messages go out together after the delay, a frame
//! holds at most the configured number of messages, the connect reply is
//! never held, other replies only without `reply_without_queue`.

mod support;

use std::time::{Duration, Instant};

use rotor::config::{self, Config};
use rotor::proto::client::{Command, PresenceStatsRequest, Reply};
use serde_json::json;
use support::api::{api_config, call};
use support::{TestServer, WsClient};

fn batched(delay_ms: u64, max_messages: i64, reply_without_queue: bool) -> Config {
    let mut cfg = api_config();
    cfg.client.write_delay = config::Duration::from_millis(delay_ms);
    cfg.client.max_messages_in_frame = max_messages;
    cfg.client.reply_without_queue = reply_without_queue;
    cfg
}

/// Publishes `n` messages to `channel` in one API batch (back to back).
async fn publish_batch(srv: &TestServer, channel: &str, n: usize) {
    let commands: Vec<_> = (0..n)
        .map(|i| json!({"publish": {"channel": channel, "data": {"n": i}}}))
        .collect();
    let r = call(srv, "batch", json!({ "commands": commands })).await;
    assert_eq!(r["replies"].as_array().map(Vec::len), Some(n), "{r}");
}

/// The `n` field of each publication in a frame.
fn numbers(frame: &[Reply]) -> Vec<i64> {
    frame
        .iter()
        .map(|r| {
            let publication = r
                .push
                .as_ref()
                .and_then(|p| p.r#pub.as_ref())
                .unwrap_or_else(|| panic!("not a publication: {r:?}"));
            let data: serde_json::Value =
                serde_json::from_slice(&publication.data).expect("json data");
            data["n"].as_i64().expect("n")
        })
        .collect()
}

/// Reads frames until `n` publications came, none with more than `max`;
/// returns their numbers in order.
async fn read_frames(c: &mut WsClient, n: usize, max: usize) -> Vec<i64> {
    let mut seen = Vec::new();
    while seen.len() < n {
        let frame = c.frame().await;
        assert!(frame.len() <= max, "{} messages in one frame", frame.len());
        seen.extend(numbers(&frame));
    }
    seen
}

async fn subscribed(srv: &TestServer, channel: &str) -> WsClient {
    let mut c = srv.connected(false, "1").await;
    let r = c.subscribe(channel).await;
    assert!(r.subscribe.is_some(), "{r:?}");
    c
}

#[tokio::test]
async fn held_messages_go_out_in_one_frame_after_the_delay() {
    let delay = Duration::from_millis(400);
    let srv = TestServer::start(batched(400, 0, false)).await;
    let mut c = subscribed(&srv, "news").await;
    let t0 = Instant::now();
    publish_batch(&srv, "news", 3).await;
    let frame = c.frame().await;
    assert_eq!(numbers(&frame), [0, 1, 2]);
    assert!(
        t0.elapsed() >= delay / 2,
        "written after {:?}",
        t0.elapsed()
    );
    drop(c);
    srv.stop().await;
}

#[tokio::test]
async fn a_frame_holds_at_most_max_messages_in_frame_and_the_rest_follows() {
    let srv = TestServer::start(batched(200, 2, false)).await;
    let mut c = subscribed(&srv, "news").await;
    publish_batch(&srv, "news", 5).await;
    assert_eq!(read_frames(&mut c, 5, 2).await, [0, 1, 2, 3, 4]);
    drop(c);
    srv.stop().await;
}

#[tokio::test]
async fn replies_wait_for_the_delay_unless_reply_without_queue() {
    // Held: the subscribe reply waits out the delay (the connect reply
    // never does: `connected` would time out after 5 s otherwise).
    let srv = TestServer::start(batched(30_000, 0, false)).await;
    let mut c = srv.connected(false, "1").await;
    let id = c.id();
    c.send(vec![Command {
        id,
        subscribe: Some(rotor::proto::client::SubscribeRequest {
            channel: "news".into(),
            ..Default::default()
        }),
        ..Default::default()
    }])
    .await;
    let early = tokio::time::timeout(Duration::from_secs(1), c.frame()).await;
    assert!(early.is_err(), "reply not held: {early:?}");
    drop(c);
    srv.stop().await;

    // Not held with reply_without_queue, while a publication stays held
    // until a reply goes out with it.
    let srv = TestServer::start(batched(30_000, 0, true)).await;
    let mut c = subscribed(&srv, "news").await;
    publish_batch(&srv, "news", 1).await;
    let early = tokio::time::timeout(Duration::from_secs(1), c.frame()).await;
    assert!(early.is_err(), "publication not held: {early:?}");
    let reply = c
        .call(Command {
            presence_stats: Some(PresenceStatsRequest {
                channel: "news".into(),
            }),
            ..Default::default()
        })
        .await;
    assert!(
        reply.presence_stats.is_some() || reply.error.is_some(),
        "{reply:?}"
    );
    drop(c);
    srv.stop().await;
}

#[tokio::test]
async fn without_a_delay_max_messages_in_frame_still_bounds_frames() {
    let srv = TestServer::start(batched(0, 1, false)).await;
    let mut c = subscribed(&srv, "news").await;
    publish_batch(&srv, "news", 4).await;
    assert_eq!(read_frames(&mut c, 4, 1).await, [0, 1, 2, 3]);
    drop(c);
    srv.stop().await;
}
