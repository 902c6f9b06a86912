//! Unidirectional WebSocket (`/connection/uni_websocket`), JSON only.
//!
//! The ConnectRequest comes from the `cf_connect` query parameter (invalid
//! JSON there → HTTP 400 before the upgrade) or else from the first text
//! message (`null` is an empty request; invalid JSON → close 3501). After
//! that the server only writes: one Push per text message (several joined
//! by `\n` when `uni_websocket.join_push_messages`), `{}` pushes as
//! pings, plus native WebSocket ping frames every ping interval; a client
//! that does not answer one with a pong within the pong timeout is dropped.
//! Messages the client sends later are read and ignored. The connection
//! ends with a Disconnect push (unless `disable_disconnect_push`) and a
//! close frame with the same code and reason (unless
//! `disable_closing_handshake`). The upgrade and the socket are those of
//! [`super::websocket`], which keeps the WebSocket library to itself.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use tokio::time::Instant;

use super::call_context;
use super::driver::{DriveOptions, Inbound, Link, LinkGone, drive};
use super::uni_stream::{UniState, parse_connect_request};
use super::websocket::{Socket, SocketIn, WsState, accept};
use crate::node::Node;
use crate::proto::client::{ConnectRequest, Push};
use crate::protocol::codec::Framing;
use crate::protocol::{Disconnect, Encoding};
use crate::session::{Session, TransportInfo};

/// Transport name (metrics, proxies).
const NAME: &str = "uni_websocket";
/// Largest frame of joined pushes (`join_push_messages`).
const MAX_FRAME: usize = 64 * 1024;

#[derive(Debug, Deserialize)]
struct ConnectParam {
    cf_connect: Option<String>,
}

/// Handles the upgrade request.
pub(crate) async fn upgrade(State(state): State<UniState>, req: Request) -> Response {
    let from_query = match Query::<ConnectParam>::try_from_uri(req.uri()) {
        Ok(Query(ConnectParam {
            cf_connect: Some(text),
        })) if !text.is_empty() => match parse_connect_request(text.as_bytes()) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::info!(error = %e, "uni_websocket: invalid connect request");
                return (StatusCode::BAD_REQUEST, "invalid connect request").into_response();
            }
        },
        Ok(_) => None,
        Err(_) => {
            return (StatusCode::BAD_REQUEST, "invalid query").into_response();
        }
    };
    let node = state.node.clone();
    let call = call_context(&node, &req);
    let limit = node.config().uni_websocket.message_size_limit.max(1);
    let ws = WsState {
        node: state.node,
        origins: state.origins,
        tracker: state.tracker,
    };
    accept(&ws, req, limit, move |socket| async move {
        let info = TransportInfo {
            name: NAME,
            encoding: Encoding::Json,
            emulated: false,
            uni: true,
            message_size_limit: limit,
            call,
        };
        serve(node, socket, from_query, info).await;
    })
}

/// Reads the ConnectRequest if needed, connects and drives the connection.
async fn serve(
    node: Arc<Node>,
    mut socket: Socket,
    req: Option<ConnectRequest>,
    info: TransportInfo,
) {
    let cfg = node.config().uni_websocket.clone();
    let client = &node.config().client;
    let req = match req {
        Some(r) => r,
        None => {
            let stale = match client.stale_close_delay.get() {
                d if d.is_zero() => Duration::from_secs(10),
                d => d,
            };
            match tokio::time::timeout(stale, first_message(&mut socket)).await {
                Ok(Ok(data)) => match parse_connect_request(&data) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::info!(error = %e, "uni_websocket: invalid connect request");
                        goodbye(&mut socket, &cfg, Disconnect::BAD_REQUEST).await;
                        return;
                    }
                },
                Ok(Err(None)) => return,
                Ok(Err(Some(d))) => {
                    goodbye(&mut socket, &cfg, d).await;
                    return;
                }
                Err(_) => {
                    goodbye(&mut socket, &cfg, Disconnect::STALE).await;
                    return;
                }
            }
        }
    };
    let mut session = Session::new(node.clone(), info);
    if let Err(d) = Box::pin(session.connect_uni(req)).await {
        session.shared().disconnect(d);
    }
    let ping_every = client.ping_interval.get();
    let ping_every = if ping_every.is_zero() {
        Duration::from_secs(25)
    } else {
        ping_every
    };
    let pong_timeout = match client.pong_timeout.get() {
        d if d.is_zero() => Duration::from_secs(10),
        d => d,
    };
    let write_timeout = cfg.write_timeout.get();
    let link = UniWsLink {
        socket,
        ping_every,
        pong_timeout,
        write_timeout,
        next_ping: Instant::now() + ping_every,
        pong_deadline: None,
        disconnect_push: !cfg.disable_disconnect_push,
        closing_handshake: !cfg.disable_closing_handshake,
    };
    let opts = DriveOptions {
        framing: Framing::Message,
        uni: true,
        max_frame: if cfg.join_push_messages { MAX_FRAME } else { 0 },
        write_timeout,
        transport: NAME,
    };
    drive(node, session, link, opts).await;
}

