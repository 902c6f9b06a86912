//! The connections that cost the server a file descriptor and nothing has
//! been gained from yet, and the cap on them.
//!
//! Every accepted connection is registered here until it is closed or
//! handed off (a WebSocket upgrade leaves hyper and the registry). A
//! registered connection is *pending* while it has no request in flight
//! (it has not sent a complete request head yet, or it is an idle
//! keep-alive connection) or while a request's body is still arriving.
//! Requests whose body has arrived, and client sessions streamed over
//! SSE, HTTP-streaming or gRPC, are not pending: they are bounded by the
//! request timeouts and the session's own liveness checks.
//!
//! The number of pending connections over all listeners is capped. At the
//! cap, and whenever `accept` reports that the process is out of file
//! descriptors, the oldest pending connection is evicted: idle ones first,
//! then those still sending a body. That way sockets opened and left idle
//! (or fed a byte at a time) can hold at most the cap's worth of
//! descriptors, and never keep a real client from being accepted.
//!
//! Lock order: the registry's mutex is a leaf; no other lock is taken
//! while it is held.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use parking_lot::Mutex;
use tokio::time::Instant;

/// One unit of `requests in flight` in [`ConnState::counts`].
const IN_FLIGHT: u64 = 1;
/// One unit of `bodies still arriving` in [`ConnState::counts`].
const READING: u64 = 1 << 32;
/// Set in [`ConnState::counts`] once the connection has left the registry.
const GONE: u64 = 1 << 63;
/// The `requests in flight` bits.
const IN_FLIGHT_MASK: u64 = 0xffff_ffff;

/// Why the registry asks a connection to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Evicted as the oldest pending connection: close it now.
    Evicted,
    /// The server is shutting down: finish gracefully.
    Stop,
}

const EVICTED: u8 = 1;
const STOPPED: u8 = 2;

/// What one connection is doing, shared by its task, its requests and the
/// registry.
#[derive(Debug)]
pub(crate) struct ConnState {
    id: u64,
    /// Requests in flight (bits 0–31), bodies still arriving (32–62) and
    /// [`GONE`]. One word, so every change is one atomic step and the
    /// registry's count moves by exactly what that step changed.
    counts: AtomicU64,
    /// Milliseconds since `epoch` when the last request ended.
    idle_since_ms: AtomicU64,
    /// Milliseconds since `epoch` when the last request whose body was
    /// still to come began (HTTP/1 has one request at a time).
    reading_since_ms: AtomicU64,
    /// A request head has been read on this connection.
    served: AtomicBool,
    /// The connection speaks HTTP/2.
    h2: AtomicBool,
    /// [`Signal`] bits: set once, by the registry.
    signals: AtomicU8,
    /// The connection task, woken when a signal is set.
    waker: AtomicWaker,
    epoch: Instant,
    registry: Arc<Pending>,
}

/// Whether a connection in state `counts` counts as pending.
fn is_pending(counts: u64) -> bool {
    counts & GONE == 0 && (counts & IN_FLIGHT_MASK == 0 || (counts & !GONE) >> 32 > 0)
}

impl ConnState {
    /// A request head arrived; `reading` when its body is still to come.
    pub(crate) fn begin(&self, reading: bool) {
        self.served.store(true, Ordering::Relaxed);
        if reading {
            self.reading_since_ms
                .store(self.now_ms(), Ordering::Relaxed);
        }
        let delta = IN_FLIGHT + if reading { READING } else { 0 };
        let before = self.counts.fetch_add(delta, Ordering::AcqRel);
        self.registry.transition(before, before + delta);
    }

    /// A request body arrived in full (or was given up).
    pub(crate) fn body_done(&self) {
        let before = self.counts.fetch_sub(READING, Ordering::AcqRel);
        self.registry.transition(before, before - READING);
    }

    /// A request's response ended (or was dropped).
    pub(crate) fn end(&self) {
        self.idle_since_ms.store(self.now_ms(), Ordering::Relaxed);
        let before = self.counts.fetch_sub(IN_FLIGHT, Ordering::AcqRel);
        self.registry.transition(before, before - IN_FLIGHT);
    }

    /// Requests in flight.
    pub(crate) fn in_flight(&self) -> u64 {
        self.counts.load(Ordering::Acquire) & IN_FLIGHT_MASK
    }

