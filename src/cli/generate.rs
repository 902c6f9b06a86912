//! `genconfig`, `defaultconfig` and `defaultenv`: writing configuration out.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde_json::{Value, json};

use super::{fail, read_config};
use crate::config::env::{Kind, get_path};
use crate::config::formats::{self, Format};
use crate::config::{self, Config, Duration};

const EXTENSIONS_ERROR: &str =
    "error: output config file must have one of supported extensions: json, toml, yaml, yml";

pub(super) fn random_secret(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

fn write_new(path: &Path, text: &str, mode: u32) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    options.open(path)?.write_all(text.as_bytes())
}

/// Writes a minimal config with fresh secrets (mode 0600), then checks it.
pub(super) fn genconfig(path: &Path) -> ExitCode {
    let Some(format) = Format::from_path(path) else {
        return fail(EXTENSIONS_ERROR);
    };
    if path.exists() {
        return fail(format!(
            "error: output config file already exists: {}",
            path.display()
        ));
    }
    let value = json!({
        "client": {
            "token": {"hmac_secret_key": random_secret(64)},
            "allowed_origins": [],
        },
        "admin": {
            "enabled": false,
            "password": random_secret(16),
            "secret": random_secret(64),
        },
        "http_api": {"key": random_secret(64)},
    });
    let text = match formats::render(&value, format) {
        Ok(t) => t,
        Err(e) => return fail(format!("error: {e}")),
    };
    if let Err(e) = write_new(path, &text, 0o600) {
        return fail(format!("error: {e}"));
    }
    let loaded = match config::read(path, &[]) {
        Ok(l) => l,
        Err(e) => {
            let _ = std::fs::remove_file(path);
            return fail(format!("error getting config: {e}"));
        }
    };
    if let Err(e) = config::validate(&loaded.config) {
        let _ = std::fs::remove_file(path);
        return fail(format!("error validating config: {e}"));
    }
    ExitCode::SUCCESS
}

/// The full config with defaults (base file and env merged) in the output
/// file's format; printed with `--dry-run`.
pub(super) fn defaultconfig(path: &Path, base: &Path, dry_run: bool) -> ExitCode {
    if !dry_run && path.exists() {
        return fail("error: target file already exists");
    }
    let cfg = match validated(base) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(format) = Format::from_path(path) else {
        return fail(EXTENSIONS_ERROR);
    };
    let rendered = match format {
        Format::Json => serde_json::to_string_pretty(&cfg).map_err(|e| e.to_string()),
        Format::Toml => toml::to_string(&cfg).map_err(|e| e.to_string()),
        Format::Yaml => serde_json::to_value(&cfg)
            .map_err(|e| e.to_string())
            .and_then(|v| formats::render(&v, Format::Yaml)),
    };
    let text = match rendered {
        Ok(t) => t,
        Err(e) => return fail(format!("error: {e}")),
    };
    if dry_run {
        println!("{text}");
        return ExitCode::SUCCESS;
    }
    match write_new(path, &text, 0o644) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(format!("error: {e}")),
    }
}

fn validated(base: &Path) -> Result<Config, ExitCode> {
    let loaded = read_config(base).map_err(|_| ExitCode::FAILURE)?;
    config::validate(&loaded.config).map_err(|e| fail(format!("error: {e}")))?;
    Ok(loaded.config)
}

/// Prints every known `CENTRIFUGO_*` variable with its current value.
pub(super) fn defaultenv(base: &Path, non_zero_only: bool) -> ExitCode {
    let cfg = match validated(base) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Ok(value) = serde_json::to_value(&cfg) else {
        return fail("error: cannot serialize config");
    };
    let mut lines: Vec<String> = Vec::new();
    for (var, path, kind) in config::known_env_vars(&value) {
        let Some(current) = value_at(&value, &path) else {
            continue;
        };
        if non_zero_only && is_zero(current) {
            continue;
        }
        lines.push(format!("{var}={}", env_text(current, kind)));
    }
    lines.sort();
    lines.dedup();
    for line in lines {
        println!("{line}");
    }
    ExitCode::SUCCESS
}

/// The value at a key path that may contain one `array[i].` step.
fn value_at<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    match path.split_once('[') {
        None => get_path(root, path),
        Some((array, rest)) => {
            let (index, leaf) = rest.split_once("].")?;
            let item = get_path(root, array)?.get(index.parse::<usize>().ok()?)?;
            get_path(item, leaf)
        }
    }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => {
            s.is_empty() || (s.ends_with('s') && Duration::parse(s).is_ok_and(Duration::is_zero))
        }
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Formats a value the way Centrifugo's `defaultenv` does: strings quoted,
/// durations/bools/numbers bare, lists space-separated, objects as quoted
/// JSON, named arrays as a quoted list of names.
fn env_text(v: &Value, kind: Kind) -> String {
    let quoted_json = |v: &Value| format!("\"{}\"", v.to_string().replace('"', "\\\""));
    match (kind, v) {
        (Kind::Named, Value::Array(items)) => {
            let names: Vec<&str> = items
                .iter()
                .filter_map(|i| i.get("name").and_then(Value::as_str))
                .collect();
            format!("\"{}\"", names.join(" "))
        }
        (_, Value::Array(items)) if items.is_empty() => "\"\"".into(),
        (_, Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => format!("\"{s}\""),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" "),
        (Kind::Duration, Value::String(s)) => s.clone(),
        (_, Value::String(s)) => format!("\"{s}\""),
        (_, Value::Object(_)) => quoted_json(v),
        (_, other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_text_like_centrifugo() {
        assert_eq!(env_text(&json!("25s"), Kind::Duration), "25s");
        assert_eq!(env_text(&json!("memory"), Kind::Str), "\"memory\"");
        assert_eq!(env_text(&json!(true), Kind::Bool), "true");
        assert_eq!(env_text(&json!(8000), Kind::Int), "8000");
        assert_eq!(env_text(&json!([]), Kind::StrList), "\"\"");
        assert_eq!(env_text(&json!(["a", "b"]), Kind::StrList), "\"a\" \"b\"");
        assert_eq!(env_text(&json!({"a": 1}), Kind::Json), "\"{\\\"a\\\":1}\"");
        assert_eq!(
            env_text(&json!([{"name": "x"}, {"name": "y"}]), Kind::Named),
            "\"x y\""
        );
    }

    #[test]
    fn value_paths_and_zero() {
        let v = json!({"channel": {"namespaces": [{"name": "a", "presence": true}]}});
        assert_eq!(
            value_at(&v, "channel.namespaces[0].presence"),
            Some(&json!(true))
        );
        assert_eq!(value_at(&v, "channel.namespaces[1].presence"), None);
        assert!(is_zero(&json!("0s")));
        assert!(is_zero(&json!("")));
        assert!(!is_zero(&json!("1s")));
        assert!(!is_zero(&json!({"a": 1})));
    }
}
