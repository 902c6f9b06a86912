//! Request timeout (`middleware.timeout.request`): when the response head is
//! not ready in time the request is dropped and the client gets HTTP 504, or
//! gRPC `DEADLINE_EXCEEDED`. Only the time until the response head counts,
//! so a streamed response body is never cut; still, the stacks never put
//! this layer on connection (streaming) routes.

use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{Request, Response};
use futures_util::future::Either;
use tower::{Layer, Service};

use super::{BoxFuture, Protocol, Refusal, RefusalBody};

/// Times requests out after a fixed duration.
#[derive(Debug, Clone, Copy)]
pub struct TimeoutLayer {
    after: Option<Duration>,
    protocol: Protocol,
}

impl TimeoutLayer {
    /// Refuses in `protocol` after `after`; zero means no timeout.
    pub fn new(after: Duration, protocol: Protocol) -> Self {
        Self {
            after: (!after.is_zero()).then_some(after),
            protocol,
        }
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = TimeoutService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TimeoutService {
            inner,
            after: self.after,
            protocol: self.protocol,
        }
    }
}

/// The service of [`TimeoutLayer`].
#[derive(Debug, Clone)]
pub struct TimeoutService<S> {
    inner: S,
    after: Option<Duration>,
    protocol: Protocol,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for TimeoutService<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Future: Send + 'static,
    ResB: RefusalBody,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = Either<S::Future, BoxFuture<Response<ResB>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let fut = self.inner.call(req);
        let Some(after) = self.after else {
            return Either::Left(fut);
        };
        let protocol = self.protocol;
        Either::Right(Box::pin(async move {
            match tokio::time::timeout(after, fut).await {
                Ok(result) => result,
                Err(_) => {
                    metrics::counter!("rotor_middleware_refused_total", "reason" => "timeout")
                        .increment(1);
                    Ok(Refusal::TIMEOUT.response(protocol, None))
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use axum::body::Body;
    use axum::http::StatusCode;
    use tower::ServiceExt;

    use super::*;

    fn slow(
        protocol: Protocol,
    ) -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible> {
        TimeoutLayer::new(Duration::from_secs(1), protocol).layer(tower::service_fn(
            |req: Request<Body>| async move {
                if req.uri().path() == "/slow" {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
                Ok::<_, Infallible>(Response::new(Body::empty()))
            },
        ))
    }

    fn req(path: &str) -> Request<Body> {
        Request::builder()
            .uri(path)
            .body(Body::empty())
            .expect("req")
    }

    #[tokio::test(start_paused = true)]
    async fn slow_handler_gets_504() {
        let r = slow(Protocol::Http)
            .oneshot(req("/slow"))
            .await
            .expect("ok");
        assert_eq!(r.status(), StatusCode::GATEWAY_TIMEOUT);
        let r = slow(Protocol::Http)
            .oneshot(req("/fast"))
            .await
            .expect("ok");
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[tokio::test(start_paused = true)]
    async fn zero_means_no_timeout() {
        let svc = TimeoutLayer::new(Duration::ZERO, Protocol::Http).layer(tower::service_fn(
            |_req: Request<Body>| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok::<_, Infallible>(Response::new(Body::empty()))
            },
        ));
        let r = svc.oneshot(req("/")).await.expect("ok");
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[tokio::test(start_paused = true)]
    async fn grpc_gets_deadline_exceeded() {
        let r = slow(Protocol::Grpc)
            .oneshot(req("/slow"))
            .await
            .expect("ok");
        assert_eq!(r.headers()["grpc-status"], "4");
    }
}
