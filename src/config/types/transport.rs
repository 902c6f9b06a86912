//! Transport sections: `websocket`, the emulation and unidirectional
//! transports, and the optional endpoints that share their shape.

use serde::{Deserialize, Serialize};

use super::{Duration, Tls};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct WebSocket {
    pub(crate) disabled: bool,
    pub(crate) handler_prefix: String,
    pub compression: bool,
    pub compression_min_size: usize,
    pub(crate) compression_level: i32,
    pub(crate) read_buffer_size: usize,
    pub(crate) write_buffer_size: usize,
    pub(crate) use_write_buffer_pool: bool,
    pub write_timeout: Duration,
    pub(crate) message_size_limit: usize,
    /// 0 means 10 × `message_size_limit`.
    pub(crate) decompressed_message_size_limit: usize,
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
        connect_code_to_http_response: CodeToHttpResponse = CodeToHttpResponse::default(),
    }
);
section!(
    /// `uni_http_stream`.
    UniHttpStream, "/connection/uni_http_stream", {
        max_request_body_size: usize = 65536,
        connect_code_to_http_response: CodeToHttpResponse = CodeToHttpResponse::default(),
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
    pub(crate) handler_prefix: String,
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
    pub(crate) handler_prefix: String,
    pub compression: bool,
    pub compression_min_size: usize,
    pub(crate) compression_level: i32,
    pub(crate) read_buffer_size: usize,
    pub(crate) write_buffer_size: usize,
    pub(crate) use_write_buffer_pool: bool,
    pub write_timeout: Duration,
    pub(crate) message_size_limit: usize,
    pub(crate) disable_closing_handshake: bool,
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

/// `uni_sse.connect_code_to_http_response` /
/// `uni_http_stream.connect_code_to_http_response`: connect errors answered
/// with an HTTP status instead of a stream.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CodeToHttpResponse {
    pub enabled: bool,
    pub(crate) transforms: Vec<CodeToHttpTransform>,
}

/// One `connect_code_to_http_response.transforms` item.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub(crate) struct CodeToHttpTransform {
    /// The connect error or disconnect code.
    pub(crate) code: u32,
    pub(crate) to: HttpResponseTo,
}

/// The HTTP answer of a transform (an empty body: the error's message).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub(crate) struct HttpResponseTo {
    pub(crate) status_code: u16,
    pub(crate) body: String,
}

/// `client.connect_code_to_unidirectional_disconnect`: connect errors of
/// unidirectional clients turned into chosen disconnects.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CodeToDisconnect {
    pub enabled: bool,
    pub(crate) transforms: Vec<CodeToDisconnectTransform>,
}

/// One `connect_code_to_unidirectional_disconnect.transforms` item.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub(crate) struct CodeToDisconnectTransform {
    /// The connect error code.
    pub(crate) code: u32,
    pub(crate) to: DisconnectTo,
}

/// The disconnect of a transform.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub(crate) struct DisconnectTo {
    pub(crate) code: u32,
    pub(crate) reason: String,
}
