//! Per-channel streams of the memory engine: retained publications, the
//! stream meta (epoch, top offset) and remembered idempotent results, grouped
//! in shards.

use std::collections::hash_map::Entry as MapEntry;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{deadline, new_epoch};
use crate::engine::{HistoryFilter, Publication, StreamPosition};

/// One retained publication.
pub(super) struct StreamEntry {
    pub(super) publication: Arc<Publication>,
    /// Publish time + the publish's `history_ttl`.
    pub(super) expires_at: Instant,
}

/// One channel stream: meta (epoch, top) plus retained publications.
///
/// Retained offsets are always contiguous and end at `top`: entries are only
/// appended at the back and removed from the front (size trim, TTL) or all at
/// once (`remove_history`), so the offset of entry `i` is
/// `top - len + 1 + i` and reads are index arithmetic, not searches.
pub(super) struct Stream {
    pub(super) epoch: String,
    pub(super) top: u64,
    pub(super) entries: VecDeque<StreamEntry>,
    /// Last activity + meta TTL; past it the stream is treated as absent.
    pub(super) meta_expires_at: Instant,
    /// Last accepted publication version and its epoch (0 = none yet).
    pub(super) version: u64,
    pub(super) version_epoch: String,
}

impl Stream {
    pub(super) fn new(now: Instant, meta_ttl: Duration, previous_epoch: Option<&str>) -> Self {
        Self {
            epoch: new_epoch(previous_epoch),
            top: 0,
            entries: VecDeque::new(),
            meta_expires_at: deadline(now, meta_ttl),
            version: 0,
            version_epoch: String::new(),
        }
    }

    /// Versioned publish: false when `version` (> 0) is not newer than the
    /// last accepted one of the same `epoch`; otherwise records it. A
    /// different epoch starts a new sequence.
    pub(super) fn accept_version(&mut self, version: u64, epoch: &str) -> bool {
        if version == 0 {
            return true;
        }
        if self.version > 0 && self.version_epoch == epoch && version <= self.version {
            return false;
        }
        self.version = version;
        if self.version_epoch != epoch {
            self.version_epoch = epoch.to_owned();
        }
        true
    }

    pub(super) fn meta_expired(&self, now: Instant) -> bool {
        now >= self.meta_expires_at
    }

    pub(super) fn position(&self) -> StreamPosition {
        StreamPosition {
            offset: self.top,
            epoch: self.epoch.clone(),
        }
    }

    /// Drops publications past their TTL. Only the front is inspected: with
    /// a constant TTL entries expire in order, and keeping the retained
    /// offsets contiguous matters more than evicting an entry early when the
    /// TTL option changes between publishes.
    pub(super) fn drop_expired(&mut self, now: Instant) {
        while self.entries.front().is_some_and(|e| e.expires_at <= now) {
            self.entries.pop_front();
        }
        if self.entries.is_empty() && self.entries.capacity() > 0 {
            // Give the buffer back: an idle channel should cost only its meta.
            self.entries = VecDeque::new();
        }
    }

    pub(super) fn append(
        &mut self,
        mut publication: Publication,
        expires_at: Instant,
        size: usize,
    ) -> Arc<Publication> {
        self.top += 1;
        publication.offset = self.top;
        let publication = Arc::new(publication);
        self.entries.push_back(StreamEntry {
            publication: Arc::clone(&publication),
            expires_at,
        });
        while self.entries.len() > size {
            self.entries.pop_front();
        }
        publication
    }

    /// Offset of the oldest retained entry (top + 1 when empty).
    pub(super) fn first_offset(&self) -> u64 {
        self.top + 1 - self.entries.len() as u64
    }

