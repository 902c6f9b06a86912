//! Real proxy backends for tests, on port 0: an axum HTTP server and a
//! tonic `CentrifugoProxy` server. Both record every call (path, headers or
//! metadata, request as Centrifugo JSON) and answer with a reply the test
//! sets: a JSON response body, an HTTP status or gRPC error, a delay.
//!
//! Include with `#[path = "support/proxy_backend.rs"] mod proxy_backend;`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use parking_lot::Mutex;
use rotor::proto::proxy as pb;
use rotor::proto::proxy::centrifugo_proxy_server::{CentrifugoProxy, CentrifugoProxyServer};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

/// One call the backend received.
#[derive(Debug, Clone)]
pub struct Call {
    /// HTTP path, or the gRPC method name (`Connect`, `RPC`, …).
    pub path: String,
    /// HTTP headers, or gRPC metadata as headers.
    pub headers: HeaderMap,
    /// The request body (HTTP) or the decoded request re-encoded as
    /// Centrifugo JSON (gRPC).
    pub body: String,
}

/// How the backend answers.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status (HTTP backend only).
    pub status: u16,
    /// Response body: the JSON of the response message.
    pub body: String,
    /// gRPC error status instead of a response (gRPC backend only).
    pub grpc_error: Option<(tonic::Code, String)>,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Default for Reply {
    fn default() -> Self {
        Self {
            status: 200,
            body: "{}".into(),
            grpc_error: None,
            delay: Duration::ZERO,
        }
    }
}

/// A running backend.
pub struct Backend {
    /// Where it listens.
    pub addr: SocketAddr,
    calls: mpsc::UnboundedReceiver<Call>,
    reply: Arc<Mutex<Reply>>,
}

impl Backend {
    /// Sets how later calls are answered.
    pub fn reply(&self, reply: Reply) {
        *self.reply.lock() = reply;
    }

    /// Answers later calls with 200 and `body`.
    pub fn reply_json(&self, body: &str) {
        self.reply(Reply {
            body: body.into(),
            ..Reply::default()
        });
    }

    /// The next recorded call (waits up to 5 s).
    pub async fn next_call(&mut self) -> Call {
        tokio::time::timeout(Duration::from_secs(5), self.calls.recv())
            .await
            .expect("backend call within 5s")
            .expect("backend alive")
    }

    /// `http://addr/path`.
    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `grpc://addr`.
    pub fn grpc_url(&self) -> String {
        format!("grpc://{}", self.addr)
    }
}

/// Starts an HTTP backend answering every POST.
pub async fn http_backend() -> Backend {
    let (tx, calls) = mpsc::unbounded_channel();
    let reply = Arc::new(Mutex::new(Reply::default()));
    let r = reply.clone();
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
        let tx = tx.clone();
        let r = r.clone();
        async move {
            let _ = tx.send(Call {
                path: uri.path().to_string(),
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
            let reply = r.lock().clone();
            if !reply.delay.is_zero() {
                tokio::time::sleep(reply.delay).await;
            }
            let status = StatusCode::from_u16(reply.status).expect("status");
            (
                status,
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                reply.body,
            )
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Backend { addr, calls, reply }
}

/// Starts a gRPC `CentrifugoProxy` backend (accepting gzip).
pub async fn grpc_backend() -> Backend {
    let (tx, calls) = mpsc::unbounded_channel();
    let reply = Arc::new(Mutex::new(Reply::default()));
    let svc = GrpcProxy {
        tx,
        reply: reply.clone(),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = CentrifugoProxyServer::new(svc).accept_compressed(CompressionEncoding::Gzip);
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(server)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await;
    });
    Backend { addr, calls, reply }
}

#[derive(Clone)]
struct GrpcProxy {
    tx: mpsc::UnboundedSender<Call>,
    reply: Arc<Mutex<Reply>>,
}

impl GrpcProxy {
    async fn answer<Req, Resp>(
        &self,
        method: &str,
        req: Request<Req>,
    ) -> Result<Response<Resp>, Status>
    where
        Req: serde::Serialize,
        Resp: serde::de::DeserializeOwned,
    {
        let (metadata, _, message) = req.into_parts();
        let _ = self.tx.send(Call {
            path: method.to_string(),
            headers: metadata.into_headers(),
            body: serde_json::to_string(&message).expect("request serializes"),
        });
        let reply = self.reply.lock().clone();
        if !reply.delay.is_zero() {
            tokio::time::sleep(reply.delay).await;
        }
        if let Some((code, message)) = reply.grpc_error {
            return Err(Status::new(code, message));
        }
        let resp: Resp = serde_json::from_str(&reply.body).expect("reply body is a response");
        Ok(Response::new(resp))
    }
}

#[tonic::async_trait]
impl CentrifugoProxy for GrpcProxy {
    async fn connect(
        &self,
        r: Request<pb::ConnectRequest>,
    ) -> Result<Response<pb::ConnectResponse>, Status> {
        self.answer("Connect", r).await
    }
    async fn refresh(
        &self,
        r: Request<pb::RefreshRequest>,
    ) -> Result<Response<pb::RefreshResponse>, Status> {
        self.answer("Refresh", r).await
    }
    async fn subscribe(
        &self,
        r: Request<pb::SubscribeRequest>,
    ) -> Result<Response<pb::SubscribeResponse>, Status> {
        self.answer("Subscribe", r).await
    }
    async fn publish(
        &self,
        r: Request<pb::PublishRequest>,
    ) -> Result<Response<pb::PublishResponse>, Status> {
        self.answer("Publish", r).await
    }
    async fn rpc(&self, r: Request<pb::RpcRequest>) -> Result<Response<pb::RpcResponse>, Status> {
        self.answer("RPC", r).await
    }
    async fn sub_refresh(
        &self,
        r: Request<pb::SubRefreshRequest>,
    ) -> Result<Response<pb::SubRefreshResponse>, Status> {
        self.answer("SubRefresh", r).await
    }
}
