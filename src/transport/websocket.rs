//! Bidirectional WebSocket (`/connection/websocket`), JSON or Protobuf.
//!
//! The upgrade picks the encoding (subprotocol `centrifuge-protobuf`, or
//! `?cf_protocol=protobuf` / `?format=protobuf`) and checks the origin. One
//! task then serves the connection: it reads frames into the session, writes
//! what the session's queue holds (several queued messages go out as one
//! frame), and runs the session's timers. A disconnect becomes the close
//! frame's code and reason. The WebSocket library (tungstenite) stays inside
//! this file.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

use super::origin::OriginCheck;
use crate::node::Node;
use crate::protocol::codec::FrameBuilder;
use crate::protocol::{Disconnect, Encoding};
use crate::session::queue::Drained;
use crate::session::{Session, TransportInfo};

/// Largest frame the writer builds from queued messages.
const MAX_FRAME: usize = 64 * 1024;
/// Bytes read from the socket at a time; small to keep idle connections lean.
const READ_BUFFER: usize = 1024;
/// How long to wait for the client's close frame after ours.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// State the upgrade handler needs.
#[derive(Clone)]
pub struct WsState {
    /// The node.
    pub node: Arc<Node>,
    /// Allowed origins.
    pub origins: Arc<OriginCheck>,
    /// Tracks connection tasks for graceful shutdown.
    pub tracker: tokio_util::task::TaskTracker,
}

