//! The Redis object of the configuration (`engine.redis`, and later
//! `broker.redis` / `presence_manager.redis`), read from its free-form JSON
//! form into typed settings.
//!
//! Addresses are kept as a list so client-side sharding (several addresses),
//! Redis Cluster (`cluster_address`) and Sentinel (`sentinel_address`) can be
//! added without changing the shape; this build connects to one standalone
//! Redis and rejects the others with a clear "not supported yet" error.

use std::time::Duration;

use serde_json::Value;

use crate::engine::settings::{duration, key_err, string};

/// Default address when none is configured.
pub const DEFAULT_ADDRESS: &str = "redis://127.0.0.1:6379";
/// Default key prefix.
pub const DEFAULT_PREFIX: &str = "centrifugo";
/// Default dial timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default timeout of one command round trip.
pub const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(4);
/// Default presence entry lifetime without refresh.
pub const DEFAULT_PRESENCE_TTL: Duration = Duration::from_secs(60);

/// Typed Redis settings.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// Connection URLs (`redis://` or `rediss://`), one per shard.
    pub addresses: Vec<String>,
    /// Key and PUB/SUB channel prefix.
    pub prefix: String,
    /// Dial timeout.
    pub connect_timeout: Duration,
    /// Timeout of one command round trip.
    pub io_timeout: Duration,
    /// Database number.
    pub db: i64,
    /// ACL user (may be empty).
    pub user: String,
    /// Password (may be empty); never logged.
    pub password: String,
    /// Presence entry lifetime without refresh.
    pub presence_ttl: Duration,
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Addresses may carry credentials in their userinfo: list hosts only.
        let hosts: Vec<String> = self.addresses.iter().map(|a| redact(a)).collect();
        f.debug_struct("RedisSettings")
            .field("addresses", &hosts)
            .field("prefix", &self.prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("io_timeout", &self.io_timeout)
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            addresses: vec![DEFAULT_ADDRESS.to_owned()],
            prefix: DEFAULT_PREFIX.to_owned(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            io_timeout: DEFAULT_IO_TIMEOUT,
            db: 0,
            user: String::new(),
            password: String::new(),
            presence_ttl: DEFAULT_PRESENCE_TTL,
        }
    }
}

/// An address without its userinfo part, for logs and errors.
pub fn redact(address: &str) -> String {
    match (address.find("://"), address.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://***@{}", &address[..scheme_end], &address[at + 1..])
        }
        _ => address.to_owned(),
    }
}

impl RedisSettings {
    /// Reads the Redis object. Errors name the offending key relative to the
    /// object (`address`, `io_timeout`, ...).
    pub fn from_json(value: &Value) -> Result<Self, (String, String)> {
        let mut s = Self::default();
        let obj = match value {
            Value::Null => return Ok(s),
            Value::Object(obj) => obj,
            _ => return Err((String::new(), "must be an object".to_owned())),
        };
        let tls = obj
            .get("tls")
            .and_then(|t| t.get("enabled"))
            .and_then(Value::as_bool);
        check_tls(obj.get("tls"))?;
        if let Some(address) = obj.get("address") {
            let list: Vec<&str> = match address {
                Value::String(a) => vec![a.as_str()],
                Value::Array(items) => items
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .ok_or_else(|| key_err("address", "must be strings"))
                    })
                    .collect::<Result<_, _>>()?,
                Value::Null => Vec::new(),
                _ => return Err(key_err("address", "must be a string or a list of strings")),
            };
            if !list.is_empty() {
                s.addresses = list
                    .iter()
                    .map(|a| normalize_address(a, tls.unwrap_or(false)))
                    .collect::<Result<_, _>>()
                    .map_err(|e| key_err("address", &e))?;
            }
        } else if tls == Some(true) {
            s.addresses =
                vec![normalize_address(DEFAULT_ADDRESS, true).map_err(|e| key_err("address", &e))?];
        }
        match obj.get("prefix") {
            Some(Value::String(p)) if !p.is_empty() => s.prefix = p.clone(),
            None | Some(Value::Null) | Some(Value::String(_)) => {}
            Some(_) => return Err(key_err("prefix", "must be a string")),
        }
        s.connect_timeout = duration(obj.get("connect_timeout"), "connect_timeout")?
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        s.io_timeout = duration(obj.get("io_timeout"), "io_timeout")?.unwrap_or(DEFAULT_IO_TIMEOUT);
        s.presence_ttl =
            duration(obj.get("presence_ttl"), "presence_ttl")?.unwrap_or(DEFAULT_PRESENCE_TTL);
        if s.connect_timeout.is_zero() {
            s.connect_timeout = DEFAULT_CONNECT_TIMEOUT;
        }
        if s.io_timeout.is_zero() {
            s.io_timeout = DEFAULT_IO_TIMEOUT;
        }
        if s.presence_ttl.is_zero() {
            s.presence_ttl = DEFAULT_PRESENCE_TTL;
        }
        if let Some(db) = obj.get("db") {
            s.db = db
                .as_i64()
                .filter(|d| *d >= 0)
                .ok_or_else(|| key_err("db", "must be a non-negative integer"))?;
        }
        s.user = string(obj.get("user"), "user")?;
        s.password = string(obj.get("password"), "password")?;
        for (key, what) in [
            ("cluster_address", "Redis Cluster"),
            ("sentinel_address", "Redis Sentinel"),
        ] {
            let used = match obj.get(key) {
                Some(Value::String(a)) => !a.is_empty(),
                Some(Value::Array(a)) => !a.is_empty(),
                _ => false,
            };
            if used {
                return Err(key_err(
                    key,
                    &format!("{what} is not supported by this build yet"),
                ));
            }
        }
        if s.addresses.len() > 1 {
            return Err(key_err(
                "address",
                "several addresses (client-side sharding) are not supported by this build yet",
            ));
        }
        Ok(s)
    }
}

