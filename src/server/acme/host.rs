//! One task per host keeps its certificate: it takes a usable one from
//! memory or `cache_dir` (no order while a cached one is good), orders a
//! new one when there is none or it is due for renewal, and sleeps until
//! the next check (the renewal time, at most [`CHECK_EVERY`] so that a
//! certificate another node put in a shared `cache_dir` is picked up).
//! Failures are retried with exponential backoff; a host asked for on
//! demand (empty whitelist) whose first order fails is dropped instead and
//! may be asked for again after [`ON_DEMAND_RETRY`], as Go's autocert does.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::time::Instant;

use super::Store;
use super::cert::Issued;

/// Longest sleep between two checks of a certificate.
const CHECK_EVERY: Duration = Duration::from_secs(12 * 3600);
/// First retry after a failure; doubled up to [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_secs(30);
const BACKOFF_MAX: Duration = Duration::from_secs(3600);
/// A host asked for on demand whose order failed is not tried again
/// before this.
const ON_DEMAND_RETRY: Duration = Duration::from_secs(60);
/// At most this many hosts are kept (whitelisted ones included): with an
/// empty whitelist the names come from clients.
const MAX_HOSTS: usize = 1000;

impl Store {
    /// Starts a task keeping `host`'s certificate unless one runs; returns
    /// whether it is busy (ordering), or `None` when no task runs (not
    /// started, too many hosts, or a recent on-demand failure).
    pub(super) fn ensure(
        self: &Arc<Self>,
        host: &str,
        on_demand: bool,
    ) -> Option<watch::Receiver<bool>> {
        let mut hosts = self.hosts.lock();
        if let Some(busy) = hosts.get(host) {
            return Some(busy.clone());
        }
        self.stop.get()?;
        if on_demand {
            if hosts.len() >= MAX_HOSTS {
                if !self.full_warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        host,
                        "ACME: {MAX_HOSTS} hosts have certificates already; no order for more (set http_server.tls_autocert.host_whitelist); logged once"
                    );
                }
                return None;
            }
            let mut failed = self.failed.lock();
            failed.retain(|_, at| at.elapsed() < ON_DEMAND_RETRY);
            if failed.contains_key(host) {
                return None;
            }
        }
        let (tx, rx) = watch::channel(true);
        hosts.insert(host.to_string(), rx.clone());
        tokio::spawn(self.clone().maintain(host.to_string(), on_demand, tx));
        Some(rx)
    }

    async fn maintain(self: Arc<Self>, host: String, on_demand: bool, busy: watch::Sender<bool>) {
        let Some(stop) = self.stop.get().cloned() else {
            return;
        };
        let mut backoff = BACKOFF_MIN;
        loop {
            busy.send_replace(true);
            let attempt = tokio::select! {
                r = self.refresh(&host) => r,
                () = stop.cancelled() => return,
            };
            let wait = match attempt {
                Ok(()) => {
                    backoff = BACKOFF_MIN;
                    self.next_check(&host)
                }
                Err(e) if on_demand && self.cert(&host).is_none() => {
                    tracing::error!(host, error = %e, "ACME: could not get a certificate; the next handshake for this host after {}s tries again", ON_DEMAND_RETRY.as_secs());
                    let mut hosts = self.hosts.lock();
                    hosts.remove(&host);
                    self.failed.lock().insert(host, Instant::now());
                    return;
                }
                Err(e) => {
                    let wait = jitter(backoff);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    tracing::error!(host, error = %e, retry_in_secs = wait.as_secs(), "ACME: could not get a certificate");
                    wait
                }
            };
            busy.send_replace(false);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// Makes sure `host` has a certificate not yet due for renewal: the
    /// one in memory, a newer one in `cache_dir`, or a new order's.
    async fn refresh(&self, host: &str) -> Result<(), String> {
        let fresh = |s: &Self| {
            s.cert(host)
                .is_some_and(|c| SystemTime::now() < c.renew_at())
        };
        if fresh(self) {
            return Ok(());
        }
        if let Some(cached) = self.load_cached(host).await {
            let newer = self
                .cert(host)
                .is_none_or(|c| cached.not_after > c.not_after);
            if newer {
                tracing::info!(
                    host,
                    days_left = cached.days_left(SystemTime::now()),
                    "ACME: certificate loaded from cache_dir"
                );
                self.install(host, cached);
            }
            if fresh(self) {
                return Ok(());
            }
        }
        tracing::info!(host, directory = %self.settings.directory_url, "ACME: ordering a certificate");
        let pem = self.order(host).await?;
        let issued = Issued::from_pem(pem.as_bytes(), host, SystemTime::now())
            .map_err(|e| format!("the CA's certificate is not usable: {e}"))?;
        if let Some(cache) = &self.cache
            && let Err(e) = cache.put(host, pem.as_bytes()).await
        {
            tracing::warn!(host, error = %e, "ACME: certificate not cached");
        }
        tracing::info!(
            host,
            days_left = issued.days_left(SystemTime::now()),
            "ACME: certificate obtained"
        );
        self.install(host, issued);
        Ok(())
    }

    /// A usable cached certificate for `host`; an unusable one is logged.
    async fn load_cached(&self, host: &str) -> Option<Issued> {
        let cache = self.cache.as_ref()?;
        let pem = match cache.get(host).await {
            Ok(pem) => pem?,
            Err(e) => {
                tracing::warn!(host, error = %e, "ACME: cache_dir not readable");
                return None;
            }
        };
        match Issued::from_pem(&pem, host, SystemTime::now()) {
            Ok(issued) => Some(issued),
            Err(e) => {
                tracing::info!(host, reason = %e, "ACME: cached certificate not used");
                None
            }
        }
    }

    /// Until the next check of `host`'s certificate.
    fn next_check(&self, host: &str) -> Duration {
        let until_renewal = self
            .cert(host)
            .and_then(|c| c.renew_at().duration_since(SystemTime::now()).ok())
            .unwrap_or_default();
        until_renewal.clamp(Duration::from_secs(1), CHECK_EVERY)
    }
}

/// `d` give or take a tenth, so that nodes sharing a CA spread out.
fn jitter(d: Duration) -> Duration {
    let tenth = d / 10;
    d - tenth + tenth.mul_f64(2.0 * rand::random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_near() {
        for _ in 0..100 {
            let j = jitter(Duration::from_secs(100));
            assert!(j >= Duration::from_secs(90) && j <= Duration::from_secs(110));
        }
    }
}
