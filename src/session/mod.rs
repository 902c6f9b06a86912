//! The client session: one state machine per connection, the same whatever
//! the transport.
//!
//! A transport feeds frames to [`Session::handle_frame`], calls
//! [`Session::on_timer`] at [`Session::next_deadline`] and
//! [`Session::on_signal`] when [`shared::Shared::signal`] fires, and writes
//! what the outbound queue holds. Each command lives in its own file; this
//! file dispatches them and owns the per-connection state.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use tokio::time::Instant;

use crate::channel::ResolvedOptions;
use crate::control::{Control, SubscribeOverride};
use crate::engine::ClientInfo;
use crate::node::Node;
use crate::proto::client::{Command, Reply};
use crate::protocol::codec::decode_commands;
use crate::protocol::{ClientError, Disconnect, Encoding};
use crate::proxy::CallContext;

mod connect;
mod history;
mod permissions;
pub(crate) mod prepared;
mod presence;
mod proxy;
mod proxy_channel;
mod proxy_stream;
pub(crate) mod publish;
pub(crate) mod queue;
mod recovery;
mod refresh;
mod rpc;
mod server_side;
pub(crate) mod shared;
mod subscribe;
mod timers;
mod tokens;
mod uni;
mod unsubscribe;

use shared::{Ack, Pending, Shared};

/// A command failed: either an error reply or the end of the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fail {
    /// Reply with this error; the connection stays.
    Error(ClientError),
    /// Close the connection.
    Disconnect(Disconnect),
}

impl From<ClientError> for Fail {
    fn from(e: ClientError) -> Self {
        Self::Error(e)
    }
}

impl From<Disconnect> for Fail {
    fn from(d: Disconnect) -> Self {
        Self::Disconnect(d)
    }
}

/// What the transport tells the session about itself.
#[derive(Debug, Clone)]
pub(crate) struct TransportInfo {
    /// Transport name for metrics (`websocket`, `sse`, …).
    pub(crate) name: &'static str,
    /// Wire encoding.
    pub(crate) encoding: Encoding,
    /// Emulated transports report session and node ids in the connect reply.
    pub(crate) emulated: bool,
    /// Unidirectional transports: the connect result goes out as a Connect
    /// push (see [`Session::connect_uni`]), pings expect no pong, and the
    /// client sends no commands.
    pub(crate) uni: bool,
    /// Largest accepted message.
    pub(crate) message_size_limit: usize,
    /// Headers and peer address of the client's HTTP request, forwarded to
    /// proxies (empty when no proxy forwards headers).
    pub(crate) call: Arc<CallContext>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Connecting,
    Connected,
    /// A connect failed with an error reply. As in Centrifugo the
    /// connection is then unusable: any further command disconnects with
    /// 3501, and the stale timer closes it if the client does not.
    Unusable,
}

/// Session-side data of one subscription (the delivery side lives in
/// [`shared::Delivery`]).
#[derive(Debug, Clone)]
struct SubInfo {
    opts: Arc<ResolvedOptions>,
    chan_info: Bytes,
    server_side: bool,
    presence: bool,
    join_leave: bool,
    /// Unix seconds; `None` never expires.
    expire_at: Option<i64>,
    /// The sub_refresh proxy extends this subscription (no client token).
    proxy_refresh: bool,
    /// Periodic position checks failed in a row (see `timers`).
    position_failures: u8,
}

