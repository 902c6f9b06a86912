//! The control message format: a small protobuf of our own (declared here
//! with `prost` derives, no `.proto` file), one [`ControlMessage`] per
//! PUB/SUB message on the control channel.
//!
//! ```text
//! ControlMessage { 1: string uid (sender node id); oneof kind {
//!   2: Node node;               // heartbeat with the sender's counters
//!   3: Disconnect disconnect;   // API disconnect
//!   4: Unsubscribe unsubscribe; // API unsubscribe
//!   5: Subscribe subscribe;     // API subscribe
//!   6: Refresh refresh;         // API refresh
//!   7: SurveyRequest survey;    // "answer me" (op "channels")
//!   8: SurveyReply survey_reply;
//!   9: Emulation emulation;     // forwarded /emulation frame
//!   10: EmulationReply emulation_reply;
//!   11: Shutdown shutdown; } }  // the sender leaves the cluster
//! ```
//!
//! Replies carry the id of the node they are for (`to`); every node sees
//! every message and ignores its own and those addressed to others.

use std::collections::HashMap;

use bytes::Bytes;

use crate::control::{ServerRefresh, ServerSubscribe, SubscribeOverride, Target};
use crate::engine::StreamPosition;

/// One message on the control channel.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ControlMessage {
    /// Id of the sending node.
    #[prost(string, tag = "1")]
    pub(crate) uid: String,
    /// What it carries.
    #[prost(oneof = "Kind", tags = "2, 3, 4, 5, 6, 7, 8, 9, 10, 11")]
    pub(crate) kind: Option<Kind>,
}

/// The payload of a [`ControlMessage`].
#[derive(Clone, PartialEq, prost::Oneof)]
pub(crate) enum Kind {
    /// Heartbeat.
    #[prost(message, tag = "2")]
    Node(NodeMsg),
    /// Disconnect a user's connections.
    #[prost(message, tag = "3")]
    Disconnect(DisconnectMsg),
    /// Unsubscribe a user's connections.
    #[prost(message, tag = "4")]
    Unsubscribe(UnsubscribeMsg),
    /// Subscribe a user's connections.
    #[prost(message, tag = "5")]
    Subscribe(SubscribeMsg),
    /// Refresh a user's connections.
    #[prost(message, tag = "6")]
    Refresh(RefreshMsg),
    /// Survey request.
    #[prost(message, tag = "7")]
    Survey(SurveyRequest),
    /// Survey reply.
    #[prost(message, tag = "8")]
    SurveyReply(SurveyReply),
    /// Forwarded emulation frame.
    #[prost(message, tag = "9")]
    Emulation(EmulationMsg),
    /// Outcome of a forwarded emulation frame.
    #[prost(message, tag = "10")]
    EmulationReply(EmulationReply),
    /// The sender is shutting down: drop it from the node list now.
    #[prost(message, tag = "11")]
    Shutdown(ShutdownMsg),
}

/// A node's leave announcement (nothing but the sender's id).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ShutdownMsg {}

/// A node's heartbeat.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct NodeMsg {
    /// Node name.
    #[prost(string, tag = "1")]
    pub(crate) name: String,
    /// Server version.
    #[prost(string, tag = "2")]
    pub(crate) version: String,
    /// Connected clients.
    #[prost(uint32, tag = "3")]
    pub(crate) num_clients: u32,
    /// Distinct users.
    #[prost(uint32, tag = "4")]
    pub(crate) num_users: u32,
    /// Channels with local subscribers.
    #[prost(uint32, tag = "5")]
    pub(crate) num_channels: u32,
    /// Subscriptions.
    #[prost(uint32, tag = "6")]
    pub(crate) num_subs: u32,
    /// Seconds since start.
    #[prost(uint32, tag = "7")]
    pub(crate) uptime: u32,
}

/// Which connections a command applies to.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct TargetMsg {
    /// User id.
    #[prost(string, tag = "1")]
    pub(crate) user: String,
    /// Client id (empty = any).
    #[prost(string, tag = "2")]
    pub(crate) client: String,
    /// Session id (empty = any).
    #[prost(string, tag = "3")]
    pub(crate) session: String,
}

