//! Unidirectional SSE (`/connection/uni_sse`) and HTTP-streaming
//! (`/connection/uni_http_stream`), JSON only.
//!
//! The client passes a bare ConnectRequest: uni SSE as the `cf_connect`
//! query parameter of a GET (optional: absent means an empty request) or as
//! a POST body; uni HTTP-streaming as a POST body (required; OPTIONS answers
//! 204). The connect runs before the response starts, so a bad request is a
//! 400 and, with `connect_code_to_http_response.enabled`, a connect error is
//! the configured HTTP response. Otherwise the response is a stream of bare
//! Push messages: SSE writes `\r\n` first, then `data: <push>\n\n` each;
//! HTTP-streaming writes each push followed by `\n`. The stream ends with a
//! Disconnect push.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use super::call_context;
use super::origin::OriginCheck;
use crate::config::CodeToHttpResponse;
use crate::node::Node;
use crate::proto::client::{ConnectRequest, Push};
use crate::protocol::codec::Framing;
use crate::protocol::{Disconnect, Encoding};
use crate::session::{Fail, Session, TransportInfo};
use crate::transport::driver::{DriveOptions, Inbound, Link, LinkGone, drive};

/// Write timeout of a stream (as Centrifugo's).
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// Chunks buffered between the connection task and the response body.
const BODY_BUFFER: usize = 16;

/// State of the uni SSE and HTTP-streaming routes.
#[derive(Clone)]
pub(crate) struct UniState {
    /// The node.
    pub(crate) node: Arc<Node>,
    /// Allowed origins.
    pub(crate) origins: Arc<OriginCheck>,
    /// Tracks connection tasks for graceful shutdown.
    pub(crate) tracker: TaskTracker,
}

/// Which of the two transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sse,
    HttpStream,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Sse => "uni_sse",
            Self::HttpStream => "uni_http_stream",
        }
    }
}

#[derive(Debug, Deserialize)]
struct ConnectParam {
    cf_connect: Option<String>,
}

/// Parses a bare ConnectRequest in JSON: an object, or `null` for an empty
/// request. Anything else (including an empty text) is refused.
pub(crate) fn parse_connect_request(data: &[u8]) -> Result<ConnectRequest, String> {
    match data.iter().find(|b| !b.is_ascii_whitespace()) {
        // serde would also read a struct from an array; the protocol does not.
        Some(b'{') | Some(b'n') => {}
        _ => return Err("connect request is not a JSON object".into()),
    }
    serde_json::from_slice::<Option<ConnectRequest>>(data)
        .map(Option::unwrap_or_default)
        .map_err(|e| e.to_string())
}

/// `GET`/`POST /connection/uni_sse`.
pub(crate) async fn sse(State(state): State<UniState>, req: Request) -> Response {
    serve(state, Kind::Sse, req).await
}

/// `POST`/`OPTIONS /connection/uni_http_stream`.
pub(crate) async fn http_stream(State(state): State<UniState>, req: Request) -> Response {
    serve(state, Kind::HttpStream, req).await
}

