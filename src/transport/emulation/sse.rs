//! `/connection/sse`: JSON only. The connect command comes in the
//! `cf_connect` query parameter of a GET (what `EventSource` can send), or
//! as the body of a POST. The response is `text/event-stream`: `\r\n`
//! first, then each reply as `data: <json>\n\n`.

use std::collections::HashMap;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;

use super::{
    EmulationState, StreamStart, body_limit, cors, is_options, not_allowed, preflight, read_body,
    shutting_down, start_stream, valid_first_frame, with_cors,
};
use crate::protocol::Encoding;
use crate::protocol::codec::Framing;
use crate::transport::call_context;

/// The query parameter carrying the connect command of a GET.
const CONNECT_PARAM: &str = "cf_connect";

/// Serves one SSE request.
pub(super) async fn handle(State(state): State<EmulationState>, mut req: Request) -> Response {
    let cors = match cors(&state, req.headers()) {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    let method = req.method().clone();
    if is_options(&method) {
        return preflight(cors, "GET, POST, OPTIONS");
    }
    if method != Method::GET && method != Method::POST {
        return not_allowed(cors);
    }
    if shutting_down(&state) {
        return with_cors(cors, (StatusCode::SERVICE_UNAVAILABLE, "shutting down"));
    }
    let limit = body_limit(state.node.config().sse.max_request_body_size);
    // Validated before a connection slot is taken.
    let from_query = if method == Method::GET {
        match connect_param(&req) {
            Some(first) => Some(first),
            None => {
                return with_cors(cors, (StatusCode::BAD_REQUEST, "no connect command"));
            }
        }
    } else {
        None
    };
    let permit = match crate::middleware::conn_limit::take_permit(&mut req, &state.node.admission) {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    let call = call_context(&state.node, &req);
    let version = req.version();
    let first = match from_query {
        Some(first) => first,
        None => {
            let (parts, body) = req.into_parts();
            match read_body(&parts.headers, body, limit).await {
                Ok(b) => b,
                Err(status) => return with_cors(cors, status),
            }
        }
    };
    if !valid_first_frame(Encoding::Json, &first, limit) {
        return with_cors(cors, (StatusCode::BAD_REQUEST, "malformed connect command"));
    }
    let mut headers = cors;
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    start_stream(
        &state,
        permit,
        StreamStart {
            transport: "sse",
            encoding: Encoding::Json,
            framing: Framing::Sse,
            first,
            preamble: Some(b"\r\n"),
            headers,
            call,
            version,
        },
    )
}

/// The decoded `cf_connect` parameter; `None` when absent, empty or not
/// decodable.
fn connect_param(req: &Request) -> Option<Bytes> {
    let Query(params) = Query::<HashMap<String, String>>::try_from_uri(req.uri()).ok()?;
    params
        .get(CONNECT_PARAM)
        .filter(|v| !v.is_empty())
        .map(|v| Bytes::copy_from_slice(v.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_param_is_url_decoded() {
        let req = Request::builder()
            .uri("/connection/sse?cf_connect=%7B%22id%22%3A1%2C%22connect%22%3A%7B%7D%7D&x=1")
            .body(axum::body::Body::empty())
            .expect("request");
        assert_eq!(
            connect_param(&req).as_deref(),
            Some(&br#"{"id":1,"connect":{}}"#[..])
        );
        let req = Request::builder()
            .uri("/connection/sse?cf_connect=")
            .body(axum::body::Body::empty())
            .expect("request");
        assert_eq!(connect_param(&req), None);
        let req = Request::builder()
            .uri("/connection/sse")
            .body(axum::body::Body::empty())
            .expect("request");
        assert_eq!(connect_param(&req), None);
    }
}
