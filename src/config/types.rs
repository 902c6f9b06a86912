//! Typed configuration in Centrifugo v6's layout.
//!
//! Field names are the config keys. Every default lives in the `Default`
//! impls here (and nowhere else); the loader only merges sources over them.
//! Durations are Go-style strings (`"25s"`, `"500ms"`), see [`Duration`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use super::duration::Duration;

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

fn empty_object() -> serde_json::Value {
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
    pub tls_autocert: serde_json::Value,
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
            tls_autocert: empty_object(),
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

/// Keys that verify JWTs (`client.token`, `client.subscription_token`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Token {
    pub hmac_secret_key: String,
    pub hmac_previous_secret_key: String,
    /// Unix seconds; 0 means the previous key never stops being accepted.
    pub hmac_previous_secret_key_valid_until: i64,
    pub rsa_public_key: String,
    pub ecdsa_public_key: String,
    pub jwks_public_endpoint: String,
    pub audience: String,
    pub audience_regex: String,
    pub issuer: String,
    pub issuer_regex: String,
    pub user_id_claim: String,
    pub insecure_skip_jwks_endpoint_safety_check: bool,
}

/// `client.subscription_token`: a separate verifier when enabled.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct SubscriptionToken {
    pub enabled: bool,
    #[serde(flatten)]
    pub token: Token,
}

/// `client.subscribe_to_user_personal_channel`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct PersonalChannel {
    pub enabled: bool,
    pub personal_channel_namespace: String,
    pub single_connection: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Client {
    /// Empty rejects every request that carries an `Origin` header.
    pub allowed_origins: Vec<String>,
    pub token: Token,
    pub subscription_token: SubscriptionToken,
    pub proxy: serde_json::Value,
    pub allow_anonymous_connect_without_token: bool,
    pub disallow_anonymous_connection_tokens: bool,
    /// Zero or negative disables pings.
    pub ping_interval: Duration,
    pub pong_timeout: Duration,
    pub expired_close_delay: Duration,
    pub expired_sub_close_delay: Duration,
    pub stale_close_delay: Duration,
    pub channel_limit: usize,
    /// Bytes of queued outbound messages before disconnect 3008.
    pub queue_max_size: usize,
    pub presence_update_interval: Duration,
    pub concurrency: usize,
    pub channel_position_check_delay: Duration,
    pub channel_position_max_time_lag: Duration,
    /// 0 = unlimited.
    pub connection_limit: usize,
    /// 0 = unlimited.
    pub user_connection_limit: usize,
    /// New connections per second per node; 0 = unlimited.
    pub connection_rate_limit: usize,
    pub connect_include_server_time: bool,
    pub history_max_publication_limit: usize,
    pub recovery_max_publication_limit: usize,
    pub insecure_skip_token_signature_verify: bool,
    pub user_id_http_header: String,
    pub insecure: bool,
    pub subscribe_to_user_personal_channel: PersonalChannel,
    pub connect_code_to_unidirectional_disconnect: serde_json::Value,
}

impl Default for Client {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            token: Token::default(),
            subscription_token: SubscriptionToken::default(),
            proxy: empty_object(),
            allow_anonymous_connect_without_token: false,
            disallow_anonymous_connection_tokens: false,
            ping_interval: Duration::from_secs(25),
            pong_timeout: Duration::from_secs(8),
            expired_close_delay: Duration::from_secs(25),
            expired_sub_close_delay: Duration::from_secs(25),
            stale_close_delay: Duration::from_secs(10),
            channel_limit: 128,
            queue_max_size: 1_048_576,
            presence_update_interval: Duration::from_secs(27),
            concurrency: 0,
            channel_position_check_delay: Duration::from_secs(40),
            channel_position_max_time_lag: Duration::ZERO,
            connection_limit: 0,
            user_connection_limit: 0,
            connection_rate_limit: 0,
            connect_include_server_time: false,
            history_max_publication_limit: 300,
            recovery_max_publication_limit: 300,
            insecure_skip_token_signature_verify: false,
            user_id_http_header: String::new(),
            insecure: false,
            subscribe_to_user_personal_channel: PersonalChannel::default(),
            connect_code_to_unidirectional_disconnect: empty_object(),
        }
    }
}

