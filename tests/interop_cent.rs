//! Interop suite for the Rust server API client: a small service built on
//! crates.io `cent` (Centrifugo's official Rust API client,
//! `tests/interop/rust`) publishes, reads history, sends batches and
//! broadcasts through the real `rotor` binary's HTTP API, and a WebSocket
//! subscriber (the raw protocol client of `tests/support`) checks that what
//! `cent` was told happened is what a client sees.
//!
//! The service is built once per test run with
//! `cargo build --locked --manifest-path tests/interop/rust/Cargo.toml
//! --target-dir tests/interop/rust/target` (crates from crates.io, pinned by
//! its own `Cargo.lock`). When that build fails, e.g. without network, a test
//! prints a loud SKIP line and passes, unless `ROTOR_REQUIRE_INTEROP=1` (set
//! by `tests/run.sh`), which makes it a failure, as in `tests/interop.rs`.
//!
//! Run one: `cargo test --test interop_cent batch -- --nocapture`.

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};
use support::binary::{self, Binary};
use support::{SECRET, WsClient, token, unique};

/// The HTTP API key of the server under test.
const API_KEY: &str = "rotor-cent-interop-key";
/// How long one run of the service may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

fn helper_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("interop")
        .join("rust")
}

/// Builds the service (once per process); its binary, or why it could not
/// be built.
fn build_helper() -> Result<PathBuf, String> {
    let dir = helper_dir();
    let target = dir.join("target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = std::process::Command::new(&cargo)
        .args(["build", "--locked", "--quiet", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        // The outer `cargo test`'s settings are not the service's.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {cargo:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`cargo build` of {} failed ({}):\n{}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        ));
    }
    let bin = target.join("debug").join("rotor-cent-interop");
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!("{} is missing after the build", bin.display()))
    }
}

/// The service's binary; `None` (after a SKIP line) when it cannot be built
/// and interop is not required.
fn helper() -> Option<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BUILT.get_or_init(build_helper) {
        Ok(bin) => Some(bin.clone()),
        Err(why) => {
            if std::env::var("ROTOR_REQUIRE_INTEROP").as_deref() == Ok("1") {
                panic!("interop cent (Rust): {why}");
            }
            eprintln!(
                "\n!!!!!!!! SKIP interop cent (Rust): {why}\n(set ROTOR_REQUIRE_INTEROP=1 to make \
                 this a failure) !!!!!!!!\n"
            );
            None
        }
    }
}

/// A running `rotor` with the config below, and the service pointed at it.
struct Env {
    server: Binary,
    bin: PathBuf,
    _dir: tempfile::TempDir,
}

/// `chat`: history and recovery; `plain`: no history; any other namespace
/// is unknown (code 102).
fn config() -> Value {
    json!({
        "client": {"token": {"hmac_secret_key": SECRET}},
        "http_api": {"key": API_KEY},
        "health": {"enabled": true},
        "channel": {"namespaces": [
            {
                "name": "chat",
                "allow_subscribe_for_client": true,
                "history_size": 100,
                "history_ttl": "300s",
                "force_recovery": true
            },
            {"name": "plain", "allow_subscribe_for_client": true}
        ]}
    })
}

