//! Listeners, routes and graceful shutdown.
//!
//! [`Listeners::bind`] binds every port the config asks for, in one place;
//! [`run`] takes bound listeners (so tests use port 0) and serves until the
//! shutdown future resolves. [`serve`] does both.
//! Shutdown has two phases: stop accepting and tell every client to
//! reconnect (3001), then wait for connections to drain, bounded by
//! `shutdown.timeout`.
//!
//! Every listener (HTTP, internal HTTP, gRPC API, uni gRPC) runs the same
//! accept loop and connection driver ([`listen`], [`conn`]) under the
//! limits of `middleware.listener`: header, body and idle timeouts, and a
//! cap on pending connections shared by all of them ([`pending`]). Rotor
//! drives hyper itself rather than through `axum::serve` or tonic's
//! `Server`, because neither bounds a connection that never sends a
//! request.

pub(crate) mod acme;
pub(crate) mod conn;
pub(crate) mod listen;
pub(crate) mod pending;
mod request;
pub(crate) mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{any, get};
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::node::Node;
use crate::transport::origin::OriginCheck;
use crate::transport::websocket::{self, WsState};

/// Accept backlog, large enough for reconnect storms.
const BACKLOG: u32 = 4096;

/// Binds a TCP listener with a large backlog.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

fn parse_addr(address: &str, port: &str) -> Result<SocketAddr, String> {
    let host = if address.is_empty() {
        "0.0.0.0"
    } else {
        address
    };
    let text = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    text.parse()
        .map_err(|e| format!("http_server.address: invalid address {text:?}: {e}"))
}

/// Re-reads the configuration (for SIGHUP).
pub(crate) type Reloader = Box<dyn Fn() -> Result<Config, String> + Send + Sync>;

/// Runs the server described by `config` until SIGINT or SIGTERM. On SIGHUP, `reload` supplies a new configuration whose
/// token keys, channel options and listener certificates replace the
/// running ones.
pub(crate) async fn serve_with_reload(
    config: Config,
    reload: Option<Reloader>,
) -> Result<(), String> {
    let certs = Arc::new(tls::ListenerTls::new(&config)?);
    let listeners = Listeners::bind(&config)?;
    let node = Node::new(config).await?;
    if let Some(reload) = reload {
        tokio::spawn(reload_on_sighup(node.clone(), reload, certs.clone()));
    }
    run_with(node, listeners, certs, shutdown_signal()).await
}

/// The server's bound sockets, one per port.
#[derive(Debug)]
pub struct Listeners {
    /// `http_server.port`: client transports, and whatever is not moved to
    /// the internal port.
    pub external: TcpListener,
    /// `http_server.internal_port`, when it is a port of its own.
    pub internal: Option<TcpListener>,
    /// `grpc_api.port`, when the gRPC API is enabled.
    pub grpc_api: Option<TcpListener>,
    /// `uni_grpc.port`, when the unidirectional gRPC transport is enabled.
    pub uni_grpc: Option<TcpListener>,
}

impl Listeners {
    /// Binds every port `config` asks for.
    pub(crate) fn bind(config: &Config) -> Result<Self, String> {
        let hs = &config.http_server;
        let external = bind_at(&hs.address, &hs.port.to_string(), "http_server")?;
        let internal = if !hs.internal_port.is_empty() && hs.internal_port != hs.port.to_string() {
            let address = if hs.internal_address.is_empty() {
                &hs.address
            } else {
                &hs.internal_address
            };
            Some(bind_at(address, &hs.internal_port, "internal")?)
        } else {
            None
        };
        let g = &config.grpc_api;
        let grpc_api = g
            .enabled
            .then(|| bind_at(&g.address, &g.port.to_string(), "grpc_api"))
            .transpose()?;
        Ok(Self {
            external,
            internal,
            grpc_api,
            uni_grpc: Self::bind_uni_grpc(config)?,
        })
    }

    /// The uni gRPC listener `config` asks for (none when it is off).
    pub fn bind_uni_grpc(config: &Config) -> Result<Option<TcpListener>, String> {
        let u = &config.uni_grpc;
        u.enabled
            .then(|| bind_at(&u.address, &u.port.to_string(), "uni_grpc"))
            .transpose()
    }
}

/// Binds `address`:`port` (Centrifugo's forms); `what` names it in errors.
fn bind_at(address: &str, port: &str, what: &str) -> Result<TcpListener, String> {
    let addr = parse_addr(address, port)?;
    bind(addr).map_err(|e| format!("bind {what} {addr}: {e}"))
}

#[cfg(unix)]
async fn reload_on_sighup(node: Arc<Node>, reload: Reloader, certs: Arc<tls::ListenerTls>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    while hup.recv().await.is_some() {
        let reloaded = reload().and_then(|cfg| {
            // Certificates first: a bad one keeps everything as it was.
            let warnings = certs.reload(&cfg)?;
            node.reload(&cfg)?;
            Ok(warnings)
        });
        match reloaded {
            Ok(warnings) => {
                for w in warnings {
                    tracing::warn!("{w}");
                }
                tracing::info!(
                    "configuration reloaded (token keys, channel options, TLS certificates)"
                )
            }
            Err(e) => {
                tracing::error!(error = %e, "configuration reload failed; keeping the running one")
            }
        }
    }
}

