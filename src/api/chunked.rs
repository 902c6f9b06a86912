//! A JSON response body written by a task of its own in bounded chunks, so
//! a large batch answer is never held whole: the producer appends to a
//! buffer, hands each full chunk over a small bounded channel and waits
//! while the client is slow; a client that goes away closes the channel,
//! which stops the producer. A body that fits in the first chunk is sent
//! with a `Content-Length` as before; a longer one is streamed.

use std::future::Future;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tracing::Instrument;

/// Bytes buffered before a chunk is handed to the response.
pub(crate) const CHUNK: usize = 64 << 10;

/// The buffer's first capacity: most answers are small, and glibc
/// consolidates its heap whenever a block of 64 KiB or more is freed.
const FIRST: usize = 8 << 10;

/// Chunks queued between the producer and the connection.
const QUEUED: usize = 4;

/// One piece of the body; `last` is set on the final one.
struct Piece {
    bytes: Bytes,
    last: bool,
}

/// The producer's end: a buffer flushed to the response in chunks.
pub(crate) struct ChunkWriter {
    buf: Vec<u8>,
    tx: mpsc::Sender<Piece>,
}

impl ChunkWriter {
    /// The output buffer to append to.
    pub(crate) fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Hands the buffer over once it holds a full chunk (waiting while
    /// the queue is full). False when the client is gone: stop producing.
    pub(crate) async fn flush_full(&mut self) -> bool {
        if self.buf.len() >= CHUNK {
            let full = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
            let piece = Piece {
                bytes: full.into(),
                last: false,
            };
            if self.tx.send(piece).await.is_err() {
                return false;
            }
        }
        !self.tx.is_closed()
    }

    /// Hands over what is left and ends the body.
    pub(crate) async fn finish(self) {
        let piece = Piece {
            bytes: self.buf.into(),
            last: true,
        };
        // A client already gone is no longer interested.
        let _ = self.tx.send(piece).await;
    }
}

/// Runs `produce` on a task of its own and answers 200 `application/json`
/// with what it writes. The head is sent once the first chunk is ready; a
/// producer that ends without [`ChunkWriter::finish`] (a panic) aborts the
/// body rather than leaving a truncated JSON document looking complete.
pub(crate) async fn respond<F, Fut>(produce: F) -> Response
where
    F: FnOnce(ChunkWriter) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel(QUEUED);
    let writer = ChunkWriter {
        buf: Vec::with_capacity(FIRST),
        tx,
    };
    tokio::spawn(produce(writer).in_current_span());
    let body = match rx.recv().await {
        Some(Piece { bytes, last: true }) => Body::from(bytes),
        Some(Piece { bytes, last: false }) => {
            let rest = futures_util::stream::unfold(Some(rx), |rx| async move {
                let mut rx = rx?;
                match rx.recv().await {
                    Some(Piece { bytes, last }) => Some((Ok(bytes), (!last).then_some(rx))),
                    None => Some((Err(std::io::Error::other("batch stopped")), None)),
                }
            });
            let first = futures_util::stream::once(async move { Ok(bytes) });
            Body::from_stream(first.chain(rest))
        }
        None => {
            let mut resp = Response::new(Body::from("Internal Server Error"));
            *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            return resp;
        }
    };
    let mut resp = Response::new(body);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn produce_n(n: usize) -> Response {
        respond(move |mut w| async move {
            for _ in 0..n {
                w.buf().extend_from_slice(&[b'x'; 1000]);
                if !w.flush_full().await {
                    return;
                }
            }
            w.finish().await;
        })
        .await
    }

    #[tokio::test]
    async fn small_bodies_have_a_length_and_large_ones_stream() {
        let small = produce_n(3).await;
        assert_eq!(small.headers()[header::CONTENT_TYPE], "application/json");
        let body = small.into_body();
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(3000));
        assert_eq!(body.collect().await.expect("body").to_bytes().len(), 3000);

        let large = produce_n(1000).await;
        let body = large.into_body();
        assert_eq!(http_body::Body::size_hint(&body).exact(), None);
        let bytes = body.collect().await.expect("body").to_bytes();
        assert_eq!(bytes.len(), 1_000_000);
        assert!(bytes.iter().all(|&b| b == b'x'));
    }

    #[tokio::test]
    async fn a_dropped_body_stops_the_producer() {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let resp = respond(move |mut w| async move {
            let mut written = 0usize;
            loop {
                w.buf().extend_from_slice(&[b'y'; 1000]);
                written += 1000;
                if !w.flush_full().await {
                    break;
                }
            }
            let _ = done_tx.send(written);
        })
        .await;
        drop(resp);
        let written = tokio::time::timeout(std::time::Duration::from_secs(5), done_rx)
            .await
            .expect("producer stops")
            .expect("reported");
        assert!(written <= (QUEUED + 3) * CHUNK, "{written}");
    }

    #[tokio::test]
    async fn a_producer_that_dies_aborts_the_body() {
        let resp = respond(|mut w| async move {
            w.buf().extend_from_slice(&[b'z'; CHUNK]);
            assert!(w.flush_full().await);
            drop(w);
        })
        .await;
        assert!(resp.into_body().collect().await.is_err());
    }
}
