//! Typed configuration in Centrifugo v6's layout.
//!
//! Field names are the config keys. Every default lives in the `Default`
//! impls here (and nowhere else); the loader only merges sources over them.
//! Durations are Go-style strings (`"25s"`, `"500ms"`), see [`Duration`].

use serde::{Deserialize, Serialize};

pub use super::duration::Duration;

mod channel;
mod client;
mod engine;
mod middleware;
mod proxy;
mod transport;

pub use channel::*;
pub use client::*;
pub use engine::*;
pub use middleware::*;
pub use proxy::*;
pub(crate) use transport::*;

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Config {
    pub http_server: HttpServer,
    pub log: Log,
    pub node: NodeSection,
    pub shutdown: Shutdown,
    pub pid_file: String,
    pub engine: Engine,
    pub broker: Broker,
    pub presence_manager: PresenceManagerSection,
    pub client: Client,
    pub channel: Channel,
    pub rpc: Rpc,
    pub http_api: HttpApi,
    pub grpc_api: GrpcApi,
    pub websocket: WebSocket,
    pub sse: Sse,
    pub http_stream: HttpStream,
    pub emulation: Emulation,
    pub uni_websocket: UniWebSocket,
    pub uni_sse: UniSse,
    pub uni_http_stream: UniHttpStream,
    pub uni_grpc: UniGrpc,
    pub admin: Admin,
    pub prometheus: Prometheus,
    pub health: Health,
    pub swagger: Swagger,
    pub debug: DebugPprof,
    pub init: Init,
    pub opentelemetry: OpenTelemetry,
    /// Rotor's own tower stack settings (not a Centrifugo key).
    pub middleware: Middleware,
    /// Named proxies (`proxies[]`).
    pub proxies: Vec<ProxyConfig>,
    // Sections Rotor does not build (`consumers`, `map_broker`,
    // `controller`, `shared_poll`, `webtransport`, `graphite`, `usage_stats`,
    // `enable_unreleased_features`, ...) have no field: the key table
    // refuses or warns about each key of theirs that is set.
}

/// TLS settings (PEM as raw text, base64 of PEM, or a file path).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Tls {
    pub enabled: bool,
    pub cert_pem: String,
    pub key_pem: String,
    pub(crate) server_ca_pem: String,
    pub(crate) client_ca_pem: String,
    pub(crate) insecure_skip_verify: bool,
    pub(crate) server_name: String,
}

/// Let's Encrypt's production ACME directory: where `tls_autocert` gets
/// certificates unless `acme_directory_url` says otherwise.
pub(crate) const LETS_ENCRYPT_DIRECTORY: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// `http_server.tls_autocert`: certificates from an ACME CA (see
/// `server::acme`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub(crate) struct TlsAutocert {
    pub enabled: bool,
    /// Host names certificates are requested for; empty means any name a
    /// client sends.
    pub(crate) host_whitelist: Vec<String>,
    /// Where the account key and certificates are kept; empty keeps them
    /// in memory only.
    pub(crate) cache_dir: String,
    /// Contact address of the ACME account.
    pub(crate) email: String,
    /// The name used when a client sends no SNI.
    pub(crate) server_name: String,
    /// Serve the HTTP-01 challenge on `http_addr`.
    pub(crate) http: bool,
    pub(crate) http_addr: String,
    /// Rotor's own: the ACME directory URL.
    pub(crate) acme_directory_url: String,
    /// Rotor's own: a CA (PEM text, base64 or a file path) trusted for the
    /// ACME directory's HTTPS, beside the system's roots.
    pub(crate) acme_ca_pem: String,
}