#[cfg(not(unix))]
async fn reload_on_sighup(_node: Arc<Node>, _reload: Reloader, _certs: Arc<tls::ListenerTls>) {}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Serves on bound listeners until `shutdown` resolves, then drains. The
/// gRPC API and uni gRPC listeners are served when their sections are
/// enabled.
pub async fn run(
    node: Arc<Node>,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let certs = Arc::new(tls::ListenerTls::new(node.config())?);
    run_with(node, listeners, certs, shutdown).await
}

/// [`run`] with the listeners' TLS built already (SIGHUP reloads it).
async fn run_with(
    node: Arc<Node>,
    listeners: Listeners,
    certs: Arc<tls::ListenerTls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let Listeners {
        external,
        internal,
        grpc_api,
        uni_grpc,
    } = listeners;
    let tracker = TaskTracker::new();
    let (ext_router, int_router) = routers(&node, tracker.clone());
    let stop = tokio_util::sync::CancellationToken::new();
    let shared = listen_shared(node.config(), &stop);
    let mut servers = tokio::task::JoinSet::new();
    // --- tls_autocert: certificates from ACME, HTTP-01 challenge port ---
    if let Some(acme) = certs.acme()
        && let Some(socket) = acme.start(&stop)?
    {
        // Not `serve_router`: its 404 fallback would replace the redirect.
        let listener = listen::Listener {
            socket,
            protocol: conn::Protocol::Http,
            tls: None,
            service: acme.http_router(),
            name: "acme-http",
        };
        servers.spawn(listen::run(listener, shared.clone()));
    }
    // --- end tls_autocert ---
    // --- server API: HTTP routes and the gRPC listener ---
    let executor = Arc::new(crate::api::executor::Executor::new(node.clone()));
    let (ext_router, int_router) =
        api_routes(node.config(), &executor, &stop, ext_router, int_router);
    if let (Some(socket), true) = (grpc_api, node.config().grpc_api.enabled) {
        let listener =
            crate::api::grpc::listener(node.config(), executor.clone(), socket, certs.grpc_api())
                .await?;
        servers.spawn(listen::run(listener, shared.clone()));
    }
    // --- end server API ---
    // --- transports: uni gRPC listener ---
    if let (Some(socket), true) = (uni_grpc, node.config().uni_grpc.enabled) {
        let listener = crate::transport::uni_grpc::listener(
            node.clone(),
            tracker.clone(),
            socket,
            certs.uni_grpc(),
        )?;
        servers.spawn(listen::run(listener, shared.clone()));
    }
    // --- end transports: uni gRPC listener ---
    let (ext_tls, int_tls) = (certs.external(), certs.internal());
    let ext_addr = external.local_addr().map_err(|e| e.to_string())?;
    let scheme = if ext_tls.is_some() { "wss" } else { "ws" };
    tracing::info!(addr = %ext_addr, node = %node.name, "serving client connections on {scheme}://{ext_addr}{}", node.config().websocket.handler_prefix);

    let ext_router = match (&internal, int_router) {
        (None, Some(int)) => ext_router.merge(int),
        (_, None) => ext_router,
        (Some(_), Some(int)) => {
            if let Some(listener) = internal {
                let addr = listener.local_addr().map_err(|e| e.to_string())?;
                tracing::info!(addr = %addr, tls = int_tls.is_some(), "serving internal endpoints");
                servers.spawn(serve_router(
                    listener,
                    "internal",
                    int,
                    int_tls,
                    shared.clone(),
                ));
            }
            ext_router
        }
    };
    servers.spawn(serve_router(
        external,
        "external",
        ext_router,
        ext_tls,
        shared.clone(),
    ));

    shutdown.await;
    tracing::info!("shutting down: clients are told to reconnect");
    stop.cancel();
    node.shutdown_clients();
    node.leave_cluster().await;
    tracker.close();
    let timeout = node.config().shutdown.timeout.get();
    if tokio::time::timeout(timeout, tracker.wait()).await.is_err() {
        tracing::warn!("shutdown timeout reached with connections still open");
    }
    servers.abort_all();
    Ok(())
}

/// What every listener shares: the pending-connection registry, the
/// limits of `middleware.listener` and the stop signal.
fn listen_shared(cfg: &Config, stop: &tokio_util::sync::CancellationToken) -> listen::Shared {
    let l = &cfg.middleware.listener;
    let cap = match l.max_pending_connections {
        0 => pending::default_cap(),
        n => n,
    };
    listen::Shared {
        pending: pending::Pending::new(cap),
        limits: conn::Limits {
            header_read: l.header_read_timeout.get(),
            body_read: l.body_read_timeout.get(),
            idle: l.idle_timeout.get(),
        },
        stop: stop.clone(),
    }
}

