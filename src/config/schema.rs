//! Key schemas the typed config cannot provide, taken from the key table
//! ([`super::keys`]): well-known keys inside sections typed as free-form
//! JSON (`client.proxy`, `engine.redis`, …) so that
//! `CENTRIFUGO_CLIENT_PROXY_CONNECT_ENDPOINT` and friends work, and the
//! per-item keys of named arrays (`channel.namespaces`, `rpc.namespaces`,
//! `proxies`, `consumers`).

use serde_json::Value;

use super::env::{Kind, NAMED_ARRAYS, leaves};
use super::keys;
use super::types::{Namespace, RpcNamespace};

/// Keys of the key table outside arrays, with the kind their env or flag
/// text is parsed as. The loader takes the typed model's leaves first, so
/// these only add what the typed model keeps as free-form JSON (`engine.redis`,
/// `client.proxy`, ...) and the keys Rotor refuses or warns about.
pub(crate) fn extra_leaves() -> Vec<(String, Kind)> {
    leaves_of(keys::rows().iter().map(|r| (r.key, r)))
        .into_iter()
        .filter(|(k, _)| !NAMED_ARRAYS.contains(&k.as_str()))
        .collect()
}

/// Leaves of `(path, row)` pairs: a path through an array of objects
/// (`http.status_to_code_transforms[].status_code`) gives the array itself
/// as one JSON leaf.
fn leaves_of<'a>(paths: impl Iterator<Item = (&'a str, &'a keys::Row)>) -> Vec<(String, Kind)> {
    let mut out: Vec<(String, Kind)> = Vec::new();
    for (path, row) in paths {
        let leaf = match path.split_once("[]") {
            Some((array, _)) => (array.to_string(), Kind::Json),
            None => (path.to_string(), row.kind.env_kind()),
        };
        if !out.contains(&leaf) {
            out.push(leaf);
        }
    }
    out
}

/// Keys of one item of the named array at `array` (e.g. `channel.namespaces`).
pub(crate) fn item_leaves(array: &str) -> Vec<(String, Kind)> {
    let typed = |v: Result<Value, serde_json::Error>| v.map(|v| leaves(&v)).unwrap_or_default();
    match array {
        "channel.namespaces" => typed(serde_json::to_value(Namespace::default())),
        "rpc.namespaces" => typed(serde_json::to_value(RpcNamespace::default())),
        _ => {
            let prefix = format!("{array}[].");
            leaves_of(
                keys::rows()
                    .iter()
                    .filter_map(|r| r.key.strip_prefix(&prefix).map(|leaf| (leaf, r))),
            )
        }
    }
}

/// The typed schema of a named array's items for the unknown-key check, or
/// `None` when items are free-form.
pub(crate) fn item_schema(array: &str) -> Option<Value> {
    match array {
        "channel.namespaces" => serde_json::to_value(Namespace::default()).ok(),
        "rpc.namespaces" => serde_json::to_value(RpcNamespace::default()).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::Kind::{Bool, Duration as Dur, Int, Str};
    use super::*;

    #[test]
    fn extras_cover_common_nested_keys() {
        let extras = extra_leaves();
        for key in [
            "client.proxy.connect.endpoint",
            "engine.redis.address",
            "map_broker.type",
        ] {
            assert!(extras.iter().any(|(k, _)| k == key), "{key}");
        }
    }

    #[test]
    fn namespace_items_have_name_and_options() {
        let items = item_leaves("channel.namespaces");
        assert!(items.contains(&("name".into(), Str)));
        assert!(items.contains(&("history_size".into(), Int)));
        assert!(items.contains(&("presence".into(), Bool)));
        assert!(item_leaves("rpc.namespaces").contains(&("proxy_name".into(), Str)));
        assert!(item_leaves("proxies").contains(&("timeout".into(), Dur)));
    }
}
