//! Bidirectional WebSocket (`/connection/websocket`), JSON or Protobuf.
//!
//! The upgrade picks the encoding (subprotocol `centrifuge-protobuf`, or
//! `?cf_protocol=protobuf` / `?format=protobuf`), checks the origin and,
//! when `websocket.compression` is on, negotiates permessage-deflate. The
//! connection is then served by [`driver::drive`] over our own WebSocket
//! codec ([`super::ws`], whose connection is the [`driver::Link`]). A
//! disconnect becomes the close frame's code and reason.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;

use super::call_context;
use super::driver::{self, DriveOptions, LinkGone};
use super::origin::OriginCheck;
use super::ws::{self, Read, WsConn, deflate, handshake};
use crate::node::Node;
use crate::protocol::codec::Framing;
use crate::protocol::{Disconnect, Encoding};
use crate::session::{Session, TransportInfo};

/// Largest frame the writer builds from queued messages.
const MAX_FRAME: usize = 64 * 1024;

/// State the upgrade handler needs.
#[derive(Clone)]
pub(crate) struct WsState {
    /// The node.
    pub(crate) node: Arc<Node>,
    /// Allowed origins.
    pub(crate) origins: Arc<OriginCheck>,
    /// Tracks connection tasks for graceful shutdown.
    pub(crate) tracker: tokio_util::task::TaskTracker,
}

/// Handles the HTTP upgrade request.
pub(crate) async fn upgrade(State(state): State<WsState>, mut req: Request) -> Response {
    let key = match check_upgrade(&state, req.headers()) {
        Ok(key) => key,
        Err(refused) => return refused,
    };
    let (encoding, subprotocol) = choose_encoding(req.headers(), req.uri().query());
    let cfg = &state.node.config().websocket;
    let deflate = cfg.compression.then(|| {
        deflate_settings(
            cfg.compression_level,
            cfg.compression_min_size,
            match cfg.decompressed_message_size_limit {
                0 => cfg.message_size_limit.saturating_mul(10),
                n => n,
            },
        )
    });
    let deflate = deflate.filter(|_| offers_deflate(req.headers()));
    // The slot admitted by the client stack's connection-limit layer.
    let permit = match crate::middleware::conn_limit::take_permit(&mut req, &state.node.admission) {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    let cfg = &state.node.config().websocket;
    let limit = cfg.message_size_limit;
    let write_timeout = cfg.write_timeout.get();
    let opts = ws::Options {
        text: encoding == Encoding::Json,
        max_message: limit,
        deflate,
        write_timeout,
    };
    let call = call_context(&state.node, &req);
    let on_upgrade = hyper::upgrade::on(&mut req);
    let tracker = state.tracker.clone();
    let node = state.node.clone();
    tracker.spawn(async move {
        let _permit = permit;
        match on_upgrade.await {
            Ok(upgraded) => {
                let ws = WsConn::new(TokioIo::new(upgraded), opts);
                let info = TransportInfo {
                    name: "websocket",
                    encoding,
                    emulated: false,
                    uni: false,
                    message_size_limit: limit,
                    call,
                };
                serve_connection(node, ws, info, write_timeout).await;
            }
            Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
        }
    });
    switching_protocols(&key, subprotocol, deflate.is_some())
}

/// Whether the request offers a permessage-deflate we can honour.
fn offers_deflate(headers: &HeaderMap) -> bool {
    handshake::accepts_deflate(
        headers
            .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    )
}

/// permessage-deflate settings from a section's config keys.
fn deflate_settings(level: i32, min_size: usize, max_inflated: usize) -> ws::Deflate {
    ws::Deflate {
        level: deflate::level(level),
        min_size,
        max_inflated,
    }
}

/// The checks every WebSocket upgrade passes: upgrade headers, version 13,
/// a key, an allowed origin, a node not shutting down. Returns the key.
fn check_upgrade(state: &WsState, headers: &HeaderMap) -> Result<HeaderValue, Response> {
    if !header_has(headers, header::CONNECTION, "upgrade")
        || !header_has(headers, header::UPGRADE, "websocket")
    {
        return Err((StatusCode::BAD_REQUEST, "websocket upgrade required").into_response());
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .and_then(|v| v.to_str().ok())
        != Some("13")
    {
        return Err((StatusCode::BAD_REQUEST, "unsupported websocket version").into_response());
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY).cloned() else {
        return Err((StatusCode::BAD_REQUEST, "missing websocket key").into_response());
    };
    // Compare the raw bytes: a non-ASCII Origin is still an Origin (and
    // can only fail to match an ASCII pattern).
    let origin = headers
        .get(header::ORIGIN)
        .map(|v| String::from_utf8_lossy(v.as_bytes()));
    let origin = origin.as_deref();
    if !state.origins.allows(origin) {
        tracing::info!(
            origin = origin.unwrap_or_default(),
            "request origin is not allowed"
        );
        return Err((StatusCode::FORBIDDEN, "origin not allowed").into_response());
    }
    if state.node.shutdown.is_cancelled() {
        return Err((StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response());
    }
    Ok(key)
}

/// The 101 answer to a checked upgrade request.
fn switching_protocols(
    key: &HeaderValue,
    subprotocol: Option<&'static str>,
    deflate: bool,
) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&handshake::accept_key(key.as_bytes())) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    if deflate {
        h.insert(
            header::SEC_WEBSOCKET_EXTENSIONS,
            HeaderValue::from_static(handshake::DEFLATE_RESPONSE),
        );
    }
    if let Some(p) = subprotocol {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(p));
    }
    resp
}

