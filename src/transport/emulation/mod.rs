//! Bidirectional emulation for clients without WebSocket: HTTP-streaming
//! (`/connection/http_stream`) and SSE (`/connection/sse`) streams carry
//! replies to the client, and the client posts its later commands to
//! `/emulation` with the `session` and `node` ids from its connect reply.
//!
//! A stream request carries the client's first frame (its connect command).
//! The connection registers an inbox under its session id in the node's
//! registry ([`crate::node::emulation`]); `/emulation` routes posted
//! commands to that inbox, on this node or (in a cluster) through the
//! node's forwarder. The connection itself is served by
//! [`driver::drive`] through a [`StreamLink`]: the response body is its
//! write side, the inbox its read side. A server disconnect is written as a
//! Disconnect push, then the body ends; a client that goes away drops the
//! body, which ends the session.
//!
//! All three endpoints check `client.allowed_origins` (403 otherwise) and
//! answer allowed browser origins with the CORS headers Centrifugo sends.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, options, post};
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use super::driver::{self, DriveOptions, Inbound, Link, LinkGone};
use super::origin::OriginCheck;
use crate::node::Node;
use crate::node::emulation::InboxGuard;
use crate::node::limits::Permit;
use crate::proto::client::Push;
use crate::protocol::codec::{FrameBuilder, Framing, decode_commands, encode_push};
use crate::protocol::{Disconnect, Encoding};
use crate::session::{Session, TransportInfo};

mod endpoint;
mod http_stream;
mod sse;

/// Body size limit when a config leaves it at 0 (Centrifugo's default).
const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// How long one write to a stream may take (Centrifugo's streaming write
/// deadline); then the connection ends with 3009.
const STREAM_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Largest frame the driver builds from queued messages.
const MAX_FRAME: usize = 64 * 1024;

/// Frames buffered between the connection task and the response body; the
/// driver batches, so a small number keeps a stuck client's memory small.
const BODY_FRAMES: usize = 2;

/// What every emulation handler needs.
#[derive(Clone)]
pub(crate) struct EmulationState {
    node: Arc<Node>,
    origins: Arc<OriginCheck>,
    tracker: TaskTracker,
}

impl std::fmt::Debug for EmulationState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulationState").finish_non_exhaustive()
    }
}

/// The emulation routes the config enables: the stream endpoints (to be
/// wrapped in the client stack, whose admission they take a slot from) and
/// the routes that are not connections, to stay outside that stack:
/// `/emulation` and the streams' preflights (same paths, method OPTIONS;
/// merging the two routers joins them). Both empty when neither `sse` nor
/// `http_stream` is enabled.
pub(crate) fn routes(node: &Arc<Node>, tracker: TaskTracker) -> (Router, Router) {
    let cfg = node.config();
    let state = EmulationState {
        node: node.clone(),
        origins: Arc::new(OriginCheck::new(&cfg.client.allowed_origins)),
        tracker,
    };
    let mut streams = Router::new();
    let mut commands = Router::new();
    // Preflights are not connections: they stay out of the admission layer
    // (a browser sends one before each HTTP-streaming POST).
    if cfg.http_stream.enabled {
        let path = &cfg.http_stream.handler_prefix;
        let handler = http_stream::handle;
        streams = streams.route(path, post(handler).with_state(state.clone()));
        commands = commands.route(path, options(handler).with_state(state.clone()));
    }
    if cfg.sse.enabled {
        let path = &cfg.sse.handler_prefix;
        let handler = sse::handle;
        streams = streams.route(path, get(handler).post(handler).with_state(state.clone()));
        commands = commands.route(path, options(handler).with_state(state.clone()));
    }
    if cfg.http_stream.enabled || cfg.sse.enabled {
        commands = commands.route(
            &cfg.emulation.handler_prefix,
            any(endpoint::handle).with_state(state),
        );
    }
    (streams, commands)
}

/// The configured body limit, 0 meaning the default.
fn body_limit(configured: usize) -> usize {
    if configured == 0 {
        DEFAULT_BODY_LIMIT
    } else {
        configured
    }
}

