//! Serving one accepted connection with hyper, inside the listener limits
//! (`middleware.listener`):
//!
//! * until its first request head is read (TLS handshake, HTTP/2 preface
//!   and slow headers included) a connection has `header_read_timeout`;
//!   an HTTP/1 connection has it again from the end of each response to
//!   the next request's head;
//! * a request body must arrive within `body_read_timeout` of its head:
//!   after that an HTTP/1 connection is closed (as Go's `ReadTimeout`
//!   does), and on HTTP/2 the handler reads an error for that stream;
//! * an HTTP/2 connection with no request in flight for `idle_timeout` is
//!   sent GOAWAY;
//! * the registry may evict the connection while it is pending
//!   ([`super::pending`]).
//!
//! One watchdog per connection checks all of it, lazily: it sleeps until
//! the earliest moment the connection could be due and looks at the
//! request counts then, so serving a request costs no timer. (hyper's own
//! header timer would arm and drop a timer around every HTTP/1 request.)
//!
//! Each request carries the peer address (axum's `ConnectInfo`, tonic's
//! `TcpConnectInfo`) and keeps the connection's request counts for as long
//! as its response body lives, so a streamed client session is never
//! idle ([`super::request`]).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::pending::{ConnState, Registration, Signal};
use super::request::{DeadlineBody, Tracked};
use super::tls::TlsSlot;

/// A boxed error, as hyper and axum take them.
pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A service a listener serves: an axum router or tonic routes behind
/// their tower stack, answering `B` bodies.
pub(crate) trait ConnService<B>:
    tower::Service<
        Request<DeadlineBody>,
        Response = Response<B>,
        Error = Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static
{
}

impl<T, B> ConnService<B> for T where
    T: tower::Service<
            Request<DeadlineBody>,
            Response = Response<B>,
            Error = Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + 'static
{
}

/// A response body hyper can write.
pub(crate) trait ResponseBody:
    Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static
{
}

impl<T> ResponseBody for T where T: Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static {}

/// The limits of every connection of one listener.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) header_read: Duration,
    pub(crate) body_read: Duration,
    pub(crate) idle: Duration,
}

/// What a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// HTTP/1.1 with upgrades, and HTTP/2 (h2c or ALPN) on the same port.
    Http,
    /// HTTP/2 only (gRPC).
    Grpc,
}

/// Builds the hyper connection builder of a listener.
/// No hyper header timer is set: the watchdog bounds header reads.
pub(crate) fn builder(protocol: Protocol) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    if protocol == Protocol::Grpc {
        b = b.http2_only();
    }
    b.http2().timer(TokioTimer::new());
    b
}

/// Why the listener closed a connection itself.
#[derive(Debug, Clone, Copy)]
pub(super) enum Close {
    /// No complete request head in time.
    HeaderTimeout,
    /// Idle too long after serving (HTTP/2: closed with GOAWAY).
    Idle,
    /// An HTTP/1 request body not complete in time.
    BodyTimeout,
    /// Evicted as the oldest pending connection.
    Evicted,
    /// The server is stopping (closed gracefully, not counted).
    Stop,
}

impl Close {
    fn label(self) -> &'static str {
        match self {
            Close::HeaderTimeout => "header_timeout",
            Close::Idle => "idle",
            Close::BodyTimeout => "body_timeout",
            Close::Evicted => "evicted",
            Close::Stop => "stop",
        }
    }
}

/// One connection, as the accept loop hands it over.
pub(crate) struct Accepted {
    pub(crate) tcp: TcpStream,
    pub(crate) peer: SocketAddr,
    pub(crate) local: SocketAddr,
    pub(crate) registration: Registration,
}

/// Serves `conn` until it ends, is closed by the limits or evicted, or
/// the registry signals the server's stop (then gracefully).
pub(crate) async fn serve<S, B>(
    conn: Accepted,
    tls: Option<Arc<TlsSlot>>,
    svc: S,
    builder: Arc<auto::Builder<TokioExecutor>>,
    limits: Limits,
    protocol: Protocol,
) where
    S: ConnService<B>,
    B: ResponseBody,
{
    let Accepted {
        tcp,
        peer,
        local,
        registration,
    } = conn;
    let state = registration.state().clone();
    let tracked = Tracked {
        inner: svc,
        state: state.clone(),
        peer,
        local,
        protocol,
        body_read: limits.body_read,
    };
    let Some(tls) = tls else {
        drive(TokioIo::new(tcp), tracked, &builder, limits, &state).await;
        return;
    };
    let deadline = state.idle_since() + limits.header_read;
    let handshake = tokio::select! {
        r = tokio::time::timeout_at(deadline, tls.accept(tcp)) => r,
        signal = std::future::poll_fn(|cx| state.poll_signal(cx)) => {
            if signal == Signal::Evicted {
                closed(Close::Evicted);
            }
            return;
        }
    };
    match handshake {
        Ok(Ok(stream)) => drive(TokioIo::new(stream), tracked, &builder, limits, &state).await,
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
        Err(_) => closed(Close::HeaderTimeout),
    }
}

pub(super) fn closed(why: Close) {
    tracing::debug!(reason = why.label(), "listener closed a connection");
    metrics::counter!("rotor_listener_closed_total", "reason" => why.label()).increment(1);
}

