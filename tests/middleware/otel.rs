//! Tracing: a `traceparent` header becomes the request span's parent, and
//! the real binary exports spans over OTLP when `opentelemetry` is on.

use std::convert::Infallible;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::routing::{get, post};
use http_body_util::StreamBody;
use hyper::body::Frame;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use rotor::config::Config;
use rotor::middleware::otel::OtelGuard;
use tokio::sync::mpsc;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

use super::support::PATIENCE;
use super::{get_, serve_api};
use crate::support::binary::free_port;

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

/// A fake OTLP/gRPC collector: forwards each export request body.
async fn collector() -> (std::net::SocketAddr, mpsc::UnboundedReceiver<Bytes>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new().route(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        post(move |body: Bytes| {
            let _ = tx.send(body);
            async {
                // An empty response message, then status OK in trailers.
                let mut trailers = HeaderMap::new();
                trailers.insert("grpc-status", HeaderValue::from_static("0"));
                let frames = futures_util::stream::iter([
                    Ok::<_, Infallible>(Frame::data(Bytes::from_static(&[0, 0, 0, 0, 0]))),
                    Ok(Frame::trailers(trailers)),
                ]);
                (
                    [(header::CONTENT_TYPE, "application/grpc")],
                    Body::new(StreamBody::new(frames)),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, rx)
}

/// Kills the child on drop (a failing test must not leave it running).
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn binary_exports_request_spans_over_otlp_and_flushes_on_shutdown() {
    let (collector, mut exports) = collector().await;
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("config.json");
    std::fs::write(&config, "{}").expect("config");
    let port = free_port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_rotor"))
        .arg("-c")
        .arg(&config)
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .env("CENTRIFUGO_OPENTELEMETRY_ENABLED", "true")
        .env("CENTRIFUGO_OPENTELEMETRY_API", "true")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{collector}"))
        .env_remove("OTEL_EXPORTER_OTLP_PROTOCOL")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        // Batches go out every 5 s by default: only the shutdown flush
        // can deliver this span in time.
        .env_remove("OTEL_BSP_SCHEDULE_DELAY")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn rotor");
    let mut child = Child(child);
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "server never listened"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let parent = format!("00-{trace_id}-b7ad6b7169203331-01");
    // The WebSocket route sits behind the client stack (traced); without
    // upgrade headers it answers 400, which is still a traced request.
    let r = tokio::time::timeout(
        PATIENCE,
        get_(addr, "/connection/websocket", &[("traceparent", &parent)]),
    )
    .await
    .expect("answer");
    assert_eq!(r.status, 400);
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let want: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&trace_id[2 * i..2 * i + 2], 16).expect("hex"))
        .collect();
    let found = tokio::time::timeout(PATIENCE, async {
        while let Some(body) = exports.recv().await {
            if body.windows(16).any(|w| w == want.as_slice()) {
                return true;
            }
        }
        false
    })
    .await
    .expect("an export arrives");
    assert!(found, "no exported span carries the trace id");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "server never exited"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
