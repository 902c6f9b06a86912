//! The per-connection outbound queue, bounded in bytes.
//!
//! Anyone may push (the hub's fan-out, the session's own replies); only the
//! connection's writer drains. Pushing never blocks and never drops
//! silently: when the queued bytes exceed the limit the queue closes itself
//! with disconnect 3008 (slow) and discards what it held, and the writer
//! closes the connection with that code.
//!
//! The writer's wake-up lives under the queue's own lock (a waker slot and
//! a pending flag) rather than in a separate `Notify`: a fan-out push then
//! takes one lock, not two, and the waker is cloned only when the writer's
//! task changes.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::protocol::Disconnect;
use crate::protocol::codec::FrameBuilder;

/// The queue is closed; nothing more will be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Closed;

#[derive(Debug)]
struct Inner {
    items: VecDeque<Bytes>,
    bytes: usize,
    closed: Option<Disconnect>,
    /// The writer's waker, kept between waits.
    waker: Option<Waker>,
    /// The writer waits on `waker`.
    waiting: bool,
    /// A wake-up happened that no wait has taken yet; the next poll of a
    /// wait returns at once.
    pending: bool,
    /// The writer holds writes back until then (write batching): a push
    /// only marks `pending`, a close still wakes.
    hold_until: Option<Instant>,
}

impl Inner {
    /// Marks a wake-up; returns the waker to wake once the lock is released.
    fn wake(&mut self) -> Option<&Waker> {
        self.pending = true;
        if self.waiting && (self.hold_until.is_none() || self.closed.is_some()) {
            self.waiting = false;
            self.waker.as_ref()
        } else {
            None
        }
    }
}

/// A bounded byte queue with a single consumer.
#[derive(Debug)]
pub(crate) struct Queue {
    inner: Mutex<Inner>,
    max_bytes: usize,
    /// Messages per drained frame; 0: no count limit.
    max_messages: usize,
}

/// Future of [`Queue::ready`].
#[derive(Debug)]
pub(crate) struct Ready<'a> {
    queue: &'a Queue,
}

impl Future for Ready<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut inner = self.queue.inner.lock();
        if inner.pending {
            inner.pending = false;
            inner.waiting = false;
            return Poll::Ready(());
        }
        match &inner.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => inner.waker = Some(cx.waker().clone()),
        }
        inner.waiting = true;
        Poll::Pending
    }
}

/// What a drain produced.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Drained {
    /// Messages were appended to the frame (maybe none); `more` when the
    /// frame filled up before the queue emptied.
    Open { more: bool },
    /// The queue is closed: after writing what was appended, close the
    /// connection with this disconnect.
    Closed(Disconnect),
}

