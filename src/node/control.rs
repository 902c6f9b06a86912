//! Server-side control of live connections: what the server API's
//! subscribe, unsubscribe, disconnect, refresh, info and channels methods
//! do to the sessions of this node.
//!
//! The API executor validates requests (channel names, namespaces) and calls
//! these with the [`crate::control`] vocabulary; the hub finds the matching
//! sessions (the user's connections, narrowed by client id and session id)
//! and hands each one a [`Control`] through its shared half, so the session
//! task performs it in order with its own commands (`session/server_side.rs`
//! says what each operation does to a connection). On one node they cannot
//! fail; in a cluster they are also published as control messages to every
//! other node (see [`super::cluster`]), which can fail, hence the `Result`.
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

use tokio::sync::oneshot;

use crate::control::{Control, ServerRefresh, ServerSubscribe, Target};
use crate::engine::EngineError;
use crate::protocol::Disconnect;

use super::Node;
use super::cluster::wire::{self, Kind};

/// Longest a control call waits for the targeted sessions to apply it.
pub const CONTROL_WAIT: Duration = Duration::from_secs(2);

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
        let req = Arc::new(req);
        let control = Control::Subscribe(req.clone());
        wait_applied(self.hub.control(&req.target, &[], &control)).await;
    }

    /// [`Node::unsubscribe_user`] on this node's connections only.
    pub(crate) async fn local_unsubscribe(&self, channel: &str, target: &Target) {
        let control = Control::Unsubscribe(Arc::from(channel));
        wait_applied(self.hub.control(target, &[], &control)).await;
    }

    /// [`Node::disconnect_user`] on this node's connections only.
    pub(crate) async fn local_disconnect(
        &self,
        target: &Target,
        whitelist: &[String],
        code: u32,
        reason: &str,
    ) {
        let disconnect = Disconnect::custom(code, reason);
        wait_applied(self.hub.disconnect(target, whitelist, &disconnect)).await;
    }

    /// [`Node::refresh_user`] on this node's connections only.
    pub(crate) async fn local_refresh(&self, target: &Target, refresh: ServerRefresh) {
        let applied = if refresh.expired {
            self.hub.disconnect(target, &[], &Disconnect::EXPIRED)
        } else {
            self.hub
                .control(target, &[], &Control::Refresh(Arc::new(refresh)))
        };
        wait_applied(applied).await;
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
}

/// Waits (bounded by [`CONTROL_WAIT`]) until every session handed an
/// operation has applied it.
async fn wait_applied(applied: Vec<oneshot::Receiver<()>>) {
    if applied.is_empty() {
        return;
    }
    let sessions = applied.len();
    let all = async {
        for rx in applied {
            // An error means the ack was dropped: nothing left to wait for.
            let _ = rx.await;
        }
    };
    if tokio::time::timeout(CONTROL_WAIT, all).await.is_err() {
        tracing::debug!(sessions, "control operation not applied everywhere in time");
    }
}
