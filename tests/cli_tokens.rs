//! Integration tests of the token commands (`gentoken`, `gensubtoken`,
//! `checktoken`, `checksubtoken`). They need the real `crate::auth` module.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_rotor");

fn rotor(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(dir)
        .env_clear()
        .args(args)
        .output()
        .expect("run rotor")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn setup(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("config.json"), config).expect("write config");
    dir
}

#[test]
fn gentoken_then_checktoken() {
    let dir = setup(r#"{"client": {"token": {"hmac_secret_key": "secret"}}}"#);
    let out = rotor(dir.path(), &["gentoken", "-u", "42", "-t", "3600"]);
    assert!(out.status.success(), "{}", stdout(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("HMAC SHA-256 JWT for user \"42\" with expiration TTL 1h0m0s:")
    );
    let token = lines.next().expect("token line").to_string();
    let out = rotor(dir.path(), &["checktoken", &token]);
    assert!(out.status.success(), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("valid token for user 42\npayload: {"),
        "{text}"
    );

    let out = rotor(dir.path(), &["gentoken", "-q"]);
    assert!(out.status.success());
    let quiet = stdout(&out);
    assert!(
        !quiet.ends_with('\n') && quiet.split('.').count() == 3,
        "{quiet}"
    );
    let out = rotor(dir.path(), &["checktoken", &quiet]);
    assert!(
        stdout(&out).starts_with("valid token for anonymous user\n"),
        "{}",
        stdout(&out)
    );

    let out = rotor(dir.path(), &["gentoken", "-u", "1", "-t", "-1"]);
    assert!(stdout(&out).starts_with("HMAC SHA-256 JWT for user \"1\" without expiration:\n"));
}

#[test]
fn checktoken_rejects_bad_signature() {
    let dir = setup(r#"{"client": {"token": {"hmac_secret_key": "secret"}}}"#);
    let other = setup(r#"{"client": {"token": {"hmac_secret_key": "other"}}}"#);
    let out = rotor(other.path(), &["gentoken", "-q", "-u", "7"]);
    let token = stdout(&out);
    let out = rotor(dir.path(), &["checktoken", &token]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).starts_with("error: token with algorithm HS256 and claims {"),
        "{}",
        stdout(&out)
    );
    let out = rotor(dir.path(), &["checktoken"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).starts_with("error: provide token to check"));
}

#[test]
fn gensubtoken_then_checksubtoken_with_separate_config() {
    let dir = setup(
        r#"{"client": {"token": {"hmac_secret_key": "conn"}, "subscription_token": {"enabled": true, "hmac_secret_key": "subs"}}}"#,
    );
    let out = rotor(
        dir.path(),
        &["gensubtoken", "-u", "42", "-s", "news", "-t", "60"],
    );
    assert!(out.status.success(), "{}", stdout(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("HMAC SHA-256 JWT for user \"42\" and channel \"news\" with expiration TTL 1m0s:")
    );
    let token = lines.next().expect("token").to_string();
    let out = rotor(dir.path(), &["checksubtoken", &token]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(
        stdout(&out).starts_with(
            "valid subscription token for user \"42\" and channel \"news\"\npayload: {"
        ),
        "{}",
        stdout(&out)
    );
    let out = rotor(dir.path(), &["checktoken", &token]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "signed with the subscription secret"
    );
}

#[test]
fn token_commands_need_secret_and_channel() {
    let dir = setup("{}");
    let out = rotor(dir.path(), &["gentoken"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "error: no HMAC secret key set\n");
    let dir = setup(r#"{"client": {"token": {"hmac_secret_key": "secret"}}}"#);
    let out = rotor(dir.path(), &["gensubtoken", "-u", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "channel is required\n");
}
