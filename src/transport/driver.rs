//! The connection loop every transport shares.
//!
//! A transport builds a [`Session`], wraps its socket or stream in a
//! [`Link`] and calls [`drive`]. One task then serves the connection: it
//! feeds what the link reads into the session, writes what the session's
//! queue holds (several queued messages go out as one frame, framed as the
//! transport needs), and runs the session's timers. When the queue closes,
//! the link ends the connection its own way (a close frame, a disconnect
//! push). No protocol logic lives here or in a link.
//!
//! Write batching (`client.write_delay`, `client.max_messages_in_frame`,
//! `client.reply_without_queue`, Centrifugo PRO's options): once connected,
//! a write waits `write_delay` for more messages, then writes one frame of
//! at most `max_messages_in_frame` messages and waits again while more are
//! queued. The connect reply is never held; other replies are held unless
//! `reply_without_queue`. Pushes during the wait do not wake the writer; a
//! disconnect does, and goes out at once with what was held.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::node::Node;
use crate::protocol::Disconnect;
use crate::protocol::codec::{FrameBuilder, Framing};
use crate::session::Session;
use crate::session::queue::Drained;
use crate::session::shared::Shared;

/// How long a link may take to say goodbye beyond one write: a WebSocket
/// waits this long for the client's close frame after its own.
pub(crate) const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// What a link read from the client.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// One frame of commands (JSON `\n`-joined, or Protobuf
    /// varint-length-delimited), fed to [`Session::handle_frame`].
    Frame(Bytes),
    /// The client went away; nothing more is written.
    Gone,
    /// The read side ends the connection with this disconnect (for
    /// example 1009, message too big).
    Close(Disconnect),
}

/// The link failed to write: the peer is gone or the write broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LinkGone;

/// One client connection as a transport sees it.
pub(crate) trait Link: Send {
    /// The next inbound event. A link without a read side resolves only
    /// when the client goes away, or never. Must be cancel-safe: it is
    /// raced against the other wake-ups and dropped when one of them wins.
    fn recv(&mut self) -> impl Future<Output = Inbound> + Send;

    /// Writes one frame built with the link's framing. The driver applies
    /// the write timeout around it.
    fn send(&mut self, frame: Bytes) -> impl Future<Output = Result<(), LinkGone>> + Send;

    /// Ends the connection with `d` after everything queued was written:
    /// a WebSocket sends its close frame and waits for the peer's, a stream
    /// writes a disconnect push and ends. Not called when the peer is
    /// already gone or a write failed. The driver cuts it off after the
    /// write timeout plus [`CLOSE_WAIT`].
    fn close(&mut self, d: Disconnect) -> impl Future<Output = ()> + Send;
}

/// How the driver frames what the queue holds.
#[derive(Debug, Clone)]
pub(crate) struct DriveOptions {
    /// How queued messages are joined into a frame.
    pub(crate) framing: Framing,
    /// Send pushes without their Reply envelope (unidirectional transports).
    pub(crate) uni: bool,
    /// Largest frame built from queued messages; 0 sends one message per
    /// frame.
    pub(crate) max_frame: usize,
    /// How long one frame may take to write (then 3009).
    pub(crate) write_timeout: Duration,
    /// Transport name for metrics.
    pub(crate) transport: &'static str,
}

/// What ended the connection loop.
enum End {
    /// Close with this code after flushing.
    Disconnect(Disconnect),
    /// The peer went away; nothing more to write.
    Gone,
    /// The link is stuck or broken; record why and drop it.
    Failed(Disconnect),
}