impl Default for TlsAutocert {
    fn default() -> Self {
        Self {
            enabled: false,
            host_whitelist: Vec::new(),
            cache_dir: String::new(),
            email: String::new(),
            server_name: String::new(),
            http: false,
            http_addr: ":80".into(),
            acme_directory_url: LETS_ENCRYPT_DIRECTORY.into(),
            acme_ca_pem: String::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct HttpServer {
    pub(crate) address: String,
    pub(crate) port: u16,
    pub(crate) internal_address: String,
    /// Empty means the main port.
    pub(crate) internal_port: String,
    pub tls: Tls,
    pub(crate) tls_external: bool,
    pub(crate) internal_tls: Tls,
    pub(crate) h2c_external: bool,
    pub(crate) tls_autocert: TlsAutocert,
}

impl Default for HttpServer {
    fn default() -> Self {
        Self {
            address: String::new(),
            port: 8000,
            internal_address: String::new(),
            internal_port: String::new(),
            tls: Tls::default(),
            tls_external: false,
            internal_tls: Tls::default(),
            h2c_external: false,
            tls_autocert: TlsAutocert::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Log {
    /// `none|trace|debug|info|warn|error`.
    pub(crate) level: String,
    /// Empty means stdout.
    pub(crate) file: String,
}

impl Default for Log {
    fn default() -> Self {
        Self {
            level: "info".into(),
            file: String::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct NodeSection {
    /// Empty means `<hostname>_<port>`.
    pub name: String,
    pub(crate) info_metrics_aggregate_interval: Duration,
}

impl Default for NodeSection {
    fn default() -> Self {
        Self {
            name: String::new(),
            info_metrics_aggregate_interval: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Shutdown {
    pub(crate) timeout: Duration,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub(crate) struct RpcPing {
    pub enabled: bool,
    pub(crate) method: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RpcOptions {
    pub proxy_enabled: bool,
    pub proxy_name: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RpcNamespace {
    pub name: String,
    #[serde(flatten)]
    pub options: RpcOptions,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Rpc {
    pub proxy: ProxyConfig,
    pub without_namespace: RpcOptions,
    pub namespaces: Vec<RpcNamespace>,
    pub(crate) namespace_boundary: String,
    pub(crate) ping: RpcPing,
}

impl Default for Rpc {
    fn default() -> Self {
        Self {
            proxy: ProxyConfig::default(),
            without_namespace: RpcOptions::default(),
            namespaces: Vec::new(),
            namespace_boundary: ":".into(),
            ping: RpcPing {
                enabled: false,
                method: "ping".into(),
            },
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct HttpApi {
    pub disabled: bool,
    pub handler_prefix: String,
    pub key: String,
    pub error_mode: ErrorMode,
    pub(crate) external: bool,
    pub insecure: bool,
}

impl Default for HttpApi {
    fn default() -> Self {
        Self {
            disabled: false,
            handler_prefix: "/api".into(),
            key: String::new(),
            error_mode: ErrorMode::default(),
            external: false,
            insecure: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct GrpcApi {
    pub enabled: bool,
    pub error_mode: ErrorMode,
    pub(crate) address: String,
    pub(crate) port: u16,
    pub key: String,
    pub tls: Tls,
    pub reflection: bool,
    pub max_receive_message_size: usize,
}

impl Default for GrpcApi {
    fn default() -> Self {
        Self {
            enabled: false,
            error_mode: ErrorMode::default(),
            address: String::new(),
            port: 10000,
            key: String::new(),
            tls: Tls::default(),
            reflection: false,
            max_receive_message_size: 0,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Admin {
    pub enabled: bool,
    pub handler_prefix: String,
    pub(crate) password: String,
    pub(crate) secret: String,
    pub insecure: bool,
    pub(crate) web_path: String,
    pub(crate) web_proxy_address: String,
    pub(crate) external: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Prometheus {
    pub enabled: bool,
    pub handler_prefix: String,
    pub(crate) instrument_http_handlers: bool,
    pub(crate) recovered_publications_histogram: bool,
    pub(crate) native_histograms: bool,
}

impl Default for Prometheus {
    fn default() -> Self {
        Self {
            enabled: false,
            handler_prefix: "/metrics".into(),
            instrument_http_handlers: false,
            recovered_publications_histogram: false,
            native_histograms: false,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct OpenTelemetry {
    pub enabled: bool,
    pub(crate) api: bool,
    pub(crate) consuming: bool,
    pub(crate) google_cloud_adc_auth: bool,
}

/// `http_api.error_mode` / `grpc_api.error_mode`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ErrorMode {
    /// Errors in the response body (200 OK).
    #[default]
    #[serde(rename = "")]
    Default,
    /// Errors as HTTP statuses / gRPC status codes.
    Transport,
}