/// Options of one namespace (or of channels without a namespace).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ChannelOptions {
    pub presence: bool,
    pub join_leave: bool,
    pub force_push_join_leave: bool,
    pub history_size: usize,
    /// Whole seconds.
    pub history_ttl: Duration,
    /// Zero means `channel.history_meta_ttl`.
    pub history_meta_ttl: Duration,
    pub force_positioning: bool,
    pub allow_positioning: bool,
    pub force_recovery: bool,
    pub allow_recovery: bool,
    /// `""`/`stream` or `cache`.
    pub force_recovery_mode: String,
    pub auto_cache_recover: bool,
    pub allowed_delta_types: Vec<String>,
    pub delta_publish: bool,
    pub allow_tags_filter: bool,
    /// `""`, `json`, `json_object` or `binary`.
    pub publication_data_format: String,
    pub allow_subscribe_for_client: bool,
    pub allow_subscribe_for_anonymous: bool,
    pub allow_publish_for_subscriber: bool,
    pub allow_publish_for_client: bool,
    pub allow_publish_for_anonymous: bool,
    pub allow_presence_for_subscriber: bool,
    pub allow_presence_for_client: bool,
    pub allow_presence_for_anonymous: bool,
    pub allow_history_for_subscriber: bool,
    pub allow_history_for_client: bool,
    pub allow_history_for_anonymous: bool,
    pub allow_user_limited_channels: bool,
    pub channel_regex: String,
    pub subscribe_proxy_enabled: bool,
    pub subscribe_proxy_name: String,
    pub publish_proxy_enabled: bool,
    pub publish_proxy_name: String,
    pub sub_refresh_proxy_enabled: bool,
    pub sub_refresh_proxy_name: String,
    pub subscribe_stream_proxy_enabled: bool,
    pub subscribe_stream_proxy_name: String,
    pub subscribe_stream_proxy_bidirectional: bool,
    /// `""`/`stream`; map and shared-poll types are not served yet.
    pub subscription_type: String,
    pub map_clients_presence_channel_prefix: String,
    pub map_users_presence_channel_prefix: String,
    /// Map subscription settings (accepted, not served yet).
    pub map: serde_json::Value,
    /// Shared-poll settings (accepted, not served yet).
    pub shared_poll: serde_json::Value,
    /// Debounce hint for client publishes (`publish_debounce` in replies).
    pub client_publish_debounce_interval: Duration,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        Self {
            presence: false,
            join_leave: false,
            force_push_join_leave: false,
            history_size: 0,
            history_ttl: Duration::ZERO,
            history_meta_ttl: Duration::ZERO,
            force_positioning: false,
            allow_positioning: false,
            force_recovery: false,
            allow_recovery: false,
            force_recovery_mode: String::new(),
            auto_cache_recover: false,
            allowed_delta_types: Vec::new(),
            delta_publish: false,
            allow_tags_filter: false,
            publication_data_format: String::new(),
            allow_subscribe_for_client: false,
            allow_subscribe_for_anonymous: false,
            allow_publish_for_subscriber: false,
            allow_publish_for_client: false,
            allow_publish_for_anonymous: false,
            allow_presence_for_subscriber: false,
            allow_presence_for_client: false,
            allow_presence_for_anonymous: false,
            allow_history_for_subscriber: false,
            allow_history_for_client: false,
            allow_history_for_anonymous: false,
            allow_user_limited_channels: false,
            channel_regex: String::new(),
            subscribe_proxy_enabled: false,
            subscribe_proxy_name: String::new(),
            publish_proxy_enabled: false,
            publish_proxy_name: String::new(),
            sub_refresh_proxy_enabled: false,
            sub_refresh_proxy_name: String::new(),
            subscribe_stream_proxy_enabled: false,
            subscribe_stream_proxy_name: String::new(),
            subscribe_stream_proxy_bidirectional: false,
            subscription_type: String::new(),
            map_clients_presence_channel_prefix: String::new(),
            map_users_presence_channel_prefix: String::new(),
            map: empty_object(),
            shared_poll: empty_object(),
            client_publish_debounce_interval: Duration::ZERO,
        }
    }
}

/// A named namespace.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Namespace {
    pub name: String,
    #[serde(flatten)]
    pub options: ChannelOptions,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Channel {
    pub max_length: usize,
    pub private_prefix: String,
    pub namespace_boundary: String,
    pub user_boundary: String,
    pub user_separator: String,
    pub history_meta_ttl: Duration,
    pub publication_data_format: String,
    pub proxy: serde_json::Value,
    pub without_namespace: ChannelOptions,
    pub namespaces: Vec<Namespace>,
}

