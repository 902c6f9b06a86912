//! The interop runner shared by `tests/interop.rs` (client SDKs) and
//! `tests/interop_api.rs` (server API clients): starts the real `rotor`
//! binary with `tests/interop/config.json` on free ports, runs one scenario
//! script (Node or the venv's Python) against it and reports its output.
//!
//! The SDKs live in `tests/interop/node_modules` and `tests/interop/.venv`,
//! which `bash tests/run.sh` installs. When they are missing a test prints a
//! loud SKIP line and passes, unless `ROTOR_REQUIRE_INTEROP=1` (set by
//! `tests/run.sh`), in which case it fails.
//!
//! Scripts get `ROTOR_WS_URL`, `ROTOR_HTTP_URL` (the server's base
//! `http://127.0.0.1:port`), `ROTOR_HMAC_SECRET`, `ROTOR_ENCODING`,
//! `ROTOR_API_URL`, `ROTOR_API_KEY`, `ROTOR_GRPC_ADDR`, `ROTOR_GRPC_API_KEY`,
//! and `ROTOR_TRANSPORT` when the case names a transport ([`CaseOpts`]).
//!
//! [`run_case_with`] takes [`CaseOpts`]: the client transport, a patch
//! merged into the config, extra environment, another script, and files the
//! case needs (e.g. the Chromium binary of `tests/interop_browser.rs`).
//!
//! [`run_proxy_case`] first starts the gRPC proxy backend
//! `tests/interop/python/proxy_backend.py` (the venv's `grpcio`) and runs the
//! server with `tests/interop/config.json` plus a connect proxy and an rpc
//! proxy (for methods without a namespace) pointing at it.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long a scenario script may run before the runner kills it. The
/// scripts have their own 20 s deadline; this is the backstop.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the server may take to answer `/health`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// Which interpreter runs a scenario.
#[derive(Clone, Copy, Debug)]
pub enum Sdk {
    /// `tests/interop/js/<scenario>.mjs` with Node.
    Js,
    /// `tests/interop/python/<scenario>.py` with the venv's Python.
    Python,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/interop`.
pub fn interop_dir() -> PathBuf {
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

/// Why `sdk` cannot run here, if it cannot. `packages` are the npm
/// packages (Js) or Python modules (Python) the scenario imports.
fn missing_deps(sdk: Sdk, packages: &[&str]) -> Option<String> {
    match sdk {
        Sdk::Js => {
            if !node_available() {
                return Some("`node` is not on PATH".into());
            }
            for p in packages {
                let pkg = interop_dir()
                    .join("node_modules")
                    .join(p)
                    .join("package.json");
                if !pkg.exists() {
                    return Some(format!(
                        "{} is missing (npm packages not installed)",
                        pkg.display()
                    ));
                }
            }
            None
        }
        Sdk::Python => {
            let py = venv_python();
            if !py.exists() {
                return Some(format!("{} is missing (venv not created)", py.display()));
            }
            for m in packages {
                let found = Command::new(&py)
                    .args(["-c", &format!("import {m}")])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false);
                if !found {
                    return Some(format!("Python module `{m}` is missing from the venv"));
                }
            }
            None
        }
    }
}

/// A value of `tests/interop/config.json` at a `/`-separated JSON pointer.
fn config_str(pointer: &str) -> String {
    let text = fs::read_to_string(config_path()).expect("read tests/interop/config.json");
    let v: serde_json::Value =
        serde_json::from_str(&text).expect("tests/interop/config.json is JSON");
    v.pointer(pointer)
        .and_then(|s| s.as_str())
        .unwrap_or_else(|| panic!("{pointer} in tests/interop/config.json"))
        .to_string()
}

/// A loopback TCP port that was free a moment ago.
pub fn free_port() -> u16 {
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
    grpc_port: u16,
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
    fn log_tail(&self) -> String {
        tail(&self.log, 80)
    }

    /// Start the binary on free ports and wait for `/health`. Retries with
    /// other ports if the process exits early (e.g. a port was taken
    /// between our probe and its bind).
    /// With `tls`, the HTTP port speaks TLS: it is ready once it accepts
    /// connections.
    fn start(config: &Path, tls: bool) -> Server {
        let mut last_err = String::new();
        for _attempt in 0..3 {
            match Server::try_start(config, tls) {
                Ok(s) => return s,
                Err(e) => last_err = e,
            }
        }
        panic!("rotor did not start: {last_err}");
    }

    fn try_start(config: &Path, tls: bool) -> Result<Server, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
        let log = dir.path().join("rotor.log");
        let out = fs::File::create(&log).map_err(|e| format!("create log: {e}"))?;
        let err = out.try_clone().map_err(|e| format!("clone log: {e}"))?;
        let port = free_port();
        let grpc_port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_rotor"))
            .arg("--config")
            .arg(config)
            .arg("--http_server.port")
            .arg(port.to_string())
            .env("CENTRIFUGO_GRPC_API_PORT", grpc_port.to_string())
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
            grpc_port,
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
            let ready = if tls {
                TcpStream::connect(("127.0.0.1", port)).is_ok()
            } else {
                health_ok(port)
            };
            if ready {
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

pub struct ScriptOutput {
    /// `None` when it was killed or could not be waited for.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

fn run_script(cmd: Command) -> ScriptOutput {
    run_collect(cmd, SCRIPT_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `cmd` with stdin closed until it exits, or kills it once `timeout`
/// has passed; collects stdout and stderr either way. `Err` only when it
/// cannot be started.
pub fn run_collect(mut cmd: Command, timeout: Duration) -> Result<ScriptOutput, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {cmd:?}: {e}"))?;
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
    let deadline = Instant::now() + timeout;
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
    Ok(ScriptOutput {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
        timed_out,
    })
}

/// How long the proxy backend may take to print its port (it compiles
/// `proto/proxy.proto` first).
const BACKEND_STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// The Python modules the proxy backend imports.
const BACKEND_MODULES: &[&str] = &["grpc", "grpc_tools"];

/// A child process that prints `PORT <n>` as its first stdout line and
/// serves on that port; killed (and reaped) when dropped. It also exits by
/// itself when its stdin (held here) closes.
pub struct PortChild {
    child: Child,
    pub port: u16,
}

impl Drop for PortChild {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl PortChild {
    /// Spawns `cmd` (stdin and stdout piped here) and waits up to `timeout`
    /// for its `PORT <n>` line; `what` names it and `detail` adds to the
    /// panic message when the line does not come.
    pub fn spawn(
        cmd: &mut Command,
        timeout: Duration,
        what: &str,
        detail: impl FnOnce() -> String,
    ) -> PortChild {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
        let stdout = child.stdout.take().expect("stdout pipe");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut proc = PortChild { child, port: 0 };
        let line = rx.recv_timeout(timeout).unwrap_or_default();
        proc.port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "{what} did not print `PORT <n>` in time (got {line:?}){}",
                    detail()
                )
            });
        proc
    }
}

/// The running Python proxy backend.
struct Backend(PortChild);

impl Backend {
    /// Starts `python/proxy_backend.py` and waits for its `PORT <n>` line.
    fn start() -> Backend {
        Backend(PortChild::spawn(
            Command::new(venv_python())
                .arg(interop_dir().join("python").join("proxy_backend.py"))
                .env("PYTHONDONTWRITEBYTECODE", "1")
                .env("PYTHONUNBUFFERED", "1")
                .current_dir(interop_dir())
                .stderr(Stdio::inherit()),
            BACKEND_STARTUP_TIMEOUT,
            "proxy backend",
            String::new,
        ))
    }

    /// Points the connect proxy and the namespace-less rpc proxy of the
    /// config `v` at this backend.
    fn configure(&self, v: &mut serde_json::Value) {
        let endpoint = format!("grpc://127.0.0.1:{}", self.0.port);
        v["client"]["proxy"] = serde_json::json!({
            "connect": {"enabled": true, "endpoint": endpoint, "timeout": "5s"}
        });
        v["rpc"] = serde_json::json!({
            "proxy": {"endpoint": endpoint, "timeout": "5s"},
            "without_namespace": {"proxy_enabled": true}
        });
    }
}

/// `tests/interop/config.json` as JSON.
fn base_config() -> serde_json::Value {
    let text = fs::read_to_string(config_path()).expect("read tests/interop/config.json");
    serde_json::from_str(&text).expect("tests/interop/config.json is JSON")
}

/// Merges `patch` into `v`: objects key by key (recursively), anything else
/// replaces what was there.
fn merge(v: &mut serde_json::Value, patch: &serde_json::Value) {
    match (v, patch) {
        (serde_json::Value::Object(dst), serde_json::Value::Object(src)) => {
            for (k, pv) in src {
                merge(dst.entry(k.clone()).or_insert(serde_json::Value::Null), pv);
            }
        }
        (dst, pv) => *dst = pv.clone(),
    }
}

/// What a case changes beyond SDK, scenario and encoding. The default is a
/// plain case: the SDK's default transport (websocket), `config.json` as is,
/// `js/<scenario>.mjs` or `python/<scenario>.py`.
#[derive(Clone, Debug, Default)]
pub struct CaseOpts {
    /// `ROTOR_TRANSPORT` for the script (`websocket`, `http_stream`, `sse`).
    pub transport: Option<String>,
    /// Merged into `config.json` (objects key by key) before the server starts.
    pub config_patch: Option<serde_json::Value>,
    /// Extra environment for the script.
    pub env: Vec<(String, String)>,
    /// The script, relative to `tests/interop`, instead of the scenario's own.
    pub script: Option<String>,
    /// Files the case needs besides the SDK packages, each with what to do
    /// when it is missing; a missing one skips (or, with
    /// `ROTOR_REQUIRE_INTEROP=1`, fails) the case like a missing SDK.
    pub needs: Vec<(PathBuf, String)>,
    /// The label in SKIP and FAILED messages, instead of `sdk/encoding/scenario`.
    pub label: Option<String>,
    /// The HTTP port speaks TLS (`config_patch` sets `http_server.tls`):
    /// the script gets `wss://` and `https://` URLs and trusts this CA.
    pub tls_ca: Option<PathBuf>,
}