impl Queue {
    /// A queue that holds at most `max_bytes` (0 means 1 MiB).
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                items: VecDeque::new(),
                bytes: 0,
                closed: None,
                waker: None,
                waiting: false,
                pending: false,
                hold_until: None,
            }),
            max_bytes: if max_bytes == 0 { 1 << 20 } else { max_bytes },
            max_messages: 0,
        }
    }

    /// At most `n` messages per drained frame (0: no count limit).
    pub(crate) fn with_frame_message_limit(mut self, n: usize) -> Self {
        self.max_messages = n;
        self
    }

    /// Appends a message. Overflow closes the queue with 3008.
    pub(crate) fn push(&self, msg: Bytes) -> Result<(), Closed> {
        let mut inner = self.inner.lock();
        if inner.closed.is_some() {
            return Err(Closed);
        }
        inner.bytes += msg.len();
        let result = if inner.bytes > self.max_bytes {
            inner.items = VecDeque::new();
            inner.bytes = 0;
            inner.closed = Some(Disconnect::SLOW);
            Err(Closed)
        } else {
            inner.items.push_back(msg);
            Ok(())
        };
        // Woken under the lock: waking only schedules the writer's task,
        // and the waker cannot be swapped out in between.
        if let Some(w) = inner.wake() {
            w.wake_by_ref();
        }
        result
    }

    /// Closes the queue. What is queued is still written, except after a
    /// slow-consumer disconnect (which the first close already decided).
    /// The first close wins.
    pub(crate) fn close(&self, disconnect: Disconnect) {
        let mut inner = self.inner.lock();
        if inner.closed.is_none() {
            if disconnect == Disconnect::SLOW {
                inner.items = VecDeque::new();
                inner.bytes = 0;
            }
            inner.closed = Some(disconnect);
        }
        if let Some(w) = inner.wake() {
            w.wake_by_ref();
        }
    }

    /// Until `until` (write batching; `None` ends it), pushes do not wake
    /// the writer: it writes when its wait ends. Closing the queue still
    /// wakes it.
    pub(crate) fn hold(&self, until: Option<Instant>) {
        self.inner.lock().hold_until = until;
    }

    /// Messages per drained frame; 0: no count limit.
    pub(crate) fn max_messages(&self) -> usize {
        self.max_messages
    }

    /// The end of the writer's batching wait, if one is on.
    pub(crate) fn hold_until(&self) -> Option<Instant> {
        self.inner.lock().hold_until
    }

    /// The disconnect the queue was closed with, if any.
    pub(crate) fn closed(&self) -> Option<Disconnect> {
        self.inner.lock().closed.clone()
    }

    /// Waits until something is queued or the queue is closed. A wake-up
    /// may be spurious; drain and check.
    pub(crate) fn ready(&self) -> Ready<'_> {
        Ready { queue: self }
    }

    /// Moves queued messages into `frame` until it holds about `max_frame`
    /// bytes or the message limit; at least one message is always taken.
    pub(crate) fn drain(&self, frame: &mut FrameBuilder, max_frame: usize) -> Drained {
        let mut inner = self.inner.lock();
        if frame.is_empty() && inner.items.len() > 1 {
            // Room for the whole batch (messages plus separators) at once.
            frame.reserve((inner.bytes + inner.items.len()).min(max_frame + 1024));
        }
        while let Some(msg) = inner.items.pop_front() {
            inner.bytes -= msg.len();
            frame.push(msg);
            if frame.size() >= max_frame || frame.len() == self.max_messages {
                // The writer drains again at once when more remains.
                return Drained::Open {
                    more: !inner.items.is_empty(),
                };
            }
        }
        match &inner.closed {
            Some(d) => Drained::Closed(d.clone()),
            None => {
                // Release a large backing buffer after a burst.
                if inner.items.capacity() > 64 {
                    inner.items = VecDeque::new();
                }
                Drained::Open { more: false }
            }
        }
    }

    #[cfg(test)]
    /// Bytes waiting to be written.
    pub(crate) fn len_bytes(&self) -> usize {
        self.inner.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Encoding;

    #[test]
    fn overflow_closes_with_slow_and_discards() {
        let q = Queue::new(10);
        q.push(Bytes::from_static(b"12345")).expect("fits");
        assert_eq!(q.push(Bytes::from_static(b"123456")), Err(Closed));
        assert_eq!(q.closed(), Some(Disconnect::SLOW));
        let mut f = FrameBuilder::new(Encoding::Json);
        assert_eq!(q.drain(&mut f, 1 << 20), Drained::Closed(Disconnect::SLOW));
        assert!(f.is_empty());
        assert_eq!(q.push(Bytes::from_static(b"1")), Err(Closed));
    }

    #[test]
    fn close_keeps_queued_messages_for_the_writer() {
        let q = Queue::new(100);
        q.push(Bytes::from_static(b"{}")).expect("fits");
        q.close(Disconnect::SHUTDOWN);
        q.close(Disconnect::SLOW);
        let mut f = FrameBuilder::new(Encoding::Json);
        assert_eq!(
            q.drain(&mut f, 1 << 20),
            Drained::Closed(Disconnect::SHUTDOWN)
        );
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn drain_batches_up_to_frame_size() {
        let q = Queue::new(1000);
        for _ in 0..5 {
            q.push(Bytes::from_static(b"0123456789")).expect("fits");
        }
        let mut f = FrameBuilder::new(Encoding::Json);
        assert_eq!(q.drain(&mut f, 25), Drained::Open { more: true });
        assert_eq!(f.len(), 3);
        assert_eq!(q.len_bytes(), 20);
    }

    #[test]
    fn drain_stops_at_the_message_limit() {
        let q = Queue::new(1000).with_frame_message_limit(2);
        for _ in 0..5 {
            q.push(Bytes::from_static(b"0123456789")).expect("fits");
        }
        let mut f = FrameBuilder::new(Encoding::Json);
        assert_eq!(q.drain(&mut f, 1 << 20), Drained::Open { more: true });
        assert_eq!(f.len(), 2);
        let mut g = FrameBuilder::new(Encoding::Json);
        assert_eq!(q.drain(&mut g, 1 << 20), Drained::Open { more: true });
        assert_eq!(g.len(), 2);
    }

    #[tokio::test]
    async fn a_wake_up_before_the_wait_is_kept() {
        let q = Queue::new(100);
        q.push(Bytes::from_static(b"x")).expect("fits");
        tokio::time::timeout(std::time::Duration::from_secs(5), q.ready())
            .await
            .expect("ready at once");
        // Consumed: the next wait blocks until the next push.
        let again = tokio::time::timeout(std::time::Duration::from_millis(50), q.ready()).await;
        assert!(again.is_err());
    }

    #[tokio::test]
    async fn while_holding_only_a_close_wakes_the_writer() {
        let q = std::sync::Arc::new(Queue::new(100));
        q.hold(Some(Instant::now() + std::time::Duration::from_secs(60)));
        let q2 = q.clone();
        let mut waiter = tokio::spawn(async move { q2.ready().await });
        tokio::task::yield_now().await;
        q.push(Bytes::from_static(b"x")).expect("fits");
        let early = tokio::time::timeout(std::time::Duration::from_millis(50), &mut waiter).await;
        assert!(early.is_err(), "a push woke a holding writer");
        q.close(Disconnect::SHUTDOWN);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken by the close")
            .expect("joined");
    }

    #[tokio::test]
    async fn push_wakes_the_writer() {
        let q = std::sync::Arc::new(Queue::new(100));
        let q2 = q.clone();
        let waiter = tokio::spawn(async move { q2.ready().await });
        q.push(Bytes::from_static(b"x")).expect("fits");
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("joined");
    }
}
