//! Validation of a loaded [`Config`] (Centrifugo v6 rules). Every error names
//! its key path; per-namespace keys are written `channel.namespaces[2].history_ttl`
//! (index into the array, like type errors and unknown-key reports).

use regex::Regex;

use super::channel_rules::check_channel_options;
use super::error::ConfigError;
use super::types::{Config, Duration, Token};

/// Namespace / proxy name pattern (Centrifugo's code allows `.`).
pub(crate) const NAME_PATTERN: &str = "^[-a-zA-Z0-9_.]{2,}$";
/// The reserved name of the unnamed proxy under `channel.proxy.*` / `rpc.proxy`.
pub(crate) const DEFAULT_PROXY: &str = "default";

type Check = Result<(), ConfigError>;

pub(crate) mod autocert;
mod proxies;
use autocert::{autocert_warnings, check_autocert};
pub(crate) use proxies::check_proxy_object;
use proxies::{check_proxies, check_proxy_sections, check_stream_proxies};

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::invalid(key, message)
}

pub(crate) fn matches(pattern: &str, text: &str) -> bool {
    Regex::new(pattern).is_ok_and(|re| re.is_match(text))
}

/// Checks every rule; the first violation is returned.
pub fn validate(cfg: &Config) -> Check {
    check_log(cfg)?;
    check_http(cfg)?;
    check_client(cfg)?;
    check_proxy_sections(cfg)?;
    let proxy_names = check_proxies(cfg)?;
    check_channel(cfg, &proxy_names)?;
    check_stream_proxies(cfg)?;
    check_rpc(cfg, &proxy_names)?;
    cfg.middleware.validate()?;
    Ok(())
}

/// Warn-level findings: insecure options that are switched on.
pub fn warnings(cfg: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let mut flag = |on: bool, key: &str, what: &str| {
        if on {
            out.push(format!(
                "{key} is enabled: {what} – never use this in production"
            ));
        }
    };
    flag(
        cfg.client.insecure,
        "client.insecure",
        "clients connect and subscribe without authentication",
    );
    flag(
        cfg.http_api.insecure,
        "http_api.insecure",
        "the server HTTP API accepts requests without an API key",
    );
    flag(
        cfg.admin.insecure,
        "admin.insecure",
        "the admin web UI needs no password",
    );
    flag(
        cfg.client.insecure_skip_token_signature_verify,
        "client.insecure_skip_token_signature_verify",
        "JWT signatures are not verified",
    );
    if cfg.client.allowed_origins.iter().any(|o| o == "*") {
        out.push(
            "client.allowed_origins contains \"*\": connections from every origin are allowed"
                .into(),
        );
    }
    autocert_warnings(cfg, &mut out);
    out
}

fn check_log(cfg: &Config) -> Check {
    const LEVELS: &[&str] = &["none", "trace", "debug", "info", "warn", "error", "fatal"];
    if !LEVELS.contains(&cfg.log.level.as_str()) {
        return Err(invalid(
            "log.level",
            format!(
                "unknown log level {:?} (use none, trace, debug, info, warn or error)",
                cfg.log.level
            ),
        ));
    }
    Ok(())
}