/// A server WebSocket for the transports built on this one (the uni
/// WebSocket): our codec's connection with the calls they need.
pub(crate) struct Socket(WsConn<TokioIo<hyper::upgrade::Upgraded>>);

/// What a [`Socket`] read.
#[derive(Debug)]
pub(crate) enum SocketIn {
    /// A text or binary message.
    Message(bytes::Bytes),
    /// A pong frame.
    Pong,
    /// The peer closed or the read failed.
    Gone,
    /// A message over the size limit.
    TooBig,
}

impl Socket {
    /// The next event; cancel-safe.
    pub(crate) async fn next(&mut self) -> SocketIn {
        match self.0.read().await {
            Read::Message(b) => SocketIn::Message(b),
            Read::Pong => SocketIn::Pong,
            Read::Gone => SocketIn::Gone,
            Read::Fail(f) if f.code == 1009 => SocketIn::TooBig,
            Read::Fail(f) => {
                // A protocol error: our close frame goes out (cancel-safe,
                // it waits in the connection), then the client is gone.
                tracing::debug!(code = f.code, reason = f.reason, "websocket protocol error");
                self.0.fail(f);
                self.0.read().await;
                SocketIn::Gone
            }
        }
    }

    /// Sends a text message (the session's JSON).
    pub(crate) async fn send_text(&mut self, text: bytes::Bytes) -> Result<(), LinkGone> {
        self.0.write(text).await.map_err(|_| LinkGone)
    }

    /// Sends a ping frame.
    pub(crate) async fn ping(&mut self) -> Result<(), LinkGone> {
        self.0.ping().await.map_err(|_| LinkGone)
    }

    /// Sends the close frame and waits for the peer's.
    pub(crate) async fn close(&mut self, d: Disconnect) {
        let code = u16::try_from(d.code).unwrap_or(1011);
        self.0.close_with(code, &d.reason).await;
    }
}

