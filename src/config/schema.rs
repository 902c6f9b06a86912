//! Key schemas the typed config cannot provide: well-known keys inside
//! sections typed as free-form JSON (`client.proxy`, `engine.redis`, …) so
//! that `CENTRIFUGO_CLIENT_PROXY_CONNECT_ENDPOINT` and friends work, and the
//! per-item keys of named arrays (`channel.namespaces`, `rpc.namespaces`,
//! `proxies`, `consumers`).

use serde_json::Value;

use super::env::{Kind, leaves};
use super::types::{Namespace, RpcNamespace};

use Kind::{Bool, Duration as Dur, Int, Json, Str, StrList};

/// Fields of a proxy object.
const PROXY_FIELDS: &[(&str, Kind)] = &[
    ("endpoint", Str),
    ("timeout", Dur),
    ("http_headers", StrList),
    ("emulated_headers", StrList),
    ("grpc_metadata", StrList),
    ("binary_encoding", Bool),
    ("include_connection_meta", Bool),
    ("http.tls", Json),
    ("http.static_headers", Json),
    ("http.status_to_code_transforms", Json),
    ("grpc.tls", Json),
    ("grpc.credentials_key", Str),
    ("grpc.credentials_value", Str),
    ("grpc.compression", Bool),
    ("grpc.static_metadata", Json),
];

/// Fields of a Redis object plus the engine/presence extras.
const REDIS_FIELDS: &[(&str, Kind)] = &[
    ("address", StrList),
    ("prefix", Str),
    ("connect_timeout", Dur),
    ("io_timeout", Dur),
    ("db", Int),
    ("user", Str),
    ("password", Str),
    ("client_name", Str),
    ("force_resp2", Bool),
    ("cluster_address", StrList),
    ("tls", Json),
    ("sentinel_address", StrList),
    ("sentinel_user", Str),
    ("sentinel_password", Str),
    ("sentinel_master_name", Str),
    ("sentinel_client_name", Str),
    ("sentinel_tls", Json),
    ("replica_client.enabled", Bool),
    ("history_use_lists", Bool),
    ("presence_ttl", Dur),
    ("presence_hash_field_ttl", Bool),
    ("presence_user_mapping", Bool),
];

const CHANNEL_PROXIES: &[&str] = &[
    "subscribe",
    "publish",
    "sub_refresh",
    "subscribe_stream",
    "map_publish",
    "map_remove",
    "shared_poll_refresh",
];

const MISC: &[(&str, Kind)] = &[
    ("map_broker.type", Str),
    ("controller.enabled", Bool),
    ("controller.type", Str),
    ("shared_poll.hmac_secret_key", Str),
    ("shared_poll.hmac_previous_secret_key", Str),
    ("shared_poll.hmac_previous_secret_key_valid_until", Int),
    ("shared_poll.concurrency_limit", Int),
    ("usage_stats.disabled", Bool),
    ("graphite.enabled", Bool),
    ("graphite.host", Str),
    ("graphite.port", Int),
    ("graphite.prefix", Str),
    ("graphite.interval", Dur),
    ("graphite.tags", Bool),
    ("webtransport.enabled", Bool),
    ("webtransport.handler_prefix", Str),
    ("webtransport.message_size_limit", Int),
    ("http_server.http3.enabled", Bool),
    ("http_server.tls_autocert.enabled", Bool),
    ("http_server.tls_autocert.host_whitelist", StrList),
    ("http_server.tls_autocert.cache_dir", Str),
    ("http_server.tls_autocert.email", Str),
    ("http_server.tls_autocert.server_name", Str),
    ("http_server.tls_autocert.http", Bool),
    ("http_server.tls_autocert.http_addr", Str),
    (
        "client.connect_code_to_unidirectional_disconnect.enabled",
        Bool,
    ),
    (
        "client.connect_code_to_unidirectional_disconnect.transforms",
        Json,
    ),
    ("uni_sse.connect_code_to_http_response.enabled", Bool),
    ("uni_sse.connect_code_to_http_response.transforms", Json),
    (
        "uni_http_stream.connect_code_to_http_response.enabled",
        Bool,
    ),
    (
        "uni_http_stream.connect_code_to_http_response.transforms",
        Json,
    ),
    ("broker.nats.prefix", Str),
    ("broker.nats.url", Str),
    ("broker.nats.dial_timeout", Dur),
    ("broker.nats.write_timeout", Dur),
    ("broker.nats.tls", Json),
    ("broker.nats.allow_wildcards", Bool),
    ("broker.nats.raw_mode.enabled", Bool),
    ("broker.nats.raw_mode.channel_replacements", Json),
    ("broker.nats.raw_mode.prefix", Str),
];

const CONSUMER_FIELDS: &[(&str, Kind)] = &[
    ("name", Str),
    ("enabled", Bool),
    ("type", Str),
    ("postgresql", Json),
    ("kafka", Json),
    ("nats_jetstream", Json),
    ("redis_stream", Json),
    ("google_pub_sub", Json),
    ("aws_sqs", Json),
    ("azure_service_bus", Json),
];

fn owned(prefix: &str, fields: &[(&str, Kind)]) -> impl Iterator<Item = (String, Kind)> {
    let prefix = prefix.to_string();
    fields.iter().map(move |(k, kind)| {
        let path = if prefix.is_empty() {
            (*k).to_string()
        } else {
            format!("{prefix}.{k}")
        };
        (path, *kind)
    })
}

/// Well-known keys inside free-form sections, in an order where a more
/// specific key comes after the section itself.
pub fn extra_leaves() -> Vec<(String, Kind)> {
    let mut out: Vec<(String, Kind)> = Vec::new();
    for section in ["client.proxy.connect", "client.proxy.refresh"] {
        out.push((format!("{section}.enabled"), Bool));
        out.extend(owned(section, PROXY_FIELDS));
    }
    for p in CHANNEL_PROXIES {
        out.extend(owned(&format!("channel.proxy.{p}"), PROXY_FIELDS));
    }
    out.extend(owned("rpc.proxy", PROXY_FIELDS));
    for section in [
        "engine.redis",
        "broker.redis",
        "presence_manager.redis",
        "map_broker.redis",
    ] {
        out.extend(owned(section, REDIS_FIELDS));
    }
    out.extend(owned("", MISC));
    out
}

/// Keys of one item of the named array at `array` (e.g. `channel.namespaces`).
pub fn item_leaves(array: &str) -> Vec<(String, Kind)> {
    let typed = |v: Result<Value, serde_json::Error>| v.map(|v| leaves(&v)).unwrap_or_default();
    match array {
        "channel.namespaces" => typed(serde_json::to_value(Namespace::default())),
        "rpc.namespaces" => typed(serde_json::to_value(RpcNamespace::default())),
        "proxies" => {
            let mut out = vec![("name".to_string(), Str)];
            out.extend(owned("", PROXY_FIELDS));
            out
        }
        "consumers" => owned("", CONSUMER_FIELDS).collect(),
        _ => Vec::new(),
    }
}

/// The typed schema of a named array's items for the unknown-key check, or
/// `None` when items are free-form.
pub fn item_schema(array: &str) -> Option<Value> {
    match array {
        "channel.namespaces" => serde_json::to_value(Namespace::default()).ok(),
        "rpc.namespaces" => serde_json::to_value(RpcNamespace::default()).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
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
        assert!(items.contains(&("map".into(), Json)));
        assert!(item_leaves("rpc.namespaces").contains(&("proxy_name".into(), Str)));
        assert!(item_leaves("proxies").contains(&("timeout".into(), Dur)));
    }
}
