//! The per-connection outbound queue, bounded in bytes.
//!
//! Anyone may push (the hub's fan-out, the session's own replies); only the
//! connection's writer drains. Pushing never blocks and never drops
//! silently: when the queued bytes exceed the limit the queue closes itself
//! with disconnect 3008 (slow) and discards what it held, and the writer
//! closes the connection with that code.

use std::collections::VecDeque;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::protocol::Disconnect;
use crate::protocol::codec::FrameBuilder;

/// The queue is closed; nothing more will be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed;

#[derive(Debug)]
struct Inner {
    items: VecDeque<Bytes>,
    bytes: usize,
    closed: Option<Disconnect>,
}

/// A bounded byte queue with a single consumer.
#[derive(Debug)]
pub struct Queue {
    inner: Mutex<Inner>,
    notify: Notify,
    max_bytes: usize,
}

/// What a drain produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Drained {
    /// Messages were appended to the frame (maybe none); `more` when the
    /// frame filled up before the queue emptied.
    Open { more: bool },
    /// The queue is closed: after writing what was appended, close the
    /// connection with this disconnect.
    Closed(Disconnect),
}

impl Queue {
    /// A queue that holds at most `max_bytes` (0 means 1 MiB).
    pub fn new(max_bytes: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                items: VecDeque::new(),
                bytes: 0,
                closed: None,
            }),
            notify: Notify::new(),
            max_bytes: if max_bytes == 0 { 1 << 20 } else { max_bytes },
        }
    }

    /// Appends a message. Overflow closes the queue with 3008.
    pub fn push(&self, msg: Bytes) -> Result<(), Closed> {
        {
            let mut inner = self.inner.lock();
            if inner.closed.is_some() {
                return Err(Closed);
            }
            inner.bytes += msg.len();
            if inner.bytes > self.max_bytes {
                inner.items = VecDeque::new();
                inner.bytes = 0;
                inner.closed = Some(Disconnect::SLOW);
                drop(inner);
                self.notify.notify_one();
                return Err(Closed);
            }
            inner.items.push_back(msg);
        }
        self.notify.notify_one();
        Ok(())
    }

    /// Closes the queue. What is queued is still written, except after a
    /// slow-consumer disconnect (which the first close already decided).
    /// The first close wins.
    pub fn close(&self, disconnect: Disconnect) {
        let mut inner = self.inner.lock();
        if inner.closed.is_none() {
            if disconnect == Disconnect::SLOW {
                inner.items = VecDeque::new();
                inner.bytes = 0;
            }
            inner.closed = Some(disconnect);
        }
        drop(inner);
        self.notify.notify_one();
    }

    /// The disconnect the queue was closed with, if any.
    pub fn closed(&self) -> Option<Disconnect> {
        self.inner.lock().closed.clone()
    }

    /// Waits until something is queued or the queue is closed. A wake-up
    /// may be spurious; drain and check.
    pub async fn ready(&self) {
        self.notify.notified().await;
    }

    /// Moves queued messages into `frame` until it holds about `max_frame`
    /// bytes (at least one message is always taken).
    pub fn drain(&self, frame: &mut FrameBuilder, max_frame: usize) -> Drained {
        let mut inner = self.inner.lock();
        if frame.is_empty() && inner.items.len() > 1 {
            // Room for the whole batch (messages plus separators) at once.
            frame.reserve((inner.bytes + inner.items.len()).min(max_frame + 1024));
        }
        while let Some(msg) = inner.items.pop_front() {
            inner.bytes -= msg.len();
            frame.push(msg);
            if frame.size() >= max_frame {
                let more = !inner.items.is_empty();
                // More remains: make sure the writer comes back for it.
                if more {
                    self.notify.notify_one();
                }
                return Drained::Open { more };
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

    /// Bytes waiting to be written.
    pub fn len_bytes(&self) -> usize {
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
