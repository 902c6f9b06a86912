//! One server-side WebSocket connection over an upgraded socket.
//!
//! Reads go through a small buffer (1 KiB, grown for a large frame and
//! shrunk back after it) into the [`Parser`]; complete messages are
//! inflated and UTF-8-checked once. Pings are answered and a client close
//! is echoed; those control frames wait in a small pending buffer that is
//! written before anything else, so reading stays cancel-safe. Each data
//! message goes out as one frame with a single (vectored) write of header
//! and payload.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::deflate::{self, InflateError};
use super::frame::{self, Event, Fail, MAX_HEADER, Parser, opcode};
use crate::protocol::Disconnect;
use crate::transport::driver::{CLOSE_WAIT, Inbound, Link, LinkGone};

/// Bytes read from the socket at a time; small to keep idle connections lean.
pub(crate) const READ_BUFFER: usize = 1024;
/// How long to wait for the client's close frame after ours once the
/// client broke the protocol (RFC 6455 §7.1.7, failing the connection):
/// only a moment to take in what it already sent, so the socket ends with
/// a FIN that does not destroy our close frame. Otherwise [`CLOSE_WAIT`].
pub(crate) const FAIL_WAIT: Duration = Duration::from_secs(1);
/// Frames up to this size are copied next to their header when the socket
/// cannot write vectored, so they still go out in one write.
const SMALL_FRAME: usize = 16 * 1024;
/// Control frames waiting beyond this are dropped (a client that pings
/// without reading does not get to grow our buffer).
const MAX_PENDING: usize = 1024;

/// Negotiated permessage-deflate settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deflate {
    /// flate2 level (0..=9).
    pub(crate) level: u32,
    /// Messages shorter than this go out uncompressed.
    pub(crate) min_size: usize,
    /// Largest inflated message; more closes with 1009.
    pub(crate) max_inflated: usize,
}

/// How a connection reads and writes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    /// Data messages we send are text (JSON) rather than binary.
    pub(crate) text: bool,
    /// Largest message the client may send (its payload on the wire).
    pub(crate) max_message: usize,
    /// Set when permessage-deflate was negotiated.
    pub(crate) deflate: Option<Deflate>,
    /// How long our close frame may take to write.
    pub(crate) write_timeout: Duration,
}

/// What a read produced.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Read {
    /// One data message, inflated and checked.
    Message(Bytes),
    /// A pong frame (for transports that ping on their own).
    Pong,
    /// The client closed (its close was echoed) or the socket ended.
    Gone,
    /// The client broke the protocol: close with this code.
    Fail(Fail),
}

/// What reading does after the client broke the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recovery {
    /// Nothing failed.
    None,
    /// The refused frame heads the buffer: skip it (its length once known).
    Skip(Option<u64>),
    /// Frames parse again (the failed message was consumed).
    Parse,
    /// Nothing parses: discard everything.
    Raw,
}

/// A server WebSocket connection.
pub(crate) struct WsConn<S> {
    io: S,
    rbuf: BytesMut,
    /// The read buffer was grown for a large frame: shrink it back.
    grown: bool,
    parser: Parser,
    /// Encoded control frames not yet written.
    pending: BytesMut,
    /// Some of `pending` was written and not flushed yet.
    unflushed: bool,
    /// Reading is over (the client's close arrived, or we failed the
    /// connection): once `pending` is out, reads report the client gone.
    done: bool,
    /// How reading goes on after a failure (to find the client's close).
    after_fail: Recovery,
    opts: Options,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> WsConn<S> {
    /// Wraps an upgraded socket (the handshake is done).
    pub(crate) fn new(io: S, opts: Options) -> Self {
        Self {
            io,
            rbuf: BytesMut::with_capacity(READ_BUFFER),
            grown: false,
            parser: Parser::new(opts.max_message, opts.deflate.is_some()),
            pending: BytesMut::new(),
            unflushed: false,
            done: false,
            after_fail: Recovery::None,
            opts,
        }
    }

    /// The next data message. Cancel-safe: bytes read and control frames
    /// queued are kept in the connection, and the future holds nothing but
    /// a reference to it (it sits in every idle connection's task).
    pub(crate) fn read(&mut self) -> impl Future<Output = Read> + Send + '_ {
        std::future::poll_fn(move |cx| self.poll_read(cx))
    }