/// Serves an axum router (HTTP/1.1 with upgrades, and HTTP/2: h2c, or
/// over TLS when `tls` is given) on `socket`.
async fn serve_router(
    socket: TcpListener,
    name: &'static str,
    router: Router,
    tls: Option<Arc<tls::TlsSlot>>,
    shared: listen::Shared,
) {
    let listener = listen::Listener {
        socket,
        protocol: conn::Protocol::Http,
        tls,
        service: router.fallback(not_found),
        name,
    };
    listen::run(listener, shared).await;
}

/// External routes (client transports) and internal ones (health, metrics).
fn routers(node: &Arc<Node>, tracker: TaskTracker) -> (Router, Option<Router>) {
    let cfg = node.config();
    let mut conn = Router::new();
    if !cfg.websocket.disabled {
        let state = WsState {
            node: node.clone(),
            origins: Arc::new(OriginCheck::new(&cfg.client.allowed_origins)),
            tracker: tracker.clone(),
        };
        conn = conn.route(
            &cfg.websocket.handler_prefix,
            get(websocket::upgrade).with_state(state),
        );
    }
    // --- transports: emulation ---
    let (emulation_streams, emulation_commands) =
        crate::transport::emulation::routes(node, tracker.clone());
    conn = conn.merge(emulation_streams);
    // --- end transports: emulation ---
    // --- transports: uni ---
    {
        use crate::transport::{uni_stream, uni_websocket};
        use axum::routing::{options, post};
        let uni = uni_stream::UniState {
            node: node.clone(),
            origins: Arc::new(OriginCheck::new(&cfg.client.allowed_origins)),
            tracker: tracker.clone(),
        };
        if cfg.uni_websocket.enabled {
            conn = conn.route(
                &cfg.uni_websocket.handler_prefix,
                get(uni_websocket::upgrade).with_state(uni.clone()),
            );
        }
        if cfg.uni_sse.enabled {
            conn = conn.route(
                &cfg.uni_sse.handler_prefix,
                get(uni_stream::sse)
                    .post(uni_stream::sse)
                    .with_state(uni.clone()),
            );
        }
        if cfg.uni_http_stream.enabled {
            conn = conn.route(
                &cfg.uni_http_stream.handler_prefix,
                post(uni_stream::http_stream)
                    .merge(options(uni_stream::http_stream))
                    .with_state(uni),
            );
        }
    }
    // --- end transports: uni ---
    // --- middleware: the client stack (span + connection admission) wraps
    // the connection routes only; init/health/metrics stay outside it.
    let mut ext = crate::middleware::stack::client(conn, &node.admission);
    // `/emulation` posts are not connections: outside the client stack.
    ext = ext.merge(emulation_commands);
    // --- end middleware
    if cfg.init.enabled {
        ext = ext.route(&cfg.init.handler_prefix, get(|| async { json_ok("{}") }));
    }
    let mut int = Router::new();
    let mut any_internal = false;
    if cfg.health.enabled {
        int = int.route(&cfg.health.handler_prefix, any(|| async { json_ok("{}") }));
        any_internal = true;
    }
    if cfg.prometheus.enabled {
        crate::metrics::install();
        let n = node.clone();
        int = int.route(
            &cfg.prometheus.handler_prefix,
            get(move || {
                let n = n.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        crate::metrics::render(&n),
                    )
                }
            }),
        );
        any_internal = true;
    }
    (ext, any_internal.then_some(int))
}

// --- server API routes ---
/// Mounts the HTTP API (internal listener unless `http_api.external`;
/// nothing when `http_api.disabled`) and the Swagger routes (internal).
fn api_routes(
    cfg: &Config,
    executor: &Arc<crate::api::executor::Executor>,
    stop: &tokio_util::sync::CancellationToken,
    mut ext: Router,
    mut int: Option<Router>,
) -> (Router, Option<Router>) {
    if !cfg.http_api.disabled {
        // The tower stack (trace, client IP, rate limit, body limit, timeout,
        // load shed) around the API router, whose own layer checks the key.
        let api = crate::middleware::stack::api_http(
            crate::api::http::router(cfg, executor.clone(), stop.clone()),
            cfg,
        );
        if cfg.http_api.external {
            ext = ext.merge(api);
        } else {
            int = Some(int.unwrap_or_default().merge(api));
        }
    }
    if cfg.swagger.enabled {
        int = Some(
            int.unwrap_or_default()
                .merge(crate::api::openapi::router(cfg)),
        );
    }
    (ext, int)
}
// --- end server API routes ---

/// Any path nothing is routed to, answered as Centrifugo's Go mux does
/// (`http.NotFound`). The HTTP API is routed per method, so an unknown
/// method under its prefix is a 404 whatever the API key, as there.
async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        "404 page not found\n",
    )
}

fn json_ok(body: &'static str) -> impl IntoResponse {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
}