fn check_http(cfg: &Config) -> Check {
    let h = &cfg.http_server;
    if h.h2c_external && (h.internal_port.is_empty() || h.internal_port == h.port.to_string()) {
        return Err(invalid(
            "http_server.h2c_external",
            "requires a separate http_server.internal_port",
        ));
    }
    if h.h2c_external && (h.tls.enabled || h.tls_autocert.enabled) {
        return Err(invalid(
            "http_server.h2c_external",
            "cannot be used together with http_server.tls or http_server.tls_autocert",
        ));
    }
    check_autocert(cfg)?;
    // Routes are registered from these; a path must be absolute, and two
    // enabled endpoints cannot share one.
    let emulation = cfg.sse.enabled || cfg.http_stream.enabled;
    let mut enabled: Vec<(&str, &str)> = Vec::new();
    for (key, prefix, on) in [
        (
            "websocket.handler_prefix",
            &cfg.websocket.handler_prefix,
            !cfg.websocket.disabled,
        ),
        (
            "sse.handler_prefix",
            &cfg.sse.handler_prefix,
            cfg.sse.enabled,
        ),
        (
            "http_stream.handler_prefix",
            &cfg.http_stream.handler_prefix,
            cfg.http_stream.enabled,
        ),
        (
            "emulation.handler_prefix",
            &cfg.emulation.handler_prefix,
            emulation,
        ),
        (
            "uni_websocket.handler_prefix",
            &cfg.uni_websocket.handler_prefix,
            cfg.uni_websocket.enabled,
        ),
        (
            "uni_sse.handler_prefix",
            &cfg.uni_sse.handler_prefix,
            cfg.uni_sse.enabled,
        ),
        (
            "uni_http_stream.handler_prefix",
            &cfg.uni_http_stream.handler_prefix,
            cfg.uni_http_stream.enabled,
        ),
        (
            "http_api.handler_prefix",
            &cfg.http_api.handler_prefix,
            !cfg.http_api.disabled,
        ),
        (
            "prometheus.handler_prefix",
            &cfg.prometheus.handler_prefix,
            cfg.prometheus.enabled,
        ),
        (
            "health.handler_prefix",
            &cfg.health.handler_prefix,
            cfg.health.enabled,
        ),
        (
            "swagger.handler_prefix",
            &cfg.swagger.handler_prefix,
            cfg.swagger.enabled,
        ),
        (
            "debug.handler_prefix",
            &cfg.debug.handler_prefix,
            cfg.debug.enabled,
        ),
        (
            "init.handler_prefix",
            &cfg.init.handler_prefix,
            cfg.init.enabled,
        ),
    ] {
        if !prefix.starts_with('/') {
            return Err(invalid(
                key,
                format!("must start with \"/\", got {prefix:?}"),
            ));
        }
        if !on {
            continue;
        }
        if let Some((other, _)) = enabled.iter().find(|(_, p)| *p == prefix.as_str()) {
            return Err(invalid(
                key,
                format!("{prefix:?} is already the path of {other}"),
            ));
        }
        enabled.push((key, prefix));
    }
    Ok(())
}

fn check_client(cfg: &Config) -> Check {
    let c = &cfg.client;
    if !c.ping_interval.is_zero() && !c.pong_timeout.is_zero() && c.ping_interval <= c.pong_timeout
    {
        return Err(invalid(
            "client.ping_interval",
            format!(
                "must be greater than client.pong_timeout ({} <= {})",
                c.ping_interval, c.pong_timeout
            ),
        ));
    }
    check_token("client.token", &c.token)?;
    check_token("client.subscription_token", &c.subscription_token.token)?;
    for (kind, p) in [("connect", &c.proxy.connect), ("refresh", &c.proxy.refresh)] {
        if p.enabled {
            check_proxy_object(&format!("client.proxy.{kind}"), p)?;
        }
    }
    let personal = &c.subscribe_to_user_personal_channel;
    if personal.enabled {
        let ns = &personal.personal_channel_namespace;
        let key = "client.subscribe_to_user_personal_channel";
        let presence = if ns.is_empty() {
            cfg.channel.without_namespace.presence
        } else {
            match cfg.channel.namespaces.iter().find(|n| &n.name == ns) {
                Some(n) => n.options.presence,
                None => {
                    return Err(invalid(
                        format!("{key}.personal_channel_namespace"),
                        format!("namespace {ns:?} not found in channel.namespaces"),
                    ));
                }
            }
        };
        if personal.single_connection && !presence {
            return Err(invalid(
                format!("{key}.single_connection"),
                "requires presence enabled for the personal channel namespace",
            ));
        }
    }
    Ok(())
}

