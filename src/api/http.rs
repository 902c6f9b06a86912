//! The HTTP/JSON API: `POST <prefix>/<method>` per rpc (routes generated
//! from `api.proto`), `POST <prefix>` for the legacy newline-separated
//! protocol (both batch endpoints live in [`super::http_batch`]), the API
//! key layer and the body limit (`spec/server-api.md` §2).

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::api::ApiError;
use crate::api::executor::Executor;
use crate::api::gateway;
use crate::api::http_batch::legacy;
use crate::config::{BatchLimits, Config, ErrorMode};
use crate::middleware::api_key::ApiKeyLayer;
use crate::proto::api::Error;

/// Largest accepted request body.
pub(crate) const BODY_LIMIT: usize = 64 << 20;

/// Request header asking for the transport error mode.
pub(crate) const ERROR_MODE_HEADER: &str = "x-centrifugo-error-mode";

/// State shared by the HTTP API handlers.
#[derive(Clone)]
pub struct HttpApi {
    /// The one implementation of every method.
    pub(crate) executor: Arc<Executor>,
    /// `http_api.error_mode: transport`.
    pub(crate) transport_mode: bool,
    /// Cancelled when the server shuts down (the legacy endpoint then
    /// answers 503).
    pub(crate) shutdown: CancellationToken,
    /// `middleware.batch`.
    pub(crate) batch: BatchLimits,
}

/// The API prefix from `http_api.handler_prefix`: trailing `/` trimmed, so
/// `""` stands for the root.
pub(crate) fn prefix(cfg: &Config) -> String {
    cfg.http_api
        .handler_prefix
        .trim_end_matches('/')
        .to_string()
}

/// The HTTP API router: method routes, the legacy endpoint, API key auth
/// (after the POST check, as Centrifugo) and the body limit.
pub(crate) fn router(cfg: &Config, executor: Arc<Executor>, shutdown: CancellationToken) -> Router {
    let prefix = prefix(cfg);
    let state = HttpApi {
        executor,
        transport_mode: cfg.http_api.error_mode == ErrorMode::Transport,
        shutdown,
        batch: cfg.middleware.batch,
    };
    let legacy_path = if prefix.is_empty() { "/" } else { &prefix };
    gateway::method_routes(&prefix)
        .route(legacy_path, post(legacy))
        .with_state(state)
        .route_layer(DefaultBodyLimit::max(BODY_LIMIT))
        .route_layer(ApiKeyLayer::http(&cfg.http_api.key, cfg.http_api.insecure))
        .route_layer(middleware::from_fn(require_post))
}

/// 405 with an empty body for anything but POST, before auth.
async fn require_post(req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    next.run(req).await
}

fn transport_requested(headers: &HeaderMap) -> bool {
    headers
        .get(ERROR_MODE_HEADER)
        .is_some_and(|v| v.as_bytes() == b"transport")
}

fn json(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

pub(crate) fn text(status: StatusCode, body: &'static str) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// 400 `Bad Request` as text, for bodies that are not JSON.
pub(crate) fn bad_request() -> Response {
    text(StatusCode::BAD_REQUEST, "Bad Request")
}

pub(crate) fn encode(status: StatusCode, v: &impl Serialize) -> Response {
    match serde_json::to_vec(v) {
        Ok(body) => json(status, body),
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
    }
}

/// Decodes a request body as Go's `encoding/json` would into a struct: a
/// JSON object (unknown keys ignored) or `null` (the zero value); anything
/// else is `None` (400).
pub(crate) fn decode_body<T: DeserializeOwned + Default>(body: &[u8]) -> Option<T> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace())?;
    match body[start] {
        b'{' => serde_json::from_slice(body).ok(),
        b'n' => serde_json::from_slice::<()>(body)
            .ok()
            .map(|()| T::default()),
        _ => None,
    }
}

#[derive(Serialize)]
struct ResultEnvelope<'a, T> {
    result: &'a T,
}

#[derive(Serialize)]
struct ErrorEnvelope {
    error: Error,
}

/// One per-method call: decode the body, run `call`, encode the
/// `{"result":…}` / `{"error":…}` envelope (or, in transport error mode,
/// the bare error with the mapped status). Called by generated routes.
pub(crate) async fn unary<Req, Res, F, Fut>(
    State(api): State<HttpApi>,
    headers: HeaderMap,
    body: Bytes,
    call: F,
) -> Response
where
    Req: DeserializeOwned + Default,
    Res: Serialize,
    F: FnOnce(Arc<Executor>, Req) -> Fut,
    Fut: Future<Output = Result<Res, ApiError>>,
{
    let Some(req) = decode_body::<Req>(&body) else {
        return bad_request();
    };
    match call(api.executor.clone(), req).await {
        Ok(res) => encode(StatusCode::OK, &ResultEnvelope { result: &res }),
        Err(e) if api.transport_mode || transport_requested(&headers) => {
            let status =
                StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            encode(status, &Error::from(e))
        }
        Err(e) => encode(StatusCode::OK, &ErrorEnvelope { error: e.into() }),
    }
}
