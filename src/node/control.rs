//! Server-side control of live connections: what the server API's
//! subscribe, unsubscribe, disconnect, refresh, info and channels methods
//! do to the sessions of this node.
//!
//! The API executor validates requests (channel names, namespaces) and calls
//! these; they find the matching sessions in the hub (the user's
//! connections, narrowed by client id and session id) and hand each one the
//! work through its `Shared` half (pending + signal), so the session task
//! performs it in order with its own commands (see
//! [`crate::session::server_side`] for what each operation does to a
//! connection). On one node they cannot fail; in a cluster they are also
//! published as control messages to every other node (see
//! [`super::cluster`]), which can fail, hence the `Result`.
//!
//! A call returns once every targeted session on this node has applied the
//! operation (for a disconnect: has closed and cleaned up), as Centrifugo's
//! API does (other nodes of a cluster apply it asynchronously), but waits
//! at most [`CONTROL_WAIT`] in all: a session stuck writing to a client that
//! does not read cannot hang the API. Work not
//! applied by then stays queued and is applied later (or dropped if the
//! connection closes first). A user without connections here returns at
//! once. Disconnects close the outbound queue directly, so nothing queued
//! after the call reaches the client even if the cleanup is still running.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::engine::{EngineError, StreamPosition};
use crate::protocol::Disconnect;
use crate::session::server_side::Control;
use crate::session::shared::{Ack, Shared};

use super::Node;
use super::cluster::wire::{self, Kind};

/// Longest a control call waits for the targeted sessions to apply it.
pub const CONTROL_WAIT: Duration = Duration::from_secs(2);

/// Which connections a control operation applies to. `user` is required by
/// the API; empty `client`/`session` match any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// User id.
    pub user: String,
    /// Only this client id.
    pub client: String,
    /// Only this session id.
    pub session: String,
}

/// Per-subscription overrides of the namespace options (`None` = as the
/// namespace says).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscribeOverride {
    /// Presence on/off.
    pub presence: Option<bool>,
    /// Join/leave publishing on/off.
    pub join_leave: Option<bool>,
    /// Force recovery on/off.
    pub force_recovery: Option<bool>,
    /// Force positioning on/off.
    pub force_positioning: Option<bool>,
    /// Force pushing join/leave to this subscriber on/off.
    pub force_push_join_leave: Option<bool>,
}

/// A server-side subscription of live connections to a channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerSubscribe {
    /// Channel (already validated by the caller).
    pub channel: String,
    /// Connections to subscribe.
    pub target: Target,
    /// Unix seconds when the subscription expires (0 = never).
    pub expire_at: i64,
    /// Channel info attached to the subscriber (raw JSON or binary).
    pub info: Bytes,
    /// Data sent to the client in the subscribe push.
    pub data: Bytes,
    /// Recover publications after this position.
    pub recover_since: Option<StreamPosition>,
    /// Option overrides.
    pub overrides: SubscribeOverride,
}

/// What a server-side refresh changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerRefresh {
    /// Close the connections as expired (3005).
    pub expired: bool,
    /// New connection expiry, unix seconds; 0 removes the expiry (as in
    /// Centrifugo); a time in the past closes the connections with 3005.
    pub expire_at: i64,
    /// New connection info (`None` = unchanged).
    pub info: Option<Bytes>,
}

/// Counters of this node, for the `info` method.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeInfo {
    /// Process id (random per start).
    pub uid: String,
    /// Node name.
    pub name: String,
    /// Connected clients.
    pub num_clients: u32,
    /// Distinct users among them.
    pub num_users: u32,
    /// Channels with at least one local subscriber.
    pub num_channels: u32,
    /// Subscriptions (client × channel).
    pub num_subs: u32,
    /// Seconds since start.
    pub uptime: u32,
}

impl Node {
    /// Subscribes the target's connections to a channel (Subscribe push),
    /// on every node of a cluster.
    pub async fn subscribe_user(&self, req: ServerSubscribe) -> Result<(), EngineError> {
        self.broadcast(Kind::Subscribe(wire::SubscribeMsg::from(&req)))
            .await?;
        self.local_subscribe(req).await;
        Ok(())
    }

    /// Unsubscribes the target's connections from a channel (Unsubscribe
    /// push with code 2000, "server unsubscribe"), on every node.
    pub async fn unsubscribe_user(
        &self,
        channel: &str,
        target: &Target,
    ) -> Result<(), EngineError> {
        self.broadcast(Kind::Unsubscribe(wire::UnsubscribeMsg::new(
            channel, target,
        )))
        .await?;
        self.local_unsubscribe(channel, target).await;
        Ok(())
    }

