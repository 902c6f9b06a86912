//! The middleware stacks over real sockets: small axum routers behind
//! `stack::api_http`, a tonic-health server behind `stack::grpc`, and the
//! WebSocket endpoint behind `stack::client` (via the real server).
//! Time-dependent HTTP tests run on a paused clock.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use rotor::config::{Config, RateLimitRule};
use rotor::middleware::otel::OtelGuard;
use rotor::middleware::stack;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

use support::{PATIENCE, TestServer, base_config};

const HOUR: Duration = Duration::from_secs(3600);

/// A parsed HTTP/1.1 response.
struct Resp {
    status: u16,
    head: String,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Serves `app` behind the HTTP API stack on 127.0.0.1:0.
async fn serve_api(app: Router, cfg: &Config) -> SocketAddr {
    let app = stack::api_http(app, cfg);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let svc = app.into_make_service_with_connect_info::<SocketAddr>();
        let _ = axum::serve(listener, svc).await;
    });
    addr
}

/// One request on a fresh connection (`Connection: close` unless the
/// caller sets `connection`). A 101 answer is returned at its head.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: test\r\n");
    if !body.is_empty() {
        head.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("connection"))
    {
        head.push_str("connection: close\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.expect("write head");
    // A refusal may come (and the server may close) before the whole body.
    let _ = s.write_all(body).await;
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => panic!("no response head in {:?}", String::from_utf8_lossy(&raw)),
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    let mut resp = Resp {
        status,
        head,
        body: String::new(),
    };
    if status == 101 {
        return resp;
    }
    let mut rest = raw[head_end + 4..].to_vec();
    match resp
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        Some(len) => {
            while rest.len() < len {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => rest.extend_from_slice(&buf[..n]),
                }
            }
        }
        None => {
            let _ = s.read_to_end(&mut rest).await;
        }
    }
    resp.body = String::from_utf8_lossy(&rest).into_owned();
    resp
}

