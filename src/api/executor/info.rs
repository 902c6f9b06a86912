//! `info` and `channels`: counters of the running node and the channels
//! with live subscribers.
//!
//! With the node-local engines there is one node; a cluster engine will
//! add the other nodes' reports here. `metrics` (the aggregated Prometheus
//! snapshot) and `process` (PRO only) are not reported.

use super::{Executor, Glob};
use crate::api::errors::ApiError;
use crate::node::VERSION;
use crate::proto::api::{
    ChannelInfo, ChannelsRequest, ChannelsResult, InfoRequest, InfoResult, NodeResult,
};

impl Executor {
    /// One report per running node: name, id, version and counters.
    pub async fn info(&self, _req: InfoRequest) -> Result<InfoResult, ApiError> {
        let info = self.node.info();
        let node = NodeResult {
            uid: info.uid,
            name: info.name,
            version: format!("{VERSION} OSS"),
            num_clients: info.num_clients,
            num_users: info.num_users,
            num_channels: info.num_channels,
            uptime: info.uptime,
            metrics: None,
            process: None,
            num_subs: info.num_subs,
        };
        Ok(InfoResult { nodes: vec![node] })
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
            .channel_counts()
            .into_iter()
            .filter(|(name, _)| glob.as_ref().is_none_or(|g| g.is_match(name)))
            .map(|(name, num_clients)| (name, ChannelInfo { num_clients }))
            .collect();
        Ok(ChannelsResult { channels })
    }
}
