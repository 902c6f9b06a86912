//! The accept loop every listener runs: it survives running out of file
//! descriptors (`EMFILE`/`ENFILE`) by logging it and evicting the oldest
//! pending connection, keeps the pending connections under their cap
//! ([`super::pending`]), and hands each connection to its own task
//! ([`super::conn`]).

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::conn::{self, Accepted, ConnService, Limits, Protocol, ResponseBody};
use super::pending::Pending;
use super::tls::TlsSlot;

/// Linux (and BSD) `errno` values of `accept` that mean "no descriptor or
/// buffer left", not "this one connection failed".
const EMFILE: i32 = 24;
const ENFILE: i32 = 23;
const ENOBUFS: i32 = 105;
const ENOMEM: i32 = 12;

/// Between two warnings of the same kind from one listener.
const WARN_EVERY: Duration = Duration::from_secs(5);

/// What every listener of a server shares.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    pub(crate) pending: Arc<Pending>,
    pub(crate) limits: Limits,
    pub(crate) stop: CancellationToken,
}

/// One listener: its socket, protocol, TLS, service and name (for logs).
pub(crate) struct Listener<S> {
    pub(crate) socket: TcpListener,
    pub(crate) protocol: Protocol,
    pub(crate) tls: Option<Arc<TlsSlot>>,
    pub(crate) service: S,
    pub(crate) name: &'static str,
}

/// A warning logged at most every [`WARN_EVERY`], with how many were held
/// back in between.
struct Throttled {
    last: Option<Instant>,
    held: u64,
}

impl Throttled {
    fn new() -> Self {
        Self {
            last: None,
            held: 0,
        }
    }

    /// Returns how many were held back when it is time to log, else None.
    fn due(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.last.is_some_and(|t| now < t + WARN_EVERY) {
            self.held += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held))
    }
}

/// Accepts on `listener` until `shared.stop` is cancelled.
pub(crate) async fn run<S, B>(listener: Listener<S>, shared: Shared)
where
    S: ConnService<B>,
    B: ResponseBody,
{
    let Listener {
        socket,
        protocol,
        tls,
        service,
        name,
    } = listener;
    let builder: Arc<auto::Builder<TokioExecutor>> = Arc::new(conn::builder(protocol));
    let local = match socket.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(listener = name, error = %e, "listener has no local address");
            return;
        }
    };
    let mut full_warning = Throttled::new();
    let mut fd_warning = Throttled::new();
    loop {
        let accepted = tokio::select! {
            r = socket.accept() => r,
            () = shared.stop.cancelled() => {
                // Connections registered from now on start stopped.
                shared.pending.stop_all();
                return;
            }
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                backoff(&e, name, &shared.pending, &mut fd_warning).await;
                continue;
            }
        };
        if shared.pending.full() {
            metrics::counter!("rotor_listener_pending_full_total").increment(1);
            if let Some(held) = full_warning.due() {
                tracing::warn!(
                    listener = name,
                    cap = shared.pending.cap(),
                    held_back = held,
                    "pending connections at their cap (middleware.listener.max_pending_connections): closing the oldest to admit new ones"
                );
            }
            shared.pending.evict_oldest();
        }
        let _ = tcp.set_nodelay(true);
        let accepted = Accepted {
            tcp,
            peer,
            local,
            registration: shared.pending.register(),
        };
        tokio::spawn(conn::serve(
            accepted,
            tls.clone(),
            service.clone(),
            builder.clone(),
            shared.limits,
            protocol,
        ));
    }
}

/// Handles a failed `accept`: a failure of one connection is skipped; out
/// of descriptors, the oldest pending connection is evicted and the loop
/// waits a moment for it to close; anything else waits longer.
async fn backoff(e: &std::io::Error, name: &str, pending: &Pending, warned: &mut Throttled) {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock
    ) {
        return;
    }
    let exhausted = matches!(e.raw_os_error(), Some(EMFILE | ENFILE | ENOBUFS | ENOMEM));
    let evicted = exhausted && pending.evict_oldest();
    metrics::counter!(
        "rotor_listener_accept_errors_total",
        "kind" => if exhausted { "descriptors" } else { "other" }
    )
    .increment(1);
    if let Some(held) = warned.due() {
        if exhausted {
            tracing::warn!(
                listener = name,
                error = %e,
                evicted_pending = evicted,
                pending = pending.count(),
                held_back = held,
                "accept failed: out of file descriptors or buffers; raise the open-file limit (ulimit -n) or lower middleware.listener.max_pending_connections"
            );
        } else {
            tracing::error!(listener = name, error = %e, held_back = held, "accept failed");
        }
    }
    let pause = if evicted {
        Duration::from_millis(5)
    } else if exhausted {
        Duration::from_millis(50)
    } else {
        Duration::from_millis(100)
    };
    tokio::time::sleep(pause).await;
}
