//! One `tracing` span per request (target [`TARGET`]), named
//! `"<METHOD> <path>"` for OpenTelemetry. A W3C `traceparent` header (with
//! `tracestate`) becomes the span's remote parent, so the exported span
//! joins the caller's trace. The span records the response status (HTTP
//! status, and `grpc-status` when the response is trailers-only). Only the
//! path is recorded, never the query string (it may carry `api_key`).

use std::task::{Context, Poll};

use axum::http::{HeaderMap, Request, Response};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tower::{Layer, Service};
use tracing::Instrument;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::BoxFuture;
use super::client_ip::peer_addr;

/// The `tracing` target of request spans (log output leaves them out).
pub(crate) const TARGET: &str = "rotor::middleware::trace";

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The remote parent context carried by `headers`, if any.
pub(crate) fn remote_parent(headers: &HeaderMap) -> Option<opentelemetry::Context> {
    let cx = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    cx.span().span_context().is_valid().then_some(cx)
}

/// Wraps each request in a span.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TraceLayer;

impl<S> Layer<S> for TraceLayer {
    type Service = TraceService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TraceService { inner }
    }
}

/// The service of [`TraceLayer`].
#[derive(Debug, Clone)]
pub struct TraceService<S> {
    inner: S,
}

fn request_span<B>(req: &Request<B>) -> tracing::Span {
    let method = req.method();
    let path = req.uri().path();
    let span = tracing::info_span!(
        target: TARGET,
        "request",
        otel.name = %format_args!("{method} {path}"),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %method,
        url.path = %path,
        client.address = Empty,
        http.response.status_code = Empty,
        rpc.grpc.status_code = Empty,
    );
    if let Some(ip) = peer_addr(req) {
        span.record("client.address", tracing::field::display(ip));
    }
    if let Some(parent) = remote_parent(req.headers()) {
        // Fails only when no OpenTelemetry layer is installed: nothing to link.
        let _ = span.set_parent(parent);
    }
    span
}

fn record_status<B>(span: &tracing::Span, resp: &Response<B>) {
    let status = resp.status();
    span.record("http.response.status_code", status.as_u16());
    let grpc = resp
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<u16>().ok());
    if let Some(code) = grpc {
        span.record("rpc.grpc.status_code", code);
    }
    if status.is_server_error() || grpc.is_some_and(|c| c != 0) {
        span.record("otel.status_code", "ERROR");
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for TraceService<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Future: Send + 'static,
    S::Error: std::fmt::Display,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = BoxFuture<Response<ResB>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let span = request_span(&req);
        let fut = span.in_scope(|| self.inner.call(req));
        Box::pin(
            async move {
                let start = tokio::time::Instant::now();
                let result = fut.await;
                let span = tracing::Span::current();
                match &result {
                    Ok(resp) => record_status(&span, resp),
                    Err(e) => {
                        span.record("otel.status_code", "ERROR");
                        tracing::debug!(target: TARGET, error = %e, "request failed");
                    }
                }
                tracing::trace!(target: TARGET, elapsed = ?start.elapsed(), "request done");
                result
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_extracted() {
        let mut h = HeaderMap::new();
        h.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .expect("value"),
        );
        let cx = remote_parent(&h).expect("parent");
        assert_eq!(
            cx.span().span_context().trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(cx.span().span_context().is_remote());
    }

    #[test]
    fn missing_or_bad_traceparent_is_ignored() {
        assert!(remote_parent(&HeaderMap::new()).is_none());
        let mut h = HeaderMap::new();
        h.insert("traceparent", "garbage".parse().expect("value"));
        assert!(remote_parent(&h).is_none());
    }
}
