//! Validation of the proxy sections: `client.proxy.*`, `channel.proxy.*`,
//! `rpc.proxy`, the named `proxies` list and the subscription-stream proxies.

use serde_json::Value;

use super::{Check, DEFAULT_PROXY, NAME_PATTERN, invalid, matches};
use crate::config::error::ConfigError;
use crate::config::types::{Config, Duration};

pub(crate) fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// A proxy object needs an endpoint and a non-zero timeout (default 1s).
pub(crate) fn check_proxy_object(key: &str, p: &Value) -> Check {
    if str_at(p, "endpoint").unwrap_or("").is_empty() {
        return Err(invalid(format!("{key}.endpoint"), "proxy endpoint not set"));
    }
    match p.get("timeout") {
        None => Ok(()),
        Some(Value::String(s)) => match Duration::parse(s) {
            Ok(d) if d.is_zero() => Err(invalid(
                format!("{key}.timeout"),
                "proxy timeout must be non-zero",
            )),
            Ok(_) => Ok(()),
            Err(e) => Err(invalid(format!("{key}.timeout"), e)),
        },
        Some(_) => Err(invalid(
            format!("{key}.timeout"),
            "expected a duration string like \"1s\"",
        )),
    }
}

/// Every proxy object must be well-formed (types, transforms, non-zero
/// timeout), whether or not it is in use; errors name the key.
pub(super) fn check_proxy_sections(cfg: &Config) -> Check {
    let parse = |key: &str, v: &Value| {
        crate::proxy::config::parse(key, v)
            .map(|_| ())
            .map_err(|e| match e.split_once(": ") {
                Some((k, m)) => invalid(k, m),
                None => invalid(key, e.clone()),
            })
    };
    for kind in ["connect", "refresh"] {
        if let Some(p) = cfg.client.proxy.get(kind) {
            parse(&format!("client.proxy.{kind}"), p)?;
        }
    }
    if let Some(sections) = cfg.channel.proxy.as_object() {
        for (kind, p) in sections {
            parse(&format!("channel.proxy.{kind}"), p)?;
        }
    }
    parse("rpc.proxy", &cfg.rpc.proxy)?;
    for (i, p) in cfg.proxies.iter().enumerate() {
        parse(&format!("proxies[{i}]"), p)?;
    }
    Ok(())
}

/// Subscription streams are gRPC only: `channel.proxy.subscribe_stream`
/// and every `proxies[]` item a namespace streams from need a gRPC endpoint.
pub(super) fn check_stream_proxies(cfg: &Config) -> Check {
    let is_http = |p: &Value| {
        let e = str_at(p, "endpoint").unwrap_or("");
        e.starts_with("http://") || e.starts_with("https://")
    };
    if let Some(p) = cfg.channel.proxy.get("subscribe_stream")
        && is_http(p)
    {
        return Err(invalid(
            "channel.proxy.subscribe_stream.endpoint",
            "subscribe stream proxy must be a gRPC proxy (grpc:// endpoint)",
        ));
    }
    let namespaces = std::iter::once((
        "channel.without_namespace".to_string(),
        &cfg.channel.without_namespace,
    ))
    .chain(
        cfg.channel
            .namespaces
            .iter()
            .enumerate()
            .map(|(i, ns)| (format!("channel.namespaces[{i}]"), &ns.options)),
    );
    for (key, o) in namespaces {
        if !o.subscribe_stream_proxy_enabled {
            continue;
        }
        let name = o.subscribe_stream_proxy_name.as_str();
        let http_item = cfg
            .proxies
            .iter()
            .any(|p| str_at(p, "name") == Some(name) && is_http(p));
        if http_item {
            return Err(invalid(
                format!("{key}.subscribe_stream_proxy_name"),
                format!("proxy {name:?} is an HTTP proxy: subscribe streams need a gRPC proxy"),
            ));
        }
    }
    Ok(())
}

/// Validates `proxies[]` and returns the usable proxy names (plus `default`).
pub(super) fn check_proxies(cfg: &Config) -> Result<Vec<String>, ConfigError> {
    let mut names: Vec<String> = Vec::new();
    for (i, p) in cfg.proxies.iter().enumerate() {
        let key = format!("proxies[{i}]");
        let name = str_at(p, "name").unwrap_or("");
        if !matches(NAME_PATTERN, name) {
            return Err(invalid(
                format!("{key}.name"),
                format!("invalid proxy name {name:?}, must match {NAME_PATTERN}"),
            ));
        }
        if name == DEFAULT_PROXY {
            return Err(invalid(
                format!("{key}.name"),
                "proxy name \"default\" is reserved",
            ));
        }
        if names.iter().any(|n| n == name) {
            return Err(invalid(
                format!("{key}.name"),
                format!("duplicate proxy name {name:?}"),
            ));
        }
        check_proxy_object(&key, p)?;
        names.push(name.to_string());
    }
    names.push(DEFAULT_PROXY.to_string());
    Ok(names)
}
