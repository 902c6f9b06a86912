//! The loader: config file → `CENTRIFUGO_*` env → command-line flags (each
//! overriding the previous) → typed [`Config`] → [`validate`].
//!
//! Everything is merged as a `serde_json::Value` tree and deserialized once
//! with `serde_path_to_error`, so type errors name the key.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::env::{self, EnvVars, Kind, NAMED_ARRAYS, PREFIX};
use super::error::ConfigError;
use super::formats::{self, Format};
use super::keys;
use super::schema;
use super::types::{ChannelOptions, Config, RpcOptions, Token};
use super::validate::validate;

/// A loaded configuration plus what the loader noticed on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// False when the config file does not exist (defaults/env/flags used).
    pub(crate) file_found: bool,
    /// Key paths in the file the config does not know (sorted).
    pub(crate) unknown_keys: Vec<String>,
    /// `CENTRIFUGO_*` variables that match no key (sorted).
    pub(crate) unknown_env: Vec<String>,
    /// One warning per set key that has no effect in Rotor (key table
    /// class `warned`).
    pub(crate) no_effect: Vec<String>,
}

/// Loads and validates: file at `path`, the process environment plus
/// `./.env`, then `flags` (dotted key path, raw text).
pub fn load(path: &Path, flags: &[(String, String)]) -> Result<Loaded, ConfigError> {
    load_from(path, flags, &EnvVars::from_process(Path::new(".env")))
}

