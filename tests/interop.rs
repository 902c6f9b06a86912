//! Interop suite: the official Centrifugo client SDKs (centrifuge-js 5.8 and
//! centrifuge-python 0.7) against the real `rotor` binary.
//!
//! Every test is one scenario × one SDK × one encoding. It starts its own
//! `rotor --config tests/interop/config.json --http_server.port <free port>`,
//! waits for `/health`, runs the scenario script (`tests/interop/js/*.mjs`
//! with Node, or `tests/interop/python/*.py` with the venv's Python) with
//! `ROTOR_WS_URL` / `ROTOR_HMAC_SECRET` / `ROTOR_ENCODING` set, and kills the
//! server at the end (a Drop guard does it on failure too).
//!
//! The SDKs live in `tests/interop/node_modules` and `tests/interop/.venv`,
//! which `bash tests/run.sh` installs. When they are missing the tests print a
//! loud SKIP line and pass, unless `ROTOR_REQUIRE_INTEROP=1` (set by
//! `tests/run.sh`), in which case they fail.
//!
//! Run one: `cargo test --test interop recovery::js_protobuf -- --nocapture`.
//! Useful env: `ROTOR_INTEROP_DEBUG=1` (SDK debug logs), `ROTOR_SCENARIO_TIMEOUT_MS`.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long a scenario script may run before the runner kills it. The
/// scripts have their own 20 s deadline; this is the backstop.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the server may take to answer `/health`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, Debug)]
enum Sdk {
    Js,
    Python,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn interop_dir() -> PathBuf {
    root().join("tests").join("interop")
}

fn config_path() -> PathBuf {
    interop_dir().join("config.json")
}

fn venv_python() -> PathBuf {
    interop_dir().join(".venv").join("bin").join("python")
}

fn node_available() -> bool {
    Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Why the SDK for `sdk` cannot run here, if it cannot.
fn missing_deps(sdk: Sdk) -> Option<String> {
    match sdk {
        Sdk::Js => {
            if !node_available() {
                return Some("`node` is not on PATH".into());
            }
            let pkg = interop_dir().join("node_modules/centrifuge/package.json");
            if !pkg.exists() || !interop_dir().join("node_modules/ws/package.json").exists() {
                return Some(format!(
                    "{} is missing (npm packages not installed)",
                    pkg.display()
                ));
            }
            None
        }
        Sdk::Python => {
            let py = venv_python();
            if !py.exists() {
                return Some(format!("{} is missing (venv not created)", py.display()));
            }
            None
        }
    }
}

fn hmac_secret() -> String {
    let text = fs::read_to_string(config_path()).expect("read tests/interop/config.json");
    let v: serde_json::Value =
        serde_json::from_str(&text).expect("tests/interop/config.json is JSON");
    v["client"]["token"]["hmac_secret_key"]
        .as_str()
        .expect("client.token.hmac_secret_key in tests/interop/config.json")
        .to_string()
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    all[start..].join("\n")
}

/// A running `rotor`; killed (and reaped) when dropped.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/connection/websocket", self.port)
    }

    fn log_tail(&self) -> String {
        tail(&self.log, 80)
    }

    /// Start the binary on a free port and wait for `/health`. Retries with
    /// another port if the process exits early (e.g. the port was taken
    /// between our probe and its bind).
    fn start() -> Server {
        let mut last_err = String::new();
        for _attempt in 0..3 {
            match Server::try_start() {
                Ok(s) => return s,
                Err(e) => last_err = e,
            }
        }
        panic!("rotor did not start: {last_err}");
    }

