//! `publish` and `broadcast`: validation of the channel, the namespace and
//! the data format, then the node's publish path with the namespace's
//! history options.
//! `version`/`version_epoch` go to the engine, which drops stale versions
//! in channels with history (`suppressed`: the current position is
//! returned and nothing is delivered).

use std::collections::BTreeMap;

use bytes::Bytes;
use futures_util::StreamExt as _;

use super::{Executor, engine_error, payload, wire_error};
use crate::api::errors::ApiError;
use crate::channel::ResolvedOptions;
use crate::config::DataFormat;
use crate::proto::api::{
    BroadcastRequest, BroadcastResult, PublishRequest, PublishResponse, PublishResult,
};
use crate::session::publish::data_format_ok;

/// Most channels of one broadcast published at once.
const BROADCAST_CONCURRENCY: usize = 1024;

/// What publish and broadcast share besides the channel and the data.
struct Publication {
    data: Bytes,
    skip_history: bool,
    tags: BTreeMap<String, String>,
    idempotency_key: String,
    delta: bool,
    version: u64,
    version_epoch: String,
}

/// Checks data against the channel's `publication_data_format` (the
/// namespace's, defaulting to `channel.publication_data_format`): the
/// default format requires non-empty data, `json` a JSON value,
/// `json_object` a JSON object and `binary` accepts anything.
fn data_allowed(opts: &ResolvedOptions, data: &[u8]) -> bool {
    let format = opts.opts.publication_data_format;
    if format == DataFormat::Unset && data.is_empty() {
        return false;
    }
    data_format_ok(format, data)
}

impl Executor {
    /// Publishes data into a channel.
    pub async fn publish(&self, req: PublishRequest) -> Result<PublishResult, ApiError> {
        if req.channel.is_empty() {
            return Err(ApiError::bad_request());
        }
        let data = payload(&req.b64data, req.data)?;
        let opts = self.namespace_options(&req.channel)?;
        let publication = Publication {
            data,
            skip_history: req.skip_history,
            tags: req.tags,
            idempotency_key: req.idempotency_key,
            delta: req.delta,
            version: req.version,
            version_epoch: req.version_epoch,
        };
        self.publish_into(&req.channel, &opts, &publication).await
    }

    /// Publishes the same data into many channels; each channel gets its own
    /// result or error, in input order.
    pub async fn broadcast(&self, req: BroadcastRequest) -> Result<BroadcastResult, ApiError> {
        if req.channels.is_empty() {
            return Err(ApiError::bad_request());
        }
        let publication = Publication {
            data: payload(&req.b64data, req.data)?,
            skip_history: req.skip_history,
            tags: req.tags,
            idempotency_key: req.idempotency_key,
            delta: req.delta,
            version: req.version,
            version_epoch: req.version_epoch,
        };
        let publication = &publication;
        let responses = futures_util::stream::iter(req.channels)
            .map(|channel| async move {
                let outcome = match self.channel_options(&channel) {
                    Ok(opts) => self.publish_into(&channel, &opts, publication).await,
                    Err(e) => Err(e),
                };
                match outcome {
                    Ok(result) => PublishResponse {
                        error: None,
                        result: Some(result),
                    },
                    Err(e) => PublishResponse {
                        error: Some(wire_error(&e)),
                        result: None,
                    },
                }
            })
            .buffered(BROADCAST_CONCURRENCY)
            .collect()
            .await;
        Ok(BroadcastResult { responses })
    }

    /// Checks the data format and publishes into one resolved channel.
    async fn publish_into(
        &self,
        channel: &str,
        opts: &ResolvedOptions,
        p: &Publication,
    ) -> Result<PublishResult, ApiError> {
        if !data_allowed(opts, &p.data) {
            return Err(ApiError::bad_request());
        }
        let mut popts = self.node.publish_options(opts);
        if p.skip_history {
            popts.history_size = 0;
            popts.history_ttl = std::time::Duration::ZERO;
        }
        popts.tags = p.tags.clone();
        if !p.idempotency_key.is_empty() {
            popts.idempotency_key = Some(p.idempotency_key.clone());
        }
        // `publish_options` already turned delta on for `delta_publish`.
        popts.use_delta |= p.delta;
        popts.version = p.version;
        popts.version_epoch.clone_from(&p.version_epoch);
        let result = self
            .node
            .publish(channel, p.data.clone(), &popts)
            .await
            .map_err(|e| engine_error("publish", channel, e))?;
        Ok(PublishResult {
            offset: result.position.offset,
            epoch: result.position.epoch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::data_allowed;
    use crate::channel::ResolvedOptions;
    use crate::config::ChannelOptions;

    fn opts(format: &str) -> ResolvedOptions {
        ResolvedOptions {
            namespace: String::new(),
            opts: ChannelOptions {
                publication_data_format: serde_json::from_value(format.into()).expect("a format"),
                ..Default::default()
            },
            regex: None,
            history_meta_ttl: std::time::Duration::ZERO,
        }
    }

    #[test]
    fn data_formats() {
        assert!(!data_allowed(&opts(""), b""));
        assert!(data_allowed(&opts(""), b"not json"));
        assert!(data_allowed(&opts("binary"), b""));
        assert!(!data_allowed(&opts("json"), b""));
        assert!(!data_allowed(&opts("json"), b"not json"));
        assert!(data_allowed(&opts("json"), b"[1]"));
        assert!(!data_allowed(&opts("json_object"), b"[1]"));
        assert!(data_allowed(&opts("json_object"), b"{\"a\":1}"));
    }
}