/// API disconnect.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct DisconnectMsg {
    /// Target connections.
    #[prost(message, optional, tag = "1")]
    pub(crate) target: Option<TargetMsg>,
    /// Client ids spared.
    #[prost(string, repeated, tag = "2")]
    pub(crate) whitelist: Vec<String>,
    /// Disconnect code.
    #[prost(uint32, tag = "3")]
    pub(crate) code: u32,
    /// Disconnect reason.
    #[prost(string, tag = "4")]
    pub(crate) reason: String,
}

/// API unsubscribe.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct UnsubscribeMsg {
    /// Target connections.
    #[prost(message, optional, tag = "1")]
    pub(crate) target: Option<TargetMsg>,
    /// Channel (empty as the API passes it).
    #[prost(string, tag = "2")]
    pub(crate) channel: String,
}

/// A stream position.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct PositionMsg {
    /// Offset.
    #[prost(uint64, tag = "1")]
    pub(crate) offset: u64,
    /// Epoch.
    #[prost(string, tag = "2")]
    pub(crate) epoch: String,
}

/// API subscribe.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct SubscribeMsg {
    /// Target connections.
    #[prost(message, optional, tag = "1")]
    pub(crate) target: Option<TargetMsg>,
    /// Channel.
    #[prost(string, tag = "2")]
    pub(crate) channel: String,
    /// Expiry, unix seconds.
    #[prost(int64, tag = "3")]
    pub(crate) expire_at: i64,
    /// Channel info.
    #[prost(bytes = "bytes", tag = "4")]
    pub(crate) info: Bytes,
    /// Subscribe push data.
    #[prost(bytes = "bytes", tag = "5")]
    pub(crate) data: Bytes,
    /// Recover after this position.
    #[prost(message, optional, tag = "6")]
    pub(crate) recover_since: Option<PositionMsg>,
    /// Override: presence.
    #[prost(bool, optional, tag = "7")]
    pub(crate) presence: Option<bool>,
    /// Override: join/leave.
    #[prost(bool, optional, tag = "8")]
    pub(crate) join_leave: Option<bool>,
    /// Override: force recovery.
    #[prost(bool, optional, tag = "9")]
    pub(crate) force_recovery: Option<bool>,
    /// Override: force positioning.
    #[prost(bool, optional, tag = "10")]
    pub(crate) force_positioning: Option<bool>,
    /// Override: force push join/leave.
    #[prost(bool, optional, tag = "11")]
    pub(crate) force_push_join_leave: Option<bool>,
}

/// API refresh.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct RefreshMsg {
    /// Target connections.
    #[prost(message, optional, tag = "1")]
    pub(crate) target: Option<TargetMsg>,
    /// Expire the connections.
    #[prost(bool, tag = "2")]
    pub(crate) expired: bool,
    /// New expiry, unix seconds.
    #[prost(int64, tag = "3")]
    pub(crate) expire_at: i64,
    /// New connection info.
    #[prost(bytes = "bytes", optional, tag = "4")]
    pub(crate) info: Option<Bytes>,
}

/// A survey: every other node answers with a [`SurveyReply`].
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct SurveyRequest {
    /// Request id (unique per asking node).
    #[prost(uint64, tag = "1")]
    pub(crate) id: u64,
    /// What is asked: `channels`.
    #[prost(string, tag = "2")]
    pub(crate) op: String,
}

/// A node's answer to a survey.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct SurveyReply {
    /// Request id.
    #[prost(uint64, tag = "1")]
    pub(crate) id: u64,
    /// Node that asked.
    #[prost(string, tag = "2")]
    pub(crate) to: String,
    /// Channels with local subscribers → subscriber counts.
    #[prost(map = "string, uint32", tag = "3")]
    pub(crate) channels: HashMap<String, u32>,
}

/// An `/emulation` frame for a session on node `to`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct EmulationMsg {
    /// Request id.
    #[prost(uint64, tag = "1")]
    pub(crate) id: u64,
    /// Target node id.
    #[prost(string, tag = "2")]
    pub(crate) to: String,
    /// Session id.
    #[prost(string, tag = "3")]
    pub(crate) session: String,
    /// Encoded commands.
    #[prost(bytes = "bytes", tag = "4")]
    pub(crate) data: Bytes,
}

/// Outcome of an [`EmulationMsg`] on its target node.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct EmulationReply {
    /// Request id.
    #[prost(uint64, tag = "1")]
    pub(crate) id: u64,
    /// Node that forwarded it.
    #[prost(string, tag = "2")]
    pub(crate) to: String,
    /// [`EMULATION_OK`] or [`EMULATION_FULL`].
    #[prost(uint32, tag = "3")]
    pub(crate) code: u32,
}

