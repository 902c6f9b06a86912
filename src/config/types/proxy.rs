//! The proxy object (`client.proxy.connect`, `client.proxy.refresh`,
//! `channel.proxy.*`, `rpc.proxy`, `proxies[]`), typed once here and used
//! as is by [`crate::proxy`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Duration, Tls};

/// The name of the unnamed proxy under `channel.proxy.*` / `rpc.proxy`;
/// reserved, so no `proxies[]` item can take it.
pub(crate) const DEFAULT_PROXY_NAME: &str = "default";

fn is_false(b: &bool) -> bool {
    !*b
}

/// `client.proxy`: the connect and refresh proxies (used when enabled).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ClientProxies {
    pub(crate) connect: ProxyConfig,
    pub(crate) refresh: ProxyConfig,
}

/// `channel.proxy`: the unnamed channel proxies (used when they have an
/// endpoint and a namespace enables them). The map and shared poll proxies
/// are refused by the key table.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ChannelProxies {
    pub(crate) subscribe: ProxyConfig,
    pub(crate) publish: ProxyConfig,
    pub(crate) sub_refresh: ProxyConfig,
    pub subscribe_stream: ProxyConfig,
}

impl ChannelProxies {
    /// Every section with its name.
    pub(crate) fn sections(&self) -> [(&'static str, &ProxyConfig); 4] {
        [
            ("subscribe", &self.subscribe),
            ("publish", &self.publish),
            ("sub_refresh", &self.sub_refresh),
            ("subscribe_stream", &self.subscribe_stream),
        ]
    }
}

/// Default per-call timeout of a proxy.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// One proxy object, as configured.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ProxyConfig {
    /// `name` (only for `proxies[]` items).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) name: String,
    /// `enabled` (only for `client.proxy.connect` / `.refresh`).
    #[serde(skip_serializing_if = "is_false")]
    pub(crate) enabled: bool,
    /// `http(s)://…` for the HTTP proxy, anything else is a gRPC target.
    pub(crate) endpoint: String,
    /// Total per-call timeout (default 1s).
    pub timeout: Duration,
    /// Client transport headers forwarded (case-insensitive).
    pub(crate) http_headers: Vec<String>,
    /// Client emulated headers forwarded (case-insensitive).
    pub(crate) emulated_headers: Vec<String>,
    /// Incoming gRPC metadata keys forwarded (uni_grpc clients).
    pub(crate) grpc_metadata: Vec<String>,
    /// Client payloads travel base64-encoded in `b64data`.
    pub(crate) binary_encoding: bool,
    /// Connection meta is added to requests.
    pub include_connection_meta: bool,
    /// HTTP transport options.
    pub(crate) http: HttpOptions,
    /// gRPC transport options.
    pub(crate) grpc: GrpcOptions,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            enabled: false,
            endpoint: String::new(),
            timeout: DEFAULT_TIMEOUT,
            http_headers: Vec::new(),
            emulated_headers: Vec::new(),
            grpc_metadata: Vec::new(),
            binary_encoding: false,
            include_connection_meta: false,
            http: HttpOptions::default(),
            grpc: GrpcOptions::default(),
        }
    }
}

/// `http.*` options of a proxy.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub(crate) struct HttpOptions {
    /// Client TLS settings for `https://` endpoints.
    pub(crate) tls: Tls,
    /// Headers added to every request (values are secrets: never logged).
    pub(crate) static_headers: BTreeMap<String, String>,
    /// Non-200 statuses mapped to a custom error or disconnect.
    pub(crate) status_to_code_transforms: Vec<StatusTransform>,
}

/// `grpc.*` options of a proxy.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub(crate) struct GrpcOptions {
    /// Client TLS settings.
    pub(crate) tls: Tls,
    /// Per-call credentials metadata key.
    pub(crate) credentials_key: String,
    /// Per-call credentials metadata value (a secret: never logged).
    pub(crate) credentials_value: String,
    /// gzip request compression.
    pub(crate) compression: bool,
    /// Metadata added to every call (values are secrets: never logged).
    pub(crate) static_metadata: BTreeMap<String, String>,
}

// Debug output names static headers/metadata but never shows their values
// or the credentials value (secrets).
impl std::fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpOptions")
            .field("tls_enabled", &self.tls.enabled)
            .field(
                "static_headers",
                &self.static_headers.keys().collect::<Vec<_>>(),
            )
            .field("status_to_code_transforms", &self.status_to_code_transforms)
            .finish()
    }
}

impl std::fmt::Debug for GrpcOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcOptions")
            .field("tls_enabled", &self.tls.enabled)
            .field("credentials_key", &self.credentials_key)
            .field("compression", &self.compression)
            .field(
                "static_metadata",
                &self.static_metadata.keys().collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// One `http.status_to_code_transforms` item.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub(crate) struct StatusTransform {
    /// The HTTP status this rule matches.
    pub(crate) status_code: u16,
    /// Answer with this error…
    pub(crate) to_error: Option<TransformError>,
    /// …or close the connection with this disconnect.
    pub(crate) to_disconnect: Option<TransformDisconnect>,
}

