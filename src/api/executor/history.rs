//! `history` and `history_remove`, for channels whose namespace keeps a
//! history stream (else 108).

use std::sync::Arc;

use super::{Executor, client_info, engine_error};
use crate::api::errors::ApiError;
use crate::channel::ResolvedOptions;
use crate::engine::{HistoryFilter, StreamPosition};
use crate::proto::api::{
    HistoryRemoveRequest, HistoryRemoveResult, HistoryRequest, HistoryResult, Publication,
};

impl Executor {
    /// Options of a channel with history enabled.
    fn history_options(&self, channel: &str) -> Result<Arc<ResolvedOptions>, ApiError> {
        let opts = self.channel_options(channel)?;
        if !opts.has_history() {
            return Err(ApiError::not_available());
        }
        Ok(opts)
    }

    /// Reads a channel's history. `limit` 0 returns only the stream top, a
    /// negative limit everything retained (the server API has no cap);
    /// `since` reads after (or with `reverse`, before) a position, and a
    /// position of another epoch is 112.
    pub async fn history(&self, req: HistoryRequest) -> Result<HistoryResult, ApiError> {
        let opts = self.history_options(&req.channel)?;
        let filter = HistoryFilter {
            since: req.since.map(|s| StreamPosition {
                offset: s.offset,
                epoch: s.epoch,
            }),
            limit: req.limit,
            reverse: req.reverse,
        };
        let h = self
            .node
            .history(&req.channel, filter, opts.history_meta_ttl)
            .await
            .map_err(|e| engine_error("history", &req.channel, e))?;
        Ok(HistoryResult {
            publications: h
                .publications
                .into_iter()
                .map(|p| Publication {
                    data: p.data,
                    info: p.info.map(client_info),
                    offset: p.offset,
                    tags: p.tags,
                })
                .collect(),
            epoch: h.position.epoch,
            offset: h.position.offset,
        })
    }

    /// Drops a channel's publications; its offset and epoch stay.
    pub async fn history_remove(
        &self,
        req: HistoryRemoveRequest,
    ) -> Result<HistoryRemoveResult, ApiError> {
        self.history_options(&req.channel)?;
        self.node
            .remove_history(&req.channel)
            .await
            .map_err(|e| engine_error("history_remove", &req.channel, e))?;
        Ok(HistoryRemoveResult {})
    }
}
