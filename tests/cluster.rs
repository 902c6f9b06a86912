//! Several real `rotor` processes on one Redis (127.0.0.1:6379 or
//! `ROTOR_TEST_REDIS`, a random key prefix per test) act as one cluster:
//! `info` lists every live node, drops a killed one within the heartbeat
//! window and one stopped with SIGTERM at once (it announces its leave),
//! the Redis broker and presence manager work on the memory engine, the
//! server API's disconnect / subscribe / unsubscribe reach connections on
//! another node, `channels` surveys every node, and an `/emulation` request
//! that lands on the wrong node is forwarded to the session's node. The same
//! cluster runs over the NATS broker (nats-server at 127.0.0.1:4222 or
//! `ROTOR_TEST_NATS`, a random subject prefix) on the memory engine.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Value, json};
use support::binary::Binary;
use support::{SECRET, WsClient, token};

const API_KEY: &str = "cluster-key";

/// A `rotor` process (killed when dropped) and its config's directory.
struct Proc {
    bin: Binary,
    port: u16,
    _dir: tempfile::TempDir,
}

fn prefix() -> String {
    let p: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(10)
        .map(char::from)
        .collect();
    format!("rotor-cluster-{p}")
}

/// What carries the cluster: the Redis engine, or the NATS broker on the
/// memory engine.
#[derive(Debug, Clone, Copy)]
enum Bus {
    Redis,
    Nats,
}

impl Proc {
    /// Starts node `name` on `bus` under `prefix`.
    async fn start_on(bus: Bus, name: &str, prefix: &str) -> Self {
        match bus {
            Bus::Redis => Self::start(name, prefix).await,
            Bus::Nats => Self::start_nats(name, prefix).await,
        }
    }

