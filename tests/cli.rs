//! Integration tests of the `rotor` command line (config commands, `serve`).
//! Every run uses a clean environment and a temporary working directory so
//! that no `CENTRIFUGO_*` variable or `./.env` file leaks in.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_rotor");

fn real_world_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/centrifugo_test.json")
}

fn rotor(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir).env_clear().args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run rotor")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

#[test]
fn version() {
    let dir = tmp();
    let out = rotor(dir.path(), &["version"], &[]);
    assert!(out.status.success());
    assert_eq!(
        stdout(&out),
        format!(
            "Rotor v{} (Centrifugo v6 compatible)\n",
            env!("CARGO_PKG_VERSION")
        )
    );
}

/// The real-world config less the map and shared poll subscriptions that
/// Rotor refuses until they are built.
fn real_world_without_refused(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(real_world_config()).expect("read");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
    for item in v["channel"]["namespaces"]
        .as_array_mut()
        .expect("namespaces")
    {
        let item = item.as_object_mut().expect("object");
        for key in ["subscription_type", "map", "shared_poll"] {
            item.remove(key);
        }
    }
    v.as_object_mut().expect("object").remove("shared_poll");
    let path = dir.join("real-world.json");
    std::fs::write(&path, v.to_string()).expect("write");
    path
}

#[test]
fn checkconfig_real_world_config_names_what_is_refused_and_warned() {
    let dir = tmp();
    let path = real_world_config();
    let out = rotor(
        dir.path(),
        &["checkconfig", "-c", path.to_str().expect("utf-8 path")],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.starts_with("error validating config: not supported by Rotor: "),
        "{text}"
    );
    assert!(
        text.contains("channel.namespaces[3].shared_poll.mode"),
        "{text}"
    );
    assert!(
        text.contains("channel.namespaces[0].subscription_type"),
        "{text}"
    );

    let path = real_world_without_refused(dir.path());
    let path = path.to_str().expect("utf-8 path");
    for args in [
        vec!["checkconfig", "-c", path],
        vec!["checkconfig", "--config", path, "--strict"],
    ] {
        let out = rotor(dir.path(), &args, &[]);
        assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
        assert_eq!(stdout(&out), "");
        // Delta is built: the real-world config has nothing without effect.
        assert_eq!(stderr(&out), "");
    }
}