async fn drive<I, S, B>(
    io: TokioIo<I>,
    svc: Tracked<S>,
    builder: &auto::Builder<TokioExecutor>,
    limits: Limits,
    state: &ConnState,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: ConnService<B>,
    B: ResponseBody,
{
    let conn = builder.serve_connection_with_upgrades(io, svc);
    tokio::pin!(conn);
    let why = tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            return;
        }
        why = watchdog(state, limits) => why,
    };
    if let Close::Stop = why {
        conn.as_mut().graceful_shutdown();
        let _ = conn.await;
        return;
    }
    closed(why);
    if let Close::Idle = why {
        conn.as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(limits.header_read, conn).await;
    }
}

/// Resolves when the connection must be closed: evicted or stopped by the
/// registry, no first request head within `header_read` of accept, an
/// HTTP/1 body not complete within `body_read` of its head, no next request
/// head within `header_read` of the last response (HTTP/1), or idle for
/// `idle` after serving (HTTP/2).
/// While requests are in flight it looks again every `header_read` (or
/// `body_read`, if shorter), or when a body is due.
async fn watchdog(state: &ConnState, limits: Limits) -> Close {
    let sleep = tokio::time::sleep_until(state.idle_since() + limits.header_read);
    tokio::pin!(sleep);
    let busy_check = limits.header_read.min(limits.body_read);
    loop {
        tokio::select! {
            signal = std::future::poll_fn(|cx| state.poll_signal(cx)) => {
                return match signal {
                    Signal::Evicted => Close::Evicted,
                    Signal::Stop => Close::Stop,
                };
            }
            () = sleep.as_mut() => {}
        }
        let now = Instant::now();
        if state.in_flight() > 0 {
            let mut next = now + busy_check;
            // HTTP/2 bodies have a deadline each (see DeadlineBody).
            if let Some(since) = state.reading_since().filter(|_| !state.is_h2()) {
                let due = since + limits.body_read;
                if now >= due {
                    return Close::BodyTimeout;
                }
                next = next.min(due);
            }
            sleep.as_mut().reset(next);
            continue;
        }
        let (limit, why) = match (state.served(), state.is_h2()) {
            (false, _) => (limits.header_read, Close::HeaderTimeout),
            (true, false) => (limits.header_read, Close::Idle),
            (true, true) => (limits.idle, Close::Idle),
        };
        let due = state.idle_since() + limit;
        if now >= due {
            return why;
        }
        sleep.as_mut().reset(due);
    }
}

#[cfg(test)]
mod tests {
    use super::super::pending::Pending;
    use super::*;

    const LIMITS: Limits = Limits {
        header_read: Duration::from_secs(10),
        body_read: Duration::from_secs(30),
        idle: Duration::from_secs(120),
    };

    /// Runs the watchdog of a fresh connection while `script` drives its
    /// state (`h2`: an HTTP/2 connection); returns why the watchdog closed
    /// it and when the script finished.
    async fn watch<F>(
        h2: bool,
        script: impl FnOnce(Arc<ConnState>) -> F + Send + 'static,
    ) -> (Close, Instant)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let p = Pending::new(8);
        let reg = p.register();
        let state = reg.state().clone();
        if h2 {
            state.set_h2();
        }
        let done = tokio::spawn({
            let state = state.clone();
            async move {
                script(state).await;
                Instant::now()
            }
        });
        let why = watchdog(&state, LIMITS).await;
        (why, done.await.expect("script"))
    }

    #[tokio::test(start_paused = true)]
    async fn no_first_request_is_a_header_timeout() {
        let p = Pending::new(8);
        let reg = p.register();
        let started = Instant::now();
        let why = watchdog(reg.state(), LIMITS).await;
        assert!(matches!(why, Close::HeaderTimeout));
        assert_eq!(started.elapsed(), LIMITS.header_read);
    }

    #[tokio::test(start_paused = true)]
    async fn busy_connections_wait_and_idle_ones_close_after_the_idle_time() {
        let (why, ended) = watch(true, |s| async move {
            s.begin(false);
            // A long stream: busy well past every timeout.
            tokio::time::sleep(Duration::from_secs(1000)).await;
            s.end();
        })
        .await;
        assert!(matches!(why, Close::Idle));
        assert_eq!(Instant::now() - ended, LIMITS.idle);
    }

    #[tokio::test(start_paused = true)]
    async fn an_http1_connection_waits_header_read_for_its_next_request() {
        let (why, last) = watch(false, |s| async move {
            // Three requests, each served quicker than the header timeout.
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_secs(7)).await;
                s.begin(false);
                tokio::time::sleep(Duration::from_secs(25)).await;
                s.end();
            }
        })
        .await;
        assert!(matches!(why, Close::Idle));
        assert_eq!(Instant::now() - last, LIMITS.header_read);
    }

    #[tokio::test(start_paused = true)]
    async fn an_http1_body_gets_body_read_from_its_head() {
        let (why, began) = watch(false, |s| async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            s.begin(true);
        })
        .await;
        assert!(matches!(why, Close::BodyTimeout));
        assert_eq!(Instant::now() - began, LIMITS.body_read);
    }

    #[tokio::test(start_paused = true)]
    async fn eviction_and_stop_wake_the_watchdog() {
        let p = Pending::new(1);
        let reg = p.register();
        let state = reg.state().clone();
        let p2 = p.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            assert!(p2.evict_oldest());
        });
        let started = Instant::now();
        let why = watchdog(&state, LIMITS).await;
        assert!(matches!(why, Close::Evicted));
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        let other = p.register();
        let state = other.state().clone();
        state.begin(false);
        let p2 = p.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            p2.stop_all();
        });
        assert!(matches!(watchdog(&state, LIMITS).await, Close::Stop));
    }
}