    /// Starts node `name` on Redis keys under `prefix`; returns once it
    /// serves HTTP.
    async fn start(name: &str, prefix: &str) -> Self {
        let address =
            std::env::var("ROTOR_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let engine = json!({
            "engine": {"type": "redis", "redis": {"address": address, "prefix": prefix}}
        });
        Self::start_with(name, engine).await
    }

    /// Starts node `name` on the memory engine with the NATS broker
    /// (127.0.0.1:4222 or `ROTOR_TEST_NATS`) under subject prefix `prefix`.
    async fn start_nats(name: &str, prefix: &str) -> Self {
        let url =
            std::env::var("ROTOR_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
        let engine = json!({
            "engine": {"type": "memory"},
            "broker": {"enabled": true, "type": "nats", "nats": {"url": url, "prefix": prefix}}
        });
        Self::start_with(name, engine).await
    }

    /// Starts node `name` with the engine / broker keys in `engine`.
    async fn start_with(name: &str, engine: Value) -> Self {
        let mut cfg = json!({
            "client": {"token": {"hmac_secret_key": SECRET}},
            "http_api": {"key": API_KEY},
            "http_stream": {"enabled": true},
            "channel": {"without_namespace": {"allow_subscribe_for_client": true}},
            "node": {"name": name},
            "prometheus": {"enabled": true},
            "log": {"level": "warn"}
        });
        if let (Some(cfg), Value::Object(extra)) = (cfg.as_object_mut(), engine) {
            cfg.extend(extra);
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = support::binary::start(dir.path(), name, &cfg).await;
        Self {
            port: bin.port,
            bin,
            _dir: dir,
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn api(&self, method: &str, body: Value) -> Value {
        let resp = reqwest::Client::new()
            .post(format!("{}/api/{method}", self.base()))
            .header("X-API-Key", API_KEY)
            .json(&body)
            .send()
            .await
            .expect("api request");
        assert_eq!(resp.status(), 200, "{method}");
        let reply: Value = resp.json().await.expect("api json");
        assert!(reply.get("error").is_none(), "{method}: {reply}");
        reply
    }

    async fn node_names(&self) -> Vec<String> {
        let info = self.api("info", json!({})).await;
        let mut names: Vec<String> = info["result"]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| n["name"].as_str().unwrap_or_default().to_owned())
            .collect();
        names.sort();
        names
    }

    /// Waits until `info` lists exactly `names`; returns how long it took.
    async fn wait_nodes(&self, names: &[&str], within: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let got = self.node_names().await;
            if got == names {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < within,
                "info lists {got:?}, want {names:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `centrifugo_node_num_nodes` from `/metrics`.
    async fn num_nodes(&self) -> f64 {
        let text = reqwest::get(format!("{}/metrics", self.base()))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .find_map(|l| l.strip_prefix("centrifugo_node_num_nodes "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no centrifugo_node_num_nodes in:\n{text}"))
    }

    async fn ws_user(&self, user: &str) -> WsClient {
        let url = format!("ws://127.0.0.1:{}/connection/websocket", self.port);
        let mut c = WsClient::open(&url, false, None).await.expect("ws");
        let reply = c.connect(&token(user, 3600)).await;
        assert!(reply.error.is_none(), "connect: {reply:?}");
        c
    }
}

async fn info_lists_live_nodes_and_drops_a_killed_one(bus: Bus) {
    let p = prefix();
    let a = Proc::start_on(bus, "node-a", &p).await;
    let b = Proc::start_on(bus, "node-b", &p).await;
    let mut c = Proc::start_on(bus, "node-c", &p).await;
    let all = ["node-a", "node-b", "node-c"];
    a.wait_nodes(&all, Duration::from_secs(10)).await;
    b.wait_nodes(&all, Duration::from_secs(10)).await;
    assert_eq!(a.num_nodes().await, 3.0);
    let _ = c.bin.child.kill();
    let _ = c.bin.child.wait();
    // Gone within 7 s of its last heartbeat (sent at most 3 s before the
    // kill), polled every 200 ms.
    let took = a
        .wait_nodes(&["node-a", "node-b"], Duration::from_secs(12))
        .await;
    assert!(took <= Duration::from_secs(11), "took {took:?}");
    assert_eq!(a.num_nodes().await, 2.0);
}

async fn a_node_stopped_with_sigterm_leaves_info_at_once(bus: Bus) {
    let p = prefix();
    let a = Proc::start_on(bus, "node-a", &p).await;
    let mut b = Proc::start_on(bus, "node-b", &p).await;
    a.wait_nodes(&["node-a", "node-b"], Duration::from_secs(10))
        .await;
    let status = Command::new("kill")
        .args(["-TERM", &b.bin.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM");
    // Node B announces its leave while shutting down: node A drops it well
    // before the 7 s heartbeat window would.
    a.wait_nodes(&["node-a"], Duration::from_secs(2)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.bin.child.try_wait().ok().flatten().is_none() {
        assert!(Instant::now() < deadline, "node B did not exit on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn api_disconnect_reaches_a_user_on_another_node(bus: Bus) {
    let p = prefix();
    let a = Proc::start_on(bus, "node-a", &p).await;
    let b = Proc::start_on(bus, "node-b", &p).await;
    let mut client = b.ws_user("alice").await;
    let _bob = b.ws_user("bob").await;
    a.api(
        "disconnect",
        json!({"user": "alice", "disconnect": {"code": 4500, "reason": "go away"}}),
    )
    .await;
    let (code, reason) = tokio::time::timeout(Duration::from_secs(5), client.closed())
        .await
        .expect("closed in time");
    assert_eq!((code, reason.as_str()), (4500, "go away"));
    // Bob, on the same node, stays connected (node B's own counters).
    let info = b.api("info", json!({})).await;
    let me = info["result"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["name"] == "node-b")
        .cloned()
        .expect("node-b listed");
    assert_eq!(me["num_clients"], json!(1), "{info}");
}

async fn api_refresh_expires_a_user_on_another_node(bus: Bus) {
    let p = prefix();
    let a = Proc::start_on(bus, "node-a", &p).await;
    let b = Proc::start_on(bus, "node-b", &p).await;
    let mut client = b.ws_user("erin").await;
    a.api("refresh", json!({"user": "erin", "expired": true}))
        .await;
    let (code, _) = tokio::time::timeout(Duration::from_secs(5), client.closed())
        .await
        .expect("closed in time");
    assert_eq!(code, 3005);
}

async fn server_side_subscribe_and_unsubscribe_on_another_node(bus: Bus) {
    let p = prefix();
    let a = Proc::start_on(bus, "node-a", &p).await;
    let b = Proc::start_on(bus, "node-b", &p).await;
    a.wait_nodes(&["node-a", "node-b"], Duration::from_secs(10))
        .await;
    let mut client = b.ws_user("carol").await;
    a.api("subscribe", json!({"user": "carol", "channel": "room"}))
        .await;
    let push = tokio::time::timeout(Duration::from_secs(5), client.push())
        .await
        .expect("subscribe push in time");
    assert_eq!(push.channel, "room");
    assert!(push.subscribe.is_some(), "{push:?}");

    // `channels` on node A sees node B's subscriber (survey).
    let channels = a.api("channels", json!({})).await;
    assert_eq!(
        channels["result"]["channels"]["room"]["num_clients"],
        json!(1),
        "{channels}"
    );

    a.api("unsubscribe", json!({"user": "carol", "channel": "room"}))
        .await;
    let push = tokio::time::timeout(Duration::from_secs(5), client.push())
        .await
        .expect("unsubscribe push in time");
    assert_eq!(push.channel, "room");
    let unsub = push.unsubscribe.expect("unsubscribe push");
    assert_eq!(unsub.code, 2000);
}

/// Reads newline-delimited JSON replies of an HTTP-streaming response.
struct JsonStream {
    resp: reqwest::Response,
    buf: Vec<u8>,
}

impl JsonStream {
    async fn next(&mut self) -> Value {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                let text = String::from_utf8_lossy(&line);
                if text.trim().is_empty() {
                    continue;
                }
                return serde_json::from_str(text.trim()).expect("json reply");
            }
            let chunk = tokio::time::timeout(Duration::from_secs(5), self.resp.chunk())
                .await
                .expect("stream data in time")
                .expect("stream readable")
                .expect("stream not ended");
            self.buf.extend_from_slice(&chunk);
        }
    }

    /// The reply to command `id`, skipping pings and pushes.
    async fn reply_to(&mut self, id: u64) -> Value {
        loop {
            let v = self.next().await;
            if v["id"] == json!(id) {
                return v;
            }
        }
    }
}

async fn emulation_request_to_the_wrong_node_is_forwarded(bus: Bus) {
    let p = prefix();
    let a = Proc::start_on(bus, "node-a", &p).await;
    let b = Proc::start_on(bus, "node-b", &p).await;
    a.wait_nodes(&["node-a", "node-b"], Duration::from_secs(10))
        .await;
    let http = reqwest::Client::new();
    let connect = json!({"id": 1, "connect": {"token": token("dave", 3600)}});
    let resp = http
        .post(format!("{}/connection/http_stream", b.base()))
        .header("content-type", "application/json")
        .body(connect.to_string())
        .send()
        .await
        .expect("stream opened");
    assert_eq!(resp.status(), 200);
    let mut stream = JsonStream {
        resp,
        buf: Vec::new(),
    };
    let reply = stream.reply_to(1).await;
    let session = reply["connect"]["session"]
        .as_str()
        .expect("session")
        .to_owned();
    let node = reply["connect"]["node"].as_str().expect("node").to_owned();

    // The command goes to node A, which does not have the session.
    let sub = json!({"id": 2, "subscribe": {"channel": "lobby"}});
    let body = json!({"session": session, "node": node, "data": sub.to_string()});
    let resp = http
        .post(format!("{}/emulation", a.base()))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("emulation request");
    assert_eq!(resp.status(), 204);
    let reply = stream.reply_to(2).await;
    assert!(reply.get("error").is_none(), "{reply}");
    assert!(reply.get("subscribe").is_some(), "{reply}");

    // An unknown node id is a 404, as on a single node.
    let body = json!({"session": session, "node": "no-such-node", "data": sub.to_string()});
    let resp = http
        .post(format!("{}/emulation", a.base()))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("emulation request");
    assert_eq!(resp.status(), 404);
}

/// Memory engine with the Redis broker and a Redis presence manager (under
/// another prefix, so each has its own connections): publications cross
/// nodes, presence lists clients of both nodes, `info` lists both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_engine_with_redis_broker_and_redis_presence() {
    let p = prefix();
    let address =
        std::env::var("ROTOR_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let parts = json!({
        "engine": {"type": "memory"},
        "broker": {"enabled": true, "type": "redis",
                   "redis": {"address": address, "prefix": p}},
        "presence_manager": {"enabled": true, "type": "redis",
                             "redis": {"address": address, "prefix": format!("{p}-presence")}},
        "channel": {"without_namespace": {"allow_subscribe_for_client": true, "presence": true}}
    });
    let a = Proc::start_with("node-a", parts.clone()).await;
    let b = Proc::start_with("node-b", parts).await;
    a.wait_nodes(&["node-a", "node-b"], Duration::from_secs(10))
        .await;
    let mut on_a = a.ws_user("ann").await;
    let mut on_b = b.ws_user("ben").await;
    for c in [&mut on_a, &mut on_b] {
        let reply = c.subscribe("room").await;
        assert!(reply.error.is_none(), "subscribe: {reply:?}");
    }
    a.api("publish", json!({"channel": "room", "data": {"from": "a"}}))
        .await;
    assert_eq!(&on_b.publication("room").await.data[..], br#"{"from":"a"}"#);
    assert_eq!(&on_a.publication("room").await.data[..], br#"{"from":"a"}"#);
    b.api("publish", json!({"channel": "room", "data": {"from": "b"}}))
        .await;
    assert_eq!(&on_a.publication("room").await.data[..], br#"{"from":"b"}"#);
    assert_eq!(&on_b.publication("room").await.data[..], br#"{"from":"b"}"#);
    for node in [&a, &b] {
        let presence = node.api("presence", json!({"channel": "room"})).await;
        let mut users: Vec<String> = presence["result"]["presence"]
            .as_object()
            .expect("presence map")
            .values()
            .map(|c| c["user"].as_str().unwrap_or_default().to_owned())
            .collect();
        users.sort();
        assert_eq!(users, ["ann", "ben"], "{presence}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_info_lists_live_nodes_and_drops_a_killed_one() {
    info_lists_live_nodes_and_drops_a_killed_one(Bus::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_info_lists_live_nodes_and_drops_a_killed_one() {
    info_lists_live_nodes_and_drops_a_killed_one(Bus::Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_a_node_stopped_with_sigterm_leaves_info_at_once() {
    a_node_stopped_with_sigterm_leaves_info_at_once(Bus::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_a_node_stopped_with_sigterm_leaves_info_at_once() {
    a_node_stopped_with_sigterm_leaves_info_at_once(Bus::Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_api_disconnect_reaches_a_user_on_another_node() {
    api_disconnect_reaches_a_user_on_another_node(Bus::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_api_disconnect_reaches_a_user_on_another_node() {
    api_disconnect_reaches_a_user_on_another_node(Bus::Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_api_refresh_expires_a_user_on_another_node() {
    api_refresh_expires_a_user_on_another_node(Bus::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_api_refresh_expires_a_user_on_another_node() {
    api_refresh_expires_a_user_on_another_node(Bus::Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_server_side_subscribe_and_unsubscribe_on_another_node() {
    server_side_subscribe_and_unsubscribe_on_another_node(Bus::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_server_side_subscribe_and_unsubscribe_on_another_node() {
    server_side_subscribe_and_unsubscribe_on_another_node(Bus::Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_emulation_request_to_the_wrong_node_is_forwarded() {
    emulation_request_to_the_wrong_node_is_forwarded(Bus::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_emulation_request_to_the_wrong_node_is_forwarded() {
    emulation_request_to_the_wrong_node_is_forwarded(Bus::Nats).await;
}