    /// Disconnects the target's connections, except the client ids in
    /// `whitelist`, with `code` and `reason`, on every node.
    pub async fn disconnect_user(
        &self,
        target: &Target,
        whitelist: &[String],
        code: u32,
        reason: &str,
    ) -> Result<(), EngineError> {
        self.broadcast(Kind::Disconnect(wire::DisconnectMsg::new(
            target, whitelist, code, reason,
        )))
        .await?;
        self.local_disconnect(target, whitelist, code, reason).await;
        Ok(())
    }

    /// Refreshes the target's connections (expiry, info) or expires them,
    /// on every node.
    pub async fn refresh_user(
        &self,
        target: &Target,
        refresh: ServerRefresh,
    ) -> Result<(), EngineError> {
        self.broadcast(Kind::Refresh(wire::RefreshMsg::new(target, &refresh)))
            .await?;
        self.local_refresh(target, refresh).await;
        Ok(())
    }

    /// [`Node::subscribe_user`] on this node's connections only.
    pub(crate) async fn local_subscribe(&self, req: ServerSubscribe) {
        let sessions = self.targets(&req.target, &[]);
        let req = Arc::new(req);
        self.run_control(&sessions, || Control::Subscribe(req.clone()))
            .await;
    }

    /// [`Node::unsubscribe_user`] on this node's connections only.
    pub(crate) async fn local_unsubscribe(&self, channel: &str, target: &Target) {
        let sessions = self.targets(target, &[]);
        let channel: Arc<str> = Arc::from(channel);
        self.run_control(&sessions, || Control::Unsubscribe(channel.clone()))
            .await;
    }

    /// [`Node::disconnect_user`] on this node's connections only.
    pub(crate) async fn local_disconnect(
        &self,
        target: &Target,
        whitelist: &[String],
        code: u32,
        reason: &str,
    ) {
        let sessions = self.targets(target, whitelist);
        self.close_sessions(&sessions, Disconnect::custom(code, reason))
            .await;
    }

    /// [`Node::refresh_user`] on this node's connections only.
    pub(crate) async fn local_refresh(&self, target: &Target, refresh: ServerRefresh) {
        let sessions = self.targets(target, &[]);
        if refresh.expired {
            self.close_sessions(&sessions, Disconnect::EXPIRED).await;
            return;
        }
        let refresh = Arc::new(refresh);
        self.run_control(&sessions, || Control::Refresh(refresh.clone()))
            .await;
    }

    /// This node's counters.
    pub fn info(&self) -> NodeInfo {
        let stats = self.hub.stats();
        let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        NodeInfo {
            uid: self.id.clone(),
            name: self.name.clone(),
            num_clients: n(stats.clients),
            num_users: n(stats.users),
            num_channels: n(stats.channels),
            num_subs: n(stats.subscriptions),
            uptime: u32::try_from(self.started.elapsed().as_secs()).unwrap_or(u32::MAX),
        }
    }

    /// Channels with local subscribers and their subscriber counts.
    pub fn channel_counts(&self) -> Vec<(String, u32)> {
        self.hub.channel_counts()
    }

    /// The target's connections on this node, minus `whitelist`ed client ids.
    fn targets(&self, target: &Target, whitelist: &[String]) -> Vec<Arc<Shared>> {
        let mut sessions = self.hub.user_connections(&target.user);
        sessions.retain(|s| {
            (target.client.is_empty() || *s.id == *target.client)
                && (target.session.is_empty() || *s.session() == *target.session)
                && !whitelist.iter().any(|w| **w == *s.id)
        });
        sessions
    }

    /// Closes connections with `disconnect` and waits for their cleanup.
    async fn close_sessions(&self, sessions: &[Arc<Shared>], disconnect: Disconnect) {
        for s in sessions {
            s.disconnect(disconnect.clone());
        }
        self.run_control(sessions, || Control::Closed).await;
    }

    /// Hands each session its operation and waits (bounded) until all have
    /// applied it.
    async fn run_control(&self, sessions: &[Arc<Shared>], make: impl Fn() -> Control) {
        if sessions.is_empty() {
            return;
        }
        let mut waits = Vec::with_capacity(sessions.len());
        for s in sessions {
            let (ack, rx) = Ack::new();
            if s.push_control(make(), ack) {
                waits.push(rx);
            }
        }
        let all = async {
            for rx in waits {
                // An error means the ack was dropped: nothing left to wait for.
                let _ = rx.await;
            }
        };
        if tokio::time::timeout(CONTROL_WAIT, all).await.is_err() {
            tracing::debug!(
                sessions = sessions.len(),
                "control operation not applied everywhere in time"
            );
        }
    }
}
