//! Validation of the proxy sections: `client.proxy.*`, `channel.proxy.*`,
//! `rpc.proxy`, the named `proxies` list and the subscription-stream proxies.

use super::{Check, DEFAULT_PROXY, NAME_PATTERN, invalid, matches};
use crate::config::error::ConfigError;
use crate::config::types::{Config, ProxyConfig};

/// A proxy in use needs an endpoint (its timeout and transforms are
/// checked for every proxy by [`check_proxy_sections`]).
pub(crate) fn check_proxy_object(key: &str, p: &ProxyConfig) -> Check {
    if p.endpoint.is_empty() {
        return Err(invalid(format!("{key}.endpoint"), "proxy endpoint not set"));
    }
    Ok(())
}

/// Every proxy object must be well-formed (non-zero timeout, transforms,
/// metadata key), whether or not it is in use; errors name the key.
pub(super) fn check_proxy_sections(cfg: &Config) -> Check {
    let check = |key: &str, p: &ProxyConfig| {
        p.check(key).map_err(|e| match e.split_once(": ") {
            Some((k, m)) => invalid(k, m),
            None => invalid(key, e.clone()),
        })
    };
    check("client.proxy.connect", &cfg.client.proxy.connect)?;
    check("client.proxy.refresh", &cfg.client.proxy.refresh)?;
    for (kind, p) in cfg.channel.proxy.sections() {
        check(&format!("channel.proxy.{kind}"), p)?;
    }
    check("rpc.proxy", &cfg.rpc.proxy)?;
    for (i, p) in cfg.proxies.iter().enumerate() {
        check(&format!("proxies[{i}]"), p)?;
    }
    Ok(())
}

/// Subscription streams are gRPC only: `channel.proxy.subscribe_stream`
/// and every `proxies[]` item a namespace streams from need a gRPC endpoint.
pub(super) fn check_stream_proxies(cfg: &Config) -> Check {
    if cfg.channel.proxy.subscribe_stream.is_http() {
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
        let http_item = cfg.proxies.iter().any(|p| p.name == name && p.is_http());
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
        let name = p.name.as_str();
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
