//! Config file formats: JSON, YAML (`.yaml`/`.yml`) and TOML, chosen by the
//! file extension, read into a `serde_json::Value` tree (and written back out
//! for `genconfig` / `defaultconfig`).

use std::path::Path;

use serde_json::{Map, Number, Value};
use yaml_rust2::{Yaml, YamlEmitter, YamlLoader};

/// A supported config file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Yaml,
    Toml,
}

impl Format {
    /// The format for `path`'s extension, or `None` for an unsupported one.
    pub(crate) fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "json" => Some(Self::Json),
            "yaml" | "yml" => Some(Self::Yaml),
            "toml" => Some(Self::Toml),
            _ => None,
        }
    }
}

/// Parses `text` in `format` into a JSON value. Nulls are dropped from
/// objects (a `key: ~` means "unset", as in Centrifugo).
pub(crate) fn parse(text: &str, format: Format) -> Result<Value, String> {
    let value = match format {
        Format::Json => serde_json::from_str::<Value>(text).map_err(|e| e.to_string())?,
        Format::Yaml => {
            let docs = YamlLoader::load_from_str(text).map_err(|e| e.to_string())?;
            match docs.into_iter().next() {
                Some(doc) => yaml_to_json(doc),
                None => Value::Object(Map::new()),
            }
        }
        Format::Toml => {
            let table = text.parse::<toml::Table>().map_err(|e| e.to_string())?;
            toml_to_json(toml::Value::Table(table))
        }
    };
    let value = strip_nulls(value);
    match value {
        Value::Object(_) => Ok(value),
        Value::Null => Ok(Value::Object(Map::new())),
        _ => Err("top level of the config must be an object".into()),
    }
}

/// Serializes `value` (an object) in `format`; JSON uses 2-space indents.
pub(crate) fn render(value: &Value, format: Format) -> Result<String, String> {
    match format {
        Format::Json => serde_json::to_string_pretty(value).map_err(|e| e.to_string()),
        Format::Toml => toml::to_string(value).map_err(|e| e.to_string()),
        Format::Yaml => {
            let mut out = String::new();
            let mut emitter = YamlEmitter::new(&mut out);
            emitter
                .dump(&json_to_yaml(value))
                .map_err(|e| e.to_string())?;
            let body = out.strip_prefix("---\n").unwrap_or(&out).to_string();
            Ok(body + "\n")
        }
    }
}

fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

fn yaml_key(key: Yaml) -> String {
    match key {
        Yaml::String(s) | Yaml::Real(s) => s,
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        _ => String::new(),
    }
}

fn yaml_to_json(yaml: Yaml) -> Value {
    match yaml {
        Yaml::Real(s) => match s.parse::<f64>().ok().and_then(Number::from_f64) {
            Some(n) => Value::Number(n),
            None => Value::String(s),
        },
        Yaml::Integer(i) => Value::Number(i.into()),
        Yaml::String(s) => Value::String(s),
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Array(items) => Value::Array(items.into_iter().map(yaml_to_json).collect()),
        Yaml::Hash(hash) => Value::Object(
            hash.into_iter()
                .map(|(k, v)| (yaml_key(k), yaml_to_json(v)))
                .collect(),
        ),
        Yaml::Alias(_) | Yaml::Null | Yaml::BadValue => Value::Null,
    }
}

fn json_to_yaml(value: &Value) -> Yaml {
    match value {
        Value::Null => Yaml::Null,
        Value::Bool(b) => Yaml::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Integer(i),
            None => Yaml::Real(n.to_string()),
        },
        Value::String(s) => Yaml::String(s.clone()),
        Value::Array(items) => Yaml::Array(items.iter().map(json_to_yaml).collect()),
        Value::Object(map) => Yaml::Hash(
            map.iter()
                .map(|(k, v)| (Yaml::String(k.clone()), json_to_yaml(v)))
                .collect(),
        ),
    }
}

fn toml_to_json(value: toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::Number(i.into()),
        toml::Value::Float(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => {
            Value::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_extension() {
        assert_eq!(
            Format::from_path(Path::new("a/config.json")),
            Some(Format::Json)
        );
        assert_eq!(Format::from_path(Path::new("c.YML")), Some(Format::Yaml));
        assert_eq!(Format::from_path(Path::new("c.yaml")), Some(Format::Yaml));
        assert_eq!(Format::from_path(Path::new("c.toml")), Some(Format::Toml));
        assert_eq!(Format::from_path(Path::new("c.ini")), None);
        assert_eq!(Format::from_path(Path::new("config")), None);
    }

    #[test]
    fn yaml_and_toml_read_like_json() {
        let json = r#"{"a": {"b": 1, "c": [ "x", "y" ], "d": true, "e": "1s", "f": 1.5}}"#;
        let yaml = "a:\n  b: 1\n  c: [x, y]\n  d: true\n  e: 1s\n  f: 1.5\n";
        let toml = "[a]\nb = 1\nc = [\"x\", \"y\"]\nd = true\ne = \"1s\"\nf = 1.5\n";
        let j = parse(json, Format::Json).ok();
        assert!(j.is_some());
        assert_eq!(parse(yaml, Format::Yaml).ok(), j);
        assert_eq!(parse(toml, Format::Toml).ok(), j);
    }

    #[test]
    fn nulls_are_unset_and_errors_reported() {
        let v = parse("a: ~\nb: 1\n", Format::Yaml).ok();
        assert_eq!(v, Some(serde_json::json!({"b": 1})));
        assert_eq!(parse("", Format::Yaml).ok(), Some(serde_json::json!({})));
        assert!(parse("{", Format::Json).is_err());
        assert!(parse("[1]", Format::Json).is_err());
        assert!(parse("a = ", Format::Toml).is_err());
        assert!(parse("a: [", Format::Yaml).is_err());
    }

    #[test]
    fn render_round_trips() {
        let v = serde_json::json!({"a": {"b": 1, "c": ["x"], "d": "1s"}, "e": true, "t": {}});
        for f in [Format::Json, Format::Yaml, Format::Toml] {
            let text = render(&v, f).unwrap_or_default();
            assert_eq!(parse(&text, f).ok(), Some(v.clone()), "{f:?}: {text}");
        }
    }
}