/// Checks the request's Origin. An allowed browser origin gets the CORS
/// headers Centrifugo sends (the origin echoed, credentials allowed, the
/// requested headers allowed); a request without Origin gets none; a
/// refused origin gets 403.
fn cors(state: &EmulationState, headers: &HeaderMap) -> Result<HeaderMap, Response> {
    let origin = headers.get(header::ORIGIN);
    let text = match origin.map(HeaderValue::to_str) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(_)) => return Err(StatusCode::FORBIDDEN.into_response()),
    };
    if !state.origins.allows(text) {
        tracing::info!(origin = ?text, "emulation request from a refused origin");
        return Err((StatusCode::FORBIDDEN, "request origin is not allowed").into_response());
    }
    let mut out = HeaderMap::new();
    if let Some(origin) = origin {
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        out.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        if let Some(requested) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            && !requested.is_empty()
            && requested != "null"
        {
            out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
        }
    }
    Ok(out)
}

/// A response with the CORS headers added.
fn with_cors(cors: HeaderMap, resp: impl IntoResponse) -> Response {
    let mut resp = resp.into_response();
    resp.headers_mut().extend(cors);
    resp
}

/// The answer to a browser's preflight request.
fn preflight(cors: HeaderMap, methods: &'static str) -> Response {
    with_cors(
        cors,
        (
            StatusCode::NO_CONTENT,
            [
                (header::ACCESS_CONTROL_MAX_AGE, "300"),
                (header::ACCESS_CONTROL_ALLOW_METHODS, methods),
            ],
        ),
    )
}

/// Whether the body is Protobuf (`Content-Type: application/octet-stream`).
fn is_protobuf(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/octet-stream"))
}

/// Reads a request body of at most `limit` bytes: 413 over it, 400 when
/// the body breaks off.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, StatusCode> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(StatusCode::PAYLOAD_TOO_LARGE);
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(s) = source {
            if s.is::<http_body_util::LengthLimitError>() {
                return StatusCode::PAYLOAD_TOO_LARGE;
            }
            source = s.source();
        }
        tracing::debug!(error = %e, "emulation request body broke off");
        StatusCode::BAD_REQUEST
    })
}

/// One stream connection about to start.
struct StreamStart {
    /// Transport name (metrics, session).
    transport: &'static str,
    encoding: Encoding,
    framing: Framing,
    /// The client's first frame (its connect command).
    first: Bytes,
    /// Written before anything else (SSE's `\r\n`).
    preamble: Option<&'static [u8]>,
    /// Response headers besides the no-cache ones (content type, CORS).
    headers: HeaderMap,
    /// Headers and peer of the request, for proxies.
    call: Arc<crate::proxy::CallContext>,
    /// HTTP/1.1 responses say `Connection: keep-alive`.
    version: Version,
}

/// Whether `first` is a frame of valid commands; the stream endpoints
/// answer 400 before streaming anything otherwise.
fn valid_first_frame(encoding: Encoding, first: &[u8], limit: usize) -> bool {
    let mut cmds = Vec::new();
    decode_commands(encoding, first, limit, &mut cmds).is_ok()
}

/// Largest command frame a stream connection accepts (its first frame
/// comes from the stream request, the others from `/emulation`).
fn frame_limit(node: &Node) -> usize {
    let cfg = node.config();
    body_limit(cfg.emulation.max_request_body_size)
        .max(body_limit(cfg.http_stream.max_request_body_size))
        .max(body_limit(cfg.sse.max_request_body_size))
}

/// Starts the connection task and returns the streaming response.
fn start_stream(state: &EmulationState, permit: Permit, s: StreamStart) -> Response {
    let node = state.node.clone();
    let info = TransportInfo {
        name: s.transport,
        encoding: s.encoding,
        emulated: true,
        uni: false,
        message_size_limit: frame_limit(&node),
        call: s.call,
    };
    let session = Session::new(node.clone(), info);
    let (guard, inbox) = node.emulation.register(&session.shared().id);
    let (body_tx, body_rx) = mpsc::channel(BODY_FRAMES);
    if let Some(p) = s.preamble {
        // The channel is fresh and has room.
        let _ = body_tx.try_send(Bytes::from_static(p));
    }
    let link = StreamLink {
        first: Some(s.first),
        inbox,
        _guard: guard,
        body: Some(body_tx),
        encoding: s.encoding,
        framing: s.framing,
    };
    let opts = DriveOptions {
        framing: s.framing,
        uni: false,
        max_frame: MAX_FRAME,
        write_timeout: STREAM_WRITE_TIMEOUT,
        transport: s.transport,
    };
    state.tracker.spawn(async move {
        let _permit = permit;
        driver::drive(node, session, link, opts).await;
    });
    let mut resp = Response::new(Body::new(ChannelBody { rx: body_rx }));
    let h = resp.headers_mut();
    if s.version == Version::HTTP_11 {
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    }
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache, no-store, must-revalidate, max-age=0"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert("expire", HeaderValue::from_static("0"));
    h.extend(s.headers);
    resp
}

