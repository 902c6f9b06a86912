//! `middleware.*`: Rotor's own section (Centrifugo has none) for the tower
//! stack in front of the server APIs: client IP resolution, rate limits,
//! request body limit, request timeout, load shedding and batch bounds,
//! all off by default (the batch window only bounds concurrency), so a
//! Centrifugo config behaves exactly as under Centrifugo; and the limits
//! of every listener (`middleware.listener`), on by default with
//! Centrifugo's HTTP server timeouts.
//! Env vars follow the usual mapping, e.g.
//! `CENTRIFUGO_MIDDLEWARE_RATE_LIMIT_PER_IP_RATE`.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::super::error::ConfigError;
use super::Duration;

/// The whole `middleware` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Middleware {
    pub client_ip: ClientIp,
    pub rate_limit: RateLimit,
    pub body_limit: BodyLimit,
    pub timeout: Timeout,
    pub load_shed: LoadShed,
    pub(crate) listener: Listener,
    pub batch: BatchLimits,
}

/// `middleware.client_ip`: where the client address comes from.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ClientIp {
    /// Peers (IP addresses or CIDR blocks such as `10.0.0.0/8`) whose
    /// `X-Forwarded-For` / `X-Real-IP` headers are believed. Empty: the
    /// TCP peer address is always the client address.
    pub trusted_proxies: Vec<String>,
}

/// One token bucket: `rate` requests per `interval`, bursting to `burst`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RateLimitRule {
    /// Tokens added per `interval`; 0 turns this limit off.
    pub rate: u64,
    pub interval: Duration,
    /// Bucket capacity; 0 means `rate`.
    pub burst: u64,
}

impl Default for RateLimitRule {
    fn default() -> Self {
        Self {
            rate: 0,
            interval: Duration::from_secs(1),
            burst: 0,
        }
    }
}

impl RateLimitRule {
    /// True when the rule limits anything.
    pub(crate) fn enabled(&self) -> bool {
        self.rate > 0
    }

    /// The bucket capacity (`burst`, or `rate` when `burst` is 0).
    pub(crate) fn capacity(&self) -> u64 {
        if self.burst == 0 {
            self.rate
        } else {
            self.burst
        }
    }
}

/// `middleware.rate_limit`: per API key and per client IP (HTTP 429 /
/// gRPC `RESOURCE_EXHAUSTED`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RateLimit {
    pub per_api_key: RateLimitRule,
    pub per_ip: RateLimitRule,
    /// Most keys (API keys or IPs) tracked per limiter; older idle ones are
    /// evicted beyond that.
    pub(crate) max_tracked_keys: usize,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_api_key: RateLimitRule::default(),
            per_ip: RateLimitRule::default(),
            max_tracked_keys: 65_536,
        }
    }
}

/// `middleware.body_limit` (HTTP API only; HTTP 413).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct BodyLimit {
    /// Largest request body in bytes; 0 = unlimited.
    pub max_bytes: usize,
}

/// `middleware.timeout` (HTTP 504 / gRPC `DEADLINE_EXCEEDED`; never on
/// connection endpoints).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Timeout {
    /// Time allowed until the response head; 0 = no timeout.
    pub request: Duration,
}

/// `middleware.load_shed` (HTTP 503 / gRPC `UNAVAILABLE`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct LoadShed {
    /// Requests served at once; more are refused at once. 0 = unlimited.
    pub max_in_flight: usize,
}

/// `middleware.listener`: what a connection may cost before it carries a
/// request or a client session, on every listener (HTTP, gRPC API, uni
/// gRPC). Centrifugo's HTTP server reads headers within 10 s and a whole
/// request within 30 s; the defaults follow it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub(crate) struct Listener {
    /// From accept (TLS handshake and HTTP/2 preface included) to a
    /// complete request head, and an HTTP/1 keep-alive connection's wait
    /// for its next request. Zero is refused.
    pub(crate) header_read_timeout: Duration,
    /// From a request's head to the end of its body. Zero is refused.
    pub(crate) body_read_timeout: Duration,
    /// An HTTP/2 connection (gRPC, h2c) with no request in flight is sent
    /// GOAWAY after this long. Zero is refused.
    pub(crate) idle_timeout: Duration,
    /// Connections that are neither upgraded nor serving a request whose
    /// body has arrived, over all listeners; at the cap the oldest is
    /// closed to admit a new one. 0 = half the process's open-file limit
    /// (between 64 and 65,536).
    pub(crate) max_pending_connections: usize,
}