    /// Polls for the next data message (see [`WsConn::read`]).
    pub(crate) fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Read> {
        loop {
            match self.poll_pending(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => return Poll::Ready(Read::Gone),
                Poll::Pending => return Poll::Pending,
            }
            if self.done {
                return Poll::Ready(Read::Gone);
            }
            if self.after_fail != Recovery::None {
                return Poll::Ready(Read::Fail(Fail::protocol("protocol error")));
            }
            match self.parser.next(&mut self.rbuf) {
                Err(f) => {
                    // The refused frame is still at the head of the buffer.
                    self.after_fail = Recovery::Skip(None);
                    return Poll::Ready(Read::Fail(f));
                }
                Ok(Some(Event::Message {
                    text,
                    compressed,
                    payload,
                })) => {
                    self.shrink();
                    return Poll::Ready(match self.message(text, compressed, payload) {
                        Ok(b) => Read::Message(b),
                        Err(f) => {
                            // The message was consumed: frames go on.
                            self.after_fail = Recovery::Parse;
                            Read::Fail(f)
                        }
                    });
                }
                Ok(Some(Event::Ping(p))) => self.queue_control(opcode::PONG, &p),
                Ok(Some(Event::Pong)) => return Poll::Ready(Read::Pong),
                Ok(Some(Event::Close(code, _))) => {
                    let echo = code.map(u16::to_be_bytes);
                    self.queue_control(opcode::CLOSE, echo.as_ref().map_or(&[][..], |c| &c[..]));
                    self.done = true;
                }
                Ok(None) => match self.poll_fill(cx) {
                    Poll::Ready(true) => {}
                    Poll::Ready(false) => return Poll::Ready(Read::Gone),
                    Poll::Pending => return Poll::Pending,
                },
            }
        }
    }

    /// Writes one data message as one frame (deflated when negotiated and
    /// long enough).
    pub(crate) async fn write(&mut self, data: Bytes) -> io::Result<()> {
        if !self.pending.is_empty() || self.unflushed {
            self.write_pending().await?;
        }
        let compressed = match self.opts.deflate {
            Some(d) if data.len() >= d.min_size => deflate::compress(&data, d.level),
            _ => None,
        };
        let (payload, rsv1) = match compressed {
            Some(c) => (Bytes::from(c), true),
            None => (data, false),
        };
        let op = if self.opts.text {
            opcode::TEXT
        } else {
            opcode::BINARY
        };
        let mut hdr = [0u8; MAX_HEADER];
        let n = frame::encode_header(&mut hdr, op, rsv1, payload.len());
        if self.io.is_write_vectored() || payload.len() > SMALL_FRAME {
            let mut chain = Buf::chain(&hdr[..n], payload);
            self.io.write_all_buf(&mut chain).await?;
        } else {
            let mut buf = BytesMut::with_capacity(n + payload.len());
            buf.extend_from_slice(&hdr[..n]);
            buf.extend_from_slice(&payload);
            self.io.write_all_buf(&mut buf).await?;
        }
        self.io.flush().await
    }

    /// Fails the connection for a transport that ends it on its own: our
    /// close frame with the failure's code is queued, and reads report the
    /// client gone once it is written.
    pub(crate) fn fail(&mut self, f: Fail) {
        let mut payload = f.code.to_be_bytes().to_vec();
        payload.extend_from_slice(f.reason.as_bytes());
        self.queue_control(opcode::CLOSE, &payload);
        self.done = true;
    }

    /// Sends a ping frame (empty payload).
    pub(crate) async fn ping(&mut self) -> io::Result<()> {
        self.queue_control(opcode::PING, &[]);
        self.write_pending().await
    }

    /// Sends a close frame with `code` and `reason` (cut to fit), then
    /// waits up to [`CLOSE_WAIT`] for the client's close ([`FAIL_WAIT`]
    /// after a protocol failure other than an oversized message).
    pub(crate) async fn close_with(&mut self, code: u16, reason: &str) {
        let mut end = reason.len().min(frame::MAX_CONTROL - 2);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let mut payload = Vec::with_capacity(2 + end);
        payload.extend_from_slice(&code.to_be_bytes());
        payload.extend_from_slice(&reason.as_bytes()[..end]);
        self.queue_control(opcode::CLOSE, &payload);
        let timeout = self.opts.write_timeout;
        if !matches!(
            tokio::time::timeout(timeout, self.write_pending()).await,
            Ok(Ok(()))
        ) {
            return;
        }
        let failed = self.after_fail != Recovery::None && code != 1009;
        let wait = if failed { FAIL_WAIT } else { CLOSE_WAIT };
        let _ = tokio::time::timeout(wait, self.await_close()).await;
    }

    /// Reads until the client's close frame or the end of the socket.
    /// After a refused frame, that frame is skipped first; if what follows
    /// does not parse either, everything is discarded until the end.
    async fn await_close(&mut self) {
        loop {
            match self.after_fail {
                Recovery::Skip(None) => {
                    self.after_fail = match frame::frame_len(&self.rbuf) {
                        Some(n) => Recovery::Skip(Some(n)),
                        None => Recovery::Skip(None),
                    };
                    if self.after_fail != Recovery::Skip(None) {
                        continue;
                    }
                }
                Recovery::Skip(Some(left)) => {
                    let n = left.min(self.rbuf.len() as u64);
                    self.rbuf.advance(n as usize);
                    if n == left {
                        self.parser =
                            Parser::new(self.opts.max_message, self.opts.deflate.is_some());
                        self.after_fail = Recovery::Parse;
                        continue;
                    }
                    self.after_fail = Recovery::Skip(Some(left - n));
                }
                Recovery::Raw => self.rbuf.clear(),
                Recovery::None | Recovery::Parse => match self.parser.next(&mut self.rbuf) {
                    Ok(Some(Event::Close(..))) => return,
                    Ok(Some(_)) => continue,
                    Ok(None) => {}
                    Err(_) => {
                        self.after_fail = Recovery::Raw;
                        continue;
                    }
                },
            }
            if !self.fill_for_close().await {
                return;
            }
        }
    }

