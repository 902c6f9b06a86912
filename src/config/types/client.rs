//! `client.*`: connection limits and timers, token keys, anonymous access.

use serde::{Deserialize, Serialize};

use super::{ClientProxies, CodeToDisconnect, Duration};

/// Keys that verify JWTs (`client.token`, `client.subscription_token`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Token {
    pub hmac_secret_key: String,
    pub(crate) hmac_previous_secret_key: String,
    /// Unix seconds; 0 means the previous key never stops being accepted.
    pub(crate) hmac_previous_secret_key_valid_until: i64,
    pub rsa_public_key: String,
    pub(crate) ecdsa_public_key: String,
    pub(crate) jwks_public_endpoint: String,
    pub audience: String,
    pub(crate) audience_regex: String,
    pub issuer: String,
    pub(crate) issuer_regex: String,
    pub(crate) user_id_claim: String,
    pub(crate) insecure_skip_jwks_endpoint_safety_check: bool,
}

/// `client.subscription_token`: a separate verifier when enabled.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub(crate) struct SubscriptionToken {
    pub(crate) enabled: bool,
    #[serde(flatten)]
    pub token: Token,
}

/// `client.subscribe_to_user_personal_channel`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub(crate) struct PersonalChannel {
    pub(crate) enabled: bool,
    pub(crate) personal_channel_namespace: String,
    pub(crate) single_connection: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Client {
    /// Empty rejects every request that carries an `Origin` header.
    pub allowed_origins: Vec<String>,
    pub token: Token,
    pub(crate) subscription_token: SubscriptionToken,
    pub proxy: ClientProxies,
    pub allow_anonymous_connect_without_token: bool,
    pub disallow_anonymous_connection_tokens: bool,
    /// Zero or negative disables pings.
    pub ping_interval: Duration,
    pub pong_timeout: Duration,
    pub expired_close_delay: Duration,
    pub expired_sub_close_delay: Duration,
    pub stale_close_delay: Duration,
    pub(crate) channel_limit: usize,
    /// Bytes of queued outbound messages before disconnect 3008.
    pub queue_max_size: usize,
    pub(crate) presence_update_interval: Duration,
    pub(crate) concurrency: usize,
    pub(crate) channel_position_check_delay: Duration,
    pub(crate) channel_position_max_time_lag: Duration,
    /// 0 = unlimited.
    pub connection_limit: usize,
    /// 0 = unlimited.
    pub user_connection_limit: usize,
    /// New connections per second per node; 0 = unlimited.
    pub connection_rate_limit: usize,
    pub(crate) connect_include_server_time: bool,
    pub(crate) history_max_publication_limit: usize,
    pub(crate) recovery_max_publication_limit: usize,
    pub(crate) insecure_skip_token_signature_verify: bool,
    pub(crate) user_id_http_header: String,
    pub(crate) insecure: bool,
    pub(crate) subscribe_to_user_personal_channel: PersonalChannel,
    pub connect_code_to_unidirectional_disconnect: CodeToDisconnect,
    /// Centrifugo PRO's write batching: how long a connection's writer
    /// collects messages before it writes them; zero writes at once.
    pub write_delay: Duration,
    /// Messages in one frame. 0: 16 with a `write_delay`, else no count
    /// limit (frames are bounded by size only); negative: no count limit.
    pub max_messages_in_frame: i64,
    /// With a `write_delay`, replies to a client's commands are written as
    /// soon as the commands are handled instead of waiting for the delay.
    pub reply_without_queue: bool,
}

impl Default for Client {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            token: Token::default(),
            subscription_token: SubscriptionToken::default(),
            proxy: ClientProxies::default(),
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
            connect_code_to_unidirectional_disconnect: CodeToDisconnect::default(),
            write_delay: Duration::ZERO,
            max_messages_in_frame: 0,
            reply_without_queue: false,
        }
    }
}

impl Client {
    /// The wait of write batching (`write_delay`), if any.
    pub(crate) fn batching_delay(&self) -> Option<std::time::Duration> {
        Some(self.write_delay.get()).filter(|d| !d.is_zero())
    }

    /// Messages per frame (`max_messages_in_frame`); 0: no count limit.
    /// Unset (0), it is 16 with a write delay (Centrifugo PRO's default)
    /// and unlimited without one (frames are bounded by size).
    pub(crate) fn frame_message_limit(&self) -> usize {
        const DELAYED_DEFAULT: usize = 16;
        match self.max_messages_in_frame {
            n if n < 0 => 0,
            0 if self.batching_delay().is_some() => DELAYED_DEFAULT,
            n => usize::try_from(n).unwrap_or(usize::MAX),
        }
    }
}