    /// Whether a request head has been read on this connection.
    pub(crate) fn served(&self) -> bool {
        self.served.load(Ordering::Relaxed)
    }

    /// Records that the connection speaks HTTP/2.
    pub(crate) fn set_h2(&self) {
        if !self.h2.load(Ordering::Relaxed) {
            self.h2.store(true, Ordering::Relaxed);
        }
    }

    /// Whether the connection speaks HTTP/2.
    pub(crate) fn is_h2(&self) -> bool {
        self.h2.load(Ordering::Relaxed)
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// When the last request whose body is still arriving began; None when
    /// no body is arriving.
    pub(crate) fn reading_since(&self) -> Option<Instant> {
        let counts = self.counts.load(Ordering::Acquire);
        ((counts & !GONE) >> 32 > 0).then(|| {
            self.epoch
                + std::time::Duration::from_millis(self.reading_since_ms.load(Ordering::Relaxed))
        })
    }

    /// When the connection last became idle (its accept time before any
    /// request).
    pub(crate) fn idle_since(&self) -> Instant {
        self.epoch + std::time::Duration::from_millis(self.idle_since_ms.load(Ordering::Relaxed))
    }

    /// Whether the registry asked this connection to close.
    pub(crate) fn evicted(&self) -> bool {
        self.signals.load(Ordering::Acquire) & EVICTED != 0
    }

    /// Ready with the registry's signal once there is one (eviction
    /// first). One atomic waker, not a `Notify`: this is polled every time
    /// the connection task runs.
    pub(crate) fn poll_signal(&self, cx: &mut Context<'_>) -> Poll<Signal> {
        self.waker.register(cx.waker());
        match self.signals.load(Ordering::Acquire) {
            s if s & EVICTED != 0 => Poll::Ready(Signal::Evicted),
            s if s & STOPPED != 0 => Poll::Ready(Signal::Stop),
            _ => Poll::Pending,
        }
    }

    fn signal(&self, bit: u8) {
        self.signals.fetch_or(bit, Ordering::AcqRel);
        self.waker.wake();
    }
}

/// Keeps a connection registered; unregisters it when dropped.
#[derive(Debug)]
pub(crate) struct Registration(Arc<ConnState>);

impl Registration {
    /// The connection's shared state.
    pub(crate) fn state(&self) -> &Arc<ConnState> {
        &self.0
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let state = &self.0;
        state.registry.conns.lock().remove(&state.id);
        let before = state.counts.fetch_or(GONE, Ordering::AcqRel);
        state.registry.transition(before, before | GONE);
    }
}

/// The registry of connections and the count of pending ones.
#[derive(Debug)]
pub(crate) struct Pending {
    cap: usize,
    /// Set by [`Pending::stop_all`]: connections registered later start
    /// stopped.
    stopped: AtomicBool,
    count: AtomicUsize,
    next_id: AtomicU64,
    conns: Mutex<BTreeMap<u64, Arc<ConnState>>>,
}

impl Pending {
    /// A registry allowing `cap` pending connections (at least 1).
    pub(crate) fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            cap: cap.max(1),
            stopped: AtomicBool::new(false),
            count: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
            conns: Mutex::new(BTreeMap::new()),
        })
    }

    /// The cap.
    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    /// Pending connections now.
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Registers a just-accepted connection (pending: it has sent nothing).
    pub(crate) fn register(self: &Arc<Self>) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        // Under the lock, so that a stop either sees this connection or
        // this connection sees the stop.
        let mut conns = self.conns.lock();
        let state = Arc::new(ConnState {
            id,
            counts: AtomicU64::new(0),
            idle_since_ms: AtomicU64::new(0),
            reading_since_ms: AtomicU64::new(0),
            served: AtomicBool::new(false),
            h2: AtomicBool::new(false),
            signals: AtomicU8::new(if self.stopped.load(Ordering::Acquire) {
                STOPPED
            } else {
                0
            }),
            waker: AtomicWaker::new(),
            epoch: Instant::now(),
            registry: self.clone(),
        });
        self.count.fetch_add(1, Ordering::AcqRel);
        conns.insert(id, state.clone());
        drop(conns);
        Registration(state)
    }

    /// Whether one more pending connection would exceed the cap.
    pub(crate) fn full(&self) -> bool {
        self.count() >= self.cap
    }

    /// Asks the oldest pending connection to close: an idle one if there
    /// is one, else one still sending a body. False when none is pending.
    pub(crate) fn evict_oldest(&self) -> bool {
        let conns = self.conns.lock();
        let mut fallback = None;
        for state in conns.values() {
            if state.evicted() {
                continue;
            }
            let counts = state.counts.load(Ordering::Acquire);
            if counts & IN_FLIGHT_MASK == 0 {
                state.signal(EVICTED);
                return true;
            }
            if fallback.is_none() && is_pending(counts) {
                fallback = Some(state.clone());
            }
        }
        drop(conns);
        match fallback {
            Some(state) => {
                state.signal(EVICTED);
                true
            }
            None => false,
        }
    }

    /// Asks every registered connection to finish gracefully (shutdown).
    pub(crate) fn stop_all(&self) {
        let conns = self.conns.lock();
        self.stopped.store(true, Ordering::Release);
        for state in conns.values() {
            state.signal(STOPPED);
        }
    }

    /// Moves the count by what one atomic step of a connection's state
    /// changed.
    fn transition(&self, before: u64, after: u64) {
        match (is_pending(before), is_pending(after)) {
            (false, true) => {
                self.count.fetch_add(1, Ordering::AcqRel);
            }
            (true, false) => {
                self.count.fetch_sub(1, Ordering::AcqRel);
            }
            _ => {}
        }
    }
}

