//! `presence` and `presence_stats`.

use super::permissions::{Who, can_presence};
use super::subscribe::engine_error;
use super::{Fail, Session};
use crate::channel::ResolvedOptions;
use crate::proto::client::{
    PresenceRequest, PresenceResult, PresenceStatsRequest, PresenceStatsResult, Reply,
};
use crate::protocol::{ClientError, Disconnect};

impl Session {
    /// Options of a channel whose presence this client may read.
    fn presence_options(&self, channel: &str) -> Result<std::sync::Arc<ResolvedOptions>, Fail> {
        if channel.is_empty() {
            return Err(Disconnect::BAD_REQUEST.into());
        }
        let opts = self.node.rules().options(channel)?;
        if !opts.opts.presence {
            return Err(ClientError::NotAvailable.into());
        }
        let who = Who {
            user: &self.user,
            subscribed: self.shared.is_active(channel),
            insecure: self.node.config().client.insecure,
        };
        if !can_presence(who, &opts) {
            return Err(ClientError::PermissionDenied.into());
        }
        Ok(opts)
    }

    pub(super) async fn presence(&mut self, id: u32, req: PresenceRequest) -> Result<(), Fail> {
        self.presence_options(&req.channel)?;
        let presence = self
            .node
            .presence(&req.channel)
            .await
            .map_err(engine_error)?;
        let result = PresenceResult {
            presence: presence.into_iter().collect(),
        };
        self.reply(Reply {
            id,
            presence: Some(result),
            ..Default::default()
        });
        Ok(())
    }

    pub(super) async fn presence_stats(
        &mut self,
        id: u32,
        req: PresenceStatsRequest,
    ) -> Result<(), Fail> {
        self.presence_options(&req.channel)?;
        let s = self
            .node
            .presence_stats(&req.channel)
            .await
            .map_err(engine_error)?;
        let result = PresenceStatsResult {
            num_clients: s.num_clients,
            num_users: s.num_users,
        };
        self.reply(Reply {
            id,
            presence_stats: Some(result),
            ..Default::default()
        });
        Ok(())
    }
}
