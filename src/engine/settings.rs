//! Errors of an engine's settings (`engine.redis`, `broker.nats`, …): the
//! `(key, message)` pairs callers prefix with the section's path.

/// An error about `key`.
pub(crate) fn key_err(key: &str, message: &str) -> (String, String) {
    (key.to_owned(), message.to_owned())
}