    /// Reads more while waiting for the client's close: a plain buffer,
    /// never grown for a frame being skipped.
    async fn fill_for_close(&mut self) -> bool {
        if !matches!(self.after_fail, Recovery::None | Recovery::Parse) {
            if self.rbuf.capacity() - self.rbuf.len() == 0 {
                self.rbuf.reserve(READ_BUFFER);
            }
            return matches!(self.io.read_buf(&mut self.rbuf).await, Ok(n) if n > 0);
        }
        self.fill().await
    }

    /// Reads more bytes into the buffer; false at the end of the socket.
    async fn fill(&mut self) -> bool {
        std::future::poll_fn(|cx| self.poll_fill(cx)).await
    }

    /// Polls for more bytes; `Ready(false)` at the end of the socket (or
    /// on a read error).
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        let want = self.parser.want();
        let spare = self.rbuf.capacity() - self.rbuf.len();
        if want > self.rbuf.len() + spare {
            // A large frame: room for all of it at once.
            self.rbuf.reserve(want - self.rbuf.len());
            self.grown = true;
        } else if spare < READ_BUFFER / 4 {
            // Back to a full read buffer; when the frames taken out of it
            // are gone this reuses its allocation (the rest moves to the
            // front) instead of reading a few bytes at a time.
            let len = self.rbuf.len();
            self.rbuf
                .reserve(READ_BUFFER.saturating_sub(len).max(READ_BUFFER / 4));
        }
        match tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.rbuf) {
            Poll::Ready(Ok(n)) => Poll::Ready(n > 0),
            Poll::Ready(Err(_)) => Poll::Ready(false),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Gives back the memory of a grown read buffer.
    fn shrink(&mut self) {
        if self.grown && self.rbuf.len() <= READ_BUFFER {
            let mut fresh = BytesMut::with_capacity(READ_BUFFER);
            fresh.extend_from_slice(&self.rbuf);
            self.rbuf = fresh;
            self.grown = false;
        }
    }

    /// Inflates and checks one complete message.
    fn message(&self, text: bool, compressed: bool, payload: BytesMut) -> Result<Bytes, Fail> {
        let data = match self.opts.deflate {
            Some(d) if compressed => match deflate::decompress(&payload, d.max_inflated) {
                Ok(v) => Bytes::from(v),
                Err(InflateError::TooBig) => return Err(Fail::TOO_BIG),
                Err(InflateError::Invalid) => {
                    return Err(Fail::invalid("invalid compressed data"));
                }
            },
            // The parser refuses RSV1 when deflate is off.
            _ => payload.freeze(),
        };
        if text && std::str::from_utf8(&data).is_err() {
            return Err(Fail::invalid("invalid UTF-8 in text message"));
        }
        Ok(data)
    }

    /// Queues a control frame unless too much is already waiting.
    fn queue_control(&mut self, op: u8, payload: &[u8]) {
        if self.pending.len() > MAX_PENDING && op != opcode::CLOSE {
            return;
        }
        let mut hdr = [0u8; MAX_HEADER];
        let n = frame::encode_header(&mut hdr, op, false, payload.len());
        self.pending.extend_from_slice(&hdr[..n]);
        self.pending.extend_from_slice(payload);
    }

    /// Writes the pending control frames.
    async fn write_pending(&mut self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_pending(cx)).await
    }

    /// Polls the pending control frames out (and flushes after them). What
    /// was written is removed from the buffer as it goes.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            match Pin::new(&mut self.io).poll_write(cx, &self.pending) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    self.pending.advance(n);
                    self.unflushed = true;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        if self.unflushed {
            match Pin::new(&mut self.io).poll_flush(cx) {
                Poll::Ready(Ok(())) => {
                    self.unflushed = false;
                    // Release the buffer: idle connections keep none.
                    self.pending = BytesMut::new();
                }
                other => return other,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Link for WsConn<S> {
    fn recv(&mut self) -> impl Future<Output = Inbound> + Send {
        std::future::poll_fn(move |cx| {
            loop {
                return Poll::Ready(match std::task::ready!(self.poll_read(cx)) {
                    Read::Message(b) => Inbound::Frame(b),
                    Read::Pong => continue,
                    Read::Gone => Inbound::Gone,
                    Read::Fail(f) => Inbound::Close(Disconnect::new(u32::from(f.code), f.reason)),
                });
            }
        })
    }

    async fn send(&mut self, frame: Bytes) -> Result<(), LinkGone> {
        self.write(frame).await.map_err(|_| LinkGone)
    }

    async fn close(&mut self, d: Disconnect) {
        let code = u16::try_from(d.code).unwrap_or(1011);
        self.close_with(code, &d.reason).await;
    }
}

#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;
