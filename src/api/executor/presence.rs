//! `presence` and `presence_stats`: who is in a channel, for channels whose
//! namespace has presence on (else 108).

use std::sync::Arc;

use super::{Executor, client_info, engine_error};
use crate::api::errors::ApiError;
use crate::channel::ResolvedOptions;
use crate::proto::api::{
    PresenceRequest, PresenceResult, PresenceStatsRequest, PresenceStatsResult,
};

impl Executor {
    /// Options of a channel with presence enabled.
    fn presence_options(&self, channel: &str) -> Result<Arc<ResolvedOptions>, ApiError> {
        let opts = self.channel_options(channel)?;
        if !opts.opts.presence {
            return Err(ApiError::not_available());
        }
        Ok(opts)
    }

    /// Everyone present in a channel, keyed by client id.
    pub async fn presence(&self, req: PresenceRequest) -> Result<PresenceResult, ApiError> {
        self.presence_options(&req.channel)?;
        let presence = self
            .node
            .presence(&req.channel)
            .await
            .map_err(|e| engine_error("presence", &req.channel, e))?;
        Ok(PresenceResult {
            presence: presence
                .into_iter()
                .map(|(client, info)| (client, client_info(info)))
                .collect(),
        })
    }

    /// Counts of clients and distinct users present in a channel.
    pub async fn presence_stats(
        &self,
        req: PresenceStatsRequest,
    ) -> Result<PresenceStatsResult, ApiError> {
        self.presence_options(&req.channel)?;
        let stats = self
            .node
            .presence_stats(&req.channel)
            .await
            .map_err(|e| engine_error("presence_stats", &req.channel, e))?;
        Ok(PresenceStatsResult {
            num_clients: stats.num_clients,
            num_users: stats.num_users,
        })
    }
}
