//! `CENTRIFUGO_*` environment variables and command-line flag values.
//!
//! Names are never split on `_` (keys contain `_`): every known key path is
//! generated from the default config (plus [`super::schema`] for sections
//! typed as free-form JSON) and looked up as `CENTRIFUGO_` + upper-cased path
//! with `.` → `_`. Values are typed by the default value's JSON type.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use super::duration::Duration;

/// Prefix of every config environment variable.
pub(crate) const PREFIX: &str = "CENTRIFUGO";

/// Arrays of objects addressable by item name in env vars.
pub(crate) const NAMED_ARRAYS: [&str; 4] = [
    "channel.namespaces",
    "rpc.namespaces",
    "proxies",
    "consumers",
];

/// How a raw env/flag text is turned into a JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Go `strconv.ParseBool`.
    Bool,
    /// A decimal integer.
    Int,
    /// Text as-is.
    Str,
    /// A Go duration string (`"25s"`), checked but kept as text.
    Duration,
    /// Space-separated list of strings (or a JSON array).
    StrList,
    /// JSON text (free-form objects).
    Json,
    /// JSON array of objects, or space-separated item names.
    Named,
}

/// `CENTRIFUGO_` + `path` upper-cased with `.` → `_`.
pub(crate) fn env_name(prefix: &str, path: &str) -> String {
    format!("{prefix}_{}", path.replace('.', "_").to_ascii_uppercase())
}

/// An item name as used inside env var names: upper-cased, `.`/`-` → `_`.
pub(crate) fn name_for_env(name: &str) -> String {
    name.replace(['.', '-'], "_").to_ascii_uppercase()
}

/// Every leaf key path of `default` (objects that are empty in the default
/// are free-form JSON leaves), with the kind used to parse env/flag text.
pub(crate) fn leaves(default: &Value) -> Vec<(String, Kind)> {
    let mut out = Vec::new();
    collect("", default, &mut out);
    out
}

fn collect(prefix: &str, value: &Value, out: &mut Vec<(String, Kind)>) {
    let kind = match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                collect(&path, v, out);
            }
            return;
        }
        Value::Object(_) | Value::Null => Kind::Json,
        Value::Array(_) if NAMED_ARRAYS.contains(&prefix) => Kind::Named,
        Value::Array(_) => Kind::StrList,
        Value::Bool(_) => Kind::Bool,
        Value::Number(_) => Kind::Int,
        Value::String(s) if Duration::parse(s).is_ok() => Kind::Duration,
        Value::String(_) => Kind::Str,
    };
    out.push((prefix.to_string(), kind));
}

