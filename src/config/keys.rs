//! The key table: every configuration key of Centrifugo v6.9, and Rotor's own
//! keys, with what Rotor does when it is set (`keys.tsv`, embedded).
//!
//! A key is *set* when the merged configuration (file, `CENTRIFUGO_*`
//! variables, flags) holds a value for it that differs from Centrifugo's
//! default, so a full `centrifugo defaultconfig` dump sets nothing. Then:
//! - [`Class::Implemented`] and [`Class::Rotor`]: Rotor acts on it;
//! - [`Class::Refused`]: loading fails, naming the key (anything touching
//!   security, delivery or persistence that Rotor does not build yet);
//! - [`Class::Warned`]: Rotor starts and logs one warning naming the key
//!   (keys with no effect on security, delivery or persistence).
//!
//! A key below an object with an `enabled` switch (`admin.password` below
//! `admin.enabled`, `consumers[].type` below `consumers[].enabled`) has no
//! effect while that switch is off, in Centrifugo as in Rotor, so it is only
//! refused or warned about while the switch is on.
//!
//! Arrays of objects appear as `path[].field`; findings name the item,
//! `consumers[0].type`. The table is regenerated from Centrifugo's sources
//! with `tools/centrifugo-keys.py`; the class column is Rotor's.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

use super::duration::Duration;
use super::env::Kind;

const TABLE: &str = include_str!("keys.tsv");

/// What Rotor does with a key that is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Rotor implements the Centrifugo key.
    Implemented,
    /// Rotor's own key (not Centrifugo's), implemented.
    Rotor,
    /// Not supported: loading fails, naming the key.
    Refused,
    /// No effect in Rotor: one warning naming the key.
    Warned,
}

impl Class {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "implemented" => Self::Implemented,
            "rotor" => Self::Rotor,
            "refused" => Self::Refused,
            "warned" => Self::Warned,
            _ => return None,
        })
    }

    #[cfg(test)]
    /// The word used in the table.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Implemented => "implemented",
            Self::Rotor => "rotor",
            Self::Refused => "refused",
            Self::Warned => "warned",
        }
    }
}

/// The value type of a key, as Centrifugo declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueKind {
    Bool,
    Int,
    Float,
    Str,
    Duration,
    /// A list of strings (also accepted as one space-separated string).
    List,
    /// A free-form object (string map, headers, ...).
    Map,
}

impl ValueKind {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "bool" => Self::Bool,
            "int" => Self::Int,
            "float" => Self::Float,
            "string" | "pem" => Self::Str,
            "duration" => Self::Duration,
            "list" => Self::List,
            "map" | "json" => Self::Map,
            _ => return None,
        })
    }

    /// How an env variable or flag text for this key is parsed.
    pub(crate) fn env_kind(self) -> Kind {
        match self {
            Self::Bool => Kind::Bool,
            Self::Int => Kind::Int,
            Self::Float | Self::Map => Kind::Json,
            Self::Str => Kind::Str,
            Self::Duration => Kind::Duration,
            Self::List => Kind::StrList,
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// Dotted path, `[]` for array items.
    pub key: &'static str,
    pub(crate) kind: ValueKind,
    /// Centrifugo's default as written in its sources (empty: the zero
    /// value); for strings, `a|b` lists values that mean the same.
    pub(crate) default: &'static str,
    pub class: Class,
    /// Why (for refused and warned keys), shown in the message.
    pub note: &'static str,
}

impl Row {
    /// Whether `value` differs from the default.
    pub(crate) fn is_set(&self, value: &Value) -> bool {
        differs(self.kind, self.default, value)
    }

    /// A value of the right type that differs from the default (for tests).
    #[cfg(any(test, feature = "conformance"))]
    pub fn sample(&self) -> Value {
        match self.kind {
            ValueKind::Bool => Value::Bool(self.default != "true"),
            ValueKind::Int => Value::from(if self.default == "7" { 8 } else { 7 }),
            ValueKind::Float => Value::from(0.25),
            ValueKind::Str => Value::from(format!("{}x", self.default)),
            ValueKind::Duration => Value::from(if self.default == "7s" { "8s" } else { "7s" }),
            ValueKind::List => Value::from(vec!["sample"]),
            ValueKind::Map => serde_json::json!({ "sample": "x" }),
        }
    }
}

/// The parsed table (panics in tests only: a malformed table is a build bug,
/// caught by `table_parses`).
pub fn rows() -> &'static [Row] {
    static ROWS: OnceLock<Vec<Row>> = OnceLock::new();
    ROWS.get_or_init(|| parse(TABLE).unwrap_or_default())
}

