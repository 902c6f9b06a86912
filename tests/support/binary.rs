//! The real `rotor` binary as a child process: started with a config file
//! written from JSON on a free port, killed when dropped; and the HTTP API
//! of such a process.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A running `rotor`; killed on drop.
pub struct Binary {
    /// The process (for tests that signal or kill it themselves).
    pub child: Child,
    /// Its HTTP port (client transports and API).
    pub port: u16,
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Writes `cfg` to `<dir>/<name>.json`, starts `rotor` with it on a free
/// port and waits (up to 15 s) until the port accepts connections.
pub async fn start(dir: &Path, name: &str, cfg: &serde_json::Value) -> Binary {
    start_with(dir, name, cfg, None).await
}

/// Like [`start`], with the open-file limit (`ulimit -n`) set to `nofile`
/// when given; the server's log goes to `<dir>/<name>.log`.
pub async fn start_with(
    dir: &Path,
    name: &str,
    cfg: &serde_json::Value,
    nofile: Option<u32>,
) -> Binary {
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, cfg.to_string()).expect("write config");
    // A free port can be taken by another test before rotor binds it: then
    // rotor exits, and it is started again on another port.
    for attempt in 1..=3 {
        let (binary, status) = spawn(dir, name, &path, free_port(), nofile).await;
        match status {
            None => return binary,
            Some(_) if attempt < 3 => continue,
            Some(status) => panic!("{name} exited at start: {status} (see {name}.log)"),
        }
    }
    unreachable!("the loop returns or panics")
}

/// Like [`start`] on a given `port` (a test that must tell another process
/// the port first), with one attempt; the log goes to `<dir>/<name>.log`.
pub async fn start_at(dir: &Path, name: &str, cfg: &serde_json::Value, port: u16) -> Binary {
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, cfg.to_string()).expect("write config");
    let (binary, status) = spawn(dir, name, &path, port, None).await;
    if let Some(status) = status {
        panic!("{name} exited at start: {status} (see {name}.log)");
    }
    binary
}

/// Starts `rotor` with the config file at `path` on `port` (under
/// `ulimit -n nofile` when given), logging to `<dir>/<name>.log`, and waits
/// until the port accepts connections; the exit status when rotor has
/// already exited by then (the port was someone else's).
async fn spawn(
    dir: &Path,
    name: &str,
    path: &Path,
    port: u16,
    nofile: Option<u32>,
) -> (Binary, Option<std::process::ExitStatus>) {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log file");
    let mut cmd = match nofile {
        Some(n) => {
            let mut c = Command::new("sh");
            c.args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\"")])
                .arg(env!("CARGO_BIN_EXE_rotor"));
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_rotor")),
    };
    let child = cmd
        .args([
            "--config",
            path.to_str().expect("utf-8 path"),
            "--http_server.port",
            &port.to_string(),
        ])
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .expect("spawn rotor");
    let mut binary = Binary { child, port };
    wait_port(port, name).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let status = binary.child.try_wait().ok().flatten();
    (binary, status)
}

/// Waits (up to 15 s) until `port` on 127.0.0.1 accepts connections;
/// `what` names it if it never does.
pub async fn wait_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "{what} did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Calls `POST /api/<method>` with `key`; the reply must be 200 JSON.
pub async fn api(port: u16, key: &str, method: &str, body: serde_json::Value) -> serde_json::Value {
    let reply = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/api/{method}"))
        .header("X-API-Key", key)
        .json(&body)
        .send()
        .await
        .expect("api call");
    assert_eq!(reply.status().as_u16(), 200, "{method}");
    reply.json().await.expect("json reply")
}