/// Go's `strconv.ParseBool`.
pub(crate) fn parse_bool(raw: &str) -> Option<bool> {
    match raw {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Turns raw text into a JSON value of `kind`; the error explains why not.
pub(crate) fn parse_typed(kind: Kind, raw: &str) -> Result<Value, String> {
    match kind {
        Kind::Bool => parse_bool(raw.trim())
            .map(Value::Bool)
            .ok_or_else(|| format!("invalid boolean value {raw:?}")),
        Kind::Int => {
            let t = raw.trim();
            if let Ok(i) = t.parse::<i64>() {
                Ok(Value::from(i))
            } else if let Ok(u) = t.parse::<u64>() {
                Ok(Value::from(u))
            } else {
                Err(format!("invalid integer value {raw:?}"))
            }
        }
        Kind::Str => Ok(Value::String(raw.to_string())),
        Kind::Duration => {
            Duration::parse(raw)?;
            Ok(Value::String(raw.trim().to_string()))
        }
        Kind::StrList => {
            let t = raw.trim();
            if t.starts_with('[')
                && let Ok(v @ Value::Array(_)) = serde_json::from_str::<Value>(t)
            {
                return Ok(v);
            }
            Ok(Value::Array(
                t.split_whitespace()
                    .map(|s| Value::String(s.into()))
                    .collect(),
            ))
        }
        Kind::Json => serde_json::from_str::<Value>(raw).map_err(|e| format!("invalid JSON: {e}")),
        Kind::Named => {
            let t = raw.trim();
            if t.starts_with('[') {
                match serde_json::from_str::<Value>(t) {
                    Ok(v @ Value::Array(_)) => Ok(v),
                    Ok(_) => Err("expected a JSON array".into()),
                    Err(e) => Err(format!("invalid JSON: {e}")),
                }
            } else {
                let items = t
                    .split_whitespace()
                    .map(|name| {
                        let mut item = Map::new();
                        item.insert("name".into(), Value::String(name.into()));
                        Value::Object(item)
                    })
                    .collect();
                Ok(Value::Array(items))
            }
        }
    }
}

/// Sets `value` at dotted `path` inside `root`, creating objects on the way
/// (a non-object in the way is replaced).
pub(crate) fn set_path(root: &mut Value, path: &str, value: Value) {
    let mut cur = root;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Value::Object(map) = cur else { return };
        if parts.peek().is_none() {
            map.insert(part.to_string(), value);
            return;
        }
        cur = map
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// Reads the value at dotted `path`, if any.
pub(crate) fn get_path<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(root, |cur, part| cur.get(part))
}

/// A snapshot of environment variables: the process environment, with a
/// `.env` file filling in names the process does not set. Never mutates the
/// real environment.
#[derive(Debug, Clone, Default)]
pub struct EnvVars {
    vars: BTreeMap<String, String>,
}

impl EnvVars {
    #[cfg(test)]
    /// From explicit pairs (tests, embedding).
    pub(crate) fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The process environment (non-UTF-8 entries skipped) plus `dotenv` if
    /// that file exists and is readable.
    pub(crate) fn from_process(dotenv: &Path) -> Self {
        let mut env = Self {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        };
        if let Ok(text) = std::fs::read_to_string(dotenv) {
            env.add_dotenv(&text);
        }
        env
    }

    /// Adds `.env` file content for names not set already.
    pub(crate) fn add_dotenv(&mut self, text: &str) {
        for (k, v) in parse_dotenv(text) {
            self.vars.entry(k).or_insert(v);
        }
    }

    /// The value of `name`, if set.
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }

    /// All variable names.
    pub(crate) fn names(&self) -> Vec<String> {
        self.vars.keys().cloned().collect()
    }
}

/// Parses `.env` text: `KEY=VALUE` lines, optional `export `, `#` comments,
/// values optionally in single quotes (literal) or double quotes (with `\n`,
/// `\"`, `\\` escapes); unquoted values end at ` #`. Malformed lines are
/// skipped.
pub(crate) fn parse_dotenv(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let Some((key, rest)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            continue;
        }
        let rest = rest.trim();
        let value = if let Some(body) = rest.strip_prefix('\'') {
            match body.find('\'') {
                Some(end) => body[..end].to_string(),
                None => continue,
            }
        } else if let Some(body) = rest.strip_prefix('"') {
            match unquote_double(body) {
                Some(v) => v,
                None => continue,
            }
        } else {
            let end = rest.find(" #").unwrap_or(rest.len());
            rest[..end].trim_end().to_string()
        };
        out.push((key.to_string(), value));
    }
    out
}