/// The default cap: half the process's open-file limit, between 64 and
/// 65,536 (4,096 when the limit cannot be read).
pub(crate) fn default_cap() -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| open_files_limit(&text));
    match soft {
        Some(n) => (n / 2).clamp(64, 65_536),
        None => 4_096,
    }
}

/// The soft "Max open files" limit from `/proc/self/limits` text.
fn open_files_limit(text: &str) -> Option<usize> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    match soft {
        "unlimited" => Some(usize::MAX / 2),
        n => n.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_follow_requests_and_bodies() {
        let p = Pending::new(10);
        let a = p.register();
        assert_eq!(p.count(), 1);
        a.state().begin(true);
        assert_eq!(p.count(), 1, "a body still arriving is pending");
        a.state().body_done();
        assert_eq!(p.count(), 0, "a request being served is not");
        a.state().end();
        assert_eq!(p.count(), 1, "idle again");
        a.state().begin(false);
        assert_eq!(p.count(), 0);
        drop(a);
        assert_eq!(p.count(), 0, "a busy connection leaving changes nothing");
        let b = p.register();
        assert_eq!(p.count(), 1);
        let state = b.state().clone();
        drop(b);
        assert_eq!(p.count(), 0);
        // A request ending after its connection left does not count.
        state.begin(false);
        state.end();
        assert_eq!(p.count(), 0);
    }

    #[tokio::test]
    async fn eviction_takes_the_oldest_idle_first() {
        let p = Pending::new(3);
        let busy = p.register();
        busy.state().begin(false);
        let uploading = p.register();
        uploading.state().begin(true);
        let idle = p.register();
        let newest = p.register();
        assert_eq!(p.count(), 3);
        assert!(p.full());
        assert!(p.evict_oldest());
        assert!(idle.state().evicted());
        assert!(!uploading.state().evicted() && !newest.state().evicted());
        assert!(p.evict_oldest());
        assert!(newest.state().evicted());
        assert!(p.evict_oldest());
        assert!(uploading.state().evicted(), "then a body still arriving");
        assert!(!p.evict_oldest(), "a request being served is never evicted");
        assert!(!busy.state().evicted());
        let signal = std::future::poll_fn(|cx| idle.state().poll_signal(cx)).await;
        assert_eq!(signal, Signal::Evicted);
        p.stop_all();
        let signal = std::future::poll_fn(|cx| busy.state().poll_signal(cx)).await;
        assert_eq!(signal, Signal::Stop);
        let late = p.register();
        let signal = std::future::poll_fn(|cx| late.state().poll_signal(cx)).await;
        assert_eq!(signal, Signal::Stop, "registered after the stop");
    }

    #[test]
    fn open_files_limit_is_read_from_proc_text() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max processes             95000                95000                processes \n\
                    Max open files            1024                 524288               files     \n";
        assert_eq!(open_files_limit(text), Some(1024));
        assert_eq!(open_files_limit("nothing"), None);
        assert!((64..=65_536).contains(&default_cap()));
    }
}
