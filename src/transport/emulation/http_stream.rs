//! `/connection/http_stream`: the client POSTs its connect command (JSON,
//! or Protobuf with `Content-Type: application/octet-stream`) and reads
//! replies from the response body: JSON each followed by `\n`, Protobuf
//! varint-length-prefixed.

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;

use super::{
    EmulationState, StreamStart, body_limit, cors, is_options, is_protobuf, not_allowed, preflight,
    read_body, shutting_down, start_stream, valid_first_frame, with_cors,
};
use crate::protocol::Encoding;
use crate::protocol::codec::Framing;
use crate::transport::call_context;

/// Serves one HTTP-streaming request.
pub(super) async fn handle(State(state): State<EmulationState>, mut req: Request) -> Response {
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
    if shutting_down(&state) {
        return with_cors(cors, (StatusCode::SERVICE_UNAVAILABLE, "shutting down"));
    }
    let encoding = if is_protobuf(req.headers()) {
        Encoding::Protobuf
    } else {
        Encoding::Json
    };
    let permit = match crate::middleware::conn_limit::take_permit(&mut req, &state.node.admission) {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    let call = call_context(&state.node, &req);
    let version = req.version();
    let (parts, body) = req.into_parts();
    let limit = body_limit(state.node.config().http_stream.max_request_body_size);
    let first = match read_body(&parts.headers, body, limit).await {
        Ok(b) => b,
        Err(status) => return with_cors(cors, status),
    };
    if !valid_first_frame(encoding, &first, limit) {
        return with_cors(cors, (StatusCode::BAD_REQUEST, "malformed connect command"));
    }
    start_stream(
        &state,
        permit,
        StreamStart {
            transport: "http_stream",
            encoding,
            framing: Framing::Stream,
            first,
            preamble: None,
            headers: cors,
            call,
            version,
        },
    )
}