impl Default for Listener {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            max_pending_connections: 0,
        }
    }
}

/// `middleware.batch`: bounds on one server API batch (HTTP `/api/batch`,
/// the legacy `POST /api` endpoint and the gRPC `Batch` rpc).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct BatchLimits {
    /// Commands of one `parallel` batch in flight at once; must be positive.
    pub max_parallel: usize,
    /// Most commands in one batch (HTTP 413 / gRPC `RESOURCE_EXHAUSTED`
    /// beyond); 0 = no cap, as in Centrifugo.
    pub max_commands: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self {
            max_parallel: 1024,
            max_commands: 0,
        }
    }
}

impl BatchLimits {
    /// True when a batch of `count` commands is over `max_commands`.
    pub(crate) fn too_many(&self, count: usize) -> bool {
        self.max_commands > 0 && count > self.max_commands
    }
}

/// Parses an IP address or a CIDR block (`addr/prefix`).
pub(crate) fn parse_cidr(text: &str) -> Result<(IpAddr, u8), String> {
    let text = text.trim();
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("invalid IP address {addr:?}"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = match prefix {
        None => max,
        Some(p) => p
            .parse::<u8>()
            .ok()
            .filter(|b| *b <= max)
            .ok_or_else(|| format!("invalid prefix length {p:?} in {text:?}"))?,
    };
    Ok((ip, bits))
}

impl Middleware {
    /// Checks the section; errors name the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (i, p) in self.client_ip.trusted_proxies.iter().enumerate() {
            parse_cidr(p).map_err(|e| {
                ConfigError::invalid(format!("middleware.client_ip.trusted_proxies[{i}]"), e)
            })?;
        }
        for (name, rule) in [
            ("per_api_key", &self.rate_limit.per_api_key),
            ("per_ip", &self.rate_limit.per_ip),
        ] {
            if rule.enabled() && rule.interval.is_zero() {
                return Err(ConfigError::invalid(
                    format!("middleware.rate_limit.{name}.interval"),
                    "must be positive when rate is set",
                ));
            }
        }
        for (name, d) in [
            ("header_read_timeout", self.listener.header_read_timeout),
            ("body_read_timeout", self.listener.body_read_timeout),
            ("idle_timeout", self.listener.idle_timeout),
        ] {
            if d.is_zero() {
                return Err(ConfigError::invalid(
                    format!("middleware.listener.{name}"),
                    "must be positive",
                ));
            }
        }
        if self.batch.max_parallel == 0 {
            return Err(ConfigError::invalid(
                "middleware.batch.max_parallel",
                "must be positive",
            ));
        }
        let any_rate = self.rate_limit.per_api_key.enabled() || self.rate_limit.per_ip.enabled();
        if any_rate && self.rate_limit.max_tracked_keys == 0 {
            return Err(ConfigError::invalid(
                "middleware.rate_limit.max_tracked_keys",
                "must be positive when a rate limit is set",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_off() {
        let m = Middleware::default();
        assert!(!m.rate_limit.per_ip.enabled());
        assert!(!m.rate_limit.per_api_key.enabled());
        assert_eq!(m.body_limit.max_bytes, 0);
        assert!(m.timeout.request.is_zero());
        assert_eq!(m.load_shed.max_in_flight, 0);
        assert_eq!(m.batch.max_parallel, 1024);
        assert!(!m.batch.too_many(usize::MAX), "no batch cap by default");
        assert!(m.validate().is_ok());
        assert_eq!(m.listener.header_read_timeout, Duration::from_secs(10));
    }

    #[test]
    fn cidr_parsing() {
        assert_eq!(
            parse_cidr("10.0.0.0/8"),
            Ok(("10.0.0.0".parse().expect("ip"), 8))
        );
        assert_eq!(parse_cidr("::1"), Ok(("::1".parse().expect("ip"), 128)));
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("nope").is_err());
    }

    #[test]
    fn validation_names_the_key() {
        let mut m = Middleware::default();
        m.client_ip.trusted_proxies = vec!["127.0.0.1".into(), "bad".into()];
        let e = m.validate().expect_err("bad proxy");
        assert_eq!(e.key(), "middleware.client_ip.trusted_proxies[1]");
        let mut m = Middleware::default();
        m.rate_limit.per_ip.rate = 5;
        m.rate_limit.per_ip.interval = Duration::ZERO;
        let e = m.validate().expect_err("zero interval");
        assert_eq!(e.key(), "middleware.rate_limit.per_ip.interval");
        let mut m = Middleware::default();
        m.listener.idle_timeout = Duration::ZERO;
        let e = m.validate().expect_err("zero idle timeout");
        assert_eq!(e.key(), "middleware.listener.idle_timeout");
        let mut m = Middleware::default();
        m.batch.max_parallel = 0;
        let e = m.validate().expect_err("zero window");
        assert_eq!(e.key(), "middleware.batch.max_parallel");
    }

    #[test]
    fn burst_defaults_to_rate() {
        let r = RateLimitRule {
            rate: 7,
            ..Default::default()
        };
        assert_eq!(r.capacity(), 7);
    }

    #[test]
    fn env_and_file_keys_reach_the_section() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"middleware":{"timeout":{"request":"3s"},"client_ip":{"trusted_proxies":["10.0.0.0/8"]}}}"#,
        )
        .expect("write");
        let env = |name: &str| match name {
            "CENTRIFUGO_MIDDLEWARE_RATE_LIMIT_PER_IP_RATE" => Some("5".to_string()),
            "CENTRIFUGO_MIDDLEWARE_RATE_LIMIT_PER_IP_INTERVAL" => Some("2s".to_string()),
            "CENTRIFUGO_MIDDLEWARE_LOAD_SHED_MAX_IN_FLIGHT" => Some("64".to_string()),
            "CENTRIFUGO_MIDDLEWARE_LISTENER_HEADER_READ_TIMEOUT" => Some("3s".to_string()),
            "CENTRIFUGO_MIDDLEWARE_LISTENER_MAX_PENDING_CONNECTIONS" => Some("77".to_string()),
            "CENTRIFUGO_MIDDLEWARE_BATCH_MAX_PARALLEL" => Some("16".to_string()),
            "CENTRIFUGO_MIDDLEWARE_BATCH_MAX_COMMANDS" => Some("1000".to_string()),
            _ => None,
        };
        let loaded = crate::config::load_with_env(&path, &[], &env).expect("loads");
        let m = &loaded.config.middleware;
        assert_eq!(m.rate_limit.per_ip.rate, 5);
        assert_eq!(m.rate_limit.per_ip.interval, Duration::from_secs(2));
        assert_eq!(m.load_shed.max_in_flight, 64);
        assert_eq!(m.batch.max_parallel, 16);
        assert_eq!(m.batch.max_commands, 1000);
        assert!(m.batch.too_many(1001) && !m.batch.too_many(1000));
        assert_eq!(m.timeout.request, Duration::from_secs(3));
        assert_eq!(m.client_ip.trusted_proxies, vec!["10.0.0.0/8".to_string()]);
        assert_eq!(m.listener.header_read_timeout, Duration::from_secs(3));
        assert_eq!(m.listener.max_pending_connections, 77);
        assert_eq!(m.listener.body_read_timeout, Duration::from_secs(30));
        assert!(loaded.unknown_keys.is_empty(), "{:?}", loaded.unknown_keys);
    }
}