/// Why the case cannot run here, if it cannot: the SDK's own packages, and
/// the backend's Python modules when it needs the proxy backend.
fn missing_case_deps(sdk: Sdk, packages: &[&str], backend: bool) -> Option<String> {
    missing_deps(sdk, packages).or_else(|| {
        backend
            .then(|| missing_deps(Sdk::Python, BACKEND_MODULES))
            .flatten()
            .map(|why| format!("proxy backend: {why}"))
    })
}

/// Runs `scenario` with `sdk` and `encoding` against a fresh server;
/// `packages` are what the script imports beyond the interpreter.
#[allow(dead_code)] // tests/interop_proxy.rs uses run_proxy_case only
pub fn run_case(sdk: Sdk, scenario: &str, encoding: &str, packages: &[&str]) {
    run(sdk, scenario, encoding, packages, false);
}

/// Like [`run_case`], with the server's connect and rpc proxies served by
/// `tests/interop/python/proxy_backend.py` (started first).
#[allow(dead_code)] // only tests/interop_proxy.rs uses it
pub fn run_proxy_case(sdk: Sdk, scenario: &str, encoding: &str, packages: &[&str]) {
    run(sdk, scenario, encoding, packages, true);
}

fn run(sdk: Sdk, scenario: &str, encoding: &str, packages: &[&str], proxy: bool) {
    run_case_with(
        sdk,
        scenario,
        encoding,
        packages,
        proxy,
        &CaseOpts::default(),
    );
}

