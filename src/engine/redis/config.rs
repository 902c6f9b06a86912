//! The Redis object of the configuration (`engine.redis`, `broker.redis`,
//! `presence_manager.redis`: [`RedisConfig`]) turned into connection
//! settings.
//!
//! Three topologies (address forms in [`super::address`]):
//! * several `address` entries — client-side sharding over standalone
//!   Redis servers, one shard per address;
//! * `cluster_address` (or one `redis+cluster://` address) — the seed nodes
//!   of one Redis Cluster;
//! * `sentinel_address` + `sentinel_master_name` (or one
//!   `redis+sentinel://` address) — a master found through Sentinels.
//!
//! Mixing forms (a cluster or sentinel address next to other addresses) is
//! refused. The `tls` object's certificates are read by [`super::tls`];
//! the `sentinel_tls` object takes none yet and refuses them rather than
//! ignoring them.

use std::time::Duration;

use super::address::{self, Parsed};
use super::tls::{self, TlsSettings};
use crate::config::{RedisConfig, Tls};
use crate::engine::settings::key_err;

/// Default address when none is configured.
pub(crate) const DEFAULT_ADDRESS: &str = "redis://127.0.0.1:6379";
/// Default key prefix.
pub(crate) const DEFAULT_PREFIX: &str = "centrifugo";
/// Default dial timeout.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default timeout of one command round trip.
pub(crate) const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(4);
/// Default presence entry lifetime without refresh.
pub(crate) const DEFAULT_PRESENCE_TTL: Duration = Duration::from_secs(60);

/// How to find the master through Sentinels.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SentinelSettings {
    /// `redis://host:port` of each Sentinel.
    pub addresses: Vec<String>,
    /// The monitored master's name.
    pub master_name: String,
    /// ACL user at the Sentinels (may be empty).
    pub user: String,
    /// Password at the Sentinels (may be empty); never logged.
    pub password: String,
    /// TLS to the master (`rediss://`).
    pub(crate) master_tls: bool,
}

impl std::fmt::Debug for SentinelSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentinelSettings")
            .field("addresses", &self.addresses)
            .field("master_name", &self.master_name)
            .finish_non_exhaustive()
    }
}