fn check_token(prefix: &str, t: &Token) -> Check {
    if !t.audience.is_empty() && !t.audience_regex.is_empty() {
        return Err(invalid(
            format!("{prefix}.audience_regex"),
            format!("cannot be used together with {prefix}.audience"),
        ));
    }
    if !t.issuer.is_empty() && !t.issuer_regex.is_empty() {
        return Err(invalid(
            format!("{prefix}.issuer_regex"),
            format!("cannot be used together with {prefix}.issuer"),
        ));
    }
    for (name, re) in [
        ("audience_regex", &t.audience_regex),
        ("issuer_regex", &t.issuer_regex),
    ] {
        if !re.is_empty() {
            Regex::new(re).map_err(|e| {
                invalid(
                    format!("{prefix}.{name}"),
                    format!("invalid regular expression: {e}"),
                )
            })?;
        }
    }
    if !t.user_id_claim.is_empty() && !matches("^[a-zA-Z_]+$", &t.user_id_claim) {
        return Err(invalid(
            format!("{prefix}.user_id_claim"),
            format!(
                "invalid custom user ID claim {:?}, must match ^[a-zA-Z_]+$",
                t.user_id_claim
            ),
        ));
    }
    Ok(())
}

fn check_channel(cfg: &Config, proxy_names: &[String]) -> Check {
    let ch = &cfg.channel;
    if ch.max_length == 0 {
        return Err(invalid("channel.max_length", "must be greater than 0"));
    }
    whole_seconds("channel.history_meta_ttl", ch.history_meta_ttl)?;
    check_channel_options(
        "channel.without_namespace",
        &ch.without_namespace,
        cfg,
        proxy_names,
    )?;
    let mut seen: Vec<&str> = Vec::new();
    for (i, ns) in ch.namespaces.iter().enumerate() {
        let key = format!("channel.namespaces[{i}]");
        if !matches(NAME_PATTERN, &ns.name) {
            return Err(invalid(
                format!("{key}.name"),
                format!(
                    "invalid namespace name {:?}, must match {NAME_PATTERN}",
                    ns.name
                ),
            ));
        }
        if seen.contains(&ns.name.as_str()) {
            return Err(invalid(
                format!("{key}.name"),
                format!("namespace name must be unique: {:?}", ns.name),
            ));
        }
        seen.push(&ns.name);
        check_channel_options(&key, &ns.options, cfg, proxy_names)?;
    }
    Ok(())
}

/// Durations that Centrifugo stores in whole seconds.
pub(crate) fn whole_seconds(key: &str, d: Duration) -> Check {
    if d.get().subsec_nanos() != 0 {
        return Err(invalid(
            key,
            format!("malformed duration {d}, sub-second precision is not supported for this key"),
        ));
    }
    Ok(())
}

fn check_rpc(cfg: &Config, proxy_names: &[String]) -> Check {
    let rpc = &cfg.rpc;
    let check_opts = |key: &str, proxy_enabled: bool, proxy_name: &str| -> Check {
        if !proxy_name.is_empty() && !proxy_names.iter().any(|n| n == proxy_name) {
            return Err(invalid(
                format!("{key}.proxy_name"),
                format!("proxy {proxy_name:?} not found in proxies"),
            ));
        }
        if proxy_enabled && (proxy_name.is_empty() || proxy_name == DEFAULT_PROXY) {
            check_proxy_object("rpc.proxy", &rpc.proxy)?;
        }
        Ok(())
    };
    let w = &rpc.without_namespace;
    check_opts("rpc.without_namespace", w.proxy_enabled, &w.proxy_name)?;
    let mut seen: Vec<&str> = Vec::new();
    for (i, ns) in rpc.namespaces.iter().enumerate() {
        let key = format!("rpc.namespaces[{i}]");
        if !matches(NAME_PATTERN, &ns.name) {
            return Err(invalid(
                format!("{key}.name"),
                format!(
                    "invalid rpc namespace name {:?}, must match {NAME_PATTERN}",
                    ns.name
                ),
            ));
        }
        if seen.contains(&ns.name.as_str()) {
            return Err(invalid(
                format!("{key}.name"),
                format!("rpc namespace name must be unique: {:?}", ns.name),
            ));
        }
        seen.push(&ns.name);
        check_opts(&key, ns.options.proxy_enabled, &ns.options.proxy_name)?;
    }
    Ok(())
}