/// Like [`run_case`] (or [`run_proxy_case`] when `proxy`), changed by `opts`.
pub fn run_case_with(
    sdk: Sdk,
    scenario: &str,
    encoding: &str,
    packages: &[&str],
    proxy: bool,
    opts: &CaseOpts,
) {
    let label = opts.label.clone().unwrap_or_else(|| match &opts.transport {
        Some(t) => format!("{sdk:?}/{t}/{encoding}/{scenario}").to_lowercase(),
        None => format!("{sdk:?}/{encoding}/{scenario}").to_lowercase(),
    });
    let missing = missing_case_deps(sdk, packages, proxy).or_else(|| {
        opts.needs
            .iter()
            .find(|(path, _)| !path.exists())
            .map(|(path, hint)| format!("{} is missing ({hint})", path.display()))
    });
    if let Some(why) = missing {
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

    let scratch = tempfile::tempdir().expect("tempdir");
    let backend = proxy.then(Backend::start);
    let config = if backend.is_none() && opts.config_patch.is_none() {
        config_path()
    } else {
        let mut v = base_config();
        if let Some(b) = &backend {
            b.configure(&mut v);
        }
        if let Some(patch) = &opts.config_patch {
            merge(&mut v, patch);
        }
        let path = scratch.path().join("config.json");
        fs::write(&path, v.to_string()).expect("write the case's config");
        path
    };
    let server = Server::start(&config, opts.tls_ca.is_some());
    let script = |dir: &str, ext: &str| match &opts.script {
        Some(s) => interop_dir().join(s),
        None => interop_dir().join(dir).join(format!("{scenario}.{ext}")),
    };
    let mut cmd = match sdk {
        Sdk::Js => {
            let mut c = Command::new("node");
            c.arg(script("js", "mjs"));
            c
        }
        Sdk::Python => {
            let mut c = Command::new(venv_python());
            c.arg(script("python", "py"));
            c.env("PYTHONDONTWRITEBYTECODE", "1")
                .env("PYTHONUNBUFFERED", "1");
            c
        }
    };
    let http = format!("127.0.0.1:{}", server.port);
    let (ws, https) = match &opts.tls_ca {
        Some(ca) => {
            // Node, Python's ssl (websockets, httpx) and requests trust it.
            // ROTOR_GRPC_CA: api_grpc.py's channels (grpcio reads no
            // environment for its roots).
            for var in [
                "NODE_EXTRA_CA_CERTS",
                "SSL_CERT_FILE",
                "REQUESTS_CA_BUNDLE",
                "ROTOR_GRPC_CA",
            ] {
                cmd.env(var, ca);
            }
            ("wss", "https")
        }
        None => ("ws", "http"),
    };
    cmd.arg(encoding)
        .current_dir(interop_dir())
        .env(
            "ROTOR_WS_URL",
            format!("{ws}://{http}/connection/websocket"),
        )
        .env("ROTOR_HTTP_URL", format!("{https}://{http}"))
        .env(
            "ROTOR_HMAC_SECRET",
            config_str("/client/token/hmac_secret_key"),
        )
        .env("ROTOR_ENCODING", encoding)
        .env("ROTOR_API_URL", format!("{https}://{http}/api"))
        .env("ROTOR_API_KEY", config_str("/http_api/key"))
        .env("ROTOR_GRPC_ADDR", format!("127.0.0.1:{}", server.grpc_port))
        .env("ROTOR_GRPC_API_KEY", config_str("/grpc_api/key"));
    if let Some(t) = &opts.transport {
        cmd.env("ROTOR_TRANSPORT", t);
    }
    cmd.envs(opts.env.iter().map(|(k, v)| (k, v)));
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
    drop(backend);
    panic!(
        "\ninterop {label} FAILED: the script {how}\n\
         ---- script stdout ----\n{}\n---- script stderr ----\n{}\n\
         ---- rotor log (tail) ----\n{log}\n",
        out.stdout.trim_end(),
        out.stderr.trim_end()
    );
}
