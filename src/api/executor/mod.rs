//! The server API executor: every API method implemented once, on a
//! [`Node`]. The gRPC service, the HTTP/JSON gateway and batch call these
//! methods; they only translate transports.
//!
//! Semantics and error codes are Centrifugo's (`spec/server-api.md` §1.4):
//! validation first (107 bad request, 102 unknown channel, 108 not
//! available), then the node; engine failures become 100 (logged, never
//! sent), an unrecoverable history position 112.

use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;

use super::errors::ApiError;
use crate::channel::ResolvedOptions;
use crate::engine::EngineError;
use crate::node::Node;
use crate::proto::api;

mod connections;
mod glob;
mod history;
mod info;
mod presence;
mod publish;
mod rpc;

pub(crate) use glob::Glob;

/// Runs server API methods against a node.
#[derive(Debug, Clone)]
pub struct Executor {
    node: Arc<Node>,
}

impl Executor {
    /// An executor for `node`.
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }

    /// Options of a non-empty channel: 107 when empty, 102 when its
    /// namespace is not configured.
    fn channel_options(&self, channel: &str) -> Result<Arc<ResolvedOptions>, ApiError> {
        if channel.is_empty() {
            return Err(ApiError::bad_request());
        }
        self.namespace_options(channel)
    }

    /// Options of a channel, 102 when its namespace is not configured.
    fn namespace_options(&self, channel: &str) -> Result<Arc<ResolvedOptions>, ApiError> {
        self.node
            .rules()
            .options(channel)
            .map_err(|_| ApiError::unknown_channel())
    }
}

/// The payload of a request with a raw field and its base64 sibling: the
/// base64 one wins when non-empty; invalid base64 is 107.
pub(crate) fn payload(b64: &str, raw: Bytes) -> Result<Bytes, ApiError> {
    if b64.is_empty() {
        return Ok(raw);
    }
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map(Bytes::from)
        .map_err(|_| ApiError::bad_request())
}

/// Maps an engine failure to its API error, logging the internal cause.
pub(crate) fn engine_error(op: &'static str, channel: &str, err: EngineError) -> ApiError {
    if let EngineError::Unavailable(reason) = &err {
        tracing::error!(op, channel, %reason, "server API: engine failure");
    }
    ApiError::from(err)
}

/// The wire form of an error inside a result (broadcast responses).
pub(crate) fn wire_error(err: &ApiError) -> api::Error {
    api::Error {
        code: err.code,
        message: err.message.to_string(),
    }
}

/// The API form of a client info kept by the engine.
pub(crate) fn client_info(info: crate::engine::ClientInfo) -> api::ClientInfo {
    api::ClientInfo {
        user: info.user,
        client: info.client,
        conn_info: info.conn_info,
        chan_info: info.chan_info,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_payload_wins_and_is_checked() {
        let raw = Bytes::from_static(b"{}");
        assert_eq!(payload("", raw.clone()), Ok(raw.clone()));
        assert_eq!(payload("aGk=", raw.clone()), Ok(Bytes::from_static(b"hi")));
        assert_eq!(payload("%%%", raw).err().map(|e| e.code), Some(107));
    }

    #[test]
    fn engine_errors_keep_their_api_meaning() {
        assert_eq!(
            engine_error("history", "c", EngineError::UnrecoverablePosition).code,
            112
        );
        assert_eq!(
            engine_error("publish", "c", EngineError::Unavailable("down".into())).code,
            100
        );
    }
}
