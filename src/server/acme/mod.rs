//! `http_server.tls_autocert`: the HTTP listeners serve certificates that
//! Rotor gets from an ACME CA (Let's Encrypt unless
//! `acme_directory_url` names another), with Go's autocert behaviour that
//! Centrifugo users know:
//!
//! * a certificate per host name a client asks for (SNI); `server_name`
//!   stands in when a client sends none; only names in `host_whitelist`
//!   get one (an empty list allows any name, as in Centrifugo);
//! * proved by TLS-ALPN-01 on the TLS port, or by HTTP-01 on `http_addr`
//!   when `http` is on ([`challenge`], [`order`]);
//! * the account key and certificates cached in `cache_dir`, in Go's
//!   layout, so a restart reuses them without a new order ([`cache`]);
//! * renewed 30 days before expiry (or at two thirds of a shorter life),
//!   checked at least twice a day ([`host`]).
//!
//! Whitelisted hosts are obtained eagerly at start-up, in the background:
//! the listeners serve at once, and a handshake for a host whose first
//! certificate is still on its way waits for it within the listener's
//! header-read deadline. With an empty whitelist a certificate is ordered
//! on a host's first handshake instead. Failures are logged and retried
//! with backoff; a certificate that fails to renew keeps being served.
//!
//! The rustls side is a certificate resolver ([`Resolver`]) over the same
//! [`Store`]; `server::tls` puts its configuration in the listeners' slots
//! and calls [`Manager::prepare`] before each handshake.

mod cache;
mod cert;
mod challenge;
mod host;
pub(crate) mod names;
mod order;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, RwLock};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::types::TlsAutocert;
use cache::DirCache;
use cert::Issued;
pub(crate) use challenge::ACME_TLS_ALPN;
use challenge::Challenges;
use names::{host_name, split_addr};

/// ALPN of an ACME-managed HTTP port: HTTP/2, HTTP/1.1, and TLS-ALPN-01.
const ALPN: &[&[u8]] = &[b"h2", b"http/1.1", ACME_TLS_ALPN];

/// What `tls_autocert` asks for, normalized.
#[derive(Debug)]
struct Settings {
    /// Host names in their ACME form; empty allows any.
    whitelist: Vec<String>,
    server_name: Option<String>,
    directory_url: String,
    email: String,
    http: bool,
    http_addr: String,
}

/// The state the resolver, the HTTP-01 server and the host tasks share.
///
/// Lock order: `hosts`, then `failed`; no lock is held across `.await`
/// (`account` is an async mutex, held while the account is set up).
pub(crate) struct Store {
    settings: Settings,
    cache: Option<DirCache>,
    http: reqwest::Client,
    account: tokio::sync::Mutex<Option<instant_acme::Account>>,
    certs: RwLock<HashMap<String, Arc<Issued>>>,
    challenges: Challenges,
    /// Hosts with a task keeping their certificate: whether it is busy.
    hosts: Mutex<HashMap<String, watch::Receiver<bool>>>,
    /// Hosts asked for on demand whose first order failed, and when.
    failed: Mutex<HashMap<String, tokio::time::Instant>>,
    /// Whether running out of host slots was logged.
    full_warned: std::sync::atomic::AtomicBool,
    stop: OnceLock<CancellationToken>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("settings", &self.settings)
            .field("hosts", &self.certs.read().keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// The ACME form of `name` when certificates may be had for it.
    fn policy(&self, name: &str) -> Option<String> {
        let host = host_name(name).ok()?;
        let w = &self.settings.whitelist;
        (w.is_empty() || w.contains(&host)).then_some(host)
    }

    /// The host a handshake is for: its SNI, else `server_name`.
    fn hello_host(&self, sni: Option<&str>) -> Option<String> {
        match sni {
            Some(name) => self.policy(name),
            None => self.settings.server_name.clone(),
        }
    }

    fn cert(&self, host: &str) -> Option<Arc<Issued>> {
        self.certs.read().get(host).cloned()
    }

    fn install(&self, host: &str, issued: Issued) {
        self.certs
            .write()
            .insert(host.to_string(), Arc::new(issued));
    }

    /// An HTTP-01 answer another node put in the shared `cache_dir`.
    async fn cached_http_token(&self, token: &str) -> Option<String> {
        let cache = self.cache.as_ref()?;
        let data = cache
            .get(&challenge::http_token_entry(token))
            .await
            .ok()??;
        String::from_utf8(data).ok()
    }
}

/// Picks the certificate of each handshake from the [`Store`].
#[derive(Debug)]
struct Resolver(Arc<Store>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if is_validation(&hello) {
            let host = host_name(hello.server_name()?).ok()?;
            return self.0.challenges.alpn(&host);
        }
        let host = self.0.hello_host(hello.server_name())?;
        self.0.cert(&host).map(|issued| issued.key.clone())
    }
}

