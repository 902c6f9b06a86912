//! Node-wide admission of new connections: `client.connection_limit` (open
//! connections) and `client.connection_rate_limit` (new connections per
//! second, as a token bucket with a burst of one second's worth). Both are
//! checked before a transport upgrades, so a refused client gets HTTP 503:
//! by [`crate::middleware::conn_limit`] on the connection routes, which
//! hands the [`Permit`] to the transport.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use parking_lot::Mutex;

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Too many open connections.
    Limit,
    /// Too many new connections per second.
    Rate,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Admission state shared by all transports.
#[derive(Debug)]
pub(crate) struct Admission {
    limit: usize,
    open: AtomicUsize,
    rate: usize,
    bucket: Mutex<Bucket>,
}

/// Held for the life of a connection; releases its slot on drop.
#[derive(Debug)]
pub(crate) struct Permit {
    admission: Arc<Admission>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.admission.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Admission {
    /// Limits of 0 mean unlimited.
    pub(crate) fn new(limit: usize, rate: usize) -> Self {
        Self {
            limit,
            open: AtomicUsize::new(0),
            rate,
            bucket: Mutex::new(Bucket {
                tokens: rate as f64,
                last: Instant::now(),
            }),
        }
    }

    /// Admits one connection or says why not.
    pub(crate) fn admit(self: &Arc<Self>) -> Result<Permit, Refused> {
        if self.rate > 0 {
            let mut b = self.bucket.lock();
            let now = Instant::now();
            let refill = now.duration_since(b.last).as_secs_f64() * self.rate as f64;
            b.tokens = (b.tokens + refill).min(self.rate as f64);
            b.last = now;
            if b.tokens < 1.0 {
                return Err(Refused::Rate);
            }
            b.tokens -= 1.0;
        }
        let prev = self.open.fetch_add(1, Ordering::AcqRel);
        if self.limit > 0 && prev >= self.limit {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::Limit);
        }
        Ok(Permit {
            admission: self.clone(),
        })
    }

    #[cfg(test)]
    /// Connections currently admitted.
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_counts_open_permits() {
        let a = Arc::new(Admission::new(2, 0));
        let p1 = a.admit().expect("first");
        let _p2 = a.admit().expect("second");
        assert_eq!(a.admit().err(), Some(Refused::Limit));
        drop(p1);
        assert!(a.admit().is_ok());
    }

    #[test]
    fn rate_allows_a_burst_then_refuses() {
        let a = Arc::new(Admission::new(0, 3));
        let permits: Vec<_> = (0..3).map(|_| a.admit().expect("burst")).collect();
        assert_eq!(a.admit().err(), Some(Refused::Rate));
        assert_eq!(permits.len(), 3);
    }
}
