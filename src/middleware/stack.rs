//! The assembled stacks, outermost layer first:
//!
//! * [`api_http`] — HTTP API routes: trace → client IP → rate limit →
//!   body limit → timeout → load shed → handler.
//! * [`grpc`] — gRPC API (`tonic::transport::Server::builder().layer(..)`):
//!   trace → client IP → rate limit → timeout → load shed → service, with
//!   gRPC statuses in refusals.
//! * [`client`] — connection endpoints (WebSocket and other transports):
//!   trace → connection admission; no timeout, body limit or compression,
//!   since those would cut or buffer long-lived streams.
//!
//! Layers whose setting is off pass requests straight through. The API key
//! check belongs inside these stacks (after the rate limit, so key guessing
//! is rate limited per IP): layer the API router with it first, then pass
//! that router to [`api_http`]; for gRPC add it with a second
//! `Server::builder().layer(..)` call after [`grpc`] (later layers are inner).

use std::sync::Arc;

use axum::Router;
use tower::{Layer, ServiceBuilder};

use super::Protocol;
use super::body_limit::BodyLimitLayer;
use super::client_ip::{ClientIpLayer, ClientIpService, TrustedProxies};
use super::conn_limit::ConnLimitLayer;
use super::load_shed::{LoadShedLayer, LoadShedService};
use super::rate_limit::{RateLimitLayer, RateLimitService};
use super::timeout::{TimeoutLayer, TimeoutService};
use super::trace::{TraceLayer, TraceService};
use crate::config::Config;
use crate::node::limits::Admission;

fn client_ip(cfg: &Config) -> ClientIpLayer {
    ClientIpLayer::new(TrustedProxies::new(
        &cfg.middleware.client_ip.trusted_proxies,
    ))
}

/// Wraps the HTTP API routes of `router` in the HTTP API stack. Apply it
/// to a router holding only API routes (it layers every route, fallback
/// included).
pub fn api_http(router: Router, cfg: &Config) -> Router {
    let m = &cfg.middleware;
    let layers = ServiceBuilder::new()
        .layer(TraceLayer)
        .layer(client_ip(cfg))
        .layer(RateLimitLayer::new(&m.rate_limit, Protocol::Http))
        .layer(
            BodyLimitLayer::new(m.body_limit.max_bytes)
                .declared_at_most(crate::api::http::BODY_LIMIT),
        )
        .layer(TimeoutLayer::new(m.timeout.request.get(), Protocol::Http))
        .layer(LoadShedLayer::new(
            m.load_shed.max_in_flight,
            Protocol::Http,
        ));
    router.layer(layers)
}

/// The service [`GrpcStack`] wraps `S` in.
pub(crate) type GrpcService<S> =
    TraceService<ClientIpService<RateLimitService<TimeoutService<LoadShedService<S>>>>>;

/// The gRPC API stack as one tower layer.
#[derive(Debug, Clone)]
pub struct GrpcStack {
    client_ip: ClientIpLayer,
    rate_limit: RateLimitLayer,
    timeout: TimeoutLayer,
    load_shed: LoadShedLayer,
}

impl<S> Layer<S> for GrpcStack {
    type Service = GrpcService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        let inner = self.load_shed.layer(inner);
        let inner = self.timeout.layer(inner);
        let inner = self.rate_limit.layer(inner);
        let inner = self.client_ip.layer(inner);
        TraceLayer.layer(inner)
    }
}

/// The gRPC API stack for `tonic::transport::Server::builder().layer(..)`.
/// Each call makes fresh limiter state; build it once per server.
pub fn grpc(cfg: &Config) -> GrpcStack {
    let m = &cfg.middleware;
    GrpcStack {
        client_ip: client_ip(cfg),
        rate_limit: RateLimitLayer::new(&m.rate_limit, Protocol::Grpc),
        timeout: TimeoutLayer::new(m.timeout.request.get(), Protocol::Grpc),
        load_shed: LoadShedLayer::new(m.load_shed.max_in_flight, Protocol::Grpc),
    }
}

/// Wraps the connection routes of `router` (matched routes only) in the
/// client stack: a span per upgrade request and the node's connection
/// admission (`client.connection_limit` / `connection_rate_limit`, HTTP
/// 503). Transports take the admitted slot with
/// [`super::conn_limit::take_permit`].
pub(crate) fn client(router: Router, admission: &Arc<Admission>) -> Router {
    router.route_layer(
        ServiceBuilder::new()
            .layer(TraceLayer)
            .layer(ConnLimitLayer::new(admission.clone())),
    )
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::{get, post};
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn defaults_pass_everything() {
        let cfg = Config::default();
        let app = api_http(
            Router::new().route("/api/info", post(|| async { "ok" })),
            &cfg,
        );
        let big = vec![b'x'; 1 << 20];
        let req = Request::post("/api/info")
            .body(Body::from(big))
            .expect("req");
        let r = app.oneshot(req).await.expect("ok");
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn api_stack_applies_the_body_limit() {
        let mut cfg = Config::default();
        cfg.middleware.body_limit.max_bytes = 16;
        let app = api_http(
            Router::new().route("/api/info", post(|| async { "ok" })),
            &cfg,
        );
        let req = Request::post("/api/info")
            .body(Body::from(vec![b'x'; 17]))
            .expect("req");
        let r = app.oneshot(req).await.expect("ok");
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn client_stack_refuses_over_the_limit_only_on_its_routes() {
        let admission = Arc::new(Admission::new(0, 1));
        let app = client(
            Router::new().route("/ws", get(|| async { "ok" })),
            &admission,
        )
        .route("/other", get(|| async { "ok" }));
        let get_ = |p: &str| Request::get(p).body(Body::empty()).expect("req");
        let r = app.clone().oneshot(get_("/ws")).await.expect("ok");
        assert_eq!(r.status(), StatusCode::OK);
        let r = app.clone().oneshot(get_("/ws")).await.expect("ok");
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        let r = app.oneshot(get_("/other")).await.expect("ok");
        assert_eq!(r.status(), StatusCode::OK);
    }
}