/// A stream connection as the driver sees it: reads come from the
/// session's inbox (the first one from the stream request), writes go to
/// the response body.
struct StreamLink {
    first: Option<Bytes>,
    inbox: mpsc::Receiver<Bytes>,
    /// Keeps the inbox registered while the connection lives.
    _guard: InboxGuard,
    /// The response body's feed; `None` once the stream was ended.
    body: Option<mpsc::Sender<Bytes>>,
    encoding: Encoding,
    framing: Framing,
}

impl Link for StreamLink {
    async fn recv(&mut self) -> Inbound {
        if let Some(first) = self.first.take() {
            return Inbound::Frame(first);
        }
        let Some(body) = &self.body else {
            return Inbound::Gone;
        };
        // Both branches are cancel-safe.
        tokio::select! {
            biased;
            () = body.closed() => Inbound::Gone,
            frame = self.inbox.recv() => match frame {
                Some(frame) => Inbound::Frame(frame),
                None => Inbound::Gone,
            },
        }
    }

    async fn send(&mut self, frame: Bytes) -> Result<(), LinkGone> {
        match &self.body {
            Some(tx) => tx.send(frame).await.map_err(|_| LinkGone),
            None => Err(LinkGone),
        }
    }

    async fn close(&mut self, d: Disconnect) {
        let Some(tx) = self.body.take() else {
            return;
        };
        let push = Push {
            disconnect: Some(d.to_proto()),
            ..Default::default()
        };
        if let Ok(msg) = encode_push(self.encoding, push) {
            let mut frame = FrameBuilder::framed(self.encoding, self.framing, false);
            frame.push(msg);
            let _ = tokio::time::timeout(STREAM_WRITE_TIMEOUT, tx.send(frame.finish())).await;
        }
        // Dropping the sender ends the response body.
    }
}

/// A response body fed by the connection task.
struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        self.rx
            .poll_recv(cx)
            .map(|b| b.map(|b| Ok(http_body::Frame::data(b))))
    }
}

/// Refuses new streams once the node is shutting down.
fn shutting_down(state: &EmulationState) -> bool {
    state.node.shutdown.is_cancelled()
}

/// The method-not-allowed answer.
fn not_allowed(cors: HeaderMap) -> Response {
    with_cors(cors, StatusCode::METHOD_NOT_ALLOWED)
}

/// Whether the request is a preflight.
fn is_options(method: &Method) -> bool {
    method == Method::OPTIONS
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn state(origins: &[&str]) -> EmulationState {
        let cfg = crate::config::Config::default();
        let node = Node::new(cfg).await.expect("node");
        let allowed: Vec<String> = origins.iter().map(|s| s.to_string()).collect();
        EmulationState {
            node,
            origins: Arc::new(OriginCheck::new(&allowed)),
            tracker: TaskTracker::new(),
        }
    }

    #[tokio::test]
    async fn cors_echoes_allowed_origins_and_refuses_others() {
        let st = state(&["https://app.example.com"]).await;
        let mut h = HeaderMap::new();
        assert!(cors(&st, &h).expect("no origin passes").is_empty());
        h.insert(header::ORIGIN, HeaderValue::from_static("https://evil.org"));
        assert_eq!(
            cors(&st, &h).expect_err("refused").status(),
            StatusCode::FORBIDDEN
        );
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://app.example.com"),
        );
        h.insert(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            HeaderValue::from_static("content-type"),
        );
        let out = cors(&st, &h).expect("allowed");
        assert_eq!(
            out[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://app.example.com"
        );
        assert_eq!(out[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert_eq!(out[header::ACCESS_CONTROL_ALLOW_HEADERS], "content-type");
    }

    #[test]
    fn protobuf_by_content_type() {
        let mut h = HeaderMap::new();
        assert!(!is_protobuf(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        assert!(is_protobuf(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        assert!(!is_protobuf(&h));
    }

    #[test]
    fn first_frame_must_decode() {
        assert!(valid_first_frame(
            Encoding::Json,
            br#"{"id":1,"connect":{}}"#,
            1024
        ));
        assert!(!valid_first_frame(Encoding::Json, b"nope", 1024));
        assert!(!valid_first_frame(Encoding::Json, b"", 1024));
        assert!(!valid_first_frame(Encoding::Protobuf, &[0x7f], 1024));
    }
}
