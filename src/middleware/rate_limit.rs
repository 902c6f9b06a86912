//! Rate limiting per API key and per client IP
//! (`middleware.rate_limit.{per_api_key,per_ip}`), each a token bucket per
//! key ([`super::buckets`]). A refused request gets HTTP 429 with
//! `Retry-After` (seconds), or gRPC `RESOURCE_EXHAUSTED`.
//!
//! The API key is read where the API auth layer reads it (`X-API-Key`,
//! `Authorization: apikey <KEY>`, `?api_key=`; gRPC metadata
//! `authorization: apikey <KEY>`) and only a keyed hash of it is kept; it
//! is never logged. Requests without a key are not limited per key. The
//! client IP is the [`ClientIp`] extension when the client IP layer runs
//! first, else the TCP peer.

use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{HeaderMap, Request, Response, header};
use futures_util::future::Either;
use tower::{Layer, Service};

use super::buckets::{Buckets, Decision};
use super::client_ip::{ClientIp, peer_addr};
use super::{Protocol, Refusal, RefusalBody};
use crate::config::RateLimit;

/// The API key a request carries, if any (same sources as the auth layer).
pub(crate) fn api_key<B>(req: &Request<B>) -> Option<&str> {
    if let Some(k) = header_key(req.headers()) {
        return Some(k);
    }
    req.uri().query().and_then(|q| {
        q.split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(name, _)| *name == "api_key")
            .map(|(_, v)| v)
            .filter(|v| !v.is_empty())
    })
}

fn header_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(k) = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
    {
        return Some(k);
    }
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = auth.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("apikey") && !key.trim().is_empty()).then(|| key.trim())
}

#[derive(Debug)]
struct Limits {
    per_key: Option<Buckets<u64>>,
    per_ip: Option<Buckets<IpAddr>>,
    hasher: RandomState,
}

/// Rate limiting in `protocol`'s refusal form.
#[derive(Debug, Clone)]
pub(crate) struct RateLimitLayer {
    limits: Option<Arc<Limits>>,
    protocol: Protocol,
}

impl RateLimitLayer {
    /// From the config section; with both limits off the layer passes
    /// everything through.
    pub(crate) fn new(cfg: &RateLimit, protocol: Protocol) -> Self {
        Self {
            limits: Self::limits(cfg).map(Arc::new),
            protocol,
        }
    }

    #[cfg(test)]
    /// True when some limit is on.
    pub(crate) fn is_enabled(&self) -> bool {
        self.limits.is_some()
    }

    fn limits(cfg: &RateLimit) -> Option<Limits> {
        let max = cfg.max_tracked_keys.max(1);
        let per_key = cfg.per_api_key.enabled().then(|| {
            let r = &cfg.per_api_key;
            Buckets::new(r.rate, r.interval.get(), r.capacity(), max)
        });
        let per_ip = cfg.per_ip.enabled().then(|| {
            let r = &cfg.per_ip;
            Buckets::new(r.rate, r.interval.get(), r.capacity(), max)
        });
        if per_key.is_none() && per_ip.is_none() {
            return None;
        }
        Some(Limits {
            per_key,
            per_ip,
            hasher: RandomState::new(),
        })
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService {
            inner,
            limits: self.limits.clone(),
            protocol: self.protocol,
        }
    }
}

/// The service of [`RateLimitLayer`].
#[derive(Debug, Clone)]
pub struct RateLimitService<S> {
    inner: S,
    limits: Option<Arc<Limits>>,
    protocol: Protocol,
}

