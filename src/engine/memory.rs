//! Placeholder; replaced by the real memory engine.
#![allow(missing_docs, clippy::all)]
use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::*;

#[derive(Default)]
pub struct MemoryBroker;
impl MemoryBroker {
    pub fn new() -> Self {
        Self
    }
}
#[async_trait]
impl Broker for MemoryBroker {
    async fn run(&self, _h: Arc<dyn BrokerEventHandler>) -> Result<(), EngineError> {
        Ok(())
    }
    async fn publish(
        &self,
        _c: &str,
        _d: Bytes,
        _o: &PublishOptions,
    ) -> Result<PublishResult, EngineError> {
        Ok(PublishResult::default())
    }
    async fn publish_join(&self, _c: &str, _i: &ClientInfo) -> Result<(), EngineError> {
        Ok(())
    }
    async fn publish_leave(&self, _c: &str, _i: &ClientInfo) -> Result<(), EngineError> {
        Ok(())
    }
    async fn subscribe(&self, _c: &str) -> Result<(), EngineError> {
        Ok(())
    }
    async fn unsubscribe(&self, _c: &str) -> Result<(), EngineError> {
        Ok(())
    }
    async fn history(&self, _c: &str, _o: &HistoryOptions) -> Result<HistoryResult, EngineError> {
        Ok(HistoryResult::default())
    }
    async fn remove_history(&self, _c: &str) -> Result<(), EngineError> {
        Ok(())
    }
}
#[derive(Default)]
pub struct MemoryPresenceManager;
impl MemoryPresenceManager {
    pub fn new() -> Self {
        Self
    }
}
#[async_trait]
impl PresenceManager for MemoryPresenceManager {
    async fn presence(&self, _c: &str) -> Result<HashMap<String, ClientInfo>, EngineError> {
        Ok(HashMap::new())
    }
    async fn presence_stats(&self, _c: &str) -> Result<PresenceStats, EngineError> {
        Ok(PresenceStats::default())
    }
    async fn add_presence(&self, _c: &str, _id: &str, _i: &ClientInfo) -> Result<(), EngineError> {
        Ok(())
    }
    async fn remove_presence(&self, _c: &str, _id: &str, _u: &str) -> Result<(), EngineError> {
        Ok(())
    }
}
