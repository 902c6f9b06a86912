//! Request body limit for the HTTP API (`middleware.body_limit.max_bytes`):
//! HTTP 413 when `Content-Length` says the body is too large, or when the
//! body turns out larger while it is read. The body is read here, up to the
//! limit, and handed on in full, so the refusal does not depend on how the
//! handler reads it. Never used on streaming (connection) routes.
//!
//! [`BodyLimitLayer::declared_at_most`] adds a bound that is only checked
//! against `Content-Length` (the body itself is then left to the route's
//! own limit), so that even with no configured limit a request declaring
//! more than the API ever reads is refused before a byte of it is read.

use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use futures_util::future::Either;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tower::{Layer, Service};

use super::{BoxFuture, Protocol, Refusal};

/// Refuses HTTP requests whose body exceeds a byte limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimitLayer {
    max: Option<usize>,
    declared_max: Option<usize>,
}

impl BodyLimitLayer {
    /// At most `max` bytes; 0 means unlimited.
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max: (max > 0).then_some(max),
            declared_max: None,
        }
    }

    /// Also refuses a `Content-Length` above `limit`.
    pub(crate) fn declared_at_most(self, limit: usize) -> Self {
        Self {
            declared_max: Some(limit),
            ..self
        }
    }
}

impl<S> Layer<S> for BodyLimitLayer {
    type Service = BodyLimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BodyLimitService {
            inner,
            max: self.max,
            declared_max: self.declared_max,
        }
    }
}

/// The service of [`BodyLimitLayer`].
#[derive(Debug, Clone)]
pub(crate) struct BodyLimitService<S> {
    inner: S,
    max: Option<usize>,
    declared_max: Option<usize>,
}

fn declared_len(req: &Request<Body>) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse().ok())
}

fn too_large() -> Response<Body> {
    Refusal::PAYLOAD_TOO_LARGE.response(Protocol::Http, None)
}

impl<S> Service<Request<Body>> for BodyLimitService<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Either<S::Future, BoxFuture<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let declared_limit = match (self.max, self.declared_max) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let (Some(n), Some(limit)) = (declared_len(&req), declared_limit)
            && n > limit as u64
        {
            metrics::counter!("rotor_middleware_refused_total", "reason" => "body_limit")
                .increment(1);
            return Either::Right(Box::pin(std::future::ready(Ok(too_large()))));
        }
        let Some(max) = self.max else {
            return Either::Left(self.inner.call(req));
        };
        // The clone that was driven to readiness handles this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Either::Right(Box::pin(async move {
            let (parts, body) = req.into_parts();
            let bytes = match Limited::new(body, max).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                    metrics::counter!("rotor_middleware_refused_total", "reason" => "body_limit")
                        .increment(1);
                    return Ok(too_large());
                }
                Err(_) => {
                    let mut r = Response::new(Body::from("failed to read request body"));
                    *r.status_mut() = StatusCode::BAD_REQUEST;
                    return Ok(r);
                }
            };
            inner
                .call(Request::from_parts(parts, Body::from(bytes)))
                .await
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::ServiceExt;

    use super::*;

    fn echo_len()
    -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone {
        BodyLimitLayer::new(8).layer(tower::service_fn(|req: Request<Body>| async move {
            let n = req
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes().len())
                .unwrap_or(usize::MAX);
            Ok::<_, Infallible>(Response::new(Body::from(n.to_string())))
        }))
    }

    async fn text(r: Response<Body>) -> String {
        let b = r.into_body().collect().await.expect("body").to_bytes();
        String::from_utf8_lossy(&b).into_owned()
    }

    #[tokio::test]
    async fn small_body_passes_in_full() {
        let r = echo_len()
            .oneshot(Request::new(Body::from("12345678")))
            .await
            .expect("ok");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(text(r).await, "8");
    }

    #[tokio::test]
    async fn declared_length_over_limit_is_413() {
        let req = Request::builder()
            .header(header::CONTENT_LENGTH, "9")
            .body(Body::from("123456789"))
            .expect("req");
        let r = echo_len().oneshot(req).await.expect("ok");
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn streamed_body_over_limit_is_413() {
        let chunks = futures_util::stream::iter(
            ["12345", "67890"]
                .map(|c| Ok::<_, Infallible>(bytes::Bytes::from_static(c.as_bytes()))),
        );
        let req = Request::new(Body::from_stream(chunks));
        let r = echo_len().oneshot(req).await.expect("ok");
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn declared_only_bound_refuses_by_header_and_passes_the_rest() {
        let svc = BodyLimitLayer::new(0)
            .declared_at_most(4)
            .layer(tower::service_fn(|req: Request<Body>| async move {
                let n = req
                    .into_body()
                    .collect()
                    .await
                    .map_or(0, |c| c.to_bytes().len());
                Ok::<_, Infallible>(Response::new(Body::from(n.to_string())))
            }));
        let req = Request::builder()
            .header(header::CONTENT_LENGTH, "10000000000")
            .body(Body::from("1"))
            .expect("req");
        let r = svc.clone().oneshot(req).await.expect("ok");
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        // Without a declared length the body goes through unread here.
        let r = svc
            .oneshot(Request::new(Body::from("123456789")))
            .await
            .expect("ok");
        assert_eq!(text(r).await, "9");
    }
}