/// Whether `hello` is a TLS-ALPN-01 validation: `acme-tls/1` is the only
/// protocol it offers (RFC 8737; Go's autocert checks the same).
pub(crate) fn is_validation(hello: &ClientHello<'_>) -> bool {
    hello.alpn().is_some_and(|protocols| {
        let mut protocols = protocols;
        protocols.next() == Some(ACME_TLS_ALPN) && protocols.next().is_none()
    })
}

/// The ACME certificates of the HTTP listeners.
#[derive(Debug)]
pub(crate) struct Manager {
    store: Arc<Store>,
    config: TlsAutocert,
    server_config: Arc<rustls::ServerConfig>,
}

impl Manager {
    /// Reads `cfg` (nothing is contacted, started or written yet).
    pub(crate) fn new(cfg: &TlsAutocert) -> Result<Arc<Self>, String> {
        let key = |k: &str| format!("http_server.tls_autocert.{k}");
        let whitelist = cfg
            .host_whitelist
            .iter()
            .map(|h| host_name(h).map_err(|e| format!("{}: {e}", key("host_whitelist"))))
            .collect::<Result<Vec<_>, _>>()?;
        let server_name = (!cfg.server_name.is_empty())
            .then(|| {
                host_name(&cfg.server_name).map_err(|e| format!("{}: {e}", key("server_name")))
            })
            .transpose()?;
        let store = Arc::new(Store {
            settings: Settings {
                whitelist,
                server_name,
                directory_url: cfg.acme_directory_url.clone(),
                email: cfg.email.clone(),
                http: cfg.http,
                http_addr: cfg.http_addr.clone(),
            },
            cache: (!cfg.cache_dir.is_empty()).then(|| DirCache::new(&cfg.cache_dir)),
            http: order::http_client(&cfg.acme_ca_pem)?,
            account: tokio::sync::Mutex::new(None),
            certs: RwLock::default(),
            challenges: Challenges::default(),
            hosts: Mutex::default(),
            failed: Mutex::default(),
            full_warned: Default::default(),
            stop: OnceLock::new(),
        });
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut server_config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("http_server.tls_autocert: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Resolver(store.clone())));
        server_config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(Self {
            store,
            config: cfg.clone(),
            server_config: Arc::new(server_config),
        }))
    }

    /// The configuration of the listeners it serves.
    pub(crate) fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.server_config.clone()
    }

    /// The section it was built from (a reload that changes it takes a
    /// restart).
    pub(crate) fn config(&self) -> &TlsAutocert {
        &self.config
    }

    /// Creates `cache_dir`, binds `http_addr` when `http` is on (returned,
    /// for the server to serve [`Manager::http_router`] on) and starts
    /// getting the whitelisted hosts' certificates; everything stops with
    /// `stop`.
    pub(crate) fn start(&self, stop: &CancellationToken) -> Result<Option<TcpListener>, String> {
        if let Some(cache) = &self.store.cache {
            cache
                .prepare()
                .map_err(|e| format!("http_server.tls_autocert.cache_dir: {e}"))?;
        }
        let listener = if self.store.settings.http {
            Some(bind_http(&self.store.settings.http_addr)?)
        } else {
            None
        };
        if self.store.stop.set(stop.child_token()).is_err() {
            return Err("http_server.tls_autocert: started twice".into());
        }
        for host in &self.store.settings.whitelist {
            self.store.ensure(host, false);
        }
        Ok(listener)
    }

    /// The HTTP-01 challenge server's routes.
    pub(crate) fn http_router(&self) -> axum::Router {
        challenge::router(self.store.clone())
    }

    /// Before a handshake whose client sent `sni` (a TLS-ALPN-01
    /// validation when `validation`): when the host may have a
    /// certificate but has none yet, waits for the order under way (the
    /// caller bounds the wait). A host not allowed is left to the resolver,
    /// which refuses it.
    pub(crate) async fn prepare(&self, sni: Option<&str>, validation: bool) {
        if validation {
            return;
        }
        let Some(host) = self.store.hello_host(sni) else {
            return;
        };
        if self.store.cert(&host).is_some() {
            return;
        }
        let on_demand = !self.store.settings.whitelist.contains(&host);
        if let Some(mut busy) = self.store.ensure(&host, on_demand) {
            let _ = busy.wait_for(|busy| !*busy).await;
        }
    }
}

/// Binds `http_addr` (Go's `host:port`; an empty host is every interface).
fn bind_http(addr: &str) -> Result<TcpListener, String> {
    use std::net::ToSocketAddrs;
    const KEY: &str = "http_server.tls_autocert.http_addr";
    let (host, port) = split_addr(addr).map_err(|e| format!("{KEY}: {e}"))?;
    let host = if host.is_empty() { "0.0.0.0" } else { &host };
    let socket = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("{KEY}: {addr:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{KEY}: {addr:?} resolves to no address"))?;
    let listener =
        super::bind(socket).map_err(|e| format!("{KEY}: cannot listen on {socket}: {e}"))?;
    tracing::info!(addr = %socket, "serving the ACME HTTP-01 challenge on {socket}");
    Ok(listener)
}

#[cfg(test)]
mod tests;
