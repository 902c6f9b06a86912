//! The tower stack in front of the server APIs (HTTP and gRPC) and of the
//! client connection endpoints. One layer per file; [`stack`] assembles them.
//!
//! Every layer that refuses a request answers in the protocol of the port it
//! guards: an HTTP status for the HTTP API and connection endpoints, a gRPC
//! status (trailers-only response) for the gRPC API. On connection routes the
//! stack runs once per upgrade request, never per WebSocket frame.

pub(crate) mod api_key;
pub(crate) mod body_limit;
pub(crate) mod buckets;
pub(crate) mod client_ip;
pub(crate) mod conn_limit;
pub(crate) mod grpc_status;
pub(crate) mod load_shed;
pub mod otel;
pub(crate) mod rate_limit;
pub mod stack;
pub(crate) mod timeout;
pub(crate) mod trace;

use std::future::Future;
use std::pin::Pin;

use axum::http::{HeaderValue, Response, StatusCode, header};
use bytes::Bytes;

/// The boxed future the layers' services return.
pub(crate) type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'static>>;

/// Which protocol a layer answers refusals in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// Plain HTTP: the refusal is an HTTP status with a short text body.
    Http,
    /// gRPC: HTTP 200 carrying `grpc-status` / `grpc-message`.
    Grpc,
}

/// A response body type the layers can build refusals with.
pub(crate) trait RefusalBody: Default + Send + 'static {
    /// A body holding `text`.
    fn text(text: &'static str) -> Self;
}

impl RefusalBody for axum::body::Body {
    fn text(text: &'static str) -> Self {
        axum::body::Body::from(text)
    }
}

impl RefusalBody for tonic::body::Body {
    fn text(text: &'static str) -> Self {
        tonic::body::Body::new(http_body_util::Full::new(Bytes::from_static(
            text.as_bytes(),
        )))
    }
}

/// A refused request, built in the layer's protocol.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Refusal {
    /// HTTP status (HTTP protocol).
    pub(crate) status: StatusCode,
    /// gRPC status code (gRPC protocol).
    pub(crate) grpc: tonic::Code,
    /// Short human-readable reason (body text / `grpc-message`).
    pub(crate) message: &'static str,
}

impl Refusal {
    /// HTTP 429 / `RESOURCE_EXHAUSTED`.
    pub(crate) const TOO_MANY_REQUESTS: Self = Self {
        status: StatusCode::TOO_MANY_REQUESTS,
        grpc: tonic::Code::ResourceExhausted,
        message: "too many requests",
    };
    /// HTTP 413 (HTTP only).
    pub(crate) const PAYLOAD_TOO_LARGE: Self = Self {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        grpc: tonic::Code::ResourceExhausted,
        message: "request body too large",
    };
    /// HTTP 413 / `RESOURCE_EXHAUSTED`: a batch over
    /// `middleware.batch.max_commands`.
    pub(crate) const TOO_MANY_COMMANDS: Self = Self {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        grpc: tonic::Code::ResourceExhausted,
        message: "too many commands in batch",
    };
    /// HTTP 504 / `DEADLINE_EXCEEDED`.
    pub(crate) const TIMEOUT: Self = Self {
        status: StatusCode::GATEWAY_TIMEOUT,
        grpc: tonic::Code::DeadlineExceeded,
        message: "request timed out",
    };
    /// HTTP 503 / `UNAVAILABLE` (load shedding).
    pub(crate) const OVERLOADED: Self = Self {
        status: StatusCode::SERVICE_UNAVAILABLE,
        grpc: tonic::Code::Unavailable,
        message: "server overloaded",
    };
    /// HTTP 503 (connection limits).
    pub(crate) const CONNECTION_LIMIT: Self = Self {
        status: StatusCode::SERVICE_UNAVAILABLE,
        grpc: tonic::Code::Unavailable,
        message: "connection limit reached",
    };

    /// The response in `protocol`, with `Retry-After` (seconds) if given.
    pub(crate) fn response<B: RefusalBody>(
        self,
        protocol: Protocol,
        retry_after: Option<u64>,
    ) -> Response<B> {
        let mut resp = match protocol {
            Protocol::Http => {
                let mut r = Response::new(B::text(self.message));
                *r.status_mut() = self.status;
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                r
            }
            Protocol::Grpc => tonic::Status::new(self.grpc, self.message).into_http::<B>(),
        };
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_refusal_has_status_and_retry_after() {
        let r: Response<axum::body::Body> =
            Refusal::TOO_MANY_REQUESTS.response(Protocol::Http, Some(3));
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "3");
    }

    #[test]
    fn grpc_refusal_is_a_trailers_only_status() {
        let r: Response<tonic::body::Body> = Refusal::TIMEOUT.response(Protocol::Grpc, None);
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["grpc-status"], "4");
        assert_eq!(r.headers()["content-type"], "application/grpc");
    }
}