/// Handles the HTTP upgrade request.
pub async fn upgrade(State(state): State<WsState>, mut req: Request) -> Response {
    let headers = req.headers();
    if !header_has(headers, header::CONNECTION, "upgrade")
        || !header_has(headers, header::UPGRADE, "websocket")
    {
        return (StatusCode::BAD_REQUEST, "websocket upgrade required").into_response();
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .and_then(|v| v.to_str().ok())
        != Some("13")
    {
        return (StatusCode::BAD_REQUEST, "unsupported websocket version").into_response();
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY).cloned() else {
        return (StatusCode::BAD_REQUEST, "missing websocket key").into_response();
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
        return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
    }
    if state.node.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let (encoding, subprotocol) = choose_encoding(headers, req.uri().query());
    // The slot admitted by the client stack's connection-limit layer.
    let permit = match crate::middleware::conn_limit::take_permit(&mut req, &state.node.admission) {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    let cfg = &state.node.config().websocket;
    let limit = cfg.message_size_limit;
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit));
    let write_timeout = cfg.write_timeout.get();
    let call = call_context(&state.node, &req);
    let on_upgrade = hyper::upgrade::on(&mut req);
    let tracker = state.tracker.clone();
    let node = state.node.clone();
    tracker.spawn(async move {
        let _permit = permit;
        match on_upgrade.await {
            Ok(upgraded) => {
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(ws_config),
                )
                .await;
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
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(
        &tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes()),
    ) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    if let Some(p) = subprotocol {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(p));
    }
    resp
}

/// What proxies may forward of the upgrade request: its headers and the
/// TCP peer address. Kept only when some proxy forwards headers; otherwise
/// every connection shares one empty context, so idle connections stay
/// small.
fn call_context(node: &Node, req: &Request) -> Arc<crate::proxy::CallContext> {
    static EMPTY: std::sync::OnceLock<Arc<crate::proxy::CallContext>> = std::sync::OnceLock::new();
    if !node.proxies().forwards_headers() {
        return EMPTY.get_or_init(Arc::default).clone();
    }
    let remote_addr = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0);
    Arc::new(crate::proxy::CallContext {
        headers: req.headers().clone(),
        remote_addr,
        ..Default::default()
    })
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

/// What ended the connection loop.
enum End {
    /// Close with this code after flushing.
    Disconnect(Disconnect),
    /// The peer went away; nothing more to write.
    Gone,
    /// The socket is stuck or broken; record why and drop it.
    Failed(Disconnect),
}

async fn serve_connection<S>(
    node: Arc<Node>,
    mut ws: WebSocketStream<S>,
    info: TransportInfo,
    write_timeout: Duration,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let encoding = info.encoding;
    let mut session = Session::new(node.clone(), info);
    let shared = session.shared().clone();
    let mut frame = FrameBuilder::new(encoding);
    let mut shutdown_seen = false;
    // The wake-up sources live across loop turns: a turn happens on every
    // publication, and re-creating a timer entry and the shutdown and
    // signal waiters each time costs more than the write itself.
    let mut deadline = session.next_deadline();
    let timer = tokio::time::sleep_until(deadline);
    let shutdown = node.shutdown.cancelled();
    let mut ready = pin!(shared.queue.ready());
    let mut signal = pin!(shared.signal.notified());
    tokio::pin!(timer, shutdown);
    let end = loop {
        let next = session.next_deadline();
        if next != deadline {
            deadline = next;
            timer.as_mut().reset(deadline);
        }
        tokio::select! {
            biased;
            () = &mut ready => {
                ready.set(shared.queue.ready());
                match Box::pin(flush(&shared.queue, &mut frame, &mut ws, encoding, write_timeout)).await {
                    Flush::Idle => {}
                    Flush::Closed(d) => break End::Disconnect(d),
                    Flush::Failed(d) => break End::Failed(d),
                }
            }
            msg = ws.next() => {
                let data = match msg {
                    Some(Ok(Message::Text(t))) => bytes::Bytes::from(t),
                    Some(Ok(Message::Binary(b))) => b,
                    Some(Ok(Message::Close(_))) | None => break End::Gone,
                    Some(Ok(_)) => continue,
                    Some(Err(WsError::Capacity(_))) => break End::Disconnect(Disconnect::new(1009, "message too big")),
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "websocket read failed");
                        break End::Gone;
                    }
                };
                // Boxed: the command's future is large and only lives while
                // a frame is processed, not in every idle task.
                let handled = Box::pin(handle_while_flushing(
                    &mut session,
                    &shared,
                    &data,
                    &mut Writer { frame: &mut frame, ws: &mut ws, encoding, write_timeout },
                    &mut ready,
                    || shared.queue.ready(),
                ))
                .await;
                if let Some(end) = handled {
                    break end;
                }
            }
            () = &mut timer => {
                if let Err(d) = Box::pin(session.on_timer()).await {
                    shared.disconnect(d);
                }
                // Re-arm even if the deadline did not move (a spurious fire).
                deadline = session.next_deadline();
                timer.as_mut().reset(deadline);
            }
            () = &mut signal => {
                signal.set(shared.signal.notified());
                Box::pin(session.on_signal()).await;
            }
            () = &mut shutdown, if !shutdown_seen => {
                shutdown_seen = true;
                shared.disconnect(Disconnect::SHUTDOWN);
            }
        }
    };
    Box::pin(session.close()).await;
    match end {
        End::Gone => {}
        // The socket is stuck or broken: no closing handshake through it.
        End::Failed(d) => {
            if d != Disconnect::CONNECTION_CLOSED {
                count_disconnect(&d);
            }
        }
        End::Disconnect(d) => close_gracefully(&mut ws, d, write_timeout).await,
    }
}

/// The write side of a connection, for flushing while a command runs.
struct Writer<'a, S> {
    frame: &'a mut FrameBuilder,
    ws: &'a mut WebSocketStream<S>,
    encoding: Encoding,
    write_timeout: Duration,
}

