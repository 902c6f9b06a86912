//! Request timeout (`middleware.timeout.request`): when the response head is
//! not ready in time the request is dropped and the client gets HTTP 504, or
//! gRPC `DEADLINE_EXCEEDED`. Only the time until the response head counts,
//! so a streamed response body is never cut; still, the stacks never put
//! this layer on connection (streaming) routes.
//!
//! On the gRPC API a client's `grpc-timeout` header also sets a deadline
//! (the shorter of the two wins), as gRPC servers honour it; Rotor serves
//! gRPC on its own listener, so this layer is where that happens.

use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{Request, Response};
use futures_util::future::Either;
use tower::{Layer, Service};

use super::{BoxFuture, Protocol, Refusal, RefusalBody};

/// Times requests out after a fixed duration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TimeoutLayer {
    after: Option<Duration>,
    protocol: Protocol,
}

impl TimeoutLayer {
    /// Refuses in `protocol` after `after`; zero means no timeout.
    pub(crate) fn new(after: Duration, protocol: Protocol) -> Self {
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
        let asked = match self.protocol {
            Protocol::Grpc => req
                .headers()
                .get("grpc-timeout")
                .and_then(|v| grpc_timeout(v.as_bytes())),
            Protocol::Http => None,
        };
        let fut = self.inner.call(req);
        let after = match (self.after, asked) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => match a.or(b) {
                Some(after) => after,
                None => return Either::Left(fut),
            },
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

/// Parses a `grpc-timeout` value: at most 8 digits and a unit (`H`, `M`,
/// `S`, `m`, `u`, `n`). Anything else is no deadline.
fn grpc_timeout(value: &[u8]) -> Option<Duration> {
    let (&unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
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

    #[test]
    fn grpc_timeout_values() {
        assert_eq!(grpc_timeout(b"5S"), Some(Duration::from_secs(5)));
        assert_eq!(grpc_timeout(b"250m"), Some(Duration::from_millis(250)));
        assert_eq!(grpc_timeout(b"2H"), Some(Duration::from_secs(7200)));
        assert_eq!(
            grpc_timeout(b"99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        for bad in [&b""[..], b"S", b"5", b"5s", b"123456789S", b"-1S", b"1.5S"] {
            assert_eq!(grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn grpc_timeout_header_sets_a_deadline() {
        let svc = TimeoutLayer::new(Duration::ZERO, Protocol::Grpc).layer(tower::service_fn(
            |_req: Request<Body>| async move {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok::<_, Infallible>(Response::new(Body::empty()))
            },
        ));
        let req = Request::builder()
            .uri("/svc/Method")
            .header("grpc-timeout", "2S")
            .body(Body::empty())
            .expect("request");
        let r = svc.oneshot(req).await.expect("response");
        assert_eq!(
            r.headers().get("grpc-status").map(|v| v.as_bytes()),
            Some(&b"4"[..])
        );
    }
}