/// The first message; `Err(None)` when the client went away, `Err(Some)`
/// when the connection must end with that disconnect.
async fn first_message(socket: &mut Socket) -> Result<Bytes, Option<Disconnect>> {
    loop {
        match socket.next().await {
            SocketIn::Message(data) => return Ok(data),
            SocketIn::Pong => continue,
            SocketIn::Gone => return Err(None),
            SocketIn::TooBig => return Err(Some(Disconnect::new(1009, "message too big"))),
        }
    }
}

/// Ends a connection that never connected: the close frame only.
async fn goodbye(socket: &mut Socket, cfg: &crate::config::types::UniWebSocket, d: Disconnect) {
    if cfg.disable_closing_handshake {
        return;
    }
    let bound = cfg.write_timeout.get() + super::driver::CLOSE_WAIT;
    let _ = tokio::time::timeout(bound, socket.close(d)).await;
}

/// The uni WebSocket as a [`Link`]: reads only to answer pings and notice
/// the client leaving, sends native pings on its own clock.
struct UniWsLink {
    socket: Socket,
    ping_every: Duration,
    pong_timeout: Duration,
    write_timeout: Duration,
    next_ping: Instant,
    /// A ping is waiting for its pong until then.
    pong_deadline: Option<Instant>,
    disconnect_push: bool,
    closing_handshake: bool,
}

impl Link for UniWsLink {
    async fn recv(&mut self) -> Inbound {
        loop {
            let wake = self
                .pong_deadline
                .map_or(self.next_ping, |d| d.min(self.next_ping));
            tokio::select! {
                ev = self.socket.next() => match ev {
                    // The client has nothing to say after its ConnectRequest.
                    SocketIn::Message(_) => {}
                    SocketIn::Pong => self.pong_deadline = None,
                    SocketIn::Gone => return Inbound::Gone,
                    SocketIn::TooBig => return Inbound::Close(Disconnect::new(1009, "message too big")),
                },
                () = tokio::time::sleep_until(wake) => {
                    let now = Instant::now();
                    if self.pong_deadline.is_some_and(|d| d <= now) {
                        tracing::debug!("uni_websocket: no pong, dropping the connection");
                        return Inbound::Gone;
                    }
                    if self.next_ping <= now {
                        self.next_ping = now + self.ping_every;
                        match tokio::time::timeout(self.write_timeout, self.socket.ping()).await {
                            Ok(Ok(())) => {
                                if self.pong_deadline.is_none() {
                                    self.pong_deadline = Some(now + self.pong_timeout);
                                }
                            }
                            _ => return Inbound::Gone,
                        }
                    }
                }
            }
        }
    }

    async fn send(&mut self, frame: Bytes) -> Result<(), LinkGone> {
        self.socket.send_text(frame).await
    }

    async fn close(&mut self, d: Disconnect) {
        if self.disconnect_push {
            let push = Push {
                disconnect: Some(d.to_proto()),
                ..Default::default()
            };
            if let Ok(json) = serde_json::to_vec(&push) {
                let sent = tokio::time::timeout(
                    self.write_timeout,
                    self.socket.send_text(Bytes::from(json)),
                )
                .await;
                if !matches!(sent, Ok(Ok(()))) {
                    return;
                }
            }
        }
        if self.closing_handshake {
            self.socket.close(d).await;
        }
    }
}
