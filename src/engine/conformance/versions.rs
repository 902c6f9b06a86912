//! Conformance: versioned publishing (`PublishOptions::version` /
//! `version_epoch`), the server API's way to drop out-of-order updates.

use std::sync::Arc;

use super::{
    current_position, delivered_offsets, history_options, offsets, payload, read_history, start,
    unique_channel,
};
use crate::engine::{Broker, PublishOptions};

/// Within one version epoch only increasing versions are accepted; a stale
/// one is suppressed with the current position and delivers nothing; a new
/// epoch starts a new sequence; version 0 is never checked.
pub async fn versioned_publish(broker: Arc<dyn Broker>) {
    let handler = start(&broker).await;
    let channel = unique_channel("versions");
    broker.subscribe(&channel).await.expect("subscribe");
    let versioned = |version: u64, epoch: &str| PublishOptions {
        version,
        version_epoch: epoch.to_owned(),
        ..history_options(10)
    };
    let mut accepted = Vec::new();
    for (i, (version, epoch, fresh)) in [
        (1, "a", true),
        (3, "a", true),
        (2, "a", false),
        (3, "a", false),
        (1, "b", true),
        (0, "b", true),
        (4, "a", true),
    ]
    .into_iter()
    .enumerate()
    {
        let result = broker
            .publish(&channel, payload(i), &versioned(version, epoch))
            .await
            .expect("publish");
        assert_eq!(
            !result.suppressed, fresh,
            "version {version} in epoch {epoch:?}"
        );
        if fresh {
            accepted.push(result.position.offset);
        } else {
            assert_eq!(result.position, current_position(&broker, &channel).await);
        }
    }
    assert_eq!(accepted, vec![1, 2, 3, 4, 5]);
    let events = handler.wait_for(&channel, 5).await;
    handler.assert_quiet(&channel, 5).await;
    assert_eq!(delivered_offsets(&events), accepted);
    let history = read_history(&broker, &channel, None, -1, false)
        .await
        .expect("history");
    assert_eq!(offsets(&history.publications), accepted);
}