/// Serves one connection until it ends, then closes the session.
pub(crate) async fn drive<L: Link>(
    node: Arc<Node>,
    mut session: Session,
    mut link: L,
    opts: DriveOptions,
) {
    let shared = session.shared().clone();
    // Looked up once: the registry lookup per write showed in profiles.
    let sent =
        metrics::counter!("centrifugo_transport_messages_sent", "transport" => opts.transport);
    let out = Out {
        opts: &opts,
        sent: &sent,
    };
    let mut shutdown_seen = false;
    // The wake-up sources live across loop turns: a turn happens on every
    // publication, and re-creating a timer entry and the shutdown and
    // signal waiters each time costs more than the write itself.
    let mut deadline = session.next_deadline();
    let timer = tokio::time::sleep_until(deadline);
    let shutdown = node.shutdown.cancelled();
    let mut ready = pin!(shared.queue.ready());
    let mut signal = pin!(shared.signal.notified());
    tokio::pin!(timer, shutdown);
    // The session's timers only move when the session ran (a frame, a
    // timer, a signal); a turn that only wrote leaves them alone.
    let mut session_ran = false;
    // Write batching: queued messages wait until the queue's hold ends.
    // The session's timer entry serves both (one entry per connection).
    let mut holding = false;
    // The wait just ended: write one batch.
    let mut hold_ended = false;
    let end = loop {
        if hold_ended {
            hold_ended = false;
            match Box::pin(flush(&shared, &mut link, out, true)).await {
                Flush::Idle => {}
                Flush::More => {
                    let delay = node.config().client.batching_delay().unwrap_or_default();
                    hold(&shared, delay, &mut timer, deadline);
                    holding = true;
                }
                Flush::Closed(d) => break End::Disconnect(d),
                Flush::Failed(d) => break End::Failed(d),
            }
        }
        if session_ran {
            session_ran = false;
            let next = session.next_deadline();
            if next != deadline {
                deadline = next;
                timer.as_mut().reset(earliest(deadline, holding, &shared));
            }
        }
        tokio::select! {
            biased;
            () = &mut ready => {
                ready.set(shared.queue.ready());
                if holding {
                    // Only a close wakes a holding writer (or a spurious
                    // wake-up): a disconnect is not held back.
                    if shared.queue.closed().is_none() {
                        continue;
                    }
                    holding = false;
                    shared.queue.hold(None);
                } else if let Some(delay) = node.config().client.batching_delay()
                    && session.is_connected()
                {
                    hold(&shared, delay, &mut timer, deadline);
                    holding = true;
                    continue;
                }
                if let Some(end) = written(Box::pin(flush(&shared, &mut link, out, false)).await) {
                    break end;
                }
            }
            inbound = link.recv() => {
                let data = match inbound {
                    Inbound::Frame(data) => data,
                    Inbound::Gone => break End::Gone,
                    Inbound::Close(d) => break End::Disconnect(d),
                };
                session_ran = true;
                let client = &node.config().client;
                let batching = client.batching_delay().map(|_| client.reply_without_queue);
                // Boxed: the command's future is large and only lives while
                // a frame is processed, not in every idle task.
                let handled = Box::pin(handle_while_flushing(
                    &mut session,
                    &shared,
                    &data,
                    (&mut link, out, batching),
                    &mut ready,
                    || shared.queue.ready(),
                ))
                .await;
                if let Some(end) = handled {
                    break end;
                }
            }
            () = &mut timer => {
                let now = Instant::now();
                if holding && shared.queue.hold_until().is_none_or(|at| at <= now) {
                    holding = false;
                    shared.queue.hold(None);
                    hold_ended = true;
                }
                if deadline <= now {
                    if let Err(d) = Box::pin(session.on_timer()).await {
                        shared.disconnect(d);
                    }
                    deadline = session.next_deadline();
                }
                // Re-arm even if nothing moved (a spurious fire).
                timer.as_mut().reset(earliest(deadline, holding, &shared));
            }
            () = &mut signal => {
                signal.set(shared.signal.notified());
                Box::pin(session.on_signal()).await;
                session_ran = true;
            }
            () = &mut shutdown, if !shutdown_seen => {
                shutdown_seen = true;
                shared.disconnect(Disconnect::SHUTDOWN);
            }
        }
    };
    Box::pin(session.close()).await;
    match end {
        End::Gone => {}
        // The link is stuck or broken: no goodbye through it.
        End::Failed(d) => {
            if d != Disconnect::CONNECTION_CLOSED {
                count_disconnect(&d);
            }
        }
        End::Disconnect(d) => {
            count_disconnect(&d);
            if d != Disconnect::CONNECTION_CLOSED {
                let bound = opts.write_timeout + CLOSE_WAIT;
                let _ = Box::pin(tokio::time::timeout(bound, link.close(d))).await;
            }
        }
    }
}

