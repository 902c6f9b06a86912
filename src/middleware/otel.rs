//! OpenTelemetry export of the request spans. Off unless
//! `opentelemetry.enabled` and `opentelemetry.api` are both set (as in
//! Centrifugo, API spans need both). The exporter is OTLP over gRPC,
//! configured by the standard `OTEL_EXPORTER_OTLP_*` / `OTEL_SERVICE_NAME`
//! environment variables. [`OtelGuard`] flushes and shuts the exporter down
//! when dropped; build it inside the Tokio runtime that serves (the gRPC
//! exporter needs it) and drop it before that runtime.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetryLayer;
use tracing_subscriber::registry::LookupSpan;

use crate::config::OpenTelemetry;

/// The service name reported when `OTEL_SERVICE_NAME` is not set.
const SERVICE_NAME: &str = "rotor";

/// Keeps the tracer provider alive; flushes pending spans on drop.
#[derive(Debug)]
pub struct OtelGuard {
    provider: SdkTracerProvider,
}

impl OtelGuard {
    /// Wraps a provider (tests build one with an in-memory exporter).
    pub fn new(provider: SdkTracerProvider) -> Self {
        Self { provider }
    }

    /// The provider spans are exported through.
    pub fn provider(&self) -> &SdkTracerProvider {
        &self.provider
    }

    /// A `tracing` layer turning spans into OpenTelemetry spans.
    pub fn layer<S>(&self) -> OpenTelemetryLayer<S, SdkTracer>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        tracing_opentelemetry::layer().with_tracer(self.provider.tracer("rotor"))
    }
}

impl Drop for OtelGuard {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("opentelemetry: flushing spans on shutdown failed: {e}");
        }
    }
}

/// The protocol asked for in the environment, when it is one this build
/// cannot speak (only `grpc` is built in).
fn unsupported_protocol() -> Option<String> {
    [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ]
    .into_iter()
    .find_map(|name| std::env::var(name).ok())
    .filter(|p| p.trim() != "grpc")
}

/// Starts OTLP export when configured. Returns the guard (or `None` when
/// export is off) and warnings to log once logging is up. Must run inside a
/// Tokio runtime.
pub(crate) fn init(cfg: &OpenTelemetry) -> Result<(Option<OtelGuard>, Vec<String>), String> {
    if !(cfg.enabled && cfg.api) {
        return Ok((None, Vec::new()));
    }
    let mut warnings = Vec::new();
    if let Some(p) = unsupported_protocol() {
        warnings.push(format!(
            "opentelemetry: OTLP protocol {p:?} is not built in; exporting over grpc instead"
        ));
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
        .map_err(|e| format!("opentelemetry: building the OTLP exporter: {e}"))?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(SERVICE_NAME);
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    Ok((Some(OtelGuard::new(provider)), warnings))
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use axum::body::Body;
    use axum::http::{Request, Response};
    use opentelemetry_sdk::trace::InMemorySpanExporter;
    use tower::{Layer, ServiceExt};
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;
    use crate::middleware::trace::TraceLayer;

    #[test]
    fn off_by_default() {
        let (guard, warnings) = init(&OpenTelemetry::default()).expect("init");
        assert!(guard.is_none() && warnings.is_empty());
    }

    #[tokio::test]
    async fn request_span_joins_the_callers_trace_and_is_flushed() {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let guard = OtelGuard::new(provider);
        let subscriber = tracing_subscriber::registry().with(guard.layer());
        let _default = tracing::subscriber::set_default(subscriber);
        let svc = TraceLayer.layer(tower::service_fn(|_req: Request<Body>| async {
            Ok::<_, Infallible>(Response::new(Body::empty()))
        }));
        let req = Request::builder()
            .uri("/api/publish?api_key=secret")
            .header(
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            )
            .body(Body::empty())
            .expect("req");
        svc.oneshot(req).await.expect("ok");
        guard.provider().force_flush().expect("flush");
        let spans = exporter.get_finished_spans().expect("spans");
        assert_eq!(spans.len(), 1);
        let span = &spans[0];
        assert_eq!(
            span.span_context.trace_id().to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(span.parent_span_id.to_string(), "b7ad6b7169203331");
        assert_eq!(span.name, "GET /api/publish");
        let text = format!("{:?}", span.attributes);
        assert!(!text.contains("secret"), "{text}");
        drop(guard);
        assert!(exporter.is_shutdown_called());
    }
}
