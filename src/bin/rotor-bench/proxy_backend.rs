//! `proxy-backend`: a minimal gRPC connect proxy backend for benchmarks.
//!
//! A tonic `CentrifugoProxy` server on a loopback address answering every
//! `Connect` with `result {user: "bench-<n>"}`: `n` is taken from the
//! request's JSON data (`{"n": 7}`) when present, otherwise from a counter.
//! The other hooks answer UNIMPLEMENTED (the generated default stubs). It stops by itself after
//! `--duration` seconds (or on SIGTERM / SIGINT) and prints how many
//! connects it answered. The backend does as little as a real one could, so
//! the benchmark measures Rotor's side of the proxy call plus one loopback
//! gRPC round trip.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rotor::proto::proxy as pp;
use rotor::proto::proxy::centrifugo_proxy_server::{CentrifugoProxy, CentrifugoProxyServer};
use tonic::{Request, Response, Status};

use crate::ProxyBackendArgs;

/// Longest run allowed, whatever `--duration` says.
const MAX_DURATION: u64 = 3600;

/// Time open connections get to close after `--duration`.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Connect answers given so far (shared with the reporting code).
#[derive(Debug, Default)]
struct Counters {
    next: AtomicU64,
    answered: AtomicU64,
}

struct Service {
    counters: Arc<Counters>,
}

/// The `n` of `{"n": N}` in the connect data, if any.
fn n_from_data(data: &[u8]) -> Option<u64> {
    if data.is_empty() {
        return None;
    }
    serde_json::from_slice::<serde_json::Value>(data)
        .ok()?
        .get("n")?
        .as_u64()
}

#[tonic::async_trait]
impl CentrifugoProxy for Service {
    async fn connect(
        &self,
        request: Request<pp::ConnectRequest>,
    ) -> Result<Response<pp::ConnectResponse>, Status> {
        let req = request.into_inner();
        let n = n_from_data(&req.data)
            .unwrap_or_else(|| self.counters.next.fetch_add(1, Ordering::Relaxed));
        self.counters.answered.fetch_add(1, Ordering::Relaxed);
        Ok(Response::new(pp::ConnectResponse {
            result: Some(pp::ConnectResult {
                user: format!("bench-{n}"),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }
}

/// Resolves after `duration`, or earlier on SIGTERM / SIGINT.
async fn stop_after(duration: Duration) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tokio::time::sleep(duration).await;
        return;
    };
    tokio::select! {
        _ = tokio::time::sleep(duration) => {}
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Serves `CentrifugoProxy` on `--addr` until `--duration` has passed.
pub async fn run(a: ProxyBackendArgs) -> Result<(), String> {
    let addr: std::net::SocketAddr = a
        .addr
        .parse()
        .map_err(|e| format!("--addr {}: {e}", a.addr))?;
    if !addr.ip().is_loopback() {
        return Err("--addr must be a loopback address (127.0.0.1:PORT)".into());
    }
    let duration = Duration::from_secs(a.duration.clamp(1, MAX_DURATION));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("bind {addr}: {e}"))?;
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let counters = Arc::new(Counters::default());
    let svc = Service {
        counters: counters.clone(),
    };
    eprintln!(
        "proxy-backend: listening on {addr} for {} s",
        duration.as_secs()
    );
    let serve = tonic::transport::Server::builder()
        .add_service(CentrifugoProxyServer::new(svc))
        .serve_with_incoming_shutdown(incoming, stop_after(duration));
    // Graceful shutdown waits for Rotor's HTTP/2 connection to go away;
    // it is bounded so the tool always ends.
    let served = match tokio::time::timeout(duration + SHUTDOWN_GRACE, serve).await {
        Ok(r) => r.map_err(|e| format!("serve: {e}")),
        Err(_) => Ok(()),
    };
    println!(
        "proxy-backend: {} connects answered",
        counters.answered.load(Ordering::Relaxed)
    );
    served
}

#[cfg(test)]
mod tests {
    use super::n_from_data;

    #[test]
    fn takes_n_from_connect_data() {
        assert_eq!(n_from_data(br#"{"n":7}"#), Some(7));
        assert_eq!(n_from_data(b""), None);
        assert_eq!(n_from_data(b"not json"), None);
        assert_eq!(n_from_data(br#"{"n":"x"}"#), None);
    }
}