impl Default for Channel {
    fn default() -> Self {
        Self {
            max_length: 255,
            private_prefix: "$".into(),
            namespace_boundary: ":".into(),
            user_boundary: "#".into(),
            user_separator: ",".into(),
            history_meta_ttl: Duration::from_secs(720 * 3600),
            publication_data_format: String::new(),
            proxy: empty_object(),
            without_namespace: ChannelOptions::default(),
            namespaces: Vec::new(),
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct WebSocket {
    pub disabled: bool,
    pub handler_prefix: String,
    pub compression: bool,
    pub compression_min_size: usize,
    pub compression_level: i32,
    pub read_buffer_size: usize,
    pub write_buffer_size: usize,
    pub use_write_buffer_pool: bool,
    pub write_timeout: Duration,
    pub message_size_limit: usize,
    /// 0 means 10 × `message_size_limit`.
    pub decompressed_message_size_limit: usize,
}

impl Default for WebSocket {
    fn default() -> Self {
        Self {
            disabled: false,
            handler_prefix: "/connection/websocket".into(),
            compression: false,
            compression_min_size: 0,
            compression_level: 1,
            read_buffer_size: 0,
            write_buffer_size: 0,
            use_write_buffer_pool: false,
            write_timeout: Duration::from_millis(1000),
            message_size_limit: 65536,
            decompressed_message_size_limit: 0,
        }
    }
}

/// Declares a section struct whose `Default` carries its own path, so a
/// section present in a file (or set by one env var) keeps the defaults of
/// the keys it does not mention.
macro_rules! section {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, { $($field:ident : $ty:ty = $default:expr),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
        #[serde(default)]
        pub struct $name {
            pub enabled: bool,
            pub handler_prefix: String,
            $(pub $field: $ty,)*
        }

        impl Default for $name {
            fn default() -> Self {
                Self { enabled: false, handler_prefix: $prefix.into(), $($field: $default,)* }
            }
        }
    };
}

section!(
    /// `sse`: bidirectional SSE emulation.
    Sse, "/connection/sse", { max_request_body_size: usize = 65536 }
);
section!(
    /// `http_stream`: bidirectional HTTP-streaming emulation.
    HttpStream, "/connection/http_stream", { max_request_body_size: usize = 65536 }
);
section!(
    /// `uni_sse`.
    UniSse, "/connection/uni_sse", {
        max_request_body_size: usize = 65536,
        connect_code_to_http_response: serde_json::Value = empty_object(),
    }
);
section!(
    /// `uni_http_stream`.
    UniHttpStream, "/connection/uni_http_stream", {
        max_request_body_size: usize = 65536,
        connect_code_to_http_response: serde_json::Value = empty_object(),
    }
);
section!(
    /// `health`.
    Health, "/health", {}
);
section!(
    /// `swagger`.
    Swagger, "/swagger", {}
);
section!(
    /// `debug`.
    DebugPprof, "/debug/pprof", {}
);
section!(
    /// `init`.
    Init, "/connection/init", {}
);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Emulation {
    pub handler_prefix: String,
    pub max_request_body_size: usize,
}

impl Default for Emulation {
    fn default() -> Self {
        Self {
            handler_prefix: "/emulation".into(),
            max_request_body_size: 65536,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct UniWebSocket {
    pub enabled: bool,
    pub handler_prefix: String,
    pub compression: bool,
    pub compression_min_size: usize,
    pub compression_level: i32,
    pub read_buffer_size: usize,
    pub write_buffer_size: usize,
    pub use_write_buffer_pool: bool,
    pub write_timeout: Duration,
    pub message_size_limit: usize,
    pub disable_closing_handshake: bool,
    pub disable_disconnect_push: bool,
    pub join_push_messages: bool,
}

impl Default for UniWebSocket {
    fn default() -> Self {
        Self {
            enabled: false,
            handler_prefix: "/connection/uni_websocket".into(),
            compression: false,
            compression_min_size: 0,
            compression_level: 1,
            read_buffer_size: 0,
            write_buffer_size: 0,
            use_write_buffer_pool: false,
            write_timeout: Duration::from_millis(1000),
            message_size_limit: 65536,
            disable_closing_handshake: false,
            disable_disconnect_push: false,
            join_push_messages: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct UniGrpc {
    pub enabled: bool,
    pub address: String,
    pub port: u16,
    pub max_receive_message_size: usize,
    pub tls: Tls,
}

impl Default for UniGrpc {
    fn default() -> Self {
        Self {
            enabled: false,
            address: String::new(),
            port: 11000,
            max_receive_message_size: 0,
            tls: Tls::default(),
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
