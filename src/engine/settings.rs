//! Reading an engine's raw JSON config section (`engine.redis`,
//! `broker.nats`, …) key by key, with errors that name the key: the
//! `(key, message)` pairs callers prefix with the section's path.

use std::time::Duration;

use serde_json::Value;

use crate::config::Duration as GoDuration;

/// An error about `key`.
pub(crate) fn key_err(key: &str, message: &str) -> (String, String) {
    (key.to_owned(), message.to_owned())
}

/// A string value; absent or `null` is empty.
pub(crate) fn string(value: Option<&Value>, key: &str) -> Result<String, (String, String)> {
    match value {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(key_err(key, "must be a string")),
    }
}

/// A duration as Go's config reads it: a string like `"1s"`, or a bare
/// number of nanoseconds; absent or `null` is `None`.
pub(crate) fn duration(
    value: Option<&Value>,
    key: &str,
) -> Result<Option<Duration>, (String, String)> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => GoDuration::parse(text)
            .map(|d| Some(d.get()))
            .map_err(|e| key_err(key, &e)),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(|ns| Some(Duration::from_nanos(ns)))
            .ok_or_else(|| key_err(key, "must be a duration")),
        Some(_) => Err(key_err(key, "must be a duration string")),
    }
}
