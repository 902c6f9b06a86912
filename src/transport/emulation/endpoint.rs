//! `/emulation`: commands of an HTTP-streaming or SSE connection, posted
//! as an `EmulationRequest` — JSON `{"node","session","data"}` with `data`
//! the `\n`-joined commands as a JSON string, or Protobuf
//! (`Content-Type: application/octet-stream`) with `data` the
//! varint-framed commands.
//!
//! Answers: 204 once the node holding the session took the commands (also
//! when it no longer has the session: the client learns that from its
//! stream ending), 400 for a malformed body, 404 for an unknown node (the
//! SDK then reconnects), 413 over `emulation.max_request_body_size`, 503
//! when the session's inbox is full, 500 when forwarding failed.

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use prost::Message as _;
use serde::Deserialize;

use super::{
    EmulationState, body_limit, cors, is_options, is_protobuf, not_allowed, preflight, read_body,
    with_cors,
};
use crate::node::emulation::EmulationError;
use crate::proto::client::EmulationRequest;

/// The JSON form of an `EmulationRequest`.
#[derive(Deserialize)]
struct JsonRequest {
    #[serde(default)]
    node: String,
    #[serde(default)]
    session: String,
    /// The commands as a JSON string.
    data: String,
}

/// Serves one `/emulation` request.
pub(super) async fn handle(State(state): State<EmulationState>, req: Request) -> Response {
    let cors = match cors(&state, req.headers()) {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    if is_options(req.method()) {
        return preflight(cors, "POST, OPTIONS");
    }
    if req.method() != Method::POST {
        return not_allowed(cors);
    }
    let protobuf = is_protobuf(req.headers());
    let (parts, body) = req.into_parts();
    let limit = body_limit(state.node.config().emulation.max_request_body_size);
    let body = match read_body(&parts.headers, body, limit).await {
        Ok(b) => b,
        Err(status) => return with_cors(cors, status),
    };
    let Some((node, session, data)) = parse(protobuf, body) else {
        return with_cors(
            cors,
            (StatusCode::BAD_REQUEST, "malformed emulation request"),
        );
    };
    let status = match state.node.route_emulation(&node, &session, data).await {
        Ok(()) => StatusCode::NO_CONTENT,
        Err(EmulationError::UnknownNode) => StatusCode::NOT_FOUND,
        Err(EmulationError::InboxFull) => StatusCode::SERVICE_UNAVAILABLE,
        Err(e @ EmulationError::Forward(_)) => {
            tracing::warn!(error = %e, "emulation request not forwarded");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    with_cors(cors, status)
}

/// Node, session and command frame of a request body; `None` when the
/// body is malformed or carries no commands.
fn parse(protobuf: bool, body: Bytes) -> Option<(String, String, Bytes)> {
    let (node, session, data) = if protobuf {
        let r = EmulationRequest::decode(body).ok()?;
        (r.node, r.session, r.data)
    } else {
        let r: JsonRequest = serde_json::from_slice(&body).ok()?;
        (r.node, r.session, Bytes::from(r.data))
    };
    if data.is_empty() {
        return None;
    }
    Some((node, session, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_json_and_protobuf_bodies() {
        let json = br#"{"session":"s","node":"n","data":"{\"id\":2,\"subscribe\":{\"channel\":\"a\"}}\n{}"}"#;
        let (node, session, data) = parse(false, Bytes::from_static(json)).expect("json");
        assert_eq!((node.as_str(), session.as_str()), ("n", "s"));
        assert_eq!(
            &data[..],
            &b"{\"id\":2,\"subscribe\":{\"channel\":\"a\"}}\n{}"[..]
        );
        // `data` must be a string holding commands.
        assert!(
            parse(
                false,
                Bytes::from_static(br#"{"session":"s","node":"n","data":{}}"#)
            )
            .is_none()
        );
        assert!(
            parse(
                false,
                Bytes::from_static(br#"{"session":"s","node":"n","data":""}"#)
            )
            .is_none()
        );
        assert!(parse(false, Bytes::from_static(b"not json")).is_none());

        let pb = EmulationRequest {
            node: "n".into(),
            session: "s".into(),
            data: Bytes::from_static(&[1, 0]),
        }
        .encode_to_vec();
        let (node, session, data) = parse(true, Bytes::from(pb)).expect("protobuf");
        assert_eq!((node.as_str(), session.as_str()), ("n", "s"));
        assert_eq!(&data[..], &[1, 0]);
        assert!(parse(true, Bytes::from_static(&[0xff, 0xff])).is_none());
    }
}
