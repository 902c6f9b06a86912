//! Load shedding (`middleware.load_shed.max_in_flight`): at most that many
//! requests are served at once; one more is refused immediately with HTTP
//! 503, or gRPC `UNAVAILABLE`, instead of queueing. A slot is held until the
//! response head is ready.

use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::{Request, Response};
use futures_util::future::Either;
use tokio::sync::Semaphore;
use tower::{Layer, Service};

use super::{BoxFuture, Protocol, Refusal, RefusalBody};

/// Bounds concurrent requests, refusing the excess.
#[derive(Debug, Clone)]
pub(crate) struct LoadShedLayer {
    slots: Option<Arc<Semaphore>>,
    protocol: Protocol,
}

impl LoadShedLayer {
    /// At most `max_in_flight` requests at once; 0 means unlimited.
    pub(crate) fn new(max_in_flight: usize, protocol: Protocol) -> Self {
        Self {
            slots: (max_in_flight > 0).then(|| Arc::new(Semaphore::new(max_in_flight))),
            protocol,
        }
    }
}

impl<S> Layer<S> for LoadShedLayer {
    type Service = LoadShedService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LoadShedService {
            inner,
            slots: self.slots.clone(),
            protocol: self.protocol,
        }
    }
}

/// The service of [`LoadShedLayer`].
#[derive(Debug, Clone)]
pub struct LoadShedService<S> {
    inner: S,
    slots: Option<Arc<Semaphore>>,
    protocol: Protocol,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for LoadShedService<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResB: RefusalBody,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = Either<S::Future, BoxFuture<Response<ResB>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let Some(slots) = &self.slots else {
            return Either::Left(self.inner.call(req));
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics::counter!("rotor_middleware_refused_total", "reason" => "load_shed")
                .increment(1);
            let refusal = Refusal::OVERLOADED.response(self.protocol, None);
            return Either::Right(Box::pin(std::future::ready(Ok(refusal))));
        };
        let fut = self.inner.call(req);
        Either::Right(Box::pin(async move {
            let result = fut.await;
            drop(slot);
            result
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use axum::body::Body;
    use axum::http::StatusCode;
    use tokio::sync::Notify;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn excess_is_shed_and_slots_come_back() {
        let gate = Arc::new(Notify::new());
        let g = gate.clone();
        let svc = LoadShedLayer::new(1, Protocol::Http).layer(tower::service_fn(
            move |req: Request<Body>| {
                let g = g.clone();
                async move {
                    if req.uri().path() == "/hold" {
                        g.notified().await;
                    }
                    Ok::<_, Infallible>(Response::new(Body::empty()))
                }
            },
        ));
        let held = tokio::spawn(
            svc.clone().oneshot(
                Request::builder()
                    .uri("/hold")
                    .body(Body::empty())
                    .expect("req"),
            ),
        );
        // The held request has its slot once the shed one is refused.
        let shed = loop {
            let r = svc
                .clone()
                .oneshot(Request::new(Body::empty()))
                .await
                .expect("ok");
            if r.status() == StatusCode::SERVICE_UNAVAILABLE {
                break r;
            }
            tokio::task::yield_now().await;
        };
        assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
        gate.notify_one();
        assert_eq!(
            held.await.expect("join").expect("ok").status(),
            StatusCode::OK
        );
        let r = svc.oneshot(Request::new(Body::empty())).await.expect("ok");
        assert_eq!(r.status(), StatusCode::OK);
    }
}