fn index() -> &'static HashMap<&'static str, usize> {
    static INDEX: OnceLock<HashMap<&'static str, usize>> = OnceLock::new();
    INDEX.get_or_init(|| rows().iter().enumerate().map(|(i, r)| (r.key, i)).collect())
}

/// The row for a normalized path (`consumers[].type`).
pub fn row(key: &str) -> Option<&'static Row> {
    index().get(key).map(|&i| &rows()[i])
}

/// Whether `norm` is a key of the table or an object holding some.
pub(crate) fn knows(norm: &str) -> bool {
    if row(norm).is_some() {
        return true;
    }
    let object = format!("{norm}.");
    let array = format!("{norm}[]");
    rows()
        .iter()
        .any(|r| r.key.starts_with(&object) || r.key.starts_with(&array))
}

fn parse(text: &'static str) -> Result<Vec<Row>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut cols = line.split('\t');
        let mut col = || cols.next().unwrap_or("");
        let (key, kind, default, class, note) = (col(), col(), col(), col(), col());
        let bad = |what: &str| format!("keys.tsv line {}: bad {what}", n + 1);
        out.push(Row {
            key,
            kind: ValueKind::parse(kind).ok_or_else(|| bad("kind"))?,
            default,
            class: Class::parse(class).ok_or_else(|| bad("class"))?,
            note,
        });
    }
    Ok(out)
}

fn differs(kind: ValueKind, default: &str, value: &Value) -> bool {
    match (kind, value) {
        (_, Value::Null) => false,
        (ValueKind::Bool, Value::Bool(b)) => *b != (default == "true"),
        (ValueKind::Int | ValueKind::Float, Value::Number(n)) => {
            n.as_f64() != Some(default.parse::<f64>().unwrap_or(0.0))
        }
        (ValueKind::Duration, Value::String(s)) => {
            let zero = Duration::from_secs(0);
            let parse = |t: &str| {
                if t.is_empty() {
                    Some(zero)
                } else {
                    Duration::parse(t).ok()
                }
            };
            match (parse(s), parse(default)) {
                (Some(a), Some(b)) => a != b,
                _ => true,
            }
        }
        (ValueKind::Duration, Value::Number(n)) => {
            n.as_f64() != Some(0.0) || !matches!(default, "" | "0" | "0s")
        }
        // `a|b`: either value is the default (`subscription_type` is `""` or
        // `"stream"`).
        (ValueKind::Str, Value::String(s)) => default.split('|').all(|d| d != s),
        (ValueKind::List, Value::Array(items)) => {
            !(items.is_empty()
                || (items.len() == 1 && items[0].as_str() == Some(default) && !default.is_empty()))
        }
        (ValueKind::List, Value::String(s)) => !s.is_empty() && s != default,
        (ValueKind::Map, Value::Object(m)) => !m.is_empty(),
        (ValueKind::Map, Value::Array(a)) => !a.is_empty(),
        (ValueKind::Map, Value::String(s)) => !s.is_empty() && s != default,
        // A value of another type than declared is set (the typed load
        // reports the mismatch for implemented keys).
        _ => true,
    }
}

/// A key that is set and refused or warned about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    /// The concrete path, `consumers[0].type`.
    pub key: String,
    /// Why.
    pub note: &'static str,
}

/// What the table says about one merged configuration tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Audit {
    /// Set keys Rotor refuses (loading must fail).
    pub(crate) refused: Vec<Finding>,
    /// Set keys with no effect (one warning each).
    pub(crate) warned: Vec<Finding>,
    /// Keys in no row of the table.
    pub(crate) unknown: Vec<String>,
}

impl Audit {
    /// The refusal for [`super::ConfigError`] (first key, message naming
    /// every refused key with its reason), or `None`.
    pub(crate) fn refusal(&self) -> Option<(String, String)> {
        let first = self.refused.first()?;
        let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
        for f in &self.refused {
            match groups.iter_mut().find(|(note, _)| *note == f.note) {
                Some((_, keys)) => keys.push(&f.key),
                None => groups.push((f.note, vec![&f.key])),
            }
        }
        let parts: Vec<String> = groups
            .iter()
            .map(|(note, keys)| format!("{} ({note})", keys.join(", ")))
            .collect();
        let message = format!("not supported by Rotor: {}", parts.join("; "));
        Some((first.key.clone(), message))
    }

