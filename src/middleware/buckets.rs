//! A sharded map of token buckets, one per key (an API key hash or a client
//! IP), with a bound on how many keys are tracked.
//!
//! Each bucket holds up to `capacity` tokens and refills continuously at
//! `rate` tokens per `interval`. When a shard is full, buckets that have
//! refilled completely are dropped first (they are indistinguishable from a
//! new key); if none has, the least recently used one is evicted. Eviction
//! can only make the limiter more permissive for the evicted key, never
//! refuse anyone wrongly. Time is `tokio::time::Instant`, so tests can pause
//! and advance it.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// Shards in a map; a power of two.
const SHARDS: usize = 16;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The outcome of [`Buckets::take`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Decision {
    /// A token was taken.
    Allowed,
    /// No token; one will be available after this long.
    Refused(Duration),
}

/// Token buckets keyed by `K`.
#[derive(Debug)]
pub(crate) struct Buckets<K> {
    capacity: f64,
    /// Tokens per second.
    per_sec: f64,
    max_per_shard: usize,
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<K, Bucket>>>,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    /// `rate` tokens per `interval`, up to `capacity`, tracking at most about
    /// `max_keys` keys. `rate` and `interval` must be positive.
    pub(crate) fn new(rate: u64, interval: Duration, capacity: u64, max_keys: usize) -> Self {
        let secs = interval.as_secs_f64().max(f64::MIN_POSITIVE);
        Self {
            capacity: capacity.max(1) as f64,
            per_sec: rate as f64 / secs,
            max_per_shard: max_keys.div_ceil(SHARDS).max(1),
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn refill(&self, b: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_sec).min(self.capacity);
        b.last = now;
    }

    /// Takes one token for `key`.
    pub(crate) fn take(&self, key: &K) -> Decision {
        let now = Instant::now();
        let shard = &self.shards[(self.hasher.hash_one(key) as usize) & (SHARDS - 1)];
        let mut map = shard.lock();
        if !map.contains_key(key) && map.len() >= self.max_per_shard {
            self.evict(&mut map, now);
        }
        let bucket = map.entry(key.clone()).or_insert(Bucket {
            tokens: self.capacity,
            last: now,
        });
        self.refill(bucket, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Decision::Allowed
        } else {
            let missing = 1.0 - bucket.tokens;
            Decision::Refused(
                Duration::try_from_secs_f64(missing / self.per_sec).unwrap_or(Duration::MAX),
            )
        }
    }

    fn evict(&self, map: &mut HashMap<K, Bucket>, now: Instant) {
        let before = map.len();
        map.retain(|_, b| {
            let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
            b.tokens + elapsed * self.per_sec < self.capacity
        });
        if map.len() < before {
            return;
        }
        let oldest = map
            .iter()
            .min_by_key(|(_, b)| b.last)
            .map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            map.remove(&k);
        }
    }

    #[cfg(test)]
    /// Keys tracked right now.
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn burst_then_refuse_then_refill() {
        let b = Buckets::new(2, Duration::from_secs(10), 3, 100);
        for _ in 0..3 {
            assert_eq!(b.take(&"k"), Decision::Allowed);
        }
        let Decision::Refused(wait) = b.take(&"k") else {
            panic!("expected a refusal");
        };
        assert_eq!(wait, Duration::from_secs(5));
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(b.take(&"k"), Decision::Allowed);
        assert!(matches!(b.take(&"k"), Decision::Refused(_)));
    }

    #[tokio::test(start_paused = true)]
    async fn keys_are_independent() {
        let b = Buckets::new(1, Duration::from_secs(60), 1, 100);
        assert_eq!(b.take(&1u32), Decision::Allowed);
        assert!(matches!(b.take(&1u32), Decision::Refused(_)));
        assert_eq!(b.take(&2u32), Decision::Allowed);
    }

    #[tokio::test(start_paused = true)]
    async fn tracked_keys_stay_bounded() {
        let b = Buckets::new(1, Duration::from_secs(60), 1, 64);
        for i in 0..10_000u32 {
            let _ = b.take(&i);
        }
        assert!(b.len() <= 64 + SHARDS, "tracked {}", b.len());
    }

    #[tokio::test(start_paused = true)]
    async fn refilled_buckets_are_evicted_first() {
        let b: Buckets<&str> = Buckets::new(1, Duration::from_secs(1), 1, 16);
        let now = Instant::now();
        let mut map = HashMap::new();
        map.insert(
            "idle",
            Bucket {
                tokens: 1.0,
                last: now,
            },
        );
        map.insert(
            "busy",
            Bucket {
                tokens: 0.0,
                last: now,
            },
        );
        b.evict(&mut map, now);
        assert!(map.contains_key("busy") && !map.contains_key("idle"));
        // Nothing refilled: the least recently used goes.
        let later = now + Duration::from_millis(100);
        map.insert(
            "new",
            Bucket {
                tokens: 0.0,
                last: later,
            },
        );
        b.evict(&mut map, later);
        assert!(map.contains_key("new") && !map.contains_key("busy"));
    }
}