    fn try_start() -> Result<Server, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
        let log = dir.path().join("rotor.log");
        let out = fs::File::create(&log).map_err(|e| format!("create log: {e}"))?;
        let err = out.try_clone().map_err(|e| format!("clone log: {e}"))?;
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_rotor"))
            .arg("--config")
            .arg(config_path())
            .arg("--http_server.port")
            .arg(port.to_string())
            // A scratch cwd: no stray `.env` or `config.json` is picked up.
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", env!("CARGO_BIN_EXE_rotor")))?;
        let mut server = Server {
            child,
            port,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "rotor exited during startup with {status} (port {port}); log:\n{}",
                    server.log_tail()
                ));
            }
            if health_ok(port) {
                return Ok(server);
            }
            if Instant::now() > deadline {
                // Not retried: a server that runs but never answers is a bug.
                let tail = server.log_tail();
                drop(server);
                panic!(
                    "rotor did not answer GET /health on 127.0.0.1:{port} within {STARTUP_TIMEOUT:?} \
                     (is health.enabled honoured?); log:\n{tail}"
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

fn health_ok(port: u16) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    let req =
        format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let head = String::from_utf8_lossy(&buf);
    head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200")
}

struct ScriptOutput {
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
    timed_out: bool,
}

fn run_script(mut cmd: Command) -> ScriptOutput {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let mut out_pipe = child.stdout.take().expect("stdout pipe");
    let mut err_pipe = child.stderr.take().expect("stderr pipe");
    let out_t = thread::spawn(move || {
        let mut s = String::new();
        let _ = out_pipe.read_to_string(&mut s);
        s
    });
    let err_t = thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) => {}
            Err(_) => break None,
        }
        if Instant::now() > deadline {
            timed_out = true;
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(50));
    };
    ScriptOutput {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
        timed_out,
    }
}

fn run_case(sdk: Sdk, scenario: &str, encoding: &str) {
    let label = format!("{sdk:?}/{encoding}/{scenario}").to_lowercase();
    if let Some(why) = missing_deps(sdk) {
        if std::env::var("ROTOR_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!(
                "interop {label}: {why}. Run `bash tests/run.sh` (it installs the SDKs into \
                 tests/interop/node_modules and tests/interop/.venv)."
            );
        }
        eprintln!(
            "\n!!!!!!!! SKIP interop {label}: {why}. Run `bash tests/run.sh` to install the SDKs \
             (set ROTOR_REQUIRE_INTEROP=1 to make this a failure) !!!!!!!!\n"
        );
        return;
    }

    let server = Server::start();
    let mut cmd = match sdk {
        Sdk::Js => {
            let mut c = Command::new("node");
            c.arg(interop_dir().join("js").join(format!("{scenario}.mjs")));
            c
        }
        Sdk::Python => {
            let mut c = Command::new(venv_python());
            c.arg(interop_dir().join("python").join(format!("{scenario}.py")));
            c.env("PYTHONDONTWRITEBYTECODE", "1")
                .env("PYTHONUNBUFFERED", "1");
            c
        }
    };
    cmd.arg(encoding)
        .current_dir(interop_dir())
        .env("ROTOR_WS_URL", server.ws_url())
        .env("ROTOR_HMAC_SECRET", hmac_secret())
        .env("ROTOR_ENCODING", encoding);
    let out = run_script(cmd);
    let passed = !out.timed_out && out.status.map(|s| s.success()).unwrap_or(false);
    if passed {
        println!("{}", out.stdout);
        return;
    }
    let how = if out.timed_out {
        format!("was killed after {SCRIPT_TIMEOUT:?}")
    } else {
        format!("exited with {:?}", out.status)
    };
    let log = server.log_tail();
    drop(server);
    panic!(
        "\ninterop {label} FAILED: the script {how}\n\
         ---- script stdout ----\n{}\n---- script stderr ----\n{}\n\
         ---- rotor log (tail) ----\n{log}\n",
        out.stdout.trim_end(),
        out.stderr.trim_end()
    );
}

/// One module per scenario, one test per SDK × encoding:
/// `connect::js_json`, `connect::js_protobuf`, `connect::python_json`, ...
macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use super::{run_case, Sdk};
                #[test]
                fn js_json() { run_case(Sdk::Js, stringify!($name), "json") }
                #[test]
                fn js_protobuf() { run_case(Sdk::Js, stringify!($name), "protobuf") }
                #[test]
                fn python_json() { run_case(Sdk::Python, stringify!($name), "json") }
                #[test]
                fn python_protobuf() { run_case(Sdk::Python, stringify!($name), "protobuf") }
            }
        )*

        /// Every scenario has its script in both SDKs (no network, no server).
        #[test]
        fn every_scenario_has_both_scripts() {
            for s in [$(stringify!($name)),*] {
                for p in [format!("js/{s}.mjs"), format!("python/{s}.py")] {
                    assert!(interop_dir().join(&p).exists(), "tests/interop/{p} is missing");
                }
            }
        }
    };
}

scenarios!(
    connect,
    pubsub,
    history,
    recovery,
    presence,
    join_leave,
    token_refresh,
    sub_token,
    user_limited,
    permissions,
    server_subs,
);