    /// One warning line per warned key.
    pub fn warnings(&self) -> Vec<String> {
        self.warned
            .iter()
            .map(|f| format!("{} is set but has no effect in Rotor: {}", f.key, f.note))
            .collect()
    }
}

/// Walks the merged tree against the table.
pub(crate) fn audit(tree: &Value) -> Audit {
    let mut out = Audit::default();
    walk(tree, tree, "", "", &mut out);
    out
}

fn walk(root: &Value, value: &Value, path: &str, norm: &str, out: &mut Audit) {
    let Value::Object(map) = value else {
        return;
    };
    for (key, child) in map {
        let (path, norm) = if path.is_empty() {
            (key.clone(), key.clone())
        } else {
            (format!("{path}.{key}"), format!("{norm}.{key}"))
        };
        if let Some(row) = row(&norm) {
            visit(root, row, &path, child, out);
            continue;
        }
        match child {
            Value::Object(_) => walk(root, child, &path, &norm, out),
            Value::Array(items) if has_item_rows(&norm) => {
                for (i, item) in items.iter().enumerate() {
                    walk(
                        root,
                        item,
                        &format!("{path}[{i}]"),
                        &format!("{norm}[]"),
                        out,
                    );
                }
            }
            _ => out.unknown.push(path),
        }
    }
}

fn has_item_rows(norm: &str) -> bool {
    let prefix = format!("{norm}[].");
    rows().iter().any(|r| r.key.starts_with(&prefix))
}

fn visit(root: &Value, row: &'static Row, path: &str, value: &Value, out: &mut Audit) {
    let list = match row.class {
        Class::Implemented | Class::Rotor => return,
        Class::Refused => &mut out.refused,
        Class::Warned => &mut out.warned,
    };
    if !row.is_set(value) || !switched_on(root, path) {
        return;
    }
    list.push(Finding {
        key: path.to_string(),
        note: row.note,
    });
}

/// False when an ancestor object of `path` has an `enabled` switch that is
/// off (explicitly or by default).
fn switched_on(root: &Value, path: &str) -> bool {
    let mut end = path.len();
    while let Some(dot) = path[..end].rfind('.') {
        let parent = &path[..dot];
        end = dot;
        let switch = format!("{parent}.enabled");
        if switch == path {
            continue;
        }
        let Some(row) = row(&normalize(&switch)) else {
            continue;
        };
        let on = lookup(root, &switch)
            .and_then(Value::as_bool)
            .unwrap_or(row.default == "true");
        if !on {
            return false;
        }
    }
    true
}

/// A config tree that sets every key of `rows` (array items as item 0) to
/// its [`Row::sample`], with each `enabled` switch above them turned on.
/// Returns the tree and the concrete paths set.
#[cfg(any(test, feature = "conformance"))]
pub fn sample_tree<'a>(rows: impl IntoIterator<Item = &'a Row>) -> (Value, Vec<String>) {
    let mut tree = Value::Object(serde_json::Map::new());
    let mut paths = Vec::new();
    for row in rows {
        let path = row.key.replace("[]", "[0]");
        let mut end = path.len();
        while let Some(dot) = path[..end].rfind('.') {
            end = dot;
            let switch = format!("{}.enabled", &path[..dot]);
            if switch != path && self::row(&normalize(&switch)).is_some() {
                put(&mut tree, &switch, Value::Bool(true));
            }
        }
        put(&mut tree, &path, row.sample());
        paths.push(path);
    }
    (tree, paths)
}

/// Sets `path` (`a.b[0].c`) in `tree`, creating objects and array items.
#[cfg(any(test, feature = "conformance"))]
fn put(tree: &mut Value, path: &str, value: Value) {
    let mut cur = tree;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let (name, index) = match part.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (*part, None),
        };
        if !cur.is_object() {
            *cur = Value::Object(serde_json::Map::new());
        }
        let Value::Object(map) = cur else { return };
        let slot = map.entry(name.to_string()).or_insert(Value::Null);
        cur = match index {
            Some(i) => {
                if !slot.is_array() {
                    *slot = Value::Array(Vec::new());
                }
                let Value::Array(items) = slot else { return };
                while items.len() <= i {
                    items.push(Value::Object(serde_json::Map::new()));
                }
                &mut items[i]
            }
            None => slot,
        };
        if last {
            *cur = value;
            return;
        }
    }
}

/// `consumers[0].type` → `consumers[].type`.
pub(crate) fn normalize(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push_str("[]");
            }
            ']' => in_index = false,
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
}

