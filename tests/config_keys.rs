//! The key table (`src/config/keys.tsv`) walked through the real binary:
//! every refused key, set alone in a config file, makes `rotor checkconfig`
//! exit non-zero naming it; every warned key gets its warning; a refused key
//! set through its `CENTRIFUGO_*` variable is refused too.

use std::path::Path;
use std::process::{Command, Output};

use rotor::config::keys::{self, Class, Row};

const BIN: &str = env!("CARGO_BIN_EXE_rotor");

fn checkconfig(dir: &Path, config: &serde_json::Value, env: &[(String, String)]) -> Output {
    let path = dir.join("config.json");
    std::fs::write(&path, config.to_string()).expect("write config");
    Command::new(BIN)
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(["checkconfig", "-c", "config.json"])
        .output()
        .expect("run rotor")
}

fn of_class(class: Class) -> Vec<&'static Row> {
    keys::rows().iter().filter(|r| r.class == class).collect()
}

#[test]
fn every_refused_key_alone_fails_checkconfig_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let refused = of_class(Class::Refused);
    assert!(refused.len() > 300, "{}", refused.len());
    for row in refused {
        let (tree, paths) = keys::sample_tree([row]);
        let out = checkconfig(dir.path(), &tree, &[]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{}: {text}", row.key);
        assert!(
            text.starts_with("error validating config: not supported by Rotor: "),
            "{}: {text}",
            row.key
        );
        assert!(text.contains(&paths[0]), "{}: {text}", row.key);
        assert!(text.contains(row.note), "{}: {text}", row.key);
    }
}

#[test]
fn all_refused_keys_at_once_are_all_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tree, paths) = keys::sample_tree(of_class(Class::Refused));
    let out = checkconfig(dir.path(), &tree, &[]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let missing: Vec<&String> = paths
        .iter()
        .filter(|p| !text.contains(p.as_str()))
        .collect();
    assert!(missing.is_empty(), "not named: {missing:?}");
}

#[test]
fn every_warned_key_gets_one_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tree, paths) = keys::sample_tree(of_class(Class::Warned));
    let out = checkconfig(dir.path(), &tree, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for path in &paths {
        let line = format!("warning: {path} is set but has no effect in Rotor: ");
        let count = stderr.lines().filter(|l| l.starts_with(&line)).count();
        assert_eq!(count, 1, "{path}: {stderr}");
    }
}

#[test]
fn warned_keys_alone_pass_checkconfig() {
    let dir = tempfile::tempdir().expect("tempdir");
    for key in [
        "graphite.host",
        "engine.redis.force_resp2",
        "websocket.read_buffer_size",
        "uni_websocket.compression",
    ] {
        let row = keys::row(key).expect("row");
        let (tree, _) = keys::sample_tree([row]);
        let out = checkconfig(dir.path(), &tree, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{key}: {} {stderr}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(stderr.contains("has no effect in Rotor"), "{key}: {stderr}");
    }
}

#[test]
fn refused_keys_from_the_environment_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rows: Vec<&Row> = of_class(Class::Refused)
        .into_iter()
        .filter(|r| !r.key.contains("[]"))
        .collect();
    let mut env = Vec::new();
    for row in &rows {
        let value = match row.sample() {
            serde_json::Value::String(s) => s,
            serde_json::Value::Array(items) => items
                .iter()
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            other => other.to_string(),
        };
        let var = format!(
            "CENTRIFUGO_{}",
            row.key.replace('.', "_").to_ascii_uppercase()
        );
        env.push((var, value));
        // Switches above the key go on, as in a file.
        let mut end = row.key.len();
        while let Some(dot) = row.key[..end].rfind('.') {
            end = dot;
            let switch = format!("{}.enabled", &row.key[..dot]);
            if switch != row.key && keys::row(&switch).is_some() {
                let var = format!(
                    "CENTRIFUGO_{}",
                    switch.replace('.', "_").to_ascii_uppercase()
                );
                env.push((var, "true".into()));
            }
        }
    }
    let out = checkconfig(dir.path(), &serde_json::json!({}), &env);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let missing: Vec<&str> = rows
        .iter()
        .map(|r| r.key)
        .filter(|k| !text.contains(k))
        .collect();
    assert!(missing.is_empty(), "not named: {missing:?}\n{text}");
}