/// Emulation frame taken.
pub(crate) const EMULATION_OK: u32 = 0;
/// Emulation frame refused: inbox full.
pub(crate) const EMULATION_FULL: u32 = 1;

fn target_msg(t: &Target) -> Option<TargetMsg> {
    Some(TargetMsg {
        user: t.user.clone(),
        client: t.client.clone(),
        session: t.session.clone(),
    })
}

/// The target of a decoded command (missing = an empty user, which matches
/// nobody).
pub(crate) fn target_of(t: Option<TargetMsg>) -> Target {
    let t = t.unwrap_or_default();
    Target {
        user: t.user,
        client: t.client,
        session: t.session,
    }
}

impl DisconnectMsg {
    /// Encodes an API disconnect.
    pub(crate) fn new(target: &Target, whitelist: &[String], code: u32, reason: &str) -> Self {
        Self {
            target: target_msg(target),
            whitelist: whitelist.to_vec(),
            code,
            reason: reason.to_owned(),
        }
    }
}

impl UnsubscribeMsg {
    /// Encodes an API unsubscribe.
    pub(crate) fn new(channel: &str, target: &Target) -> Self {
        Self {
            target: target_msg(target),
            channel: channel.to_owned(),
        }
    }
}

impl From<&ServerSubscribe> for SubscribeMsg {
    fn from(s: &ServerSubscribe) -> Self {
        Self {
            target: target_msg(&s.target),
            channel: s.channel.clone(),
            expire_at: s.expire_at,
            info: s.info.clone(),
            data: s.data.clone(),
            recover_since: s.recover_since.as_ref().map(|p| PositionMsg {
                offset: p.offset,
                epoch: p.epoch.clone(),
            }),
            presence: s.overrides.presence,
            join_leave: s.overrides.join_leave,
            force_recovery: s.overrides.force_recovery,
            force_positioning: s.overrides.force_positioning,
            force_push_join_leave: s.overrides.force_push_join_leave,
        }
    }
}

impl From<SubscribeMsg> for ServerSubscribe {
    fn from(m: SubscribeMsg) -> Self {
        Self {
            channel: m.channel,
            target: target_of(m.target),
            expire_at: m.expire_at,
            info: m.info,
            data: m.data,
            recover_since: m.recover_since.map(|p| StreamPosition {
                offset: p.offset,
                epoch: p.epoch,
            }),
            overrides: SubscribeOverride {
                presence: m.presence,
                join_leave: m.join_leave,
                force_recovery: m.force_recovery,
                force_positioning: m.force_positioning,
                force_push_join_leave: m.force_push_join_leave,
            },
        }
    }
}

impl RefreshMsg {
    /// Encodes an API refresh.
    pub(crate) fn new(target: &Target, r: &ServerRefresh) -> Self {
        Self {
            target: target_msg(target),
            expired: r.expired,
            expire_at: r.expire_at,
            info: r.info.clone(),
        }
    }

    /// The refresh it carries.
    pub(crate) fn refresh(&self) -> ServerRefresh {
        ServerRefresh {
            expired: self.expired,
            expire_at: self.expire_at,
            info: self.info.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn subscribe_round_trips() {
        let s = ServerSubscribe {
            channel: "news".into(),
            target: Target {
                user: "u".into(),
                client: "c".into(),
                session: String::new(),
            },
            expire_at: 5,
            info: Bytes::from_static(b"{}"),
            data: Bytes::from_static(b"{\"a\":1}"),
            recover_since: Some(StreamPosition {
                offset: 3,
                epoch: "e".into(),
            }),
            overrides: SubscribeOverride {
                presence: Some(false),
                force_recovery: Some(true),
                ..Default::default()
            },
        };
        let msg = ControlMessage {
            uid: "n1".into(),
            kind: Some(Kind::Subscribe(SubscribeMsg::from(&s))),
        };
        let back = ControlMessage::decode(msg.encode_to_vec().as_slice()).expect("decodes");
        let Some(Kind::Subscribe(m)) = back.kind else {
            panic!("kind lost");
        };
        assert_eq!(ServerSubscribe::from(m), s);
        assert!(ControlMessage::decode(&b"\xff\xff"[..]).is_err());
    }
}