/// Runs one client frame through the session. A command may wait on a
/// proxy call (up to its timeout): meanwhile what is queued for this client
/// is still written. The command is never cancelled half-way; a write
/// failure is returned after it finished.
async fn handle_while_flushing<S, F>(
    session: &mut Session,
    shared: &crate::session::shared::Shared,
    data: &[u8],
    w: &mut Writer<'_, S>,
    ready: &mut std::pin::Pin<&mut F>,
    renew: impl Fn() -> F,
) -> Option<End>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    F: std::future::Future<Output = ()>,
{
    let mut handling = pin!(session.handle_frame(data));
    let mut failed = None;
    loop {
        tokio::select! {
            biased;
            r = &mut handling => {
                if let Err(d) = r {
                    shared.disconnect(d);
                }
                return failed;
            }
            () = ready.as_mut(), if failed.is_none() => {
                ready.set(renew());
                match Box::pin(flush(&shared.queue, w.frame, w.ws, w.encoding, w.write_timeout)).await {
                    Flush::Idle => {}
                    Flush::Closed(d) => failed = Some(End::Disconnect(d)),
                    Flush::Failed(d) => failed = Some(End::Failed(d)),
                }
            }
        }
    }
}

fn count_disconnect(d: &Disconnect) {
    metrics::counter!("centrifugo_client_num_server_disconnects", "code" => d.code.to_string())
        .increment(1);
}

/// Sends the close frame with the disconnect's code and reason, then gives
/// the client a moment to answer with its own.
async fn close_gracefully<S>(ws: &mut WebSocketStream<S>, d: Disconnect, write_timeout: Duration)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    count_disconnect(&d);
    if d == Disconnect::CONNECTION_CLOSED {
        return;
    }
    let close = CloseFrame {
        code: CloseCode::from(d.code as u16),
        reason: Utf8Bytes::from(d.reason.into_owned()),
    };
    let _ = tokio::time::timeout(write_timeout, ws.close(Some(close))).await;
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

/// Outcome of writing out the queue.
enum Flush {
    /// Everything queued was written.
    Idle,
    /// The queue closed with this disconnect after what preceded it was
    /// written: close gracefully.
    Closed(Disconnect),
    /// The socket is stuck or broken: drop it without a closing handshake.
    Failed(Disconnect),
}

/// Writes what the queue holds. A write that blocks (the client does not
/// read) is raced against the queue overflowing, so a slow client is cut
/// off with 3008 as soon as its queue is full rather than when the write
/// times out (3009).
async fn flush<S>(
    queue: &crate::session::queue::Queue,
    frame: &mut FrameBuilder,
    ws: &mut WebSocketStream<S>,
    encoding: Encoding,
    write_timeout: Duration,
) -> Flush
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let drained = queue.drain(frame, MAX_FRAME);
        if !frame.is_empty() {
            let n = frame.len() as u64;
            let bytes = frame.finish();
            let msg = match encoding {
                Encoding::Json => match Utf8Bytes::try_from(bytes) {
                    Ok(text) => Message::Text(text),
                    Err(_) => return Flush::Closed(Disconnect::INAPPROPRIATE_PROTOCOL),
                },
                Encoding::Protobuf => Message::Binary(bytes),
            };
            let send = tokio::time::timeout(write_timeout, ws.send(msg));
            tokio::pin!(send);
            let sent = loop {
                tokio::select! {
                    r = &mut send => break r,
                    () = queue.ready() => {
                        if queue.closed() == Some(Disconnect::SLOW) {
                            return Flush::Failed(Disconnect::SLOW);
                        }
                    }
                }
            };
            match sent {
                Ok(Ok(())) => {
                    metrics::counter!("centrifugo_transport_messages_sent", "transport" => "websocket").increment(n);
                }
                Ok(Err(_)) => return Flush::Failed(Disconnect::CONNECTION_CLOSED),
                Err(_) => return Flush::Failed(Disconnect::WRITE_ERROR),
            }
        }
        match drained {
            Drained::Closed(d) => return Flush::Closed(d),
            Drained::Open if queue.len_bytes() == 0 => return Flush::Idle,
            Drained::Open => {}
        }
    }
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
        let ws =
            tokio_tungstenite::WebSocketStream::from_raw_socket(a, super::Role::Server, None).await;
        let info = crate::session::TransportInfo {
            name: "test",
            encoding: crate::protocol::Encoding::Json,
            emulated: false,
            uni: false,
            message_size_limit: 1,
            call: Default::default(),
        };
        let fut = super::serve_connection(node, ws, info, std::time::Duration::from_secs(1));
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