async fn get_(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Resp {
    request(addr, "GET", path, headers, b"").await
}

fn rule(rate: u64, interval: Duration, burst: u64) -> RateLimitRule {
    RateLimitRule {
        rate,
        interval: rotor::config::Duration(interval),
        burst,
    }
}

fn ok_router() -> Router {
    Router::new()
        .route("/api/info", get(|| async { "ok" }))
        .route(
            "/api/publish",
            post(|body: String| async move { body.len().to_string() }),
        )
}

#[tokio::test(start_paused = true)]
async fn per_ip_limit_refuses_after_burst_and_recovers_after_the_interval() {
    let mut cfg = Config::default();
    cfg.middleware.rate_limit.per_ip = rule(2, HOUR, 2);
    let addr = serve_api(ok_router(), &cfg).await;
    for _ in 0..2 {
        assert_eq!(get_(addr, "/api/info", &[]).await.status, 200);
    }
    let refused = get_(addr, "/api/info", &[]).await;
    assert_eq!(refused.status, 429);
    let retry: u64 = refused
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!(
        retry > 0 && retry <= HOUR.as_secs() / 2,
        "retry-after {retry}"
    );
    tokio::time::advance(HOUR).await;
    assert_eq!(get_(addr, "/api/info", &[]).await.status, 200);
}

#[tokio::test(start_paused = true)]
async fn per_key_limits_are_isolated() {
    let mut cfg = Config::default();
    cfg.middleware.rate_limit.per_api_key = rule(1, HOUR, 1);
    let addr = serve_api(ok_router(), &cfg).await;
    let a = [("x-api-key", "key-a")];
    let b = [("authorization", "apikey key-b")];
    assert_eq!(get_(addr, "/api/info", &a).await.status, 200);
    assert_eq!(get_(addr, "/api/info", &a).await.status, 429);
    // The same key in the query string is the same bucket.
    assert_eq!(get_(addr, "/api/info?api_key=key-a", &[]).await.status, 429);
    assert_eq!(get_(addr, "/api/info", &b).await.status, 200);
    assert_eq!(get_(addr, "/api/info", &b).await.status, 429);
    // No key: not limited per key.
    assert_eq!(get_(addr, "/api/info", &[]).await.status, 200);
    assert_eq!(get_(addr, "/api/info", &[]).await.status, 200);
}

#[tokio::test(start_paused = true)]
async fn per_ip_uses_forwarded_for_only_from_trusted_proxies() {
    let mut cfg = Config::default();
    cfg.middleware.rate_limit.per_ip = rule(1, HOUR, 1);
    cfg.middleware.client_ip.trusted_proxies = vec!["127.0.0.0/8".into()];
    let addr = serve_api(ok_router(), &cfg).await;
    let one = [("x-forwarded-for", "203.0.113.1")];
    let two = [("x-forwarded-for", "203.0.113.2")];
    assert_eq!(get_(addr, "/api/info", &one).await.status, 200);
    assert_eq!(get_(addr, "/api/info", &one).await.status, 429);
    assert_eq!(get_(addr, "/api/info", &two).await.status, 200);
    assert_eq!(
        get_(addr, "/api/info", &[("x-real-ip", "203.0.113.3")])
            .await
            .status,
        200
    );

    // Without trust the header is ignored: everyone is 127.0.0.1.
    cfg.middleware.client_ip.trusted_proxies.clear();
    let addr = serve_api(ok_router(), &cfg).await;
    assert_eq!(get_(addr, "/api/info", &one).await.status, 200);
    assert_eq!(get_(addr, "/api/info", &two).await.status, 429);
}

#[tokio::test]
async fn big_body_is_413() {
    let mut cfg = Config::default();
    cfg.middleware.body_limit.max_bytes = 1024;
    let addr = serve_api(ok_router(), &cfg).await;
    let r = tokio::time::timeout(
        PATIENCE,
        request(addr, "POST", "/api/publish", &[], &[b'x'; 4096]),
    )
    .await
    .expect("answer");
    assert_eq!(r.status, 413);
    let r = tokio::time::timeout(
        PATIENCE,
        request(addr, "POST", "/api/publish", &[], &[b'x'; 1024]),
    )
    .await
    .expect("answer");
    assert_eq!((r.status, r.body.as_str()), (200, "1024"));
}

#[tokio::test(start_paused = true)]
async fn slow_handler_is_504() {
    let mut cfg = Config::default();
    cfg.middleware.timeout.request = rotor::config::Duration::from_secs(2);
    let app = ok_router().route(
        "/api/slow",
        get(|| async {
            tokio::time::sleep(HOUR).await;
            "late"
        }),
    );
    let addr = serve_api(app, &cfg).await;
    let started = tokio::time::Instant::now();
    assert_eq!(get_(addr, "/api/slow", &[]).await.status, 504);
    assert!(started.elapsed() < HOUR);
    assert_eq!(get_(addr, "/api/info", &[]).await.status, 200);
}

#[tokio::test]
async fn excess_concurrency_is_shed_with_503() {
    let mut cfg = Config::default();
    cfg.middleware.load_shed.max_in_flight = 1;
    let gate = Arc::new(Notify::new());
    let (entered_tx, mut entered) = mpsc::unbounded_channel::<()>();
    let g = gate.clone();
    let app = ok_router().route(
        "/api/hold",
        get(move || {
            let (g, tx) = (g.clone(), entered_tx.clone());
            async move {
                let _ = tx.send(());
                g.notified().await;
                "released"
            }
        }),
    );
    let addr = serve_api(app, &cfg).await;
    let held = tokio::spawn(async move { get_(addr, "/api/hold", &[]).await });
    tokio::time::timeout(PATIENCE, entered.recv())
        .await
        .expect("held request reached the handler");
    let shed = tokio::time::timeout(PATIENCE, get_(addr, "/api/info", &[]))
        .await
        .expect("answer");
    assert_eq!(shed.status, 503);
    gate.notify_one();
    let held = tokio::time::timeout(PATIENCE, held)
        .await
        .expect("held done")
        .expect("join");
    assert_eq!((held.status, held.body.as_str()), (200, "released"));
    let after = tokio::time::timeout(PATIENCE, get_(addr, "/api/info", &[]))
        .await
        .expect("answer");
    assert_eq!(after.status, 200);
}

#[tokio::test]
async fn traceparent_becomes_the_request_spans_parent() {
    let exporter = InMemorySpanExporter::default();
    let guard = OtelGuard::new(
        SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build(),
    );
    // Current-thread runtime: the server tasks see this thread's subscriber.
    let _default =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(guard.layer()));
    let app = Router::new().route(
        "/api/info",
        get(|| async {
            let cx = tracing::Span::current().context();
            cx.span().span_context().trace_id().to_string()
        }),
    );
    let addr = serve_api(app, &Config::default()).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let r = tokio::time::timeout(
        PATIENCE,
        get_(
            addr,
            "/api/info?api_key=hidden",
            &[("traceparent", &parent)],
        ),
    )
    .await
    .expect("answer");
    assert_eq!((r.status, r.body.as_str()), (200, trace_id));
    guard.provider().force_flush().expect("flush");
    let spans = exporter.get_finished_spans().expect("spans");
    let span = spans
        .iter()
        .find(|s| s.name == "GET /api/info")
        .unwrap_or_else(|| panic!("no request span in {spans:?}"));
    assert_eq!(span.span_context.trace_id().to_string(), trace_id);
    assert_eq!(span.parent_span_id.to_string(), "00f067aa0ba902b7");
    assert!(!format!("{:?}", span.attributes).contains("hidden"));

    // Without the header the span starts a new trace.
    let r = tokio::time::timeout(PATIENCE, get_(addr, "/api/info", &[]))
        .await
        .expect("answer");
    assert_eq!(r.status, 200);
    assert_ne!(r.body, trace_id);
}