/// Accepts an upgrade request with the checks and node limits of
/// [`upgrade`] (no subprotocol, messages up to `limit` bytes) and hands the
/// socket to `serve` on a tracked task.
pub(crate) fn accept<F, Fut>(state: &WsState, mut req: Request, limit: usize, serve: F) -> Response
where
    F: FnOnce(Socket) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let key = match check_upgrade(state, req.headers()) {
        Ok(key) => key,
        Err(refused) => return refused,
    };
    let permit = match crate::middleware::conn_limit::take_permit(&mut req, &state.node.admission) {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    // The uni WebSocket's own section: compression keys and write timeout.
    let cfg = &state.node.config().uni_websocket;
    let deflate = (cfg.compression && offers_deflate(req.headers())).then(|| {
        deflate_settings(
            cfg.compression_level,
            cfg.compression_min_size,
            limit.saturating_mul(10),
        )
    });
    let opts = ws::Options {
        text: true,
        max_message: limit,
        deflate,
        write_timeout: cfg.write_timeout.get(),
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    state.tracker.spawn(async move {
        let _permit = permit;
        match on_upgrade.await {
            Ok(upgraded) => {
                serve(Socket(WsConn::new(TokioIo::new(upgraded), opts))).await;
            }
            Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
        }
    });
    switching_protocols(&key, None, deflate.is_some())
}

fn header_has(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Encoding and the subprotocol to echo.
fn choose_encoding(headers: &HeaderMap, query: Option<&str>) -> (Encoding, Option<&'static str>) {
    let offered: Vec<String> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .collect();
    if offered.iter().any(|p| p == "centrifuge-protobuf") {
        return (Encoding::Protobuf, Some("centrifuge-protobuf"));
    }
    let json_proto = offered
        .iter()
        .any(|p| p == "centrifuge-json")
        .then_some("centrifuge-json");
    let query_protobuf = query.is_some_and(|q| {
        q.split('&')
            .any(|kv| kv == "cf_protocol=protobuf" || kv == "format=protobuf")
    });
    if query_protobuf {
        return (Encoding::Protobuf, None);
    }
    (Encoding::Json, json_proto)
}

/// The connection's task. Not an `async fn`: its arguments would be kept
/// in the task beside the driver's copy of them.
fn serve_connection<S>(
    node: Arc<Node>,
    ws: WsConn<S>,
    info: TransportInfo,
    write_timeout: Duration,
) -> impl Future<Output = ()> + Send
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let session = Session::new(node.clone(), info);
    let opts = DriveOptions {
        framing: Framing::Message,
        uni: false,
        max_frame: MAX_FRAME,
        write_timeout,
        transport: "websocket",
    };
    driver::drive(node, session, ws, opts)
}

#[cfg(test)]
mod tests {
    /// Every idle connection holds one of these futures: keep it small.
    #[tokio::test]
    async fn connection_task_stays_small() {
        let node = crate::node::Node::new(crate::config::Config::default())
            .await
            .expect("node");
        let (a, _b) = tokio::io::duplex(64);
        let opts = super::ws::Options {
            text: true,
            max_message: 65536,
            deflate: Some(super::deflate_settings(1, 0, 655_360)),
            write_timeout: std::time::Duration::from_secs(1),
        };
        let ws = super::WsConn::new(a, opts);
        let info = crate::session::TransportInfo {
            name: "test",
            encoding: crate::protocol::Encoding::Json,
            emulated: false,
            uni: false,
            message_size_limit: 1,
            call: Default::default(),
        };
        let fut = super::serve_connection(node, ws, info, std::time::Duration::from_secs(1));
        eprintln!(
            "idle connection future: {} bytes",
            std::mem::size_of_val(&fut)
        );
        assert!(
            std::mem::size_of_val(&fut) <= 2048,
            "{} bytes",
            std::mem::size_of_val(&fut)
        );
    }

    #[test]
    fn encoding_from_subprotocol_and_query() {
        use super::{Encoding, HeaderMap, HeaderValue, choose_encoding, header};
        let mut h = HeaderMap::new();
        assert_eq!(choose_encoding(&h, None), (Encoding::Json, None));
        assert_eq!(
            choose_encoding(&h, Some("cf_protocol=protobuf")),
            (Encoding::Protobuf, None)
        );
        assert_eq!(
            choose_encoding(&h, Some("a=1&format=protobuf")),
            (Encoding::Protobuf, None)
        );
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("centrifuge-json, centrifuge-protobuf"),
        );
        assert_eq!(
            choose_encoding(&h, None),
            (Encoding::Protobuf, Some("centrifuge-protobuf"))
        );
    }
}
