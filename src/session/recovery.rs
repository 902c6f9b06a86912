//! Recovery decisions and the merge of recovered with buffered publications.
//!
//! Recovery is all or nothing: the client either gets every publication it
//! missed, in order, or `recovered: false` and none at all.

use std::sync::Arc;

use crate::engine::{Publication, StreamPosition};

/// Stream mode: did a history read since (`offset`, `epoch`), limited to the
/// recovery cap, return exactly the missed publications?
pub(super) fn is_recovered(
    offset: u64,
    epoch: &str,
    pubs: &[Publication],
    top: &StreamPosition,
) -> bool {
    if !epoch.is_empty() && epoch != top.epoch {
        return false;
    }
    match (pubs.first(), pubs.last()) {
        (None, _) | (_, None) => top.offset == offset,
        (Some(first), Some(last)) => first.offset == offset + 1 && last.offset == top.offset,
    }
}

/// Appends publications that arrived while subscribing to `pubs` (which end
/// at offset `after`), skipping duplicates. A gap or an epoch change makes
/// the merge impossible (the caller disconnects with 3010).
pub(super) fn merge_buffered(
    pubs: &mut Vec<Publication>,
    after: u64,
    epoch: &str,
    buffered: Vec<(Arc<Publication>, StreamPosition)>,
) -> Result<u64, ()> {
    let mut last = after;
    let mut buffered = buffered;
    buffered.sort_by_key(|(_, p)| p.offset);
    for (publication, position) in buffered {
        if position.offset <= last {
            continue;
        }
        if position.offset != last + 1 || (!epoch.is_empty() && position.epoch != epoch) {
            return Err(());
        }
        last = position.offset;
        pubs.push((*publication).clone());
    }
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(offset: u64) -> Publication {
        Publication {
            offset,
            ..Default::default()
        }
    }

    fn top(offset: u64) -> StreamPosition {
        StreamPosition {
            offset,
            epoch: "e".into(),
        }
    }

    #[test]
    fn recovery_rule() {
        assert!(is_recovered(0, "e", &[], &top(0)));
        assert!(is_recovered(8, "e", &[p(9), p(10)], &top(10)));
        assert!(
            !is_recovered(5, "e", &[p(6), p(7)], &top(10)),
            "capped read is not a recovery"
        );
        assert!(!is_recovered(8, "e", &[p(11)], &top(20)), "trimmed");
        assert!(!is_recovered(108, "e", &[], &top(20)), "from the future");
        assert!(is_recovered(7, "e", &[], &top(7)));
        assert!(!is_recovered(7, "other", &[], &top(7)));
        assert!(is_recovered(0, "", &[p(1), p(2)], &top(2)));
    }

    #[test]
    fn merge_dedups_and_detects_gaps() {
        let b = |o: u64| (Arc::new(p(o)), top(o));
        let mut pubs = vec![p(9), p(10)];
        assert_eq!(
            merge_buffered(&mut pubs, 10, "e", vec![b(11), b(10), b(12)]),
            Ok(12)
        );
        assert_eq!(
            pubs.iter().map(|p| p.offset).collect::<Vec<_>>(),
            vec![9, 10, 11, 12]
        );
        let mut pubs = vec![];
        assert_eq!(merge_buffered(&mut pubs, 3, "e", vec![b(5)]), Err(()));
        let mut pubs = vec![];
        assert_eq!(
            merge_buffered(
                &mut pubs,
                3,
                "e",
                vec![(
                    Arc::new(p(4)),
                    StreamPosition {
                        offset: 4,
                        epoch: "x".into()
                    }
                )]
            ),
            Err(())
        );
    }
}
