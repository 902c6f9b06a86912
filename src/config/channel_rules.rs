//! Validation of one channel-options block (`channel.without_namespace` or a
//! `channel.namespaces[i]` item): history, recovery, delta, formats,
//! channel regex and proxy references. (Map and shared poll options are
//! refused by the key table until they are built.)

use super::error::ConfigError;
use super::types::{ChannelOptions, Config, RecoveryMode};
use super::validate::{DEFAULT_PROXY, check_proxy_object, whole_seconds};

type Check = Result<(), ConfigError>;

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::invalid(key, message)
}

/// Checks the options block at key path `p`.
pub(crate) fn check_channel_options(
    p: &str,
    o: &ChannelOptions,
    cfg: &Config,
    proxy_names: &[String],
) -> Check {
    whole_seconds(&format!("{p}.history_ttl"), o.history_ttl)?;
    whole_seconds(&format!("{p}.history_meta_ttl"), o.history_meta_ttl)?;
    if o.history_size != 0 && o.history_ttl.is_zero() {
        return Err(invalid(
            format!("{p}.history_ttl"),
            "history_size and history_ttl must be set together",
        ));
    }
    if o.history_size == 0 && !o.history_ttl.is_zero() {
        return Err(invalid(
            format!("{p}.history_size"),
            "history_size and history_ttl must be set together",
        ));
    }
    let meta_ttl = if o.history_meta_ttl.is_zero() {
        cfg.channel.history_meta_ttl
    } else {
        o.history_meta_ttl
    };
    if o.history_ttl > meta_ttl {
        return Err(invalid(
            format!("{p}.history_ttl"),
            format!(
                "history ttl ({}) can not be greater than history meta ttl ({meta_ttl})",
                o.history_ttl
            ),
        ));
    }
    if o.force_recovery && (o.history_size == 0 || o.history_ttl.is_zero()) {
        return Err(invalid(
            format!("{p}.force_recovery"),
            "requires history (history_size and history_ttl)",
        ));
    }
    if o.auto_cache_recover && !(o.force_recovery && o.force_recovery_mode == RecoveryMode::Cache) {
        return Err(invalid(
            format!("{p}.auto_cache_recover"),
            "requires force_recovery with force_recovery_mode \"cache\"",
        ));
    }
    for t in &o.allowed_delta_types {
        if t != "fossil" {
            return Err(invalid(
                format!("{p}.allowed_delta_types"),
                format!("unknown delta type {t:?} (only \"fossil\")"),
            ));
        }
    }
    if !o.channel_regex.is_empty() {
        regex::Regex::new(&o.channel_regex).map_err(|e| {
            invalid(
                format!("{p}.channel_regex"),
                format!("invalid regular expression: {e}"),
            )
        })?;
    }
    if o.subscribe_stream_proxy_enabled
        && (o.subscribe_proxy_enabled || o.publish_proxy_enabled || o.sub_refresh_proxy_enabled)
    {
        return Err(invalid(
            format!("{p}.subscribe_stream_proxy_enabled"),
            "can't be used together with subscribe, publish or sub_refresh proxies",
        ));
    }
    let proxies: [(&str, bool, &str, &str); 4] = [
        (
            "subscribe_proxy_name",
            o.subscribe_proxy_enabled,
            &o.subscribe_proxy_name,
            "subscribe",
        ),
        (
            "publish_proxy_name",
            o.publish_proxy_enabled,
            &o.publish_proxy_name,
            "publish",
        ),
        (
            "sub_refresh_proxy_name",
            o.sub_refresh_proxy_enabled,
            &o.sub_refresh_proxy_name,
            "sub_refresh",
        ),
        (
            "subscribe_stream_proxy_name",
            o.subscribe_stream_proxy_enabled,
            &o.subscribe_stream_proxy_name,
            "subscribe_stream",
        ),
    ];
    for (field, enabled, name, section) in proxies {
        proxy_ref(
            &format!("{p}.{field}"),
            enabled,
            name,
            section,
            cfg,
            proxy_names,
        )?;
    }
    Ok(())
}

/// A `*_proxy_name` must name a `proxies[]` item or the default proxy; an
/// enabled default proxy needs `channel.proxy.<section>` configured.
fn proxy_ref(
    key: &str,
    enabled: bool,
    name: &str,
    section: &str,
    cfg: &Config,
    names: &[String],
) -> Check {
    if !name.is_empty() && !names.iter().any(|n| n == name) {
        return Err(invalid(key, format!("proxy {name:?} not found in proxies")));
    }
    if enabled
        && (name.is_empty() || name == DEFAULT_PROXY)
        && let Some((_, p)) = cfg
            .channel
            .proxy
            .sections()
            .into_iter()
            .find(|(s, _)| *s == section)
    {
        check_proxy_object(&format!("channel.proxy.{section}"), p)?;
    }
    Ok(())
}