/// Typed Redis settings.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// Connection URLs (`redis://` or `rediss://`): one per shard, or the
    /// seed nodes when `cluster` is set; unused with `sentinel`.
    pub addresses: Vec<String>,
    /// The addresses are the seed nodes of one Redis Cluster.
    pub cluster: bool,
    /// The master is found through Sentinels.
    pub sentinel: Option<SentinelSettings>,
    /// Custom TLS material for `rediss://` connections.
    pub tls: Option<TlsSettings>,
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
            .field("cluster", &self.cluster)
            .field("sentinel", &self.sentinel)
            .field("tls", &self.tls)
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
            cluster: false,
            sentinel: None,
            tls: None,
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
pub(crate) fn redact(address: &str) -> String {
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
    pub fn from_config(cfg: &RedisConfig) -> Result<Self, (String, String)> {
        let mut s = Self::default();
        let tls = cfg.tls.enabled;
        s.tls = tls::read(&cfg.tls)?;
        let mut parsed: Vec<Parsed> = cfg
            .address
            .iter()
            .map(|a| address::parse(a, tls))
            .collect::<Result<_, _>>()
            .map_err(|e| key_err("address", &e))?;
        if parsed.is_empty() {
            parsed.push(Parsed::Plain(
                address::plain(DEFAULT_ADDRESS, tls).map_err(|e| key_err("address", &e))?,
            ));
        }
        if parsed.len() > 1 && parsed.iter().any(|p| !matches!(p, Parsed::Plain(_))) {
            return Err(key_err(
                "address",
                "a cluster or sentinel address must be the only address",
            ));
        }
        s.addresses = Vec::new();
        for p in parsed {
            match p {
                Parsed::Plain(url) => s.addresses.push(url),
                Parsed::Cluster(seeds) => {
                    s.cluster = true;
                    s.addresses = seeds;
                }
                Parsed::Sentinel(a) => {
                    if let Some(db) = a.db {
                        s.db = db;
                    }
                    s.user = a.user;
                    s.password = a.password;
                    s.sentinel = Some(SentinelSettings {
                        addresses: a.sentinels,
                        master_name: a.master_name,
                        user: a.sentinel_user,
                        password: a.sentinel_password,
                        master_tls: a.tls,
                    });
                }
            }
        }
        if !cfg.prefix.is_empty() {
            s.prefix = cfg.prefix.clone();
        }
        let or = |d: crate::config::Duration, default: Duration| {
            if d.is_zero() { default } else { d.get() }
        };
        s.connect_timeout = or(cfg.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        s.io_timeout = or(cfg.io_timeout, DEFAULT_IO_TIMEOUT);
        s.presence_ttl = or(cfg.presence_ttl.unwrap_or_default(), DEFAULT_PRESENCE_TTL);
        if cfg.db != 0 {
            s.db = i64::from(cfg.db);
        }
        if !cfg.user.is_empty() {
            s.user = cfg.user.clone();
        }
        if !cfg.password.is_empty() {
            s.password = cfg.password.clone();
        }
        let (cluster, sentinels) = (&cfg.cluster_address, &cfg.sentinel_address);
        if !cluster.is_empty() && !sentinels.is_empty() {
            return Err(key_err(
                "cluster_address",
                "cluster_address and sentinel_address exclude each other",
            ));
        }
        if !cluster.is_empty() {
            s.cluster = true;
            s.sentinel = None;
            s.addresses = cluster
                .iter()
                .map(|a| match address::parse(a, tls)? {
                    Parsed::Plain(url) => Ok(vec![url]),
                    Parsed::Cluster(seeds) => Ok(seeds),
                    Parsed::Sentinel(_) => Err("a sentinel address is no cluster node".to_owned()),
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| key_err("cluster_address", &e))?
                .concat();
        }
        if !sentinels.is_empty() {
            check_sentinel_tls(&cfg.sentinel_tls)?;
            s.cluster = false;
            s.sentinel = Some(SentinelSettings {
                addresses: sentinels
                    .iter()
                    .map(|a| address::plain(a, cfg.sentinel_tls.enabled))
                    .collect::<Result<_, _>>()
                    .map_err(|e| key_err("sentinel_address", &e))?,
                master_tls: tls,
                ..SentinelSettings::default()
            });
        }
        if let Some(sentinel) = s.sentinel.as_mut() {
            for (value, field) in [
                (&cfg.sentinel_master_name, &mut sentinel.master_name),
                (&cfg.sentinel_user, &mut sentinel.user),
                (&cfg.sentinel_password, &mut sentinel.password),
            ] {
                if !value.is_empty() {
                    *field = value.clone();
                }
            }
            if sentinel.master_name.is_empty() {
                return Err(key_err(
                    "sentinel_master_name",
                    "is required with sentinel addresses",
                ));
            }
        }
        Ok(s)
    }
}

/// TLS to the Sentinels verifies them against the system roots; custom
/// certificates and skipping verification are refused (by the key table
/// first) rather than ignored.
fn check_sentinel_tls(tls: &Tls) -> Result<(), (String, String)> {
    if tls.insecure_skip_verify {
        return Err(key_err(
            "sentinel_tls.insecure_skip_verify",
            "is not supported by this build yet",
        ));
    }
    for (key, value) in [
        ("cert_pem", &tls.cert_pem),
        ("key_pem", &tls.key_pem),
        ("server_ca_pem", &tls.server_ca_pem),
    ] {
        if !value.is_empty() {
            return Err(key_err(
                &format!("sentinel_tls.{key}"),
                "custom certificates are not supported by this build yet",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// The settings from a JSON Redis object, as the loader types it.
    fn from_json(v: &Value) -> Result<RedisSettings, (String, String)> {
        let cfg: RedisConfig = serde_path_to_error::deserialize(v.clone())
            .map_err(|e| (e.path().to_string(), e.inner().to_string()))?;
        RedisSettings::from_config(&cfg)
    }

    #[test]
    fn defaults_and_formats() {
        let s = from_json(&json!({})).expect("defaults");
        assert_eq!(s.addresses, vec![DEFAULT_ADDRESS]);
        assert_eq!(s.prefix, "centrifugo");
        let s = from_json(&json!({
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
        let s =
            from_json(&json!({"address": ["redis://h:1"], "tls": {"enabled": true}})).expect("tls");
        assert_eq!(s.addresses, vec!["rediss://h:1"]);
    }

    #[test]
    fn topologies() {
        let s = from_json(&json!({"address": ["a:1", "redis://b:2"]})).expect("sharding");
        assert_eq!(s.addresses, vec!["redis://a:1", "redis://b:2"]);
        assert!(!s.cluster && s.sentinel.is_none());
        let s = from_json(&json!({"cluster_address": ["a:1", "b:2"]})).expect("cluster");
        assert!(s.cluster);
        assert_eq!(s.addresses, vec!["redis://a:1", "redis://b:2"]);
        let s =
            from_json(&json!({"address": "redis+cluster://a:1?addr=b:2"})).expect("cluster url");
        assert!(s.cluster);
        assert_eq!(s.addresses, vec!["redis://a:1", "redis://b:2"]);
        let s = from_json(&json!({
            "sentinel_address": ["s:26379"], "sentinel_master_name": "m",
            "sentinel_password": "sp", "password": "mp"
        }))
        .expect("sentinel");
        let sentinel = s.sentinel.clone().expect("sentinel settings");
        assert_eq!(sentinel.addresses, vec!["redis://s:26379"]);
        assert_eq!(sentinel.master_name, "m");
        assert_eq!(sentinel.password, "sp");
        assert_eq!(s.password, "mp");
        let s = from_json(&json!({
            "address": "redis+sentinel://:mp@s:26379/3?sentinel_master_name=m"
        }))
        .expect("sentinel url");
        assert_eq!(s.sentinel.expect("sentinel").master_name, "m");
        assert_eq!((s.password.as_str(), s.db), ("mp", 3));
    }

    #[test]
    fn rejects_bad_or_unbuilt_settings() {
        let err = |v| from_json(&v).expect_err("must fail").0;
        assert_eq!(
            err(json!({"sentinel_address": ["a:1"]})),
            "sentinel_master_name"
        );
        assert_eq!(
            err(json!({"cluster_address": ["a:1"], "sentinel_address": ["b:1"]})),
            "cluster_address"
        );
        assert_eq!(
            err(json!({"address": ["redis+cluster://a:1", "b:2"]})),
            "address"
        );
        assert_eq!(err(json!({"address": "unix:///tmp/x"})), "address");
        assert_eq!(err(json!({"io_timeout": "soon"})), "io_timeout");
        assert_eq!(err(json!({"db": -1})), "db");
        assert_eq!(
            err(json!({"tls": {"enabled": true, "server_name": "x"}})),
            "tls.server_name"
        );
        let sentinel = |tls| json!({"sentinel_address": "s:1", "sentinel_master_name": "m", "sentinel_tls": tls});
        assert_eq!(
            err(sentinel(
                json!({"enabled": true, "insecure_skip_verify": true})
            )),
            "sentinel_tls.insecure_skip_verify"
        );
        assert_eq!(
            err(sentinel(json!({"enabled": true, "server_ca_pem": "x"}))),
            "sentinel_tls.server_ca_pem"
        );
    }

    #[test]
    fn redacts_userinfo() {
        assert_eq!(redact("redis://u:secret@h:1"), "redis://***@h:1");
        assert_eq!(redact("redis://h:1"), "redis://h:1");
    }
}