fn unquote_double(body: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// True for names Centrifugo never reports as unknown: `CENTRIFUGO_VAR_*`
/// (placeholders) and Kubernetes service links (`…_PORT*`, `…_SERVICE_*`).
pub(crate) fn is_ignored_unknown(name: &str) -> bool {
    if name.starts_with("CENTRIFUGO_VAR_") {
        return true;
    }
    // ^CENTRIFUGO(?:_[A-Z0-9_]+)?_(PORT|SERVICE_)
    let Some(rest) = name.strip_prefix(PREFIX) else {
        return false;
    };
    let valid_middle = |s: &str| s.is_empty() || (s.starts_with('_') && s.len() > 1);
    let charset_ok = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    };
    rest.match_indices("_PORT")
        .chain(rest.match_indices("_SERVICE_"))
        .any(|(i, _)| valid_middle(&rest[..i]) && charset_ok(&rest[..i]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names() {
        assert_eq!(
            env_name(PREFIX, "client.token.hmac_secret_key"),
            "CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY"
        );
        assert_eq!(name_for_env("my-ns.v1"), "MY_NS_V1");
    }

    #[test]
    fn go_parse_bool() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        assert_eq!(parse_bool("yes"), None);
        assert_eq!(parse_bool("tRuE"), None);
    }

    #[test]
    fn typing() {
        assert_eq!(parse_typed(Kind::Int, "42"), Ok(json!(42)));
        assert_eq!(parse_typed(Kind::Duration, "300s"), Ok(json!("300s")));
        assert!(parse_typed(Kind::Duration, "300").is_err());
        assert_eq!(parse_typed(Kind::Int, "-3"), Ok(json!(-3)));
        assert!(parse_typed(Kind::Int, "4x").is_err());
        assert_eq!(parse_typed(Kind::StrList, " a  b "), Ok(json!(["a", "b"])));
        assert_eq!(parse_typed(Kind::StrList, r#"["a b"]"#), Ok(json!(["a b"])));
        assert_eq!(parse_typed(Kind::Json, r#"{"x":1}"#), Ok(json!({"x": 1})));
        assert!(parse_typed(Kind::Json, "{").is_err());
        assert_eq!(
            parse_typed(Kind::Named, "a b"),
            Ok(json!([{"name": "a"}, {"name": "b"}]))
        );
        assert_eq!(
            parse_typed(Kind::Named, r#"[{"name":"x","presence":true}]"#),
            Ok(json!([{"name": "x", "presence": true}]))
        );
        assert!(parse_typed(Kind::Named, "[1").is_err());
    }

    #[test]
    fn paths() {
        let mut v = json!({"a": {"b": 1}, "c": 5});
        set_path(&mut v, "a.x.y", json!(true));
        set_path(&mut v, "c.d", json!("s"));
        assert_eq!(v, json!({"a": {"b": 1, "x": {"y": true}}, "c": {"d": "s"}}));
        assert_eq!(get_path(&v, "a.x.y"), Some(&json!(true)));
        assert_eq!(get_path(&v, "a.q"), None);
    }

    #[test]
    fn leaf_kinds() {
        let v =
            json!({"a": {"b": true, "c": 1, "d": "x", "e": [], "f": {}, "g": "0s"}, "proxies": []});
        let l = leaves(&v);
        assert!(l.contains(&("a.b".into(), Kind::Bool)));
        assert!(l.contains(&("a.c".into(), Kind::Int)));
        assert!(l.contains(&("a.d".into(), Kind::Str)));
        assert!(l.contains(&("a.e".into(), Kind::StrList)));
        assert!(l.contains(&("a.f".into(), Kind::Json)));
        assert!(l.contains(&("a.g".into(), Kind::Duration)));
        assert!(l.contains(&("proxies".into(), Kind::Named)));
    }

    #[test]
    fn dotenv() {
        let text = "# comment\nexport A=1\nB = 'x # y'\nC=\"q\\\"w\\n\"\nD=plain # trailing\nbad line\nE=\n";
        let parsed = parse_dotenv(text);
        let want: Vec<(String, String)> = [
            ("A", "1"),
            ("B", "x # y"),
            ("C", "q\"w\n"),
            ("D", "plain"),
            ("E", ""),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(parsed, want);
        let mut env = EnvVars::from_pairs([("A", "real")]);
        env.add_dotenv(text);
        assert_eq!(env.get("A").as_deref(), Some("real"));
        assert_eq!(env.get("D").as_deref(), Some("plain"));
    }

    #[test]
    fn kubernetes_and_placeholders_ignored() {
        assert!(is_ignored_unknown("CENTRIFUGO_VAR_SECRET"));
        assert!(is_ignored_unknown("CENTRIFUGO_PORT"));
        assert!(is_ignored_unknown("CENTRIFUGO_PORT_8000_TCP_ADDR"));
        assert!(is_ignored_unknown("CENTRIFUGO_SERVICE_HOST"));
        assert!(is_ignored_unknown("CENTRIFUGO_GRPC_SERVICE_PORT"));
        assert!(!is_ignored_unknown("CENTRIFUGO_CLIENT_BOGUS"));
        assert!(!is_ignored_unknown("CENTRIFUGO_SERVICES"));
    }
}
