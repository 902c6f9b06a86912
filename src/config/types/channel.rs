//! `channel.*`: naming rules and the options of each namespace.

use serde::{Deserialize, Serialize};

use super::{ChannelProxies, Duration};

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
    pub force_recovery_mode: RecoveryMode,
    pub auto_cache_recover: bool,
    pub allowed_delta_types: Vec<String>,
    pub delta_publish: bool,
    pub allow_tags_filter: bool,
    /// `""`, `json`, `json_object` or `binary`.
    pub publication_data_format: DataFormat,
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
    // `subscription_type`, `map` and `shared_poll` have no field: the key
    // table refuses them (other than `subscription_type: stream`) until
    // map and shared poll subscriptions are built.
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
            force_recovery_mode: RecoveryMode::default(),
            auto_cache_recover: false,
            allowed_delta_types: Vec::new(),
            delta_publish: false,
            allow_tags_filter: false,
            publication_data_format: DataFormat::default(),
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
    pub(crate) max_length: usize,
    pub(crate) private_prefix: String,
    pub(crate) namespace_boundary: String,
    pub(crate) user_boundary: String,
    pub(crate) user_separator: String,
    pub history_meta_ttl: Duration,
    pub publication_data_format: DataFormat,
    pub proxy: ChannelProxies,
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
            publication_data_format: DataFormat::default(),
            proxy: ChannelProxies::default(),
            without_namespace: ChannelOptions::default(),
            namespaces: Vec::new(),
        }
    }
}

/// `force_recovery_mode`: how forced recovery recovers.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RecoveryMode {
    /// Unset: stream recovery.
    #[default]
    #[serde(rename = "")]
    Unset,
    Stream,
    /// Cache recovery: the last publication only.
    Cache,
}

/// `publication_data_format`: what publication data must be.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DataFormat {
    /// Unset: any non-empty data (in a namespace: the global format).
    #[default]
    #[serde(rename = "")]
    Unset,
    /// A JSON value.
    Json,
    /// A JSON object.
    JsonObject,
    /// Anything, empty included.
    Binary,
}