/// Delays every call by `delay` (to make the health service slow) and
/// reports each call it starts on `entered`.
#[derive(Clone)]
struct Slow<S> {
    inner: S,
    delay: Duration,
    entered: mpsc::UnboundedSender<()>,
}

impl<S, R> tower::Service<R> for Slow<S>
where
    S: tower::Service<R> + Send,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        let fut = self.inner.call(req);
        let delay = self.delay;
        let _ = self.entered.send(());
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            fut.await
        })
    }
}

type Client = HealthClient<tonic::transport::Channel>;

/// A tonic-health server behind the gRPC stack (plus `delay` inside it);
/// the receiver gets one message per call that passed the stack.
async fn serve_grpc(cfg: &Config, delay: Duration) -> (Client, mpsc::UnboundedReceiver<()>) {
    let (entered, entered_rx) = mpsc::unbounded_channel();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let server = tonic::transport::Server::builder()
        .layer(stack::grpc(cfg))
        .layer(tower::layer::layer_fn(move |inner| Slow {
            inner,
            delay,
            entered: entered.clone(),
        }))
        .add_service(health);
    tokio::spawn(async move {
        let _ = server.serve_with_incoming(incoming).await;
    });
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    (HealthClient::new(channel), entered_rx)
}

async fn check(client: &mut HealthClient<tonic::transport::Channel>) -> Result<(), tonic::Status> {
    let req = HealthCheckRequest {
        service: String::new(),
    };
    tokio::time::timeout(PATIENCE, client.check(req))
        .await
        .expect("answer")
        .map(|_| ())
}

#[tokio::test]
async fn grpc_rate_limit_is_resource_exhausted() {
    let mut cfg = Config::default();
    cfg.middleware.rate_limit.per_ip = rule(2, HOUR, 2);
    let (mut client, _) = serve_grpc(&cfg, Duration::ZERO).await;
    check(&mut client).await.expect("first");
    check(&mut client).await.expect("second");
    let e = check(&mut client).await.expect_err("third is refused");
    assert_eq!(e.code(), tonic::Code::ResourceExhausted);

    let mut cfg = Config::default();
    cfg.middleware.rate_limit.per_api_key = rule(1, HOUR, 1);
    let (mut client, _) = serve_grpc(&cfg, Duration::ZERO).await;
    let keyed = |key: &str| {
        let mut r = tonic::Request::new(HealthCheckRequest {
            service: String::new(),
        });
        r.metadata_mut().insert(
            "authorization",
            format!("apikey {key}").parse().expect("meta"),
        );
        r
    };
    assert!(client.check(keyed("a")).await.is_ok());
    let e = client.check(keyed("a")).await.expect_err("refused");
    assert_eq!(e.code(), tonic::Code::ResourceExhausted);
    assert!(client.check(keyed("b")).await.is_ok());
}

#[tokio::test]
async fn grpc_slow_call_is_deadline_exceeded() {
    let mut cfg = Config::default();
    cfg.middleware.timeout.request = rotor::config::Duration::from_millis(100);
    let (mut client, _) = serve_grpc(&cfg, HOUR).await;
    let e = check(&mut client).await.expect_err("times out");
    assert_eq!(e.code(), tonic::Code::DeadlineExceeded);
}

#[tokio::test]
async fn grpc_shedding_is_unavailable() {
    let mut cfg = Config::default();
    cfg.middleware.load_shed.max_in_flight = 1;
    let (client, mut entered) = serve_grpc(&cfg, HOUR).await;
    let mut slow = client.clone();
    // The first call holds the only slot (it never finishes).
    tokio::spawn(async move {
        let _ = slow
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await;
    });
    tokio::time::timeout(PATIENCE, entered.recv())
        .await
        .expect("first call is in flight");
    let e = check(&mut client.clone()).await.expect_err("shed");
    assert_eq!(e.code(), tonic::Code::Unavailable);
}

#[tokio::test]
async fn client_stack_guards_the_websocket_upgrade() {
    let mut cfg = base_config();
    cfg.client.connection_limit = 1;
    cfg.middleware.rate_limit.per_ip = rule(1, HOUR, 1);
    let srv = TestServer::start(cfg).await;
    // API rate limits never apply to connection routes.
    let a = srv.connected(false, "a").await;
    let r = tokio::time::timeout(
        PATIENCE,
        get_(srv.addr, "/connection/websocket", &upgrade_headers()),
    )
    .await
    .expect("answer");
    assert_eq!(r.status, 503);
    drop(a);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let r = get_(srv.addr, "/connection/websocket", &upgrade_headers()).await;
        if r.status == 101 {
            break;
        }
        assert_eq!(r.status, 503);
        assert!(tokio::time::Instant::now() < deadline, "slot never freed");
        tokio::task::yield_now().await;
    }
    // Health sits outside the client stack: never refused.
    assert_eq!(get_(srv.addr, "/health", &[]).await.status, 200);
    srv.stop().await;
}

fn upgrade_headers() -> [(&'static str, &'static str); 4] {
    [
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ]
}
