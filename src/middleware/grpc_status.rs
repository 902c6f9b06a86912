//! grpc-go's status for a request message over the receive limit, which is
//! what Centrifugo's clients see: tonic refuses such a message with
//! `OUT_OF_RANGE` "Error, decoded message length too large: found N bytes,
//! the limit is: M bytes", grpc-go with `RESOURCE_EXHAUSTED` "grpc:
//! received message larger than max (N vs. M)". This layer rewrites the
//! first into the second on trailers-only responses (the form in which
//! tonic refuses a request) and leaves every other response alone. It
//! wraps any tonic service and keeps its [`NamedService`] name, so serving
//! a service with it is one line: `GrpcStatusLayer.layer(service)`.

use std::task::{Context, Poll};

use futures_util::TryFutureExt;
use futures_util::future::MapOk;
use http::Response;
use tonic::server::NamedService;
use tonic::{Code, Status};
use tower::{Layer, Service};

/// Wraps a gRPC service in [`GrpcStatus`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct GrpcStatusLayer;

impl<S> Layer<S> for GrpcStatusLayer {
    type Service = GrpcStatus<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcStatus { inner }
    }
}

/// The service of [`GrpcStatusLayer`].
#[derive(Debug, Clone)]
pub(crate) struct GrpcStatus<S> {
    inner: S,
}

impl<S: NamedService> NamedService for GrpcStatus<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, Req, B> Service<Req> for GrpcStatus<S>
where
    S: Service<Req, Response = Response<B>>,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = MapOk<S::Future, fn(Response<B>) -> Response<B>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        self.inner.call(req).map_ok(rewrite as fn(_) -> _)
    }
}

/// grpc-go's message for tonic's over-limit `message`, if it is one.
fn grpc_go_message(message: &str) -> Option<String> {
    let rest = message.strip_prefix("Error, decoded message length too large: found ")?;
    let (found, rest) = rest.split_once(" bytes, the limit is: ")?;
    let limit = rest.strip_suffix(" bytes")?;
    let found: u64 = found.parse().ok()?;
    let limit: u64 = limit.parse().ok()?;
    Some(format!(
        "grpc: received message larger than max ({found} vs. {limit})"
    ))
}

/// Rewrites a trailers-only over-limit `OUT_OF_RANGE` (status in the
/// response head) into grpc-go's `RESOURCE_EXHAUSTED`.
fn rewrite<B>(mut resp: Response<B>) -> Response<B> {
    let headers = resp.headers_mut();
    if headers.get(Status::GRPC_STATUS).map(|v| v.as_bytes()) != Some(b"11") {
        return resp;
    }
    let Some(message) = Status::from_header_map(headers).and_then(|s| grpc_go_message(s.message()))
    else {
        return resp;
    };
    headers.remove(Status::GRPC_MESSAGE);
    // Only fails for a message that cannot be a header value; this one
    // is plain ASCII.
    let _ = Status::new(Code::ResourceExhausted, message).add_header(headers);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tower::ServiceExt;

    fn status_service(
        status: Status,
    ) -> impl Service<(), Response = Response<tonic::body::Body>, Error = Infallible> {
        tower::service_fn(move |()| {
            let resp = status.clone().into_http::<tonic::body::Body>();
            async move { Ok::<_, Infallible>(resp) }
        })
    }

    async fn through_layer(status: Status) -> Status {
        let resp = GrpcStatusLayer
            .layer(status_service(status))
            .oneshot(())
            .await
            .expect("infallible");
        Status::from_header_map(resp.headers()).expect("status in the head")
    }

    #[test]
    fn messages_are_translated_with_their_numbers() {
        assert_eq!(
            grpc_go_message(
                "Error, decoded message length too large: found 2066 bytes, the limit is: 1024 bytes"
            )
            .as_deref(),
            Some("grpc: received message larger than max (2066 vs. 1024)")
        );
        for other in [
            "",
            "Error, decoded message length too large: found x bytes, the limit is: 1024 bytes",
            "Error, decoded message length too large: found 1 bytes, the limit is: 2 bytes!",
            "unrecoverable position",
        ] {
            assert_eq!(grpc_go_message(other), None, "{other:?}");
        }
    }

    #[tokio::test]
    async fn over_limit_out_of_range_becomes_resource_exhausted() {
        let tonic = Status::out_of_range(
            "Error, decoded message length too large: found 5000000 bytes, the limit is: 4194304 bytes",
        );
        let s = through_layer(tonic).await;
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert_eq!(
            s.message(),
            "grpc: received message larger than max (5000000 vs. 4194304)"
        );
    }

    #[tokio::test]
    async fn other_statuses_pass_unchanged() {
        for status in [
            Status::out_of_range("unrecoverable position"),
            Status::resource_exhausted("Error, decompressed message too large"),
            Status::internal(
                "Error, decoded message length too large: found 5 bytes, the limit is: 4 bytes",
            ),
        ] {
            let s = through_layer(status.clone()).await;
            assert_eq!((s.code(), s.message()), (status.code(), status.message()));
        }
    }

    #[tokio::test]
    async fn responses_with_a_body_are_not_touched() {
        let svc = tower::service_fn(|()| async {
            Ok::<_, Infallible>(Response::new(tonic::body::Body::default()))
        });
        let resp = GrpcStatusLayer.layer(svc).oneshot(()).await.expect("ok");
        assert!(resp.headers().get(Status::GRPC_STATUS).is_none());
    }
}
