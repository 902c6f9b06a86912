//! Recovery: the stream-mode decision rule and the golden vectors of
//! limits-and-security.md §2.3.

use std::sync::Arc;

use super::*;
use crate::engine::{Broker, EngineError, Publication, PublishOptions, StreamPosition};

// ---------------------------------------------------------------------------
// Recovery decision (stream mode)
// ---------------------------------------------------------------------------

/// The stream-mode recovery rule (client-protocol.md §7.3): recovered iff
/// the epoch matches (or the client had none) and either nothing was
/// returned and the top equals the client's offset, or the returned
/// publications run exactly from `since.offset + 1` to the top.
///
/// `top` is the stream position from the same history read, `publications`
/// that read's result limited to the recovery cap.
pub fn is_recovered(
    since: &StreamPosition,
    top: &StreamPosition,
    publications: &[Publication],
) -> bool {
    if !since.epoch.is_empty() && since.epoch != top.epoch {
        return false;
    }
    match (publications.first(), publications.last()) {
        (Some(first), Some(last)) => first.offset == since.offset + 1 && last.offset == top.offset,
        _ => top.offset == since.offset,
    }
}

/// Runs a stream-mode recovery against `broker`: a forward history read
/// since `since`, limited to `cap` publications (`None`: no cap), judged by
/// [`is_recovered`]. Returns whether it recovered and the publications to
/// send, which are empty when not recovered (never a partial recovery). An
/// epoch mismatch reported by the engine counts as not recovered.
pub async fn recover(
    broker: &Arc<dyn Broker>,
    channel: &str,
    since: &StreamPosition,
    cap: Option<usize>,
) -> (bool, Vec<Publication>) {
    let limit = cap.map_or(-1, |c| i32::try_from(c).unwrap_or(i32::MAX));
    match read_history(broker, channel, Some(since.clone()), limit, false).await {
        Ok(result) if is_recovered(since, &result.position, &result.publications) => {
            (true, result.publications)
        }
        Ok(_) | Err(EngineError::UnrecoverablePosition) => (false, Vec::new()),
        Err(e) => panic!("recovery history read failed: {e}"),
    }
}

/// One row of the stream-mode recovery golden vectors
/// (limits-and-security.md §2.3). History size is 10; the client
/// resubscribes with the current epoch.
#[derive(Debug, Clone, Copy)]
pub struct RecoveryVector {
    /// Scenario name.
    pub name: &'static str,
    /// Publications made before the resubscribe.
    pub pubs: usize,
    /// The client's offset.
    pub since_offset: u64,
    /// Recovery cap (`None`: no cap).
    pub cap: Option<usize>,
    /// Whether the stream's 1 s TTL passes before the resubscribe.
    pub expired: bool,
    /// Expected decision.
    pub recovered: bool,
    /// Expected number of publications sent.
    pub returned: usize,
}

/// The stream-mode golden vectors.
pub const STREAM_RECOVERY_VECTORS: &[RecoveryVector] = &[
    RecoveryVector {
        name: "empty stream",
        pubs: 0,
        since_offset: 0,
        cap: None,
        expired: false,
        recovered: true,
        returned: 0,
    },
    RecoveryVector {
        name: "gap inside history",
        pubs: 10,
        since_offset: 8,
        cap: None,
        expired: false,
        recovered: true,
        returned: 2,
    },
    RecoveryVector {
        name: "gap larger than cap 2",
        pubs: 10,
        since_offset: 5,
        cap: Some(2),
        expired: false,
        recovered: false,
        returned: 0,
    },
    RecoveryVector {
        name: "gap larger than cap 1",
        pubs: 10,
        since_offset: 5,
        cap: Some(1),
        expired: false,
        recovered: false,
        returned: 0,
    },
    RecoveryVector {
        name: "position already trimmed",
        pubs: 20,
        since_offset: 8,
        cap: None,
        expired: false,
        recovered: false,
        returned: 0,
    },
    RecoveryVector {
        name: "position from the future",
        pubs: 20,
        since_offset: 108,
        cap: None,
        expired: false,
        recovered: false,
        returned: 0,
    },
    RecoveryVector {
        name: "already at the top",
        pubs: 7,
        since_offset: 7,
        cap: None,
        expired: false,
        recovered: true,
        returned: 0,
    },
    RecoveryVector {
        name: "since 0 (from start)",
        pubs: 4,
        since_offset: 0,
        cap: None,
        expired: false,
        recovered: true,
        returned: 4,
    },
    RecoveryVector {
        name: "stream expired",
        pubs: 10,
        since_offset: 8,
        cap: None,
        expired: true,
        recovered: false,
        returned: 0,
    },
    RecoveryVector {
        name: "at the top of an expired stream",
        pubs: 1,
        since_offset: 1,
        cap: None,
        expired: true,
        recovered: true,
        returned: 0,
    },
];

/// Publishes a vector's publications to a fresh channel and returns the
/// channel and the epoch the client holds.
pub async fn setup_vector(broker: &Arc<dyn Broker>, v: &RecoveryVector) -> (String, String) {
    let channel = unique_channel("recovery");
    let opts = PublishOptions {
        history_size: 10,
        history_ttl: if v.expired { SHORT_TTL } else { LONG_TTL },
        ..PublishOptions::default()
    };
    publish_n(broker, &channel, v.pubs, &opts).await;
    // The client subscribed (and learned the epoch) before the TTL passed.
    let epoch = current_position(broker, &channel).await.epoch;
    assert!(!epoch.is_empty(), "{}: empty epoch", v.name);
    (channel, epoch)
}

pub async fn check_vector(
    broker: &Arc<dyn Broker>,
    v: &RecoveryVector,
    channel: &str,
    epoch: &str,
) {
    let since = position(v.since_offset, epoch);
    let (recovered, pubs) = recover(broker, channel, &since, v.cap).await;
    assert_eq!(recovered, v.recovered, "{}: recovered", v.name);
    assert_eq!(pubs.len(), v.returned, "{}: publications returned", v.name);
    let expected: Vec<u64> = (v.since_offset + 1..).take(v.returned).collect();
    assert_eq!(offsets(&pubs), expected, "{}: offsets", v.name);
}
