//! `subscribe`, `unsubscribe`, `disconnect` and `refresh`: server-side
//! control of live connections. The executor validates and builds the
//! node's control requests; the node finds the matching sessions.

use super::{Executor, payload};
use crate::api::errors::ApiError;
use crate::control::{ServerRefresh, ServerSubscribe, Target};
use crate::engine::{EngineError, StreamPosition};
use crate::proto::api::{
    DisconnectRequest, DisconnectResult, RefreshRequest, RefreshResult, SubscribeRequest,
    SubscribeResult, UnsubscribeRequest, UnsubscribeResult,
};

/// Disconnect sent when the request names none: terminal, no reconnect.
const FORCE_DISCONNECT: (u32, &str) = (3503, "force disconnect");

fn control_error(op: &'static str, err: EngineError) -> ApiError {
    tracing::error!(op, error = %err, "server API: control failure");
    ApiError::internal()
}

impl Executor {
    /// Subscribes the user's live connections to a channel.
    pub async fn subscribe(&self, req: SubscribeRequest) -> Result<SubscribeResult, ApiError> {
        self.channel_options(&req.channel)?;
        let info = payload(&req.b64info, req.info)?;
        let data = payload(&req.b64data, req.data)?;
        let sub = ServerSubscribe {
            channel: req.channel,
            target: Target {
                user: req.user,
                client: req.client,
                session: req.session,
            },
            expire_at: req.expire_at,
            info,
            data,
            recover_since: req.recover_since.map(|p| StreamPosition {
                offset: p.offset,
                epoch: p.epoch,
            }),
            overrides: req.r#override.map(Into::into).unwrap_or_default(),
        };
        self.node
            .subscribe_user(sub)
            .await
            .map_err(|e| control_error("subscribe", e))?;
        Ok(SubscribeResult {})
    }

    /// Unsubscribes the user's connections from a channel.
    pub async fn unsubscribe(
        &self,
        req: UnsubscribeRequest,
    ) -> Result<UnsubscribeResult, ApiError> {
        // An empty channel is passed on as Centrifugo does; a named one must
        // belong to a configured namespace.
        if !req.channel.is_empty() {
            self.namespace_options(&req.channel)?;
        }
        let target = Target {
            user: req.user,
            client: req.client,
            session: req.session,
        };
        self.node
            .unsubscribe_user(&req.channel, &target)
            .await
            .map_err(|e| control_error("unsubscribe", e))?;
        Ok(UnsubscribeResult {})
    }

    /// Disconnects the user's connections (except the whitelisted clients).
    pub async fn disconnect(&self, req: DisconnectRequest) -> Result<DisconnectResult, ApiError> {
        let (code, reason) = match req.disconnect {
            Some(d) => (d.code, d.reason),
            None => (FORCE_DISCONNECT.0, FORCE_DISCONNECT.1.to_string()),
        };
        let target = Target {
            user: req.user,
            client: req.client,
            session: req.session,
        };
        self.node
            .disconnect_user(&target, &req.whitelist, code, &reason)
            .await
            .map_err(|e| control_error("disconnect", e))?;
        Ok(DisconnectResult {})
    }

    /// Refreshes the user's connections: new expiry or info, or expired.
    pub async fn refresh(&self, req: RefreshRequest) -> Result<RefreshResult, ApiError> {
        let target = Target {
            user: req.user,
            client: req.client,
            session: req.session,
        };
        let refresh = ServerRefresh {
            expired: req.expired,
            expire_at: req.expire_at,
            info: (!req.info.is_empty()).then_some(req.info),
        };
        self.node
            .refresh_user(&target, refresh)
            .await
            .map_err(|e| control_error("refresh", e))?;
        Ok(RefreshResult {})
    }
}