/// Whether `server` runs and answers `GET /health` with 200 on its port
/// (within 5 s).
async fn serves(server: &mut Binary) -> bool {
    let url = format!("http://127.0.0.1:{}/health", server.port);
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < deadline {
        if !matches!(server.child.try_wait(), Ok(None)) {
            return false;
        }
        let reply = http.get(&url).timeout(Duration::from_secs(1)).send().await;
        if reply.is_ok_and(|r| r.status().as_u16() == 200) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// One run of the service: whether it exited 0, and the JSON line it printed.
struct Run {
    ok: bool,
    out: Value,
}

impl Env {
    /// `None` when the service cannot be built (and that is allowed).
    /// Retries on other ports when the server is not the one answering
    /// (its free port was taken before it bound it, e.g. as the local port
    /// of a connection of a test running beside it).
    async fn start() -> Option<Env> {
        let bin = helper()?;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut logs = String::new();
        for attempt in 1..=3 {
            let name = format!("rotor-{attempt}");
            let mut server = binary::start(dir.path(), &name, &config()).await;
            if serves(&mut server).await {
                return Some(Env {
                    server,
                    bin,
                    _dir: dir,
                });
            }
            drop(server);
            let log = std::fs::read_to_string(dir.path().join(format!("{name}.log")));
            logs.push_str(&format!(
                "---- {name}.log ----\n{}\n",
                log.unwrap_or_default()
            ));
        }
        panic!("rotor did not serve /health on its port in 3 attempts\n{logs}");
    }

    fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}/api", self.server.port)
    }

    /// A JSON subscriber connected as `user`.
    async fn client(&self, user: &str) -> WsClient {
        let url = format!("ws://127.0.0.1:{}/connection/websocket", self.server.port);
        let mut c = WsClient::open(&url, false, None).await.expect("connects");
        let r = c.connect(&token(user, 3600)).await;
        assert!(r.error.is_none(), "connect: {r:?}");
        c
    }

    /// Runs the service with `global` options before `args`.
    async fn run_with(&self, global: &[&str], args: &[&str]) -> Run {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.args(global)
            .args(args)
            .env("ROTOR_API_URL", self.api_url())
            .env("ROTOR_API_KEY", API_KEY)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let out = tokio::time::timeout(CALL_TIMEOUT, cmd.output())
            .await
            .unwrap_or_else(|_| panic!("cent {args:?} did not finish in {CALL_TIMEOUT:?}"))
            .expect("run the cent service");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let code = out.status.code();
        assert!(
            matches!(code, Some(0 | 1)),
            "cent {args:?} exited with {:?}\nstdout: {stdout}\nstderr: {stderr}",
            out.status
        );
        let out: Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("cent {args:?} printed {stdout:?} (not JSON: {e})"));
        assert_eq!(out["ok"], json!(code == Some(0)), "{out}");
        Run {
            ok: code == Some(0),
            out,
        }
    }

    async fn run(&self, args: &[&str]) -> Run {
        self.run_with(&[], args).await
    }

    /// Runs `args`, which must succeed; returns the result.
    async fn ok(&self, args: &[&str]) -> Value {
        let r = self.run(args).await;
        assert!(r.ok, "cent {args:?} failed: {}", r.out);
        r.out["result"].clone()
    }

    /// Runs `args`, which must fail; returns the whole output.
    async fn fail(&self, args: &[&str]) -> Value {
        let r = self.run(args).await;
        assert!(!r.ok, "cent {args:?} succeeded: {}", r.out);
        r.out
    }
}

/// A JSON number field of `v` as u64 (0 when absent: cent omits zeros).
fn u64_of(v: &Value, field: &str) -> u64 {
    match &v[field] {
        Value::Null => 0,
        n => n
            .as_u64()
            .unwrap_or_else(|| panic!("{field} of {v} is not a number")),
    }
}

fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field].as_str().unwrap_or_default()
}

/// The offsets of a history result's publications.
fn offsets(history: &Value) -> Vec<u64> {
    history["publications"]
        .as_array()
        .map(|ps| ps.iter().map(|p| u64_of(p, "offset")).collect())
        .unwrap_or_default()
}

/// Subscribes `c` to `channel`; returns the subscribe result's epoch.
async fn subscribe(c: &mut WsClient, channel: &str) -> String {
    let r = c.subscribe(channel).await;
    let s = r
        .subscribe
        .unwrap_or_else(|| panic!("subscribe {channel}: {:?}", r.error));
    s.epoch
}

/// Waits for the next publication in `channel`; returns its data as JSON,
/// its offset and its tags.
async fn next_pub(c: &mut WsClient, channel: &str) -> (Value, u64, Vec<(String, String)>) {
    let p = c.publication(channel).await;
    let data: Value = serde_json::from_slice(&p.data).expect("publication data is JSON");
    let mut tags: Vec<(String, String)> = p.tags.into_iter().collect();
    tags.sort();
    (data, p.offset, tags)
}

