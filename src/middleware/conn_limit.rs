//! Admission of new client connections as a layer on the connection routes:
//! `client.connection_limit` and `client.connection_rate_limit` (the
//! node-wide state in [`crate::node::limits`]). A refused request gets HTTP
//! 503 before any upgrade, as Centrifugo's connection-limit middleware does.
//!
//! An admitted request carries a [`ConnPermit`] in its extensions. The
//! transport takes the permit ([`take_permit`]) and keeps it for the life
//! of the connection; if the request ends without an upgrade the permit is
//! dropped with the request and the slot is free again.

use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{Request, Response};
use futures_util::future::Either;
use parking_lot::Mutex;
use tower::{Layer, Service};

use super::{Protocol, Refusal};
use crate::node::limits::{Admission, Permit};

/// A connection slot handed from the layer to the transport (request
/// extension).
#[derive(Debug, Clone)]
pub(crate) struct ConnPermit(Arc<Mutex<Option<Permit>>>);

impl ConnPermit {
    /// Takes the slot out (once).
    pub(crate) fn take(&self) -> Option<Permit> {
        self.0.lock().take()
    }
}

/// The refusal response for a connection over the node limits.
pub(crate) fn refused() -> Response<Body> {
    metrics::counter!("centrifugo_node_client_connection_limit").increment(1);
    Refusal::CONNECTION_LIMIT.response(Protocol::Http, None)
}

/// The permit the layer put in `req`, or — when the route has no
/// [`ConnLimitLayer`] — one admitted now; `Err` is the 503 response.
pub(crate) fn take_permit<B>(
    req: &mut Request<B>,
    admission: &Arc<Admission>,
) -> Result<Permit, Response<Body>> {
    if let Some(p) = req.extensions_mut().remove::<ConnPermit>()
        && let Some(permit) = p.take()
    {
        return Ok(permit);
    }
    admission.admit().map_err(|why| {
        tracing::info!(?why, "connection refused by node limits");
        refused()
    })
}

/// Admits or refuses connection requests.
#[derive(Debug, Clone)]
pub(crate) struct ConnLimitLayer {
    admission: Arc<Admission>,
}

impl ConnLimitLayer {
    /// Using the node's admission state.
    pub(crate) fn new(admission: Arc<Admission>) -> Self {
        Self { admission }
    }
}

impl<S> Layer<S> for ConnLimitLayer {
    type Service = ConnLimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ConnLimitService {
            inner,
            admission: self.admission.clone(),
        }
    }
}

/// The service of [`ConnLimitLayer`].
#[derive(Debug, Clone)]
pub(crate) struct ConnLimitService<S> {
    inner: S,
    admission: Arc<Admission>,
}

impl<S, B> Service<Request<B>> for ConnLimitService<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Either<S::Future, std::future::Ready<Result<Response<Body>, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        match self.admission.admit() {
            Ok(permit) => {
                req.extensions_mut()
                    .insert(ConnPermit(Arc::new(Mutex::new(Some(permit)))));
                Either::Left(self.inner.call(req))
            }
            Err(why) => {
                tracing::info!(?why, "connection refused by node limits");
                Either::Right(std::future::ready(Ok(refused())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use axum::http::StatusCode;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn permit_travels_to_the_handler_and_limit_refuses() {
        let admission = Arc::new(Admission::new(1, 0));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let a = admission.clone();
        let svc = ConnLimitLayer::new(admission.clone()).layer(tower::service_fn(
            move |mut req: Request<Body>| {
                let (a, tx) = (a.clone(), tx.clone());
                async move {
                    let permit = take_permit(&mut req, &a).expect("admitted");
                    let _ = tx.send(permit);
                    Ok::<_, Infallible>(Response::new(Body::empty()))
                }
            },
        ));
        let r = svc
            .clone()
            .oneshot(Request::new(Body::empty()))
            .await
            .expect("ok");
        assert_eq!(r.status(), StatusCode::OK);
        let permit = rx.recv().await.expect("permit");
        assert_eq!(admission.open(), 1);
        let r = svc
            .clone()
            .oneshot(Request::new(Body::empty()))
            .await
            .expect("ok");
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        drop(permit);
        assert_eq!(admission.open(), 0);
    }

    #[tokio::test]
    async fn unused_permit_is_released_with_the_request() {
        let admission = Arc::new(Admission::new(1, 0));
        let svc = ConnLimitLayer::new(admission.clone()).layer(tower::service_fn(
            |_req: Request<Body>| async { Ok::<_, Infallible>(Response::new(Body::empty())) },
        ));
        for _ in 0..3 {
            let r = svc
                .clone()
                .oneshot(Request::new(Body::empty()))
                .await
                .expect("ok");
            assert_eq!(r.status(), StatusCode::OK);
        }
        assert_eq!(admission.open(), 0);
    }
}