/// [`load`] with an explicit environment lookup (no unknown-env report, as a
/// lookup cannot list names).
pub fn load_with_env(
    path: &Path,
    flags: &[(String, String)],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigError> {
    let loaded = read_inner(path, flags, env, &[])?;
    validate(&loaded.config)?;
    Ok(loaded)
}

/// [`load`] with an environment snapshot (unknown env vars reported).
pub fn load_from(
    path: &Path,
    flags: &[(String, String)],
    env: &EnvVars,
) -> Result<Loaded, ConfigError> {
    let loaded = read_from(path, flags, env)?;
    validate(&loaded.config)?;
    Ok(loaded)
}

/// Like [`load`] but without validation (for CLI commands that report
/// read and validation errors differently).
pub fn read(path: &Path, flags: &[(String, String)]) -> Result<Loaded, ConfigError> {
    read_from(path, flags, &EnvVars::from_process(Path::new(".env")))
}

/// Like [`load_from`] but without validation.
pub fn read_from(
    path: &Path,
    flags: &[(String, String)],
    env: &EnvVars,
) -> Result<Loaded, ConfigError> {
    read_inner(path, flags, &|name| env.get(name), &env.names())
}

/// Every known env var for `config` (top-level keys, well-known nested keys
/// of free-form sections, and per-item keys of named arrays) with its key
/// path, in no particular order.
pub fn known_env_vars(config: &Value) -> Vec<(String, String, Kind)> {
    let mut out = Vec::new();
    let defaults = default_value();
    for (path, kind) in all_leaves(&defaults) {
        out.push((env::env_name(PREFIX, &path), path, kind));
    }
    for array in NAMED_ARRAYS {
        let Some(Value::Array(items)) = env::get_path(config, array) else {
            continue;
        };
        for (i, item) in items.iter().enumerate() {
            let Some(name) = item.get("name").and_then(Value::as_str) else {
                continue;
            };
            let prefix = item_env_prefix(array, name);
            for (leaf, kind) in schema::item_leaves(array) {
                out.push((
                    env::env_name(&prefix, &leaf),
                    format!("{array}[{i}].{leaf}"),
                    kind,
                ));
            }
        }
    }
    out
}

/// The typed model's leaves, then the key table's other keys (free-form
/// sections' keys and the refused and warned ones, so that those are
/// refused or warned about whatever their source).
fn all_leaves(defaults: &Value) -> Vec<(String, Kind)> {
    let mut out = env::leaves(defaults);
    let typed: HashSet<String> = out.iter().map(|(k, _)| k.clone()).collect();
    out.extend(
        schema::extra_leaves()
            .into_iter()
            .filter(|(k, _)| !typed.contains(k)),
    );
    out
}

/// The default config as a JSON tree.
pub fn default_value() -> Value {
    serde_json::to_value(Config::default()).unwrap_or_else(|_| Value::Object(Map::new()))
}

fn read_file(path: &Path) -> Result<(Value, bool), ConfigError> {
    let empty = Value::Object(Map::new());
    if path.as_os_str().is_empty() {
        return Ok((empty, false));
    }
    let file_err = |message: String| ConfigError::File {
        path: path.display().to_string(),
        message,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((empty, false)),
        Err(e) => return Err(file_err(e.to_string())),
    };
    let format = Format::from_path(path).ok_or_else(|| {
        file_err("unsupported config file extension (use .json, .yaml, .yml or .toml)".into())
    })?;
    let value = formats::parse(&text, format).map_err(file_err)?;
    Ok((value, true))
}

fn read_inner(
    path: &Path,
    flags: &[(String, String)],
    env: &dyn Fn(&str) -> Option<String>,
    env_names: &[String],
) -> Result<Loaded, ConfigError> {
    let (mut tree, file_found) = read_file(path)?;
    let file_tree = tree.clone();
    let defaults = default_value();
    let mut unknown_keys = Vec::new();
    find_unknown(&tree, &defaults, "", &mut unknown_keys);

    let lookup = |name: &str| env(name).filter(|v| !v.is_empty());
    let mut known: HashSet<String> = HashSet::new();
    let mut kinds: BTreeMap<String, Kind> = BTreeMap::new();
    for (key, kind) in all_leaves(&defaults) {
        let var = env::env_name(PREFIX, &key);
        if let Some(raw) = lookup(&var) {
            let value = env::parse_typed(kind, &raw).map_err(|message| ConfigError::Env {
                key: key.clone(),
                var: var.clone(),
                message,
            })?;
            env::set_path(&mut tree, &key, value);
        }
        known.insert(var);
        kinds.insert(key, kind);
    }
    apply_item_env(&mut tree, &lookup, &mut known)?;

    for (key, raw) in flags {
        let Some(kind) = kinds.get(key) else {
            return Err(ConfigError::Flag {
                key: key.clone(),
                message: "unknown flag".into(),
            });
        };
        let value = env::parse_typed(*kind, raw).map_err(|message| ConfigError::Flag {
            key: key.clone(),
            message,
        })?;
        env::set_path(&mut tree, key, value);
    }

    let audit = keys::audit(&tree);
    if let Some((key, message)) = audit.refusal() {
        return Err(ConfigError::Refused { key, message });
    }
    // The typed model's unknown keys, less those the table knows (a warned
    // or refused key the typed model does not read).
    unknown_keys.retain(|k| !keys::knows(&keys::normalize(k)));
    for key in audit.unknown.iter() {
        if keys::lookup(&file_tree, key).is_some() && !unknown_keys.contains(key) {
            unknown_keys.push(key.clone());
        }
    }
    unknown_keys.sort();
    precheck_flattened(&tree)?;
    let config: Config = deserialize_at(tree, "")?;

    let mut unknown_env: Vec<String> = env_names
        .iter()
        .filter(|n| {
            n.starts_with("CENTRIFUGO_") && !known.contains(*n) && !env::is_ignored_unknown(n)
        })
        .filter(|n| lookup(n).is_some())
        .cloned()
        .collect();
    unknown_env.sort();
    Ok(Loaded {
        config,
        file_found,
        unknown_keys,
        unknown_env,
        no_effect: audit.warnings(),
    })
}

/// `CENTRIFUGO_<ARRAY>_<NAME>`: the prefix of a named array item's vars.
fn item_env_prefix(array: &str, name: &str) -> String {
    format!(
        "{}_{}",
        env::env_name(PREFIX, array),
        env::name_for_env(name)
    )
}

/// Fills named-array items from `CENTRIFUGO_<ARRAY>_<NAME>_<KEY>` vars.
fn apply_item_env(
    tree: &mut Value,
    lookup: &dyn Fn(&str) -> Option<String>,
    known: &mut HashSet<String>,
) -> Result<(), ConfigError> {
    for array in NAMED_ARRAYS {
        let pointer = format!("/{}", array.replace('.', "/"));
        let Some(Value::Array(items)) = tree.pointer_mut(&pointer) else {
            continue;
        };
        let leaves = schema::item_leaves(array);
        for (i, item) in items.iter_mut().enumerate() {
            let Some(name) = item.get("name").and_then(Value::as_str) else {
                continue;
            };
            let prefix = item_env_prefix(array, name);
            for (leaf, kind) in &leaves {
                let var = env::env_name(&prefix, leaf);
                if let Some(raw) = lookup(&var) {
                    let key = format!("{array}[{i}].{leaf}");
                    let value =
                        env::parse_typed(*kind, &raw).map_err(|message| ConfigError::Env {
                            key,
                            var: var.clone(),
                            message,
                        })?;
                    env::set_path(item, leaf, value);
                }
                known.insert(var);
            }
        }
    }
    Ok(())
}

/// Deserializes `value`, naming the failing key as `prefix` + inner path.
fn deserialize_at<T: DeserializeOwned>(value: Value, prefix: &str) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let key = match (prefix.is_empty(), inner.as_str()) {
            (true, ".") => "config".to_string(),
            (true, _) => inner,
            (false, ".") => prefix.to_string(),
            (false, p) if p.starts_with('[') => format!("{prefix}{p}"),
            (false, p) => format!("{prefix}.{p}"),
        };
        ConfigError::Type {
            key,
            message: e.into_inner().to_string(),
        }
    })
}

