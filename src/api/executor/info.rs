//! `info` and `channels`: counters of the running node and the channels
//! with live subscribers.
//!
//! In a cluster (Redis engine) `info` lists every live node from their
//! heartbeats and `channels` surveys every node (see
//! [`crate::node::cluster`]). `metrics` (the aggregated Prometheus
//! snapshot) and `process` (PRO only) are not reported.

use super::{Executor, Glob};
use crate::api::errors::ApiError;
use crate::proto::api::{
    ChannelInfo, ChannelsRequest, ChannelsResult, InfoRequest, InfoResult, NodeResult,
};

impl Executor {
    /// One report per running node: name, id, version and counters.
    pub async fn info(&self, _req: InfoRequest) -> Result<InfoResult, ApiError> {
        let nodes = self
            .node
            .cluster_info()
            .into_iter()
            .map(|report| {
                let info = report.info;
                NodeResult {
                    uid: info.uid,
                    name: info.name,
                    version: format!("{} OSS", report.version),
                    num_clients: info.num_clients,
                    num_users: info.num_users,
                    num_channels: info.num_channels,
                    uptime: info.uptime,
                    metrics: None,
                    process: None,
                    num_subs: info.num_subs,
                }
            })
            .collect();
        Ok(InfoResult { nodes })
    }

    /// Channels with at least one subscriber whose name matches the
    /// pattern (gobwas/glob syntax; empty matches all). An invalid pattern
    /// is an internal error, as in Centrifugo.
    pub async fn channels(&self, req: ChannelsRequest) -> Result<ChannelsResult, ApiError> {
        let glob = if req.pattern.is_empty() {
            None
        } else {
            Some(Glob::new(&req.pattern).map_err(|e| {
                tracing::warn!(error = %e, "server API: channels pattern");
                ApiError::internal()
            })?)
        };
        let channels = self
            .node
            .cluster_channels()
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "server API: channels survey");
                ApiError::internal()
            })?
            .into_iter()
            .filter(|(name, _)| glob.as_ref().is_none_or(|g| g.is_match(name)))
            .map(|(name, num_clients)| (name, ChannelInfo { num_clients }))
            .collect();
        Ok(ChannelsResult { channels })
    }
}