/// Runs one client frame through the session. A command may wait on a
/// proxy call (up to its timeout): meanwhile what is queued for this client
/// is still written, unless writes are batched (`batching`: whether
/// replies skip the wait). The command is never cancelled half-way; a
/// write failure is returned after it finished.
async fn handle_while_flushing<L, F>(
    session: &mut Session,
    shared: &Shared,
    data: &[u8],
    (link, out, batching): (&mut L, Out<'_>, Option<bool>),
    ready: &mut std::pin::Pin<&mut F>,
    renew: impl Fn() -> F,
) -> Option<End>
where
    L: Link,
    F: Future<Output = ()>,
{
    // Batched writes: the connect reply, and replies with
    // `reply_without_queue`, go out when the frame was handled.
    let flush_after = match batching {
        None => false,
        Some(replies_at_once) => replies_at_once || !session.is_connected(),
    };
    let mut handling = pin!(session.handle_frame(data));
    let mut failed = None;
    loop {
        tokio::select! {
            biased;
            r = &mut handling => {
                if let Err(d) = r {
                    shared.disconnect(d);
                }
                break;
            }
            () = ready.as_mut(), if batching.is_none() && failed.is_none() => {
                ready.set(renew());
                failed = written(Box::pin(flush(shared, link, out, false)).await);
            }
        }
    }
    if flush_after && failed.is_none() {
        failed = written(Box::pin(flush(shared, link, out, false)).await);
    }
    failed
}

/// How a flush ended, for a caller that does not pace writes: `None` when
/// the connection goes on.
fn written(flush: Flush) -> Option<End> {
    match flush {
        Flush::Idle | Flush::More => None,
        Flush::Closed(d) => Some(End::Disconnect(d)),
        Flush::Failed(d) => Some(End::Failed(d)),
    }
}

fn count_disconnect(d: &Disconnect) {
    metrics::counter!("centrifugo_client_num_server_disconnects", "code" => d.code.to_string())
        .increment(1);
}

/// How and where the queue is written out.
#[derive(Clone, Copy)]
struct Out<'a> {
    opts: &'a DriveOptions,
    /// `centrifugo_transport_messages_sent` for this transport.
    sent: &'a metrics::Counter,
}

/// Starts a write-batching wait of `delay`: the queue holds pushes back,
/// the timer fires when the wait ends.
fn hold(
    shared: &Shared,
    delay: Duration,
    timer: &mut std::pin::Pin<&mut tokio::time::Sleep>,
    deadline: Instant,
) {
    let at = Instant::now() + delay;
    shared.queue.hold(Some(at));
    timer.as_mut().reset(at.min(deadline));
}

/// The session's deadline, or the end of a write-batching wait if sooner.
fn earliest(deadline: Instant, holding: bool, shared: &Shared) -> Instant {
    if !holding {
        return deadline;
    }
    shared
        .queue
        .hold_until()
        .map_or(deadline, |at| at.min(deadline))
}

/// Outcome of writing out the queue.
enum Flush {
    /// Everything queued was written.
    Idle,
    /// One frame was written (`once`) and more is queued.
    More,
    /// The queue closed with this disconnect after what preceded it was
    /// written: end the connection gracefully.
    Closed(Disconnect),
    /// The link is stuck or broken: drop it without a goodbye.
    Failed(Disconnect),
}

/// Writes what the queue holds. A write that blocks (the client does not
/// read) is raced against the queue overflowing, so a slow client is cut
/// off with 3008 as soon as its queue is full rather than when the write
/// times out (3009).
///
/// The frame builder is made per flush (it holds no allocation between
/// flushes): kept in the connection's task it would sit in every idle
/// connection. With `once` (batched writes), it stops after the queue's
/// message limit (one frame where messages are joined).
async fn flush<L: Link>(shared: &Shared, link: &mut L, out: Out<'_>, once: bool) -> Flush {
    let (queue, opts) = (&shared.queue, out.opts);
    let mut frame = FrameBuilder::framed(shared.encoding, opts.framing, opts.uni);
    let mut written = 0;
    loop {
        let drained = queue.drain(&mut frame, opts.max_frame);
        if !frame.is_empty() {
            written += frame.len();
            let n = frame.len() as u64;
            let bytes = frame.finish();
            let send = tokio::time::timeout(opts.write_timeout, link.send(bytes));
            tokio::pin!(send);
            let sent = loop {
                tokio::select! {
                    r = &mut send => break r,
                    () = queue.ready() => {
                        if queue.closed() == Some(Disconnect::SLOW) {
                            return Flush::Failed(Disconnect::SLOW);
                        }
                    }
                }
            };
            match sent {
                Ok(Ok(())) => out.sent.increment(n),
                Ok(Err(LinkGone)) => return Flush::Failed(Disconnect::CONNECTION_CLOSED),
                Err(_) => return Flush::Failed(Disconnect::WRITE_ERROR),
            }
        }
        match drained {
            Drained::Closed(d) => return Flush::Closed(d),
            Drained::Open { more: false } => return Flush::Idle,
            Drained::Open { more: true }
                if once && queue.max_messages() > 0 && written >= queue.max_messages() =>
            {
                return Flush::More;
            }
            Drained::Open { more: true } => {}
        }
    }
}
