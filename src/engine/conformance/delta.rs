//! Conformance: delta publishing (`PublishOptions::use_delta`), where the
//! broker hands the previous stream entry's data along with a publication.

use std::sync::Arc;

use bytes::Bytes;

use super::{Event, history_options, payload, publish_n, start, unique_channel};
use crate::engine::Broker;

/// A delta publish hands the previous stream entry's data along with the
/// publication (none for the first of a stream); a plain publish hands
/// nothing.
pub async fn delta_publish_hands_previous_data(broker: Arc<dyn Broker>) {
    let handler = start(&broker).await;
    let channel = unique_channel("delta");
    broker.subscribe(&channel).await.expect("subscribe");
    let mut opts = history_options(10);
    opts.use_delta = true;
    publish_n(&broker, &channel, 3, &opts).await;
    opts.use_delta = false;
    publish_n(&broker, &channel, 1, &opts).await;
    let events = handler.wait_for(&channel, 4).await;
    let prevs: Vec<Option<Bytes>> = events
        .iter()
        .map(|e| match e {
            Event::Publication { prev, .. } => prev.clone(),
            other => panic!("unexpected event {other:?}"),
        })
        .collect();
    assert_eq!(
        prevs,
        vec![None, Some(payload(1)), Some(payload(2)), None],
        "prev data of delta publishes 1..3 and of a plain publish"
    );
    handler.assert_no_overlap();
}
