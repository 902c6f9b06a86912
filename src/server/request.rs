//! What each request of a listener's connection carries: the connection's
//! request counts (held until the response body is done, so a streamed
//! session keeps its connection busy), the peer address, and the body's
//! arrival, with a deadline of its own on HTTP/2 (HTTP/1 bodies are timed
//! by the connection's watchdog, [`super::conn`]).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;
use tower::util::Oneshot;

use super::conn::{BoxError, Close, Protocol, closed};
use super::pending::ConnState;

/// The per-connection hyper service: counts requests on the connection,
/// adds the peer address and the body deadline, then calls `inner`.
#[derive(Clone)]
pub(super) struct Tracked<S> {
    pub(crate) inner: S,
    pub(crate) state: Arc<ConnState>,
    pub(crate) peer: SocketAddr,
    pub(crate) local: SocketAddr,
    pub(crate) protocol: Protocol,
    pub(crate) body_read: Duration,
}

impl<S, B> hyper::service::Service<Request<Incoming>> for Tracked<S>
where
    S: tower::Service<Request<DeadlineBody>, Response = Response<B>, Error = Infallible> + Clone,
{
    type Response = Response<TrackedBody<B>>;
    type Error = Infallible;
    type Future = TrackedFuture<Oneshot<S, Request<DeadlineBody>>>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        let h2 = req.version() == http::Version::HTTP_2;
        if h2 {
            self.state.set_h2();
        }
        let reading = !req.body().is_end_stream();
        self.state.begin(reading);
        let guard = RequestGuard(self.state.clone());
        // The peer address in the form the listener's routes read it.
        let ext = req.extensions_mut();
        match self.protocol {
            Protocol::Http => {
                ext.insert(axum::extract::ConnectInfo(self.peer));
            }
            Protocol::Grpc => {
                ext.insert(tonic::transport::server::TcpConnectInfo {
                    local_addr: Some(self.local),
                    remote_addr: Some(self.peer),
                });
            }
        }
        // HTTP/1 bodies are timed by the watchdog, at no cost per request;
        // HTTP/2 streams share a connection, so each body times itself.
        let deadline = (h2 && reading).then(|| Instant::now() + self.body_read);
        let req = req.map(|inner| DeadlineBody {
            inner,
            deadline,
            sleep: None,
            reading: reading.then(|| self.state.clone()),
        });
        TrackedFuture {
            inner: self.inner.clone().oneshot(req),
            guard: Some(guard),
        }
    }
}

/// Ends a request in its connection's counts when dropped.
struct RequestGuard(Arc<ConnState>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.end();
    }
}

pin_project! {
    /// The response future of [`Tracked`]: moves the request's guard into
    /// the response body.
    pub(crate) struct TrackedFuture<F> {
        #[pin]
        inner: F,
        guard: Option<RequestGuard>,
    }
}

impl<F, B> Future for TrackedFuture<F>
where
    F: Future<Output = Result<Response<B>, Infallible>>,
{
    type Output = Result<Response<TrackedBody<B>>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(resp) = ready!(this.inner.poll(cx));
        let guard = this.guard.take();
        Poll::Ready(Ok(resp.map(|inner| TrackedBody {
            inner,
            _guard: guard,
        })))
    }
}

pin_project! {
    /// A response body that keeps its request counted while it lives.
    pub(crate) struct TrackedBody<B> {
        #[pin]
        inner: B,
        _guard: Option<RequestGuard>,
    }
}

impl<B: Body> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The request body did not arrive within `body_read_timeout`.
#[derive(Debug)]
pub(crate) struct BodyTimeout;

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request body not received in time")
    }
}

impl std::error::Error for BodyTimeout {}

/// A request body that marks its connection as no longer pending once it
/// has arrived, and (HTTP/2) must arrive by a deadline.
pub(crate) struct DeadlineBody {
    inner: Incoming,
    deadline: Option<Instant>,
    /// Armed the first time the body has to wait.
    sleep: Option<Pin<Box<Sleep>>>,
    /// The connection, until the body is complete.
    reading: Option<Arc<ConnState>>,
}

impl DeadlineBody {
    fn done(&mut self) {
        if let Some(state) = self.reading.take() {
            state.body_done();
        }
    }
}

impl Drop for DeadlineBody {
    fn drop(&mut self) {
        self.done();
    }
}

impl Body for DeadlineBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if this.inner.is_end_stream() {
                    this.done();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.done();
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                this.done();
                Poll::Ready(None)
            }
            Poll::Pending => {
                let Some(deadline) = this.deadline else {
                    return Poll::Pending;
                };
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if sleep.as_mut().poll(cx).is_ready() {
                    this.done();
                    closed(Close::BodyTimeout);
                    return Poll::Ready(Some(Err(Box::new(BodyTimeout))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