#[test]
fn checkconfig_missing_file() {
    let dir = tmp();
    let out = rotor(dir.path(), &["checkconfig"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "config file not found\n");
    let out = rotor(dir.path(), &["checkconfig", "-c", "nope.yaml"], &[]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn checkconfig_strict_fails_on_unknown_keys() {
    let dir = tmp();
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"bogus": 1, "client": {"insecure": true, "tokn": {}}}"#,
    )
    .expect("write");
    let out = rotor(dir.path(), &["checkconfig"], &[]);
    assert!(out.status.success(), "non-strict passes: {}", stdout(&out));
    let out = rotor(dir.path(), &["checkconfig", "-s"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "unknown keys in config: bogus, client.tokn\n");
}

#[test]
fn checkconfig_reports_validation_and_read_errors() {
    let dir = tmp();
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"client": {"ping_interval": "5s", "pong_timeout": "10s"}}"#,
    )
    .expect("write");
    let out = rotor(dir.path(), &["checkconfig"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).starts_with("error validating config: client.ping_interval: must be greater than client.pong_timeout"),
        "{}",
        stdout(&out)
    );
    std::fs::write(dir.path().join("bad.json"), "{").expect("write");
    let out = rotor(dir.path(), &["checkconfig", "-c", "bad.json"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).starts_with("error getting config: error reading config file bad.json"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn checkconfig_refuses_features_not_built_by_name() {
    let dir = tmp();
    for (config, key) in [
        (
            r#"{"consumers": [{"name": "outbox", "enabled": true, "type": "postgresql"}]}"#,
            "consumers[0].type",
        ),
        (r#"{"admin": {"enabled": true}}"#, "admin.enabled"),
        (
            r#"{"webtransport": {"enabled": true}}"#,
            "webtransport.enabled",
        ),
    ] {
        std::fs::write(dir.path().join("config.json"), config).expect("write");
        let out = rotor(dir.path(), &["checkconfig"], &[]);
        assert_eq!(out.status.code(), Some(1), "{config}");
        let text = stdout(&out);
        assert!(text.starts_with("error validating config: "), "{text}");
        assert!(text.contains(key), "{text}");
        assert!(text.contains("not supported"), "{text}");
    }
}

#[test]
fn checkconfig_applies_env_and_dotenv() {
    let dir = tmp();
    std::fs::write(dir.path().join("config.json"), "{}").expect("write");
    let out = rotor(
        dir.path(),
        &["checkconfig"],
        &[("CENTRIFUGO_LOG_LEVEL", "loud")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("log.level"), "{}", stdout(&out));
    std::fs::write(
        dir.path().join(".env"),
        "CENTRIFUGO_BROKER_ENABLED=true\nCENTRIFUGO_BROKER_TYPE=postgres\n",
    )
    .expect("write");
    let out = rotor(dir.path(), &["checkconfig"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("broker.type: \"postgres\" is not supported"),
        "{}",
        stdout(&out)
    );
    let out = rotor(
        dir.path(),
        &["checkconfig"],
        &[("CENTRIFUGO_BROKER_TYPE", "memory")],
    );
    assert!(
        out.status.success(),
        "process env wins over .env: {}",
        stdout(&out)
    );
}

#[test]
fn genconfig_creates_valid_config_and_refuses_overwrite() {
    let dir = tmp();
    for name in ["config.json", "c.yaml", "c.toml"] {
        let out = rotor(dir.path(), &["genconfig", "-c", name], &[]);
        assert!(out.status.success(), "{name}: {}", stdout(&out));
        let path = dir.path().join(name);
        let text = std::fs::read_to_string(&path).expect("generated file");
        assert!(text.contains("hmac_secret_key"), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
        let out = rotor(dir.path(), &["checkconfig", "--strict", "-c", name], &[]);
        assert!(out.status.success(), "{name}: {}", stdout(&out));
        let out = rotor(dir.path(), &["genconfig", "-c", name], &[]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{name}: must refuse to overwrite"
        );
        assert_eq!(std::fs::read_to_string(&path).expect("still there"), text);
    }
    let out = rotor(dir.path(), &["genconfig", "-c", "c.ini"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!dir.path().join("c.ini").exists());
}

#[test]
fn defaultconfig_dry_run_prints_json() {
    let dir = tmp();
    let out = rotor(dir.path(), &["defaultconfig", "--dry-run"], &[]);
    assert!(out.status.success(), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("\"ping_interval\": \"25s\""), "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(v["http_server"]["port"], 8000);
    assert_eq!(v["channel"]["history_meta_ttl"], "720h0m0s");
    assert!(
        !dir.path().join("config.json").exists(),
        "dry run writes nothing"
    );
}

#[test]
fn defaultconfig_writes_formats_merges_base_and_refuses_overwrite() {
    let dir = tmp();
    std::fs::write(
        dir.path().join("base.json"),
        r#"{"client": {"ping_interval": "20s"}}"#,
    )
    .expect("write");
    for name in ["full.json", "full.yaml", "full.toml"] {
        let out = rotor(
            dir.path(),
            &["defaultconfig", "-c", name, "-b", "base.json"],
            &[],
        );
        assert!(out.status.success(), "{name}: {}", stdout(&out));
        let out = rotor(dir.path(), &["checkconfig", "--strict", "-c", name], &[]);
        assert!(out.status.success(), "{name}: {}", stdout(&out));
        let text = std::fs::read_to_string(dir.path().join(name)).expect("written");
        assert!(text.contains("20s"), "{name}: base merged");
        let out = rotor(dir.path(), &["defaultconfig", "-c", name], &[]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(stdout(&out), "error: target file already exists\n");
    }
}

#[test]
fn defaultenv_lists_vars() {
    let dir = tmp();
    let out = rotor(dir.path(), &["defaultenv"], &[]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l == "CENTRIFUGO_CLIENT_PING_INTERVAL=25s"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l == "CENTRIFUGO_ENGINE_TYPE=\"memory\"")
    );
    assert!(
        text.lines()
            .any(|l| l == "CENTRIFUGO_CLIENT_INSECURE=false")
    );
    let mut sorted: Vec<&str> = text.lines().collect();
    sorted.sort_unstable();
    assert_eq!(sorted, text.lines().collect::<Vec<_>>());

    let base = real_world_without_refused(dir.path());
    let base = base.to_str().expect("utf-8 path");
    let out = rotor(
        dir.path(),
        &["defaultenv", "-b", base, "--base-non-zero-only"],
        &[],
    );
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(
        text.contains("CENTRIFUGO_CHANNEL_NAMESPACES=\"streamless recovery debounced poll\"\n"),
        "{text}"
    );
    assert!(text.contains("CENTRIFUGO_CHANNEL_NAMESPACES_RECOVERY_HISTORY_SIZE=100\n"));
    assert!(text.contains("CENTRIFUGO_CLIENT_INSECURE=true\n"));
    assert!(
        !text.contains("CENTRIFUGO_ADMIN_ENABLED="),
        "zero values skipped"
    );
}

#[test]
fn root_command_reports_config_errors_on_stderr() {
    let dir = tmp();
    let out = rotor(dir.path(), &["--log.level", "loud"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("error: log.level: "),
        "{}",
        stderr(&out)
    );
    let out = rotor(dir.path(), &["-p", "99999"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("error: http_server.port: "),
        "{}",
        stderr(&out)
    );
    let out = rotor(dir.path(), &["--client.insecure=maybe"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let out = rotor(dir.path(), &["--no-such-flag"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let out = rotor(
        dir.path(),
        &[
            "-c",
            "x.json",
            "--broker.enabled",
            "--broker.type",
            "postgres",
        ],
        &[],
    );
    assert_eq!(
        stderr(&out),
        "error: broker.type: \"postgres\" is not supported by this build yet\n"
    );
}

#[test]
fn configdoc_not_available() {
    let dir = tmp();
    let out = rotor(dir.path(), &["configdoc"], &[]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn serve_static_files() {
    let dir = tmp();
    std::fs::write(dir.path().join("hello.txt"), "hi there").expect("write");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let port_text = port.to_string();
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .env_clear()
        .args(["serve", "-a", "127.0.0.1", "-p", &port_text, "-d", "."])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let mut line = String::new();
    let child_stdout = child.stdout.take().expect("stdout");
    BufReader::new(child_stdout)
        .read_line(&mut line)
        .expect("read line");
    assert_eq!(line, format!("start serving . on 127.0.0.1:{port}\n"));
    let mut response = String::new();
    for _ in 0..50 {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let _ = s.read_to_string(&mut response);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("hi there"), "{response}");
}
