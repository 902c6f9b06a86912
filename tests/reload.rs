//! SIGHUP reloads channel options and token keys in the running binary.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::binary::free_port;
use support::{WsClient, sign};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn write_config(path: &std::path::Path, namespaces: serde_json::Value) {
    let cfg = serde_json::json!({
        "client": {"token": {"hmac_secret_key": "reload-secret"}},
        "channel": {"namespaces": namespaces},
        "log": {"level": "warn"}
    });
    std::fs::write(path, cfg.to_string()).expect("write config");
}

#[tokio::test]
async fn sighup_swaps_channel_options() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.json");
    write_config(&path, serde_json::json!([]));
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_rotor"))
        .args([
            "--config",
            path.to_str().expect("utf-8 path"),
            "--http_server.port",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn rotor");
    let server = Server(child);
    let url = format!("ws://127.0.0.1:{port}/connection/websocket");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut client = loop {
        match WsClient::open(&url, false, None).await {
            Ok(c) => break c,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("server did not start: {e}"),
        }
    };
    let token = sign("reload-secret", serde_json::json!({"sub": "u"}));
    client.connect(&token).await.connect.expect("connected");
    assert_eq!(
        client.subscribe("late:x").await.error.expect("error").code,
        102
    );

    write_config(
        &path,
        serde_json::json!([{"name": "late", "allow_subscribe_for_client": true}]),
    );
    let status = Command::new("kill")
        .args(["-HUP", &server.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = client.subscribe("late:x").await;
        if r.subscribe.is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "reload did not take effect: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