impl Limits {
    /// How long the caller must wait, or `None` if a token was taken.
    fn check<B>(&self, req: &Request<B>) -> Option<Duration> {
        if let Some(buckets) = &self.per_ip {
            let ip = req
                .extensions()
                .get::<ClientIp>()
                .map(|c| c.0)
                .or_else(|| peer_addr(req));
            if let Some(ip) = ip
                && let Decision::Refused(wait) = buckets.take(&ip)
            {
                tracing::debug!(client_ip = %ip, "rate limited (per IP)");
                return Some(wait);
            }
        }
        if let Some(buckets) = &self.per_key
            && let Some(key) = api_key(req)
            && let Decision::Refused(wait) = buckets.take(&self.hasher.hash_one(key))
        {
            tracing::debug!("rate limited (per API key)");
            return Some(wait);
        }
        None
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for RateLimitService<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    ResB: RefusalBody,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = Either<S::Future, std::future::Ready<Result<Response<ResB>, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let refused = self.limits.as_ref().and_then(|l| l.check(&req));
        match refused {
            None => Either::Left(self.inner.call(req)),
            Some(wait) => {
                metrics::counter!("rotor_middleware_refused_total", "reason" => "rate_limit")
                    .increment(1);
                let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                Either::Right(std::future::ready(Ok(
                    Refusal::TOO_MANY_REQUESTS.response(self.protocol, Some(secs))
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::net::SocketAddr;

    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::http::StatusCode;
    use tower::ServiceExt;

    use super::*;
    use crate::config::{Duration as CfgDuration, RateLimitRule};

    fn rule(rate: u64, secs: u64, burst: u64) -> RateLimitRule {
        RateLimitRule {
            rate,
            interval: CfgDuration::from_secs(secs),
            burst,
        }
    }

    fn svc(
        cfg: &RateLimit,
    ) -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone {
        RateLimitLayer::new(cfg, Protocol::Http).layer(tower::service_fn(
            |_req: Request<Body>| async { Ok::<_, Infallible>(Response::new(Body::empty())) },
        ))
    }

    fn req(peer: &str, key: Option<&str>) -> Request<Body> {
        let mut b = Request::builder().uri("/api/info");
        if let Some(k) = key {
            b = b.header("x-api-key", k);
        }
        let mut r = b.body(Body::empty()).expect("request");
        let addr: SocketAddr = format!("{peer}:1").parse().expect("addr");
        r.extensions_mut().insert(ConnectInfo(addr));
        r
    }

    #[test]
    fn api_key_sources() {
        let r = Request::builder()
            .header("authorization", "apikey secret")
            .body(())
            .expect("req");
        assert_eq!(api_key(&r), Some("secret"));
        let r = Request::builder()
            .uri("/api?x=1&api_key=k2")
            .body(())
            .expect("req");
        assert_eq!(api_key(&r), Some("k2"));
        let r = Request::builder()
            .header("authorization", "Bearer t")
            .body(())
            .expect("req");
        assert_eq!(api_key(&r), None);
    }

    #[test]
    fn off_when_no_rate() {
        assert!(!RateLimitLayer::new(&RateLimit::default(), Protocol::Http).is_enabled());
    }

    #[tokio::test(start_paused = true)]
    async fn per_ip_burst_then_429_then_recovery() {
        let cfg = RateLimit {
            per_ip: rule(1, 10, 2),
            ..Default::default()
        };
        let s = svc(&cfg);
        for _ in 0..2 {
            let r = s.clone().oneshot(req("192.0.2.1", None)).await.expect("ok");
            assert_eq!(r.status(), StatusCode::OK);
        }
        let r = s.clone().oneshot(req("192.0.2.1", None)).await.expect("ok");
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "10");
        let other = s.clone().oneshot(req("192.0.2.2", None)).await.expect("ok");
        assert_eq!(other.status(), StatusCode::OK);
        tokio::time::advance(std::time::Duration::from_secs(10)).await;
        let r = s.clone().oneshot(req("192.0.2.1", None)).await.expect("ok");
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[tokio::test(start_paused = true)]
    async fn per_key_is_isolated_and_keyless_passes() {
        let cfg = RateLimit {
            per_api_key: rule(1, 60, 1),
            ..Default::default()
        };
        let s = svc(&cfg);
        let status = |r: Response<Body>| r.status();
        let a1 = s.clone().oneshot(req("192.0.2.1", Some("a"))).await;
        assert_eq!(a1.map(status).expect("ok"), StatusCode::OK);
        let a2 = s.clone().oneshot(req("192.0.2.1", Some("a"))).await;
        assert_eq!(a2.map(status).expect("ok"), StatusCode::TOO_MANY_REQUESTS);
        let b1 = s.clone().oneshot(req("192.0.2.1", Some("b"))).await;
        assert_eq!(b1.map(status).expect("ok"), StatusCode::OK);
        let none = s.clone().oneshot(req("192.0.2.1", None)).await;
        assert_eq!(none.map(status).expect("ok"), StatusCode::OK);
    }
}
