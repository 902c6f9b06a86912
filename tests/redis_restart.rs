//! Redis loses its data while a node runs on it (limits-and-security test
//! plan (d)): an own `redis-server` (no persistence) is killed and started
//! again empty on the same port. Publish calls during the outage fail
//! within the timeouts instead of hanging; the node keeps serving; the
//! first publish afterwards starts a new epoch; a positioned client-side
//! subscriber gets unsubscribe 2500 (a server-side one disconnect 3010),
//! resubscribes with `recovered: false` and then sees every publication in
//! order. With nothing published after the restart, the periodic position
//! check alone finds the lost stream.
//!
//! Needs the `redis-server` binary: skipped with a message when it is
//! missing, unless `ROTOR_REQUIRE_SERVICES=1`.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rotor::proto::client::{Command as ClientCommand, ConnectRequest, SubscribeRequest};
use serde_json::{Value, json};
use support::binary::{self, Binary, free_port};
use support::{SECRET, WsClient, token, token_with};

const API_KEY: &str = "restart-key";

/// A `redis-server` of this test; killed when dropped (also on panic).
struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    /// `None` (after printing why) when there is no `redis-server` and the
    /// services are not required.
    async fn start() -> Option<Self> {
        let found = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            assert!(
                std::env::var("ROTOR_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "redis-server is required (ROTOR_REQUIRE_SERVICES=1) but not found"
            );
            eprintln!("skipped: redis-server not found");
            return None;
        }
        let mut server = Self {
            child: None,
            port: free_port(),
        };
        server.spawn().await;
        Some(server)
    }

    fn address(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (empty: no RDB, no AOF) and waits until it answers.
    async fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(client) = redis::Client::open(self.address())
                && let Ok(mut conn) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
            {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: everything in memory is lost.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A node on `redis` with a positioned, recovering namespace `chat` and a
/// 1 s position check.
async fn node(dir: &std::path::Path, redis: &RedisServer) -> Binary {
    let cfg = json!({
        "client": {
            "token": {"hmac_secret_key": SECRET},
            "channel_position_check_delay": "1s",
            "ping_interval": "120s",
            "pong_timeout": "10s"
        },
        "http_api": {"key": API_KEY},
        "engine": {"type": "redis", "redis": {
            "address": redis.address(),
            "prefix": "rotor-restart",
            "connect_timeout": "1s",
            "io_timeout": "2s"
        }},
        "channel": {"namespaces": [{
            "name": "chat",
            "history_size": 100,
            "history_ttl": "300s",
            "force_recovery": true,
            "force_positioning": true,
            "allow_subscribe_for_client": true
        }]},
        "log": {"level": "error"}
    });
    binary::start(dir, "node", &cfg).await
}

/// `publish` over the HTTP API: the reply's result, or its error.
async fn publish(port: u16, channel: &str, n: u32) -> Result<Value, Value> {
    let reply = binary::api(
        port,
        API_KEY,
        "publish",
        json!({"channel": channel, "data": {"n": n}}),
    )
    .await;
    match reply.get("error") {
        Some(e) => Err(e.clone()),
        None => Ok(reply["result"].clone()),
    }
}

/// Publishes until Redis takes it again (reconnecting may take a moment).
async fn publish_after_restart(port: u16, channel: &str, n: u32) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match publish(port, channel, n).await {
            Ok(result) => return result,
            Err(e) => assert!(Instant::now() < deadline, "publish still fails: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Kills Redis; a publish and a subscribe in the outage fail within the
/// timeouts (error 100, the subscribe as temporary); then starts it empty.
async fn outage(redis: &mut RedisServer, port: u16, channel: &str) {
    redis.kill();
    let started = Instant::now();
    let failed = publish(port, channel, 0).await;
    let took = started.elapsed();
    let error = failed.expect_err("publish without Redis must fail");
    assert_eq!(error["code"], json!(100), "{error}");
    assert!(took <= Duration::from_secs(6), "publish took {took:?}");
    // A subscribe needing the stream top fails as temporary, in time too.
    let mut other = ws(port).await;
    let reply = other.connect(&token("dan", 3600)).await;
    assert!(reply.error.is_none(), "{reply:?}");
    let started = Instant::now();
    let error = other.subscribe("chat:other").await.error.expect("error");
    assert_eq!((error.code, error.temporary), (100, true), "{error:?}");
    assert!(started.elapsed() <= Duration::from_secs(6));
    redis.spawn().await;
}

/// The node still accepts connections and commands.
async fn assert_serves(port: u16) {
    let mut c = ws(port).await;
    let reply = c.connect(&token("someone", 3600)).await;
    assert!(reply.error.is_none(), "{reply:?}");
}

async fn ws(port: u16) -> WsClient {
    let url = format!("ws://127.0.0.1:{port}/connection/websocket");
    WsClient::open(&url, false, None).await.expect("ws")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_side_subscriber_is_unsubscribed_and_recovers_false() {
    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let node = node(dir.path(), &redis).await;
    let channel = "chat:room";
    let mut client = ws(node.port).await;
    let reply = client.connect(&token("alice", 3600)).await;
    assert!(reply.error.is_none(), "{reply:?}");
    let reply = client.subscribe(channel).await;
    let sub = reply.subscribe.expect("subscribed");
    let old_epoch = sub.epoch.clone();
    assert!(!old_epoch.is_empty());
    for n in 1..=3 {
        publish(node.port, channel, n).await.expect("publish");
        assert_eq!(client.publication(channel).await.offset, u64::from(n));
    }

    outage(&mut redis, node.port, channel).await;
    let first = publish_after_restart(node.port, channel, 4).await;
    assert_ne!(first["epoch"], json!(old_epoch), "a new epoch: {first}");
    assert_eq!(first["offset"], json!(1), "{first}");

    // Insufficient state: the new epoch's publication or the 1 s position
    // check, whichever comes first (`push` waits at most 5 s).
    let push = client.push().await;
    assert_eq!(push.channel, channel, "{push:?}");
    let unsub = push
        .unsubscribe
        .expect("unsubscribe push, not a publication");
    assert_eq!(unsub.code, 2500);

    resubscribe_unrecovered(&mut client, node.port, channel, &old_epoch).await;
    assert_serves(node.port).await;
}

/// Resubscribes as the SDK does after 2500 (recover from offset 3 of the
/// old epoch): `recovered: false`, no publications, then every new
/// publication in order.
async fn resubscribe_unrecovered(client: &mut WsClient, port: u16, channel: &str, epoch: &str) {
    let reply = client
        .subscribe_with(SubscribeRequest {
            channel: channel.into(),
            recover: true,
            epoch: epoch.into(),
            offset: 3,
            ..Default::default()
        })
        .await;
    assert!(reply.error.is_none(), "{reply:?}");
    let sub = reply.subscribe.expect("resubscribed");
    assert!(!sub.recovered, "{sub:?}");
    assert!(sub.publications.is_empty(), "{sub:?}");
    assert_ne!(sub.epoch, epoch);
    let mut expected = sub.offset;
    for n in 10..=14 {
        let result = publish(port, channel, n).await.expect("publish");
        expected += 1;
        assert_eq!(result["offset"], json!(expected), "{result}");
        let p = client.publication(channel).await;
        assert_eq!(p.offset, expected);
        assert_eq!(&p.data[..], format!(r#"{{"n":{n}}}"#).as_bytes());
    }
}

/// Nothing is published after the restart: the periodic position check
/// alone finds the stream gone (reading it starts a new epoch).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn position_check_alone_finds_the_lost_stream() {
    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let node = node(dir.path(), &redis).await;
    let channel = "chat:quiet";
    let mut client = ws(node.port).await;
    let reply = client.connect(&token("carol", 3600)).await;
    assert!(reply.error.is_none(), "{reply:?}");
    let old_epoch = client
        .subscribe(channel)
        .await
        .subscribe
        .expect("subscribed")
        .epoch;
    for n in 1..=3 {
        publish(node.port, channel, n).await.expect("publish");
        assert_eq!(client.publication(channel).await.offset, u64::from(n));
    }
    outage(&mut redis, node.port, channel).await;
    // The check runs every second; `push` waits at most 5 s.
    let push = client.push().await;
    assert_eq!(push.channel, channel, "{push:?}");
    assert_eq!(push.unsubscribe.expect("unsubscribe push").code, 2500);
    resubscribe_unrecovered(&mut client, node.port, channel, &old_epoch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_subscriber_is_disconnected_and_recovers_false() {
    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let node = node(dir.path(), &redis).await;
    let channel = "chat:server";
    let claims = json!({"sub": "bob", "exp": support::now() + 3600, "channels": [channel]});
    let mut client = ws(node.port).await;
    let reply = client.connect(&token_with(claims.clone())).await;
    let connected = reply.connect.expect("connected");
    let old_epoch = connected
        .subs
        .get(channel)
        .expect("server-side sub")
        .epoch
        .clone();
    for n in 1..=2 {
        publish(node.port, channel, n).await.expect("publish");
        assert_eq!(client.publication(channel).await.offset, u64::from(n));
    }

    outage(&mut redis, node.port, channel).await;
    let first = publish_after_restart(node.port, channel, 3).await;
    assert_ne!(first["epoch"], json!(old_epoch), "a new epoch: {first}");
    let (code, _) = client.closed().await;
    assert_eq!(code, 3010);

    // The SDK reconnects and asks to recover from where it was.
    let mut again = ws(node.port).await;
    let mut subs = std::collections::BTreeMap::new();
    subs.insert(
        channel.to_owned(),
        rotor::proto::client::SubscribeRequest {
            recover: true,
            epoch: old_epoch,
            offset: 2,
            ..Default::default()
        },
    );
    let reply = again
        .call(ClientCommand {
            connect: Some(ConnectRequest {
                token: token_with(claims),
                subs,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    let connected = reply.connect.expect("connected again");
    let sub = connected.subs.get(channel).expect("server-side sub");
    assert!(!sub.recovered, "{sub:?}");
    let mut expected = sub.offset;
    for n in 4..=6 {
        publish(node.port, channel, n).await.expect("publish");
        expected += 1;
        assert_eq!(again.publication(channel).await.offset, expected);
    }
    assert_serves(node.port).await;
}