async fn serve(state: UniState, kind: Kind, mut req: Request) -> Response {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    if !state.origins.allows(origin.as_deref()) {
        tracing::info!(
            origin = origin.unwrap_or_default(),
            "request origin is not allowed"
        );
        return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
    }
    let method = req.method().clone();
    if kind == Kind::HttpStream && method == Method::OPTIONS {
        return StatusCode::NO_CONTENT.into_response();
    }
    let node = state.node.clone();
    let cfg = node.config();
    let (body_limit, http_codes) = match kind {
        Kind::Sse => (
            cfg.uni_sse.max_request_body_size,
            &cfg.uni_sse.connect_code_to_http_response,
        ),
        Kind::HttpStream => (
            cfg.uni_http_stream.max_request_body_size,
            &cfg.uni_http_stream.connect_code_to_http_response,
        ),
    };
    let connect = match (kind, &method) {
        (Kind::Sse, &Method::GET) => match Query::<ConnectParam>::try_from_uri(req.uri()) {
            Ok(Query(ConnectParam {
                cf_connect: Some(text),
            })) if !text.is_empty() => parse_connect_request(text.as_bytes()),
            Ok(_) => Ok(ConnectRequest::default()),
            Err(e) => Err(e.to_string()),
        },
        (_, &Method::POST) => {
            let body = std::mem::take(req.body_mut());
            match axum::body::to_bytes(body, body_limit.max(1)).await {
                Ok(data) => parse_connect_request(&data),
                Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
            }
        }
        _ => return StatusCode::METHOD_NOT_ALLOWED.into_response(),
    };
    let connect = match connect {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(transport = kind.name(), error = %e, "malformed connect request");
            return (StatusCode::BAD_REQUEST, "invalid connect request").into_response();
        }
    };
    if node.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let permit = match crate::middleware::conn_limit::take_permit(&mut req, &node.admission) {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    let info = TransportInfo {
        name: kind.name(),
        encoding: Encoding::Json,
        emulated: false,
        uni: true,
        message_size_limit: body_limit.max(1),
        call: call_context(&node, &req),
    };
    let mut session = Session::new(node.clone(), info);
    if http_codes.enabled {
        if let Err(fail) = Box::pin(session.connect_uni_raw(connect)).await {
            Box::pin(session.close()).await;
            return http_response(http_codes, &fail);
        }
    } else if let Err(d) = Box::pin(session.connect_uni(connect)).await {
        session.shared().disconnect(d);
    }

    let (tx, mut rx) = mpsc::channel::<Bytes>(BODY_BUFFER);
    if kind == Kind::Sse {
        let _ = tx.try_send(Bytes::from_static(b"\r\n"));
    }
    let link = StreamLink { tx, kind };
    let opts = DriveOptions {
        framing: match kind {
            Kind::Sse => Framing::Sse,
            Kind::HttpStream => Framing::Stream,
        },
        uni: true,
        max_frame: 64 * 1024,
        write_timeout: WRITE_TIMEOUT,
        transport: kind.name(),
    };
    state.tracker.spawn(async move {
        let _permit = permit;
        drive(node, session, link, opts).await;
    });
    let body = Body::from_stream(futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|chunk| chunk.map(Ok::<Bytes, Infallible>))
    }));
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    if kind == Kind::Sse {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream; charset=utf-8"),
        );
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache, no-store, must-revalidate, max-age=0"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert("expire", HeaderValue::from_static("0"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    if req.version() == Version::HTTP_11 {
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    }
    resp
}

/// The HTTP answer to a failed connect when connect codes map to HTTP
/// responses: the configured transform for the code (its body defaults to
/// the error message or disconnect reason), else 500.
fn http_response(cfg: &CodeToHttpResponse, fail: &Fail) -> Response {
    let (code, text) = match fail {
        Fail::Error(e) => (e.code(), e.message().to_string()),
        Fail::Disconnect(d) => (d.code, d.reason.to_string()),
    };
    if let Some(t) = cfg.transforms.iter().find(|t| t.code == code)
        && let Ok(status) = StatusCode::from_u16(t.to.status_code)
    {
        let body = if t.to.body.is_empty() {
            text
        } else {
            t.to.body.clone()
        };
        return (status, body).into_response();
    }
    (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response()
}

/// The write side of one streaming response.
struct StreamLink {
    tx: mpsc::Sender<Bytes>,
    kind: Kind,
}

impl Link for StreamLink {
    async fn recv(&mut self) -> Inbound {
        // Nothing is read: the body ends when the client goes away.
        self.tx.closed().await;
        Inbound::Gone
    }

    async fn send(&mut self, frame: Bytes) -> Result<(), LinkGone> {
        self.tx.send(frame).await.map_err(|_| LinkGone)
    }

    async fn close(&mut self, d: Disconnect) {
        if d == Disconnect::CONNECTION_CLOSED {
            return;
        }
        let push = Push {
            disconnect: Some(d.to_proto()),
            ..Default::default()
        };
        let Ok(json) = serde_json::to_vec(&push) else {
            return;
        };
        let chunk = match self.kind {
            Kind::Sse => [b"data: ".as_slice(), &json, b"\n\n"].concat(),
            Kind::HttpStream => [json.as_slice(), b"\n"].concat(),
        };
        let _ = tokio::time::timeout(WRITE_TIMEOUT, self.tx.send(Bytes::from(chunk))).await;
        // Dropping the sender (with the link) ends the body.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_request_forms() {
        assert_eq!(
            parse_connect_request(b"null").expect("null is empty"),
            ConnectRequest::default()
        );
        let r = parse_connect_request(br#"{"token":"t","subs":{"a":{"recover":true,"offset":3}}}"#)
            .expect("object");
        assert_eq!(r.token, "t");
        assert!(r.subs.get("a").is_some_and(|s| s.recover && s.offset == 3));
        for bad in [&b""[..], b"  ", b"[1]", b"{", b"\"x\"", b"nope"] {
            assert!(parse_connect_request(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn http_transform_lookup() {
        let cfg: CodeToHttpResponse = serde_json::from_value(serde_json::json!({
            "enabled": true,
            "transforms": [{"code": 3500, "to": {"status_code": 401}}]
        }))
        .expect("typed");
        let r = http_response(&cfg, &Fail::Disconnect(Disconnect::INVALID_TOKEN));
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let r = http_response(&cfg, &Fail::Disconnect(Disconnect::BAD_REQUEST));
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