/// TLS to Redis verifies the server against the system roots; custom
/// certificates and skipping verification are refused rather than ignored.
fn check_tls(tls: Option<&Value>) -> Result<(), (String, String)> {
    let Some(Value::Object(tls)) = tls else {
        return Ok(());
    };
    if tls.get("insecure_skip_verify").and_then(Value::as_bool) == Some(true) {
        return Err(key_err(
            "tls.insecure_skip_verify",
            "is not supported by this build yet",
        ));
    }
    for key in [
        "cert_pem",
        "key_pem",
        "server_ca_pem",
        "cert_pem_file",
        "key_pem_file",
        "server_ca_pem_file",
    ] {
        if tls
            .get(key)
            .and_then(Value::as_str)
            .is_some_and(|v| !v.is_empty())
        {
            return Err(key_err(
                &format!("tls.{key}"),
                "custom certificates are not supported by this build yet",
            ));
        }
    }
    Ok(())
}

/// Accepts `redis://…`, `rediss://…`, `tcp://host:port` and bare
/// `host:port`; returns a URL the client library understands. `tls`
/// upgrades a plain address to `rediss://`.
fn normalize_address(address: &str, tls: bool) -> Result<String, String> {
    let address = address.trim();
    if address.is_empty() {
        return Err("empty address".to_owned());
    }
    let (scheme, rest) = match address.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => ("redis".to_owned(), address),
    };
    let scheme = match scheme.as_str() {
        "redis" | "tcp" if tls => "rediss",
        "redis" | "tcp" => "redis",
        "rediss" => "rediss",
        other => return Err(format!("unsupported address scheme {other:?}")),
    };
    if rest.is_empty() {
        return Err("address without host".to_owned());
    }
    Ok(format!("{scheme}://{rest}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn defaults_and_formats() {
        let s = RedisSettings::from_json(&json!({})).expect("defaults");
        assert_eq!(s.addresses, vec![DEFAULT_ADDRESS]);
        assert_eq!(s.prefix, "centrifugo");
        let s = RedisSettings::from_json(&json!({
            "address": "localhost:6380", "prefix": "p", "io_timeout": "2s",
            "connect_timeout": "500ms", "presence_ttl": "10s", "db": 2
        }))
        .expect("parse");
        assert_eq!(s.addresses, vec!["redis://localhost:6380"]);
        assert_eq!(s.prefix, "p");
        assert_eq!(s.io_timeout, Duration::from_secs(2));
        assert_eq!(s.connect_timeout, Duration::from_millis(500));
        assert_eq!(s.presence_ttl, Duration::from_secs(10));
        assert_eq!(s.db, 2);
        let s = RedisSettings::from_json(
            &json!({"address": ["redis://h:1"], "tls": {"enabled": true}}),
        )
        .expect("tls");
        assert_eq!(s.addresses, vec!["rediss://h:1"]);
    }

    #[test]
    fn rejects_what_is_not_built_yet() {
        let err = |v| RedisSettings::from_json(&v).expect_err("must fail").0;
        assert_eq!(err(json!({"address": ["a:1", "b:2"]})), "address");
        assert_eq!(err(json!({"cluster_address": ["a:1"]})), "cluster_address");
        assert_eq!(
            err(json!({"sentinel_address": ["a:1"]})),
            "sentinel_address"
        );
        assert_eq!(err(json!({"address": "unix:///tmp/x"})), "address");
        assert_eq!(err(json!({"io_timeout": "soon"})), "io_timeout");
        assert_eq!(err(json!({"db": -1})), "db");
        assert_eq!(
            err(json!({"tls": {"enabled": true, "insecure_skip_verify": true}})),
            "tls.insecure_skip_verify"
        );
        assert_eq!(
            err(json!({"tls": {"enabled": true, "server_ca_pem": "x"}})),
            "tls.server_ca_pem"
        );
    }

    #[test]
    fn redacts_userinfo() {
        assert_eq!(redact("redis://u:secret@h:1"), "redis://***@h:1");
        assert_eq!(redact("redis://h:1"), "redis://h:1");
    }
}