/// `publish` and `history`: offsets and epoch as the publications get them,
/// what the subscriber receives, `limit`, `since`, `reverse`, tags, and the
/// errors of an epoch mismatch, a channel without history and an unknown
/// namespace.
#[tokio::test]
async fn publish_then_history() {
    let Some(env) = Env::start().await else {
        return;
    };
    let ch = unique("chat:cent-");
    let mut sub = env.client("reader").await;
    let sub_epoch = subscribe(&mut sub, &ch).await;

    let mut epoch = String::new();
    for i in 1..=3u64 {
        let data = json!({"text": format!("hello {i}")}).to_string();
        let mut args = vec!["publish", &ch, &data];
        if i == 3 {
            args.extend(["--tag", "kind=greeting", "--tag", "lang=en"]);
        }
        let res = env.ok(&args).await;
        assert_eq!(u64_of(&res, "offset"), i, "publish result {res}");
        let e = str_of(&res, "epoch");
        assert!(!e.is_empty(), "publish result without epoch: {res}");
        if i == 1 {
            epoch = e.to_string();
        }
        assert_eq!(e, epoch, "the epoch changed between publications");
        let (got, offset, tags) = next_pub(&mut sub, &ch).await;
        assert_eq!(got, json!({"text": format!("hello {i}")}));
        assert_eq!(offset, i, "the subscriber saw another offset");
        if i == 3 {
            let want = [("kind", "greeting"), ("lang", "en")].map(|(k, v)| (k.into(), v.into()));
            assert_eq!(tags, want);
        }
    }
    // The subscriber was told the stream's epoch when it subscribed.
    assert_eq!(sub_epoch, epoch, "subscribe and publish epochs differ");

    // Everything, oldest first, with data and tags as published.
    let h = env.ok(&["history", &ch, "--limit", "-1"]).await;
    assert_eq!(offsets(&h), [1, 2, 3], "{h}");
    assert_eq!(str_of(&h, "epoch"), epoch);
    assert_eq!(u64_of(&h, "offset"), 3);
    assert_eq!(h["publications"][0]["data"], json!({"text": "hello 1"}));
    assert_eq!(
        h["publications"][2]["tags"],
        json!({"kind": "greeting", "lang": "en"})
    );
    // No limit: only the stream position.
    let h = env.ok(&["history", &ch]).await;
    assert_eq!(offsets(&h), Vec::<u64>::new(), "{h}");
    assert_eq!((u64_of(&h, "offset"), str_of(&h, "epoch")), (3, &*epoch));
    // limit, since, reverse.
    let h = env.ok(&["history", &ch, "--limit", "2"]).await;
    assert_eq!(offsets(&h), [1, 2], "{h}");
    let h = env
        .ok(&["history", &ch, "--limit", "10", "--since", "1", &epoch])
        .await;
    assert_eq!(offsets(&h), [2, 3], "{h}");
    let h = env
        .ok(&["history", &ch, "--limit", "-1", "--reverse"])
        .await;
    assert_eq!(offsets(&h), [3, 2, 1], "{h}");
    let h = env
        .ok(&[
            "history",
            &ch,
            "--limit",
            "1",
            "--since",
            "3",
            &epoch,
            "--reverse",
        ])
        .await;
    assert_eq!(offsets(&h), [2], "{h}");

    // A position of another epoch: unrecoverable position.
    let out = env
        .fail(&[
            "history",
            &ch,
            "--limit",
            "-1",
            "--since",
            "1",
            "not-the-epoch",
        ])
        .await;
    assert_eq!(out["error"]["kind"], "api", "{out}");
    assert_eq!(out["error"]["code"], 112, "{out}");
    // A namespace without history: not available.
    let out = env.fail(&["history", &unique("plain:cent-")]).await;
    assert_eq!(out["error"]["code"], 108, "{out}");
    // An unknown namespace: unknown channel, for publish and history.
    let out = env.fail(&["publish", "nope:x", "{}"]).await;
    assert_eq!(out["error"]["code"], 102, "{out}");
    assert_eq!(out["error"]["api_code"], 102, "{out}");
    assert_eq!(out["error"]["retryable"], false, "{out}");
    let out = env.fail(&["history", "nope:x", "--limit", "1"]).await;
    assert_eq!(out["error"]["code"], 102, "{out}");

    // skip_history: delivered, not kept.
    env.ok(&["publish", &ch, r#"{"text":"ephemeral"}"#, "--skip-history"])
        .await;
    let (got, _, _) = next_pub(&mut sub, &ch).await;
    assert_eq!(got, json!({"text": "ephemeral"}));
    let h = env.ok(&["history", &ch, "--limit", "-1"]).await;
    assert_eq!(offsets(&h), [1, 2, 3], "{h}");

    // history_remove keeps the position.
    env.ok(&["history-remove", &ch]).await;
    let h = env.ok(&["history", &ch, "--limit", "-1"]).await;
    assert_eq!(offsets(&h), Vec::<u64>::new(), "{h}");
    assert_eq!((u64_of(&h, "offset"), str_of(&h, "epoch")), (3, &*epoch));
}

/// The same idempotency key publishes once and answers with the first
/// result.
#[tokio::test]
async fn idempotent_publish() {
    let Some(env) = Env::start().await else {
        return;
    };
    let ch = unique("chat:idem-");
    let mut sub = env.client("reader").await;
    subscribe(&mut sub, &ch).await;
    let args = [
        "publish",
        &ch,
        r#"{"order":42}"#,
        "--idempotency-key",
        "order-42-paid",
    ];
    let first = env.ok(&args).await;
    let again = env.ok(&args).await;
    assert_eq!(first, again, "a repeated key got another result");
    env.ok(&["publish", &ch, r#"{"order":43}"#]).await;
    assert_eq!(next_pub(&mut sub, &ch).await.0, json!({"order": 42}));
    // The next one is the later publication, not the repeat.
    assert_eq!(next_pub(&mut sub, &ch).await.0, json!({"order": 43}));
    let h = env.ok(&["history", &ch, "--limit", "-1"]).await;
    assert_eq!(offsets(&h), [1, 2], "{h}");
}

/// A batch of publications: one request, each command its own result, in
/// order without `parallel`; the subscriber receives them all in order, the
/// history holds them, and a client recovering from a position `cent` got
/// receives the rest.
#[tokio::test]
async fn batch_publish() {
    let Some(env) = Env::start().await else {
        return;
    };
    const N: u64 = 20;
    let ch = unique("chat:batch-");
    let mut sub = env.client("reader").await;
    subscribe(&mut sub, &ch).await;

    let out = env.run(&["batch-publish", &ch, &N.to_string()]).await;
    assert!(out.ok, "batch failed: {}", out.out);
    let results = out.out["result"].as_array().expect("results").clone();
    assert_eq!(results.len() as u64, N, "{}", out.out);
    let epoch = str_of(&results[0], "epoch").to_string();
    assert!(!epoch.is_empty(), "{}", out.out);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(u64_of(r, "offset"), i as u64 + 1, "command {i}: {r}");
        assert_eq!(str_of(r, "epoch"), epoch, "command {i}: {r}");
    }
    for n in 0..N {
        let (data, offset, _) = next_pub(&mut sub, &ch).await;
        assert_eq!(
            data,
            json!({"n": n, "text": format!("batch message {n}")}),
            "publication {n}"
        );
        assert_eq!(offset, n + 1);
    }
    let h = env.ok(&["history", &ch, "--limit", "-1"]).await;
    assert_eq!(offsets(&h), (1..=N).collect::<Vec<_>>(), "{h}");
    assert_eq!(h["publications"][7]["data"]["n"], 7);

    // In parallel: every command succeeds, the offsets are the next N.
    let out = env
        .run(&["batch-publish", &ch, &N.to_string(), "--parallel"])
        .await;
    assert!(out.ok, "parallel batch failed: {}", out.out);
    let mut got: Vec<u64> = out.out["result"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| u64_of(r, "offset"))
        .collect();
    got.sort_unstable();
    assert_eq!(got, (N + 1..=2 * N).collect::<Vec<_>>(), "{}", out.out);
    let mut seen = Vec::new();
    for _ in 0..N {
        seen.push(next_pub(&mut sub, &ch).await.1);
    }
    seen.sort_unstable();
    assert_eq!(seen, (N + 1..=2 * N).collect::<Vec<_>>());

    // A client that saw up to offset 5 recovers the rest.
    let mut late = env.client("late").await;
    let r = late
        .subscribe_with(rotor::proto::client::SubscribeRequest {
            channel: ch.clone(),
            recover: true,
            epoch: epoch.clone(),
            offset: 5,
            ..Default::default()
        })
        .await;
    let s = r.subscribe.unwrap_or_else(|| panic!("{:?}", r.error));
    assert!(s.recovered, "not recovered: {s:?}");
    let recovered: Vec<u64> = s.publications.iter().map(|p| p.offset).collect();
    assert_eq!(recovered, (6..=2 * N).collect::<Vec<_>>());
}

/// A batch of several methods, one of them failing: `cent` reports a
/// partial failure naming that command, and every other command has its own
/// result.
#[tokio::test]
async fn mixed_batch_with_failure() {
    let Some(env) = Env::start().await else {
        return;
    };
    let ch = unique("chat:mixed-");
    let other = unique("chat:mixed-other-");
    let mut sub = env.client("reader").await;
    subscribe(&mut sub, &ch).await;
    subscribe(&mut sub, &other).await;
    let commands = json!([
        {"publish": {"channel": ch, "data": {"step": 1}}},
        {"publish": {"channel": "nope:x", "data": {"step": 2}}},
        {"broadcast": {"channels": [ch, other], "data": {"step": 3}}},
        {"history": {"channel": ch, "limit": -1}},
        {"history": {"channel": unique("plain:mixed-"), "limit": -1}},
        {"info": {}}
    ])
    .to_string();
    let out = env.run(&["batch", &commands]).await;
    assert!(
        !out.ok,
        "a batch with failed commands succeeded: {}",
        out.out
    );
    let err = &out.out["error"];
    assert_eq!(err["kind"], "batch_failed", "{}", out.out);
    assert_eq!(err["total"], 6, "{err}");
    let failed: Vec<(u64, &str, u64)> = err["failed"]
        .as_array()
        .expect("failed")
        .iter()
        .map(|f| {
            (
                u64_of(f, "index"),
                f["method"].as_str().unwrap_or_default(),
                u64_of(&f["error"], "code"),
            )
        })
        .collect();
    assert_eq!(failed, [(1, "publish", 102), (4, "history", 108)], "{err}");
    // A partial failure is not an API error of its own.
    assert_eq!(err["api_code"], Value::Null, "{err}");

    let replies = out.out["replies"].as_array().expect("replies");
    assert_eq!(replies.len(), 6);
    assert_eq!(
        u64_of(&replies[0]["publish"], "offset"),
        1,
        "{}",
        replies[0]
    );
    assert_eq!(replies[1]["error"]["code"], 102, "{}", replies[1]);
    let b = &replies[2]["broadcast"];
    let per_channel: Vec<(&str, u64)> = b["channels"]
        .as_array()
        .expect("broadcast channels")
        .iter()
        .map(|c| {
            (
                c["channel"].as_str().unwrap_or_default(),
                u64_of(&c["result"], "offset"),
            )
        })
        .collect();
    assert_eq!(per_channel, [(&*ch, 2), (&*other, 1)], "{b}");
    // Sequential: the history sees both publications made before it.
    assert_eq!(offsets(&replies[3]["history"]), [1, 2], "{}", replies[3]);
    assert_eq!(replies[4]["error"]["code"], 108, "{}", replies[4]);
    let nodes = replies[5]["info"]["nodes"].as_array().expect("info nodes");
    assert_eq!(nodes.len(), 1, "{}", replies[5]);

    assert_eq!(next_pub(&mut sub, &ch).await.0, json!({"step": 1}));
    assert_eq!(next_pub(&mut sub, &ch).await.0, json!({"step": 3}));
    assert_eq!(next_pub(&mut sub, &other).await.0, json!({"step": 3}));
}

/// `broadcast`: every channel's result, the subscriber in each receives it;
/// an unknown channel among them fails alone. `info` sees this node and its
/// client.
#[tokio::test]
async fn broadcast_and_info() {
    let Some(env) = Env::start().await else {
        return;
    };
    let a = unique("chat:bc-a-");
    let b = unique("plain:bc-b-");
    let mut sub = env.client("reader").await;
    subscribe(&mut sub, &a).await;
    subscribe(&mut sub, &b).await;

    let res = env.ok(&["broadcast", r#"{"news":1}"#, &a, &b]).await;
    let chans = res["channels"].as_array().expect("channels");
    assert_eq!(chans.len(), 2, "{res}");
    assert_eq!(chans[0]["channel"], json!(a));
    assert_eq!(u64_of(&chans[0]["result"], "offset"), 1, "{res}");
    assert!(!str_of(&chans[0]["result"], "epoch").is_empty(), "{res}");
    // No history in `plain`: no position.
    assert_eq!(chans[1]["channel"], json!(b));
    assert_eq!(u64_of(&chans[1]["result"], "offset"), 0, "{res}");
    assert_eq!(next_pub(&mut sub, &a).await.0, json!({"news": 1}));
    assert_eq!(next_pub(&mut sub, &b).await.0, json!({"news": 1}));

    let out = env
        .fail(&["broadcast", r#"{"news":2}"#, &a, "nope:x", &b])
        .await;
    let err = &out["error"];
    assert_eq!(err["kind"], "broadcast_failed", "{out}");
    let failed = err["failed"].as_array().expect("failed channels");
    assert_eq!(failed.len(), 1, "{out}");
    assert_eq!(failed[0]["channel"], "nope:x");
    assert_eq!(failed[0]["error"]["code"], 102, "{out}");
    assert_eq!(next_pub(&mut sub, &a).await.0, json!({"news": 2}));
    assert_eq!(next_pub(&mut sub, &b).await.0, json!({"news": 2}));

    let info = env.ok(&["info"]).await;
    let nodes = info["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 1, "{info}");
    let node = &nodes[0];
    assert!(!str_of(node, "uid").is_empty(), "{info}");
    assert!(!str_of(node, "name").is_empty(), "{info}");
    assert_eq!(u64_of(node, "num_clients"), 1, "{info}");
    assert_eq!(u64_of(node, "num_users"), 1, "{info}");
    assert!(u64_of(node, "num_channels") >= 2, "{info}");
}

/// A wrong or missing API key: `cent` reports refused credentials (HTTP
/// 401, not retryable), nothing is published, and the server goes on
/// serving the right key and its subscribers.
#[tokio::test]
async fn wrong_api_key_is_unauthorized() {
    let Some(env) = Env::start().await else {
        return;
    };
    let ch = unique("chat:auth-");
    let mut sub = env.client("reader").await;
    subscribe(&mut sub, &ch).await;

    for global in [&["--key", "not-the-key"][..], &["--no-key"][..]] {
        let r = env
            .run_with(global, &["publish", &ch, r#"{"sneaky":true}"#])
            .await;
        assert!(!r.ok, "published with {global:?}: {}", r.out);
        let err = &r.out["error"];
        assert_eq!(err["kind"], "http", "{global:?}: {err}");
        assert_eq!(err["status"], 401, "{global:?}: {err}");
        assert_eq!(err["unauthorized"], true, "{global:?}: {err}");
        assert_eq!(err["retryable"], false, "{global:?}: {err}");
        // A batch fails as a whole the same way.
        let r = env.run_with(global, &["batch-publish", &ch, "3"]).await;
        assert!(!r.ok, "batch with {global:?}: {}", r.out);
        assert_eq!(r.out["error"]["status"], 401, "{}", r.out);
        let replies = r.out["replies"].as_array().expect("replies");
        assert!(
            replies.iter().all(|x| x["error"]["status"] == 401),
            "{}",
            r.out
        );
    }

    // Still serving: the right key publishes, the subscriber gets exactly
    // that one, and history holds only it.
    let res = env.ok(&["publish", &ch, r#"{"fine":true}"#]).await;
    assert_eq!(u64_of(&res, "offset"), 1, "{res}");
    assert_eq!(next_pub(&mut sub, &ch).await.0, json!({"fine": true}));
    let h = env.ok(&["history", &ch, "--limit", "-1"]).await;
    assert_eq!(offsets(&h), [1], "{h}");
}

/// The service's sources and lock file are there (no build, no server).
#[test]
fn helper_project_exists() {
    for p in ["Cargo.toml", "Cargo.lock", "src/main.rs"] {
        assert!(
            helper_dir().join(p).exists(),
            "tests/interop/rust/{p} is missing"
        );
    }
}
