//! temporary: replaced by the exec branch.
//!
//! The contract of the server API executor: one method per rpc (except
//! batch, which the adapters dispatch). Every body here answers 108 until
//! the real executor is merged.

use std::sync::Arc;

use crate::api::ApiError;
use crate::node::Node;
use crate::proto::api::*;

/// Implements every server API method once; the HTTP and gRPC adapters call it.
pub struct Executor {
    #[allow(dead_code)]
    node: Arc<Node>,
}

impl Executor {
    /// An executor over `node`.
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }

    /// Publish into one channel.
    pub async fn publish(&self, _req: PublishRequest) -> Result<PublishResult, ApiError> {
        Err(ApiError::not_available())
    }

    /// Publish into many channels.
    pub async fn broadcast(&self, _req: BroadcastRequest) -> Result<BroadcastResult, ApiError> {
        Err(ApiError::not_available())
    }

    /// Server-side subscribe.
    pub async fn subscribe(&self, _req: SubscribeRequest) -> Result<SubscribeResult, ApiError> {
        Err(ApiError::not_available())
    }

    /// Server-side unsubscribe.
    pub async fn unsubscribe(
        &self,
        _req: UnsubscribeRequest,
    ) -> Result<UnsubscribeResult, ApiError> {
        Err(ApiError::not_available())
    }

    /// Disconnect connections of a user.
    pub async fn disconnect(&self, _req: DisconnectRequest) -> Result<DisconnectResult, ApiError> {
        Err(ApiError::not_available())
    }

    /// Presence of a channel.
    pub async fn presence(&self, _req: PresenceRequest) -> Result<PresenceResult, ApiError> {
        Err(ApiError::not_available())
    }

    /// Presence counts of a channel.
    pub async fn presence_stats(
        &self,
        _req: PresenceStatsRequest,
    ) -> Result<PresenceStatsResult, ApiError> {
        Err(ApiError::not_available())
    }

    /// History of a channel.
    pub async fn history(&self, _req: HistoryRequest) -> Result<HistoryResult, ApiError> {
        Err(ApiError::not_available())
    }

    /// Remove the history of a channel.
    pub async fn history_remove(
        &self,
        _req: HistoryRemoveRequest,
    ) -> Result<HistoryRemoveResult, ApiError> {
        Err(ApiError::not_available())
    }

    /// Node information.
    pub async fn info(&self, _req: InfoRequest) -> Result<InfoResult, ApiError> {
        Err(ApiError::not_available())
    }

    /// Server-side RPC.
    pub async fn rpc(&self, _req: RpcRequest) -> Result<RpcResult, ApiError> {
        Err(ApiError::not_available())
    }

    /// Refresh connections of a user.
    pub async fn refresh(&self, _req: RefreshRequest) -> Result<RefreshResult, ApiError> {
        Err(ApiError::not_available())
    }

    /// Active channels.
    pub async fn channels(&self, _req: ChannelsRequest) -> Result<ChannelsResult, ApiError> {
        Err(ApiError::not_available())
    }
}
