//! Unidirectional gRPC end to end: the real server with `uni_grpc` on, and
//! Python `grpcio` (from `tests/interop/.venv`) consuming the stream with
//! code generated at test time from our `proto/unistream.proto`
//! (`tests/interop/python/uni_grpc_client.py`).
//!
//! Without the venv the tests print a loud SKIP line and pass, unless
//! `ROTOR_REQUIRE_INTEROP=1`.

#[path = "support/session_backend.rs"]
mod session_backend;
mod support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use base64::Engine as _;
use rotor::config::{self, Config};
use serde_json::{Value, json};
use support::api::{api_config, call};
use support::{PATIENCE, TestServer, now, token, token_with, typed, unique};
use tokio::sync::mpsc;

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("interop")
}

fn python() -> PathBuf {
    interop_dir().join(".venv").join("bin").join("python")
}

/// Whether `grpcio` and `grpcio-tools` are at hand; a loud SKIP otherwise.
fn python_ready(test: &str) -> bool {
    let ok = Command::new(python())
        .args(["-c", "import grpc, grpc_tools"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return true;
    }
    if std::env::var("ROTOR_REQUIRE_INTEROP").as_deref() == Ok("1") {
        panic!("{test}: the venv with grpcio/grpcio-tools is missing (run bash tests/run.sh)");
    }
    eprintln!(
        "\n!!!!!!!! SKIP {test}: tests/interop/.venv with grpcio and grpcio-tools is missing. \
         Run `bash tests/run.sh` (set ROTOR_REQUIRE_INTEROP=1 to make this a failure) !!!!!!!!\n"
    );
    false
}

/// Uni gRPC on a port the server picks (`TestServer::uni_grpc_port`).
fn grpc_config() -> Config {
    let mut cfg = api_config();
    cfg.uni_grpc.enabled = true;
    cfg.uni_grpc.address = "127.0.0.1".into();
    cfg.uni_grpc.port = 0;
    cfg.client.ping_interval = config::Duration::from_secs(2);
    cfg.client.pong_timeout = config::Duration::from_secs(1);
    cfg
}

/// What the Python client printed.
#[derive(Debug, PartialEq)]
enum Line {
    Push(Value),
    End(String),
}

/// One running Python consumer.
struct Consumer {
    child: Child,
    lines: mpsc::UnboundedReceiver<Line>,
}

impl Consumer {
    fn start(port: u16, request: Value) -> Self {
        Self::start_with(port, request, None)
    }

    /// With `ca`, the client speaks TLS and trusts that certificate.
    fn start_with(port: u16, request: Value, ca: Option<&std::path::Path>) -> Self {
        let script = interop_dir().join("python").join("uni_grpc_client.py");
        let mut cmd = Command::new(python());
        cmd.arg(script)
            .arg(format!("127.0.0.1:{port}"))
            .arg(request.to_string());
        if let Some(ca) = ca {
            cmd.arg(ca);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let item = match line.strip_prefix("END ") {
                    Some(code) => Line::End(code.to_string()),
                    None => Line::Push(serde_json::from_str(&line).expect("push line is JSON")),
                };
                if tx.send(item).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The next line; generous deadline (Python compiles the proto first).
    async fn next(&mut self) -> Line {
        tokio::time::timeout(PATIENCE * 4, self.lines.recv())
            .await
            .expect("consumer output in time")
            .expect("consumer output")
    }

    /// The next push that is not a ping.
    async fn push(&mut self) -> Value {
        loop {
            match self.next().await {
                // Pings and joins (chat pushes join/leave) are skipped.
                Line::Push(p) if p == json!({}) || p.get("join").is_some() => continue,
                Line::Push(p) => return p,
                Line::End(code) => panic!("stream ended: {code}"),
            }
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn b64(data: &Value) -> Value {
    let text = data.as_str().expect("bytes are base64 text");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64");
    serde_json::from_slice(&raw).expect("JSON payload")
}

#[tokio::test]
async fn uni_grpc_stream_lifecycle() {
    if !python_ready("uni_grpc_stream_lifecycle") {
        return;
    }
    let srv = TestServer::start(grpc_config()).await;
    let port = srv.uni_grpc_port();
    let user = unique("ugrpc-");
    let ch = unique("chat:ugrpc-");
    let tok = token_with(json!({"sub": user, "exp": now() + 3600, "channels": [ch]}));
    let mut c = Consumer::start(port, json!({"token": tok}));
    let first = c.push().await;
    let connect = &first["connect"];
    assert!(connect["client"].is_string(), "{first}");
    assert_eq!(connect["ping"], 2);
    assert!(connect["subs"][&ch].is_object(), "{first}");

    call(&srv, "publish", json!({"channel": ch, "data": {"n": 1}})).await;
    let p = c.push().await;
    assert_eq!(p["channel"], ch.as_str());
    assert_eq!(b64(&p["pub"]["data"]), json!({"n": 1}));

    let news = unique("news-");
    call(&srv, "subscribe", json!({"user": user, "channel": news})).await;
    let p = c.push().await;
    assert_eq!(p["channel"], news.as_str());
    assert!(p.get("subscribe").is_some(), "{p}");

    // An empty Push is the ping.
    let mut pinged = false;
    for _ in 0..3 {
        if c.next().await == Line::Push(json!({})) {
            pinged = true;
            break;
        }
    }
    assert!(pinged, "no ping push");

    call(&srv, "disconnect", json!({"user": user})).await;
    let p = c.push().await;
    assert_eq!(p["disconnect"]["code"], 3503, "{p}");
    assert_eq!(c.next().await, Line::End("OK".into()));
    support::assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn uni_grpc_connect_errors_become_disconnects() {
    if !python_ready("uni_grpc_connect_errors_become_disconnects") {
        return;
    }
    let srv = TestServer::start(grpc_config()).await;
    let port = srv.uni_grpc_port();
    for (req, want) in [
        (json!({"token": "not-a-jwt"}), 3500),
        (json!({"token": token("late", -100)}), 3005),
        (json!({}), 3501),
    ] {
        let mut c = Consumer::start(port, req.clone());
        let p = c.push().await;
        assert_eq!(p["disconnect"]["code"], want, "{req}: {p}");
        assert_eq!(c.next().await, Line::End("OK".into()), "{req}");
    }
    support::assert_healthy(&srv).await;
    srv.stop().await;
}

/// A ConnectRequest over `uni_grpc.max_receive_message_size` is refused as
/// grpc-go refuses it: `RESOURCE_EXHAUSTED` (tonic alone says
/// `OUT_OF_RANGE`).
#[tokio::test]
async fn uni_grpc_message_over_the_limit_is_resource_exhausted() {
    if !python_ready("uni_grpc_message_over_the_limit_is_resource_exhausted") {
        return;
    }
    let mut cfg = grpc_config();
    cfg.uni_grpc.max_receive_message_size = 64;
    let srv = TestServer::start(cfg).await;
    let port = srv.uni_grpc_port();
    let mut c = Consumer::start(port, json!({"token": "x".repeat(1000)}));
    assert_eq!(c.next().await, Line::End("RESOURCE_EXHAUSTED".into()));
    support::assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn uni_grpc_connect_proxy_gets_metadata_and_maps_errors() {
    if !python_ready("uni_grpc_connect_proxy_gets_metadata_and_maps_errors") {
        return;
    }
    let ch = unique("chat:px-");
    let channel = ch.clone();
    let mut backend = session_backend::Backend::start(move |_, body| {
        if body["data"]["deny"].as_bool() == Some(true) {
            return session_backend::Answer::Json(
                json!({"error": {"code": 1403, "message": "denied"}}),
            );
        }
        session_backend::Answer::Json(json!({"result": {"user": "px", "channels": [channel]}}))
    })
    .await;
    let mut cfg = grpc_config();
    let mut p = session_backend::proxy(&backend.url("connect"));
    p["enabled"] = json!(true);
    p["grpc_metadata"] = json!(["x-uni-test"]);
    cfg.client.proxy = typed(json!({ "connect": p }));
    cfg.client.connect_code_to_unidirectional_disconnect = typed(json!({
        "enabled": true,
        "transforms": [{"code": 1403, "to": {"code": 4403, "reason": "denied"}}]
    }));
    let srv = TestServer::start(cfg).await;
    let port = srv.uni_grpc_port();

    let data = base64::engine::general_purpose::STANDARD.encode(br#"{"hello":1}"#);
    let mut c = Consumer::start(port, json!({"data": data}));
    let first = c.push().await;
    assert!(first["connect"]["subs"][&ch].is_object(), "{first}");
    let call_made = backend.call().await;
    assert_eq!(call_made.body["data"], json!({"hello": 1}));
    assert_eq!(call_made.body["transport"], "uni_grpc");
    assert_eq!(
        call_made
            .headers
            .get("x-uni-test")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    drop(c);

    let data = base64::engine::general_purpose::STANDARD.encode(br#"{"deny":true}"#);
    let mut c = Consumer::start(port, json!({"data": data}));
    let p = c.push().await;
    assert_eq!(p["disconnect"]["code"], 4403, "{p}");
    assert_eq!(c.next().await, Line::End("OK".into()));
    srv.stop().await;
}

/// `uni_grpc.tls`: the stream is served over TLS (a self-signed certificate
/// made by the `openssl` command for `localhost`).
#[tokio::test]
async fn uni_grpc_serves_tls_when_configured() {
    if !python_ready("uni_grpc_serves_tls_when_configured") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("the openssl command is needed for this test");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let mut cfg = grpc_config();
    cfg.uni_grpc.tls.enabled = true;
    cfg.uni_grpc.tls.cert_pem = std::fs::read_to_string(&cert).expect("cert");
    cfg.uni_grpc.tls.key_pem = key.to_string_lossy().into_owned();
    let srv = TestServer::start(cfg).await;
    let port = srv.uni_grpc_port();
    let mut c = Consumer::start_with(port, json!({"token": token("tls", 3600)}), Some(&cert));
    assert!(c.push().await["connect"]["client"].is_string());
    // A plaintext client gets no stream.
    let mut plain = Consumer::start(port, json!({"token": token("tls", 3600)}));
    assert!(matches!(plain.next().await, Line::End(code) if code != "OK"));
    srv.stop().await;
}