    /// Publications selected by `filter`; the caller validated the epoch and
    /// the reverse-since-0 case.
    pub(super) fn read(&self, filter: &HistoryFilter) -> Vec<Publication> {
        if filter.limit == 0 || self.entries.is_empty() {
            return Vec::new();
        }
        let limit = usize::try_from(filter.limit).unwrap_or(usize::MAX);
        let first = self.first_offset();
        let len = self.entries.len();
        // Index range [start, end) of candidate entries.
        let (start, end) = match (&filter.since, filter.reverse) {
            (None, _) => (0, len),
            (Some(since), false) => {
                // Offsets > since; if since+1 was trimmed, from the oldest.
                let start = since.offset.saturating_add(1).saturating_sub(first);
                (usize::try_from(start).unwrap_or(len).min(len), len)
            }
            (Some(since), true) => {
                // Offsets < since, i.e. indexes below since - first.
                let end = since.offset.saturating_sub(first);
                (0, usize::try_from(end).unwrap_or(len).min(len))
            }
        };
        let range = self.entries.range(start..end);
        let clone = |e: &StreamEntry| Publication::clone(&e.publication);
        if filter.reverse {
            range.rev().take(limit).map(clone).collect()
        } else {
            range.take(limit).map(clone).collect()
        }
    }
}

/// A remembered idempotent publish result.
pub(super) struct IdempotentResult {
    pub(super) position: StreamPosition,
    pub(super) expires_at: Instant,
}

/// Channel state of one shard.
#[derive(Default)]
pub(super) struct Shard {
    pub(super) streams: HashMap<String, Stream>,
    /// channel → idempotency key → result.
    pub(super) idempotency: HashMap<String, HashMap<String, IdempotentResult>>,
    /// Channels this node subscribed to.
    pub(super) subscribed: HashSet<String>,
}

impl Shard {
    /// The live stream of `channel` with its meta lifetime extended,
    /// replacing an expired incarnation (new epoch, offsets from 1) or
    /// creating a missing one.
    pub(super) fn live_stream(
        &mut self,
        channel: &str,
        now: Instant,
        meta_ttl: Duration,
    ) -> &mut Stream {
        let stream = match self.streams.entry(channel.to_owned()) {
            MapEntry::Occupied(o) => {
                let stream = o.into_mut();
                if stream.meta_expired(now) {
                    let previous = std::mem::take(&mut stream.epoch);
                    *stream = Stream::new(now, meta_ttl, Some(&previous));
                }
                stream
            }
            MapEntry::Vacant(v) => v.insert(Stream::new(now, meta_ttl, None)),
        };
        stream.meta_expires_at = deadline(now, meta_ttl);
        stream.drop_expired(now);
        stream
    }

    pub(super) fn idempotent_result(
        &self,
        channel: &str,
        key: &str,
        now: Instant,
    ) -> Option<StreamPosition> {
        let found = self.idempotency.get(channel)?.get(key)?;
        (found.expires_at > now).then(|| found.position.clone())
    }

    pub(super) fn remember_result(
        &mut self,
        channel: &str,
        key: &str,
        position: StreamPosition,
        expires_at: Instant,
    ) {
        let keys = match self.idempotency.get_mut(channel) {
            Some(keys) => keys,
            None => self.idempotency.entry(channel.to_owned()).or_default(),
        };
        keys.insert(
            key.to_owned(),
            IdempotentResult {
                position,
                expires_at,
            },
        );
    }

    /// Removes everything expired; called by the background task.
    pub(super) fn sweep(&mut self, now: Instant) {
        self.streams.retain(|_, stream| {
            if stream.meta_expired(now) {
                return false;
            }
            stream.drop_expired(now);
            true
        });
        self.idempotency.retain(|_, keys| {
            keys.retain(|_, r| r.expires_at > now);
            !keys.is_empty()
        });
        // `retain` keeps capacity; after a burst of dead channels, give the
        // memory back instead of keeping the high-water mark forever.
        shrink_if_sparse(&mut self.streams);
        shrink_if_sparse(&mut self.idempotency);
    }
}

pub(super) fn shrink_if_sparse<K: Eq + std::hash::Hash, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > 64 && map.len() * 4 < map.capacity() {
        map.shrink_to_fit();
    }
}