/// One connection's protocol state.
pub(crate) struct Session {
    node: Arc<Node>,
    shared: Arc<Shared>,
    transport: TransportInfo,
    status: Status,
    user: String,
    conn_info: Bytes,
    /// Unix seconds; `None` never expires.
    expire_at: Option<i64>,
    /// Connection meta (JWT `meta` or connect proxy result), sent to
    /// proxies that include it; never to clients.
    meta: Option<Bytes>,
    /// The refresh proxy, not the client, extends the connection.
    proxy_refresh: bool,
    subs: HashMap<String, SubInfo>,
    /// Open subscription streams by channel (`subscribe_stream_proxy_enabled`);
    /// boxed on first use so connections without streams stay small.
    streams: Option<Box<proxy_stream::ProxyStreams>>,
    timers: timers::Timers,
    /// Control calls waiting for this connection to be cleaned up.
    close_acks: Vec<Ack>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.shared.id)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session waiting for its connect command.
    pub(crate) fn new(node: Arc<Node>, transport: TransportInfo) -> Self {
        let cfg = node.config();
        let shared = Arc::new(Shared::new(
            uuid::Uuid::new_v4().to_string(),
            transport.encoding,
            queue::Queue::new(cfg.client.queue_max_size)
                .with_frame_message_limit(cfg.client.frame_message_limit()),
        ));
        let timers = timers::Timers::new(cfg.client.stale_close_delay.get());
        metrics::gauge!("centrifugo_client_connections_inflight", "transport" => transport.name)
            .increment(1.0);
        Self {
            node,
            shared,
            transport,
            status: Status::Connecting,
            user: String::new(),
            conn_info: Bytes::new(),
            expire_at: None,
            meta: None,
            proxy_refresh: false,
            subs: HashMap::new(),
            streams: None,
            timers,
            close_acks: Vec::new(),
        }
    }

    /// Whether the connect command succeeded.
    pub(crate) fn is_connected(&self) -> bool {
        matches!(self.status, Status::Connected)
    }

    /// The shared half (queue and delivery state).
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Handles one inbound frame: every command in it, in order.
    pub(crate) async fn handle_frame(&mut self, frame: &[u8]) -> Result<(), Disconnect> {
        // A fresh Vec per frame: a Command is ~1 KB, and a buffer kept for
        // reuse would hold that capacity in every idle connection.
        let mut cmds = Vec::new();
        let limit = self.transport.message_size_limit.max(1);
        if let Err(e) = decode_commands(self.transport.encoding, frame, limit, &mut cmds) {
            tracing::debug!(client = %self.shared.id, error = %e, "bad frame");
            return Err(Disconnect::BAD_REQUEST);
        }
        metrics::counter!("centrifugo_transport_messages_received", "transport" => self.transport.name)
            .increment(1);
        for cmd in cmds {
            self.handle_command(cmd).await?;
        }
        Ok(())
    }

    async fn handle_command(&mut self, cmd: Command) -> Result<(), Disconnect> {
        self.on_signal().await;
        if self.status == Status::Unusable {
            return Err(Disconnect::BAD_REQUEST);
        }
        if cmd.id == 0 && cmd.send.is_none() {
            return self.timers.pong();
        }
        let id = cmd.id;
        if self.status == Status::Connecting {
            return match cmd.connect {
                Some(req) if id > 0 => match self.connect(id, req).await {
                    Ok(()) => Ok(()),
                    Err(Fail::Error(e)) => {
                        self.reply_error(id, &e);
                        self.status = Status::Unusable;
                        Ok(())
                    }
                    Err(Fail::Disconnect(d)) => Err(d),
                },
                _ => Err(Disconnect::BAD_REQUEST),
            };
        }
        let outcome = if cmd.connect.is_some() {
            Err(Fail::Disconnect(Disconnect::BAD_REQUEST))
        } else if let Some(req) = cmd.subscribe {
            self.subscribe(id, req).await
        } else if let Some(req) = cmd.unsubscribe {
            self.unsubscribe(id, req).await
        } else if let Some(req) = cmd.publish {
            self.publish(id, req).await
        } else if let Some(req) = cmd.presence {
            self.presence(id, req).await
        } else if let Some(req) = cmd.presence_stats {
            self.presence_stats(id, req).await
        } else if let Some(req) = cmd.history {
            self.history(id, req).await
        } else if let Some(req) = cmd.rpc {
            self.rpc(id, req).await
        } else if let Some(req) = cmd.send {
            self.send(req).await
        } else if let Some(req) = cmd.refresh {
            self.refresh(id, req).await
        } else if let Some(req) = cmd.sub_refresh {
            self.sub_refresh(id, req).await
        } else {
            Err(Fail::Disconnect(Disconnect::BAD_REQUEST))
        };
        match outcome {
            Ok(()) => Ok(()),
            Err(Fail::Error(e)) => {
                self.reply_error(id, &e);
                Ok(())
            }
            Err(Fail::Disconnect(d)) => Err(d),
        }
    }

    fn reply_error(&self, id: u32, e: &ClientError) {
        metrics::counter!("centrifugo_client_num_reply_errors", "code" => e.code().to_string())
            .increment(1);
        self.shared.send_reply(&Reply {
            id,
            error: Some(e.to_proto()),
            ..Default::default()
        });
    }

    fn reply(&self, reply: Reply) {
        self.shared.send_reply(&reply);
    }

    /// This client's info as seen by others (presence, join/leave, publications).
    fn client_info(&self, chan_info: &Bytes) -> ClientInfo {
        ClientInfo {
            user: self.user.clone(),
            client: self.shared.id.to_string(),
            conn_info: self.conn_info.clone(),
            chan_info: chan_info.clone(),
        }
    }

    /// Handles work other tasks queued for this session: the cleanup after
    /// an insufficient-state unsubscribe, and server API operations (which
    /// are acknowledged once applied). Work queued meanwhile is handled too.
    pub(crate) async fn on_signal(&mut self) {
        loop {
            let pending = self.shared.take_pending();
            if pending.is_empty() {
                return;
            }
            for p in pending {
                match p {
                    Pending::Unsubscribed(channel) => self.finish_unsubscribe(&channel).await,
                    Pending::Control(control, ack) => self.on_control(control, ack).await,
                }
            }
        }
    }

    async fn on_control(&mut self, control: Control, ack: Ack) {
        // A closing connection only reports when it is gone.
        if matches!(control, Control::Closed) || self.shared.queue.closed().is_some() {
            self.close_acks.push(ack);
            return;
        }
        if let Err(d) = self.apply_control(&control).await {
            self.shared.disconnect(d);
            self.close_acks.push(ack);
            return;
        }
        ack.done();
    }

    /// Cleans up after the connection ends: subscriptions, presence,
    /// leave events, hub registration.
    pub(crate) async fn close(&mut self) {
        self.on_signal().await;
        let channels: Vec<String> = self.subs.keys().cloned().collect();
        for ch in channels {
            self.shared.remove_subscription(&ch);
            self.finish_unsubscribe(&ch).await;
        }
        if self.status == Status::Connected {
            self.node.hub.remove_connection(&self.shared);
        }
        // Nothing queued from now on is applied; its waiters are released.
        for p in self.shared.finish() {
            if let Pending::Control(_, ack) = p {
                ack.done();
            }
        }
        for ack in self.close_acks.drain(..) {
            ack.done();
        }
        metrics::gauge!("centrifugo_client_connections_inflight", "transport" => self.transport.name).decrement(1.0);
    }

    /// Removes what a dropped subscription left behind.
    async fn finish_unsubscribe(&mut self, channel: &str) {
        self.stop_proxy_stream(channel);
        let Some(info) = self.subs.remove(channel) else {
            return;
        };
        self.node
            .remove_subscription(channel, &self.shared.id)
            .await;
        if info.presence
            && let Err(e) = self
                .node
                .remove_presence(channel, &self.shared.id, &self.user)
                .await
        {
            tracing::debug!(channel, error = %e, "presence removal failed");
        }
        if info.join_leave {
            let ci = self.client_info(&info.chan_info);
            if let Err(e) = self.node.publish_leave(channel, &ci).await {
                tracing::debug!(channel, error = %e, "leave publication failed");
            }
        }
    }
}

/// Current unix time in seconds.
fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Applies a token override flag to a namespace default.
fn with_override(default: bool, v: Option<bool>) -> bool {
    v.unwrap_or(default)
}

/// Options after a token's override object.
fn effective(opts: &ResolvedOptions, ov: &SubscribeOverride) -> (bool, bool, bool, bool, bool) {
    (
        with_override(opts.opts.presence, ov.presence),
        with_override(opts.opts.join_leave, ov.join_leave),
        with_override(opts.opts.force_recovery, ov.force_recovery),
        with_override(opts.opts.force_positioning, ov.force_positioning),
        with_override(opts.opts.force_push_join_leave, ov.force_push_join_leave),
    )
}

/// Seconds until `expire_at` (at least 1 when in the future).
fn ttl_secs(expire_at: i64) -> u32 {
    u32::try_from((expire_at - now_unix()).max(0)).unwrap_or(u32::MAX)
}

/// The deadline-driven parts are in `timers.rs`.
impl Session {
    /// When [`Session::on_timer`] must run next.
    pub(crate) fn next_deadline(&self) -> Instant {
        self.timers.next_deadline()
    }
}
