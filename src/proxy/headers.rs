//! The headers (HTTP proxy) or metadata (gRPC proxy) sent with a proxy
//! call (spec/server-api.md §3.6): static values, then allow-listed
//! emulated headers, then allow-listed transport headers, then — for a
//! client without HTTP headers — allow-listed incoming gRPC metadata; later
//! sources override earlier ones. A W3C `traceparent` of the current span
//! is added when OpenTelemetry tracing is on.

use std::collections::BTreeMap;

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::CallContext;
use crate::config::ProxyConfig;

/// Builds the outgoing headers of one call. `statics` are the transport's
/// static headers/metadata; names that are not valid header names (or
/// values that are not valid header values) are skipped.
pub(crate) fn outgoing(
    cfg: &ProxyConfig,
    statics: &BTreeMap<String, String>,
    ctx: &CallContext,
) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in statics {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()),
            HeaderValue::from_str(value),
        ) {
            out.insert(n, v);
        }
    }
    copy_listed(&cfg.emulated_headers, &ctx.emulated_headers, &mut out);
    copy_listed(&cfg.http_headers, &ctx.headers, &mut out);
    if ctx.headers.is_empty() {
        copy_listed(&cfg.grpc_metadata, &ctx.grpc_metadata, &mut out);
    }
    if let Some(tp) = traceparent() {
        out.insert(HeaderName::from_static("traceparent"), tp);
    }
    out
}

/// Copies the headers of `from` named in `list` (case-insensitive).
fn copy_listed(list: &[String], from: &HeaderMap, out: &mut HeaderMap) {
    for name in list {
        let Ok(n) = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()) else {
            continue;
        };
        let mut values = from.get_all(&n).iter();
        let Some(first) = values.next() else { continue };
        out.insert(n.clone(), first.clone());
        for v in values {
            out.append(n.clone(), v.clone());
        }
    }
}

/// `traceparent` of the current span, when it has a valid OpenTelemetry
/// context.
fn traceparent() -> Option<HeaderValue> {
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return None;
    }
    let text = format!(
        "00-{}-{}-{:02x}",
        sc.trace_id(),
        sc.span_id(),
        sc.trace_flags().to_u8()
    );
    HeaderValue::from_str(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    #[test]
    fn merge_order_and_allow_lists() {
        let cfg = ProxyConfig {
            http_headers: vec!["Authorization".into(), "X-Both".into()],
            emulated_headers: vec!["x-both".into(), "x-emu".into()],
            grpc_metadata: vec!["x-md".into()],
            ..Default::default()
        };
        let statics = BTreeMap::from([
            ("X-Static".to_string(), "s".to_string()),
            ("x-both".to_string(), "static".to_string()),
        ]);
        let ctx = CallContext {
            headers: map(&[
                ("authorization", "Bearer t"),
                ("x-both", "transport"),
                ("cookie", "secret"),
            ]),
            emulated_headers: map(&[("x-both", "emulated"), ("x-emu", "e")]),
            grpc_metadata: map(&[("x-md", "m")]),
            remote_addr: None,
        };
        let out = outgoing(&cfg, &statics, &ctx);
        assert_eq!(out["x-static"], "s");
        assert_eq!(out["authorization"], "Bearer t");
        assert_eq!(out["x-both"], "transport");
        assert_eq!(out["x-emu"], "e");
        assert!(out.get("cookie").is_none());
        // gRPC metadata only when the client has no HTTP headers.
        assert!(out.get("x-md").is_none());
        let out = outgoing(
            &cfg,
            &statics,
            &CallContext {
                grpc_metadata: map(&[("x-md", "m")]),
                ..Default::default()
            },
        );
        assert_eq!(out["x-md"], "m");
        assert_eq!(out["x-both"], "static");
    }

    #[test]
    fn traceparent_of_the_current_span() {
        use opentelemetry_sdk::trace::SdkTracerProvider;
        use tracing_subscriber::layer::SubscriberExt;

        let cfg = ProxyConfig::default();
        let none = BTreeMap::new();
        assert!(
            outgoing(&cfg, &none, &CallContext::default())
                .get("traceparent")
                .is_none()
        );

        let guard = crate::middleware::otel::OtelGuard::new(SdkTracerProvider::builder().build());
        let subscriber = tracing_subscriber::registry().with(guard.layer());
        let _default = tracing::subscriber::set_default(subscriber);
        let parent = crate::middleware::trace::remote_parent(&map(&[(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )]))
        .expect("parent");
        let span = tracing::info_span!("proxy call");
        let _ = span.set_parent(parent);
        let _enter = span.enter();
        let out = outgoing(&cfg, &none, &CallContext::default());
        let tp = out["traceparent"].to_str().expect("ascii");
        assert!(
            tp.starts_with("00-0af7651916cd43dd8448eb211c80319c-"),
            "{tp}"
        );
        assert!(
            tp.ends_with("-01") && !tp.contains("b7ad6b7169203331"),
            "{tp}"
        );
    }
}
