//! The server-control vocabulary: which connections an operation targets,
//! what a server-side subscribe or refresh carries, the per-subscription
//! overrides of namespace options, and the operation a session is handed.
//!
//! The server API builds these, the node hands them to its sessions and
//! publishes them to the other nodes of a cluster, and the session applies
//! them (tokens and proxies produce the same overrides). This module is a
//! leaf: it knows none of those, only the protocol types it is built from.

use std::sync::Arc;

use bytes::Bytes;

use crate::engine::StreamPosition;
use crate::proto::{api, proxy};

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
/// namespace says), from the server API, a subscription or connection
/// token, or a proxy's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscribeOverride {
    /// Presence on/off.
    pub(crate) presence: Option<bool>,
    /// Join/leave publishing on/off.
    pub(crate) join_leave: Option<bool>,
    /// Force recovery on/off.
    pub(crate) force_recovery: Option<bool>,
    /// Force positioning on/off.
    pub(crate) force_positioning: Option<bool>,
    /// Force pushing join/leave to this subscriber on/off.
    pub(crate) force_push_join_leave: Option<bool>,
}

/// The server API and the proxy protocol declare the same
/// `SubscribeOptionOverride` message in two packages: one conversion each.
macro_rules! override_from {
    ($pkg:ident) => {
        impl From<$pkg::SubscribeOptionOverride> for SubscribeOverride {
            fn from(o: $pkg::SubscribeOptionOverride) -> Self {
                let v = |b: Option<$pkg::BoolValue>| b.map(|b| b.value);
                Self {
                    presence: v(o.presence),
                    join_leave: v(o.join_leave),
                    force_recovery: v(o.force_recovery),
                    force_positioning: v(o.force_positioning),
                    force_push_join_leave: v(o.force_push_join_leave),
                }
            }
        }
    };
}

override_from!(api);
override_from!(proxy);

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

/// A server API operation for one session, applied by the session task
/// between its own commands.
#[derive(Debug, Clone)]
pub(crate) enum Control {
    /// Subscribe to a channel.
    Subscribe(Arc<ServerSubscribe>),
    /// Unsubscribe from a channel.
    Unsubscribe(Arc<str>),
    /// Change expiry and info (never `expired`: that is a disconnect).
    Refresh(Arc<ServerRefresh>),
    /// The connection is being closed: acknowledge once it is cleaned up.
    Closed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_keep_absent_values_unset() {
        let o = api::SubscribeOptionOverride {
            presence: Some(api::BoolValue { value: false }),
            force_recovery: Some(api::BoolValue { value: true }),
            ..Default::default()
        };
        let got = SubscribeOverride::from(o);
        assert_eq!(got.presence, Some(false));
        assert_eq!(got.force_recovery, Some(true));
        assert_eq!(got.join_leave, None);
        let o = proxy::SubscribeOptionOverride {
            force_push_join_leave: Some(proxy::BoolValue { value: true }),
            ..Default::default()
        };
        let got = SubscribeOverride::from(o);
        assert_eq!(got.force_push_join_leave, Some(true));
        assert_eq!(got.presence, None);
        assert_eq!(
            SubscribeOverride::from(api::SubscribeOptionOverride::default()),
            SubscribeOverride::default()
        );
    }
}