/// The value at a concrete path with `[i]` indexes.
pub(crate) fn lookup<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = root;
    for part in path.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        cur = cur.get(name)?;
        if let Some(i) = index {
            cur = cur.get(i)?;
        }
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn table_parses() {
        let parsed = parse(TABLE).expect("keys.tsv parses");
        assert!(parsed.len() > 1000, "{}", parsed.len());
        let mut seen = std::collections::HashSet::new();
        for r in &parsed {
            assert!(seen.insert(r.key), "duplicate row {}", r.key);
            if matches!(r.class, Class::Refused | Class::Warned) {
                assert!(!r.note.is_empty(), "{} needs a note", r.key);
            }
        }
    }

    #[test]
    fn defaults_are_not_set() {
        for r in rows() {
            let default = match r.kind {
                ValueKind::Bool => json!(r.default == "true"),
                ValueKind::Int | ValueKind::Float => {
                    json!(r.default.parse::<f64>().unwrap_or(0.0))
                }
                ValueKind::List if r.default.is_empty() => json!([]),
                ValueKind::List => json!([r.default]),
                ValueKind::Map => json!({}),
                ValueKind::Str => json!(r.default.split('|').next_back().unwrap_or("")),
                _ => json!(r.default),
            };
            assert!(!r.is_set(&default), "{}", r.key);
            assert!(r.is_set(&r.sample()), "{}", r.key);
        }
    }

    #[test]
    fn switches_gate_their_section() {
        let tree = json!({"admin": {"password": "p"}, "consumers": [
            {"name": "a", "enabled": false, "type": "kafka"},
            {"name": "b", "enabled": true, "type": "kafka"}
        ]});
        let audit = audit(&tree);
        let keys: Vec<&str> = audit.refused.iter().map(|f| f.key.as_str()).collect();
        assert!(keys.contains(&"consumers[1].type"), "{keys:?}");
        assert!(keys.contains(&"consumers[1].enabled"), "{keys:?}");
        assert!(
            !keys.iter().any(|k| k.starts_with("consumers[0]")),
            "{keys:?}"
        );
        assert!(!keys.contains(&"admin.password"), "{keys:?}");
    }

    #[test]
    fn every_refused_and_warned_key_is_found_alone() {
        for r in rows() {
            if matches!(r.class, Class::Implemented | Class::Rotor) {
                continue;
            }
            let (tree, paths) = sample_tree([r]);
            let audit = audit(&tree);
            let found = match r.class {
                Class::Refused => &audit.refused,
                _ => &audit.warned,
            };
            assert!(
                found.iter().any(|f| f.key == paths[0]),
                "{} not {}: {audit:?}",
                r.key,
                r.class.as_str()
            );
        }
    }

    /// Every implemented key is read by the typed model (a typed leaf, a
    /// well-known key of a free-form section, or inside a JSON leaf), and
    /// every key the typed model reads is in the table.
    #[test]
    fn table_and_typed_model_agree() {
        use super::super::env::{Kind, NAMED_ARRAYS};
        use super::super::{load, schema};
        let mut leaves: Vec<(String, Kind)> = load::known_env_vars(&json!({}))
            .into_iter()
            .map(|(_, path, kind)| (path, kind))
            .collect();
        for array in NAMED_ARRAYS {
            for (leaf, kind) in schema::item_leaves(array) {
                leaves.push((format!("{array}[].{leaf}"), kind));
            }
        }
        let read = |key: &str| {
            leaves.iter().any(|(leaf, kind)| {
                key == leaf
                    || key.starts_with(&format!("{leaf}[]"))
                    || (*kind == Kind::Json && key.starts_with(&format!("{leaf}.")))
            })
        };
        let unread: Vec<&str> = rows()
            .iter()
            .filter(|r| matches!(r.class, Class::Implemented | Class::Rotor) && !read(r.key))
            .map(|r| r.key)
            .collect();
        assert!(unread.is_empty(), "implemented but not read: {unread:?}");
        let missing: Vec<&String> = leaves
            .iter()
            .map(|(leaf, _)| leaf)
            .filter(|leaf| !knows(leaf))
            .collect();
        assert!(missing.is_empty(), "read but not in keys.tsv: {missing:?}");
    }

    #[test]
    fn normalizes_indexes() {
        assert_eq!(
            normalize("consumers[12].kafka.brokers"),
            "consumers[].kafka.brokers"
        );
        assert_eq!(lookup(&json!({"a": [{"b": 1}]}), "a[0].b"), Some(&json!(1)));
    }
}