/// The error a status is turned into.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub(crate) struct TransformError {
    /// Error code (400–1999 for custom errors).
    pub(crate) code: u32,
    /// Error message (ASCII).
    pub(crate) message: String,
    /// Whether the client may retry.
    pub(crate) temporary: bool,
}

/// The disconnect a status is turned into.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub(crate) struct TransformDisconnect {
    /// Disconnect code (4000–4999 for custom disconnects).
    pub(crate) code: u32,
    /// Reason (ASCII, ≤ 32 bytes).
    pub(crate) reason: String,
}

impl ProxyConfig {
    /// True when the endpoint selects the HTTP transport.
    pub(crate) fn is_http(&self) -> bool {
        self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://")
    }

    /// The `name` label of metrics and logs (`default` for unnamed proxies).
    pub(crate) fn label(&self) -> &str {
        if self.name.is_empty() {
            DEFAULT_PROXY_NAME
        } else {
            &self.name
        }
    }

    /// Checks what serde cannot: a non-zero timeout and well-formed
    /// transforms. The endpoint is checked where the proxy is used.
    pub fn check(&self, key: &str) -> Result<(), String> {
        if self.timeout.is_zero() {
            return Err(format!("{key}.timeout: proxy timeout must be non-zero"));
        }
        for (i, t) in self.http.status_to_code_transforms.iter().enumerate() {
            let k = format!("{key}.http.status_to_code_transforms[{i}]");
            if t.status_code == 0 {
                return Err(format!("{k}.status_code: status code required"));
            }
            match (&t.to_error, &t.to_disconnect) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(format!(
                        "{k}: exactly one of to_error and to_disconnect must be set"
                    ));
                }
                (Some(e), None) if !e.message.is_ascii() => {
                    return Err(format!("{k}.to_error.message: must be ASCII"));
                }
                (None, Some(d)) if !d.reason.is_ascii() => {
                    return Err(format!("{k}.to_disconnect.reason: must be ASCII"));
                }
                _ => {}
            }
        }
        if !self.grpc.credentials_key.is_empty()
            && http::HeaderName::from_bytes(
                self.grpc.credentials_key.to_ascii_lowercase().as_bytes(),
            )
            .is_err()
        {
            return Err(format!(
                "{key}.grpc.credentials_key: not a valid metadata key"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// Types and checks the proxy object at `key` as the loader does.
    fn parse(key: &str, v: Value) -> Result<ProxyConfig, String> {
        let p: ProxyConfig = serde_path_to_error::deserialize(v)
            .map_err(|e| format!("{key}.{}: {}", e.path(), e.inner()))?;
        p.check(key)?;
        Ok(p)
    }

    #[test]
    fn defaults_and_fields() {
        let c = parse(
            "proxies[0]",
            json!({"name": "p1", "endpoint": "http://x/y", "timeout": "250ms",
                    "http_headers": ["Authorization"],
                    "http": {"static_headers": {"X-Key": "v"},
                             "status_to_code_transforms": [
                                {"status_code": 404, "to_error": {"code": 404, "message": "nf"}}]},
                    "grpc": {"compression": true}}),
        )
        .expect("parses");
        assert!(c.is_http());
        assert_eq!(c.timeout, Duration::from_millis(250));
        assert_eq!(c.label(), "p1");
        assert!(c.grpc.compression);
        assert_eq!(c.http.status_to_code_transforms[0].status_code, 404);
        let d = parse("rpc.proxy", json!({"endpoint": "grpc://h:1"})).expect("parses");
        assert_eq!(d.timeout, DEFAULT_TIMEOUT);
        assert!(!d.is_http());
        assert_eq!(d.label(), "default");
    }

    #[test]
    fn debug_hides_secrets() {
        let c = parse(
            "p",
            json!({"http": {"static_headers": {"X-Key": "hidden-1"}},
                    "grpc": {"credentials_key": "k", "credentials_value": "hidden-2",
                             "static_metadata": {"m": "hidden-3"}}}),
        )
        .expect("parses");
        let text = format!("{c:?}");
        assert!(text.contains("X-Key") && !text.contains("hidden"), "{text}");
    }

    #[test]
    fn checks_name_the_key() {
        let e = parse("rpc.proxy", json!({"timeout": "0s"})).expect_err("zero");
        assert!(e.starts_with("rpc.proxy.timeout"), "{e}");
        let e = parse(
            "proxies[1]",
            json!({"http": {"status_to_code_transforms": [{"status_code": 500}]}}),
        )
        .expect_err("no target");
        assert!(
            e.starts_with("proxies[1].http.status_to_code_transforms[0]"),
            "{e}"
        );
    }
}