/// `#[serde(flatten)]` hides the inner key from path tracking, so the
/// flattened parts (namespace options, subscription token keys) are checked
/// on their own first to get precise key paths in errors.
fn precheck_flattened(tree: &Value) -> Result<(), ConfigError> {
    let without = |v: &Value, key: &str| {
        let mut v = v.clone();
        if let Value::Object(m) = &mut v {
            m.remove(key);
        }
        v
    };
    let check_name = |item: &Value, key: &str| match item.get("name") {
        None | Some(Value::String(_)) => Ok(()),
        Some(_) => Err(ConfigError::Type {
            key: format!("{key}.name"),
            message: "expected a string".into(),
        }),
    };
    if let Some(Value::Array(items)) = tree.pointer("/channel/namespaces") {
        for (i, item) in items.iter().enumerate() {
            let key = format!("channel.namespaces[{i}]");
            check_name(item, &key)?;
            deserialize_at::<ChannelOptions>(without(item, "name"), &key)?;
        }
    }
    if let Some(Value::Array(items)) = tree.pointer("/rpc/namespaces") {
        for (i, item) in items.iter().enumerate() {
            let key = format!("rpc.namespaces[{i}]");
            check_name(item, &key)?;
            deserialize_at::<RpcOptions>(without(item, "name"), &key)?;
        }
    }
    if let Some(sub) = tree.pointer("/client/subscription_token") {
        deserialize_at::<Token>(without(sub, "enabled"), "client.subscription_token")?;
    }
    Ok(())
}

/// Collects file keys the config does not know. Keys under free-form
/// sections (empty objects in the default) are never unknown; items of
/// `channel.namespaces` / `rpc.namespaces` are checked against their schema.
fn find_unknown(file: &Value, schema_value: &Value, prefix: &str, out: &mut Vec<String>) {
    let (Value::Object(file), Value::Object(known)) = (file, schema_value) else {
        return;
    };
    for (key, value) in file {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match known.get(key) {
            None => out.push(path),
            Some(Value::Object(m)) if !m.is_empty() => find_unknown(value, &known[key], &path, out),
            Some(Value::Array(_)) => {
                let (Some(item_schema), Value::Array(items)) = (schema::item_schema(&path), value)
                else {
                    continue;
                };
                for (i, item) in items.iter().enumerate() {
                    find_unknown(item, &item_schema, &format!("{path}[{i}]"), out);
                }
            }
            Some(_) => {}
        }
    }
}
