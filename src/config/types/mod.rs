//! Typed configuration in Centrifugo v6's layout.
//!
//! Field names are the config keys. Every default lives in the `Default`
//! impls here (and nowhere else); the loader only merges sources over them.
//! Durations are Go-style strings (`"25s"`, `"500ms"`), see [`Duration`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use super::duration::Duration;

mod channel;
mod client;
mod middleware;
mod transport;

pub use channel::*;
pub use client::*;
pub use middleware::*;
pub use transport::*;

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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
    /// Sections Rotor accepts but does not interpret yet; kept verbatim so a
    /// Centrifugo config loads without errors.
    pub proxies: Vec<serde_json::Value>,
    pub consumers: Vec<serde_json::Value>,
    pub map_broker: serde_json::Value,
    pub controller: serde_json::Value,
    pub shared_poll: serde_json::Value,
    pub webtransport: serde_json::Value,
    pub graphite: serde_json::Value,
    pub usage_stats: serde_json::Value,
    pub enable_unreleased_features: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http_server: HttpServer::default(),
            log: Log::default(),
            node: NodeSection::default(),
            shutdown: Shutdown::default(),
            pid_file: String::new(),
            engine: Engine::default(),
            broker: Broker::default(),
            presence_manager: PresenceManagerSection::default(),
            client: Client::default(),
            channel: Channel::default(),
            rpc: Rpc::default(),
            http_api: HttpApi::default(),
            grpc_api: GrpcApi::default(),
            websocket: WebSocket::default(),
            sse: Sse::default(),
            http_stream: HttpStream::default(),
            emulation: Emulation::default(),
            uni_websocket: UniWebSocket::default(),
            uni_sse: UniSse::default(),
            uni_http_stream: UniHttpStream::default(),
            uni_grpc: UniGrpc::default(),
            admin: Admin::default(),
            prometheus: Prometheus::default(),
            health: Health::default(),
            swagger: Swagger::default(),
            debug: DebugPprof::default(),
            init: Init::default(),
            opentelemetry: OpenTelemetry::default(),
            middleware: Middleware::default(),
            proxies: Vec::new(),
            consumers: Vec::new(),
            map_broker: empty_object(),
            controller: empty_object(),
            shared_poll: empty_object(),
            webtransport: empty_object(),
            graphite: empty_object(),
            usage_stats: empty_object(),
            enable_unreleased_features: false,
        }
    }
}

pub(super) fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

/// TLS settings (PEM as raw text, base64 of PEM, or a file path).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Tls {
    pub enabled: bool,
    pub cert_pem: String,
    pub key_pem: String,
    pub server_ca_pem: String,
    pub client_ca_pem: String,
    pub insecure_skip_verify: bool,
    pub server_name: String,
}

/// Let's Encrypt's production ACME directory: where `tls_autocert` gets
/// certificates unless `acme_directory_url` says otherwise.
pub const LETS_ENCRYPT_DIRECTORY: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// `http_server.tls_autocert`: certificates from an ACME CA (see
/// `server::acme`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct TlsAutocert {
    pub enabled: bool,
    /// Host names certificates are requested for; empty means any name a
    /// client sends.
    pub host_whitelist: Vec<String>,
    /// Where the account key and certificates are kept; empty keeps them
    /// in memory only.
    pub cache_dir: String,
    /// Contact address of the ACME account.
    pub email: String,
    /// The name used when a client sends no SNI.
    pub server_name: String,
    /// Serve the HTTP-01 challenge on `http_addr`.
    pub http: bool,
    pub http_addr: String,
    /// Rotor's own: the ACME directory URL.
    pub acme_directory_url: String,
    /// Rotor's own: a CA (PEM text, base64 or a file path) trusted for the
    /// ACME directory's HTTPS, beside the system's roots.
    pub acme_ca_pem: String,
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
    pub address: String,
    pub port: u16,
    pub internal_address: String,
    /// Empty means the main port.
    pub internal_port: String,
    pub tls: Tls,
    pub tls_external: bool,
    pub internal_tls: Tls,
    pub h2c_external: bool,
    pub tls_autocert: TlsAutocert,
    pub http3: serde_json::Value,
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
            http3: empty_object(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Log {
    /// `none|trace|debug|info|warn|error`.
    pub level: String,
    /// Empty means stdout.
    pub file: String,
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
    pub info_metrics_aggregate_interval: Duration,
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
    pub timeout: Duration,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
        }
    }
}

/// Engine selection (`memory` or `redis`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Engine {
    #[serde(rename = "type")]
    pub kind: String,
    pub redis: serde_json::Value,
}

impl Default for Engine {
    fn default() -> Self {
        Self {
            kind: "memory".into(),
            redis: empty_object(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Broker {
    pub enabled: bool,
    #[serde(rename = "type")]
    pub kind: String,
    pub redis: serde_json::Value,
    pub nats: serde_json::Value,
    pub postgres: serde_json::Value,
}

impl Default for Broker {
    fn default() -> Self {
        Self {
            enabled: false,
            kind: "memory".into(),
            redis: empty_object(),
            nats: empty_object(),
            postgres: empty_object(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct PresenceManagerSection {
    pub enabled: bool,
    #[serde(rename = "type")]
    pub kind: String,
    pub redis: serde_json::Value,
}

impl Default for PresenceManagerSection {
    fn default() -> Self {
        Self {
            enabled: false,
            kind: "memory".into(),
            redis: empty_object(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RpcPing {
    pub enabled: bool,
    pub method: String,
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
    pub proxy: serde_json::Value,
    pub without_namespace: RpcOptions,
    pub namespaces: Vec<RpcNamespace>,
    pub namespace_boundary: String,
    pub ping: RpcPing,
}

impl Default for Rpc {
    fn default() -> Self {
        Self {
            proxy: empty_object(),
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
    pub error_mode: String,
    pub external: bool,
    pub insecure: bool,
}

impl Default for HttpApi {
    fn default() -> Self {
        Self {
            disabled: false,
            handler_prefix: "/api".into(),
            key: String::new(),
            error_mode: String::new(),
            external: false,
            insecure: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct GrpcApi {
    pub enabled: bool,
    pub error_mode: String,
    pub address: String,
    pub port: u16,
    pub key: String,
    pub tls: Tls,
    pub reflection: bool,
    pub max_receive_message_size: usize,
}

impl Default for GrpcApi {
    fn default() -> Self {
        Self {
            enabled: false,
            error_mode: String::new(),
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
    pub password: String,
    pub secret: String,
    pub insecure: bool,
    pub web_path: String,
    pub web_proxy_address: String,
    pub external: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Prometheus {
    pub enabled: bool,
    pub handler_prefix: String,
    pub instrument_http_handlers: bool,
    pub recovered_publications_histogram: bool,
    pub native_histograms: bool,
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
    pub api: bool,
    pub consuming: bool,
    pub google_cloud_adc_auth: bool,
}

/// Convenience for code that only needs a map of extra string settings.
pub type StringMap = BTreeMap<String, String>;
