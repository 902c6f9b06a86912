//! A scripted gRPC proxy backend: a tonic `CentrifugoProxy` server on
//! 127.0.0.1:0 answering connect and rpc with the test's closures and
//! recording the metadata of every call. The other hooks answer
//! `unimplemented`.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rotor::proto::proxy as pp;
use rotor::proto::proxy::centrifugo_proxy_server::{CentrifugoProxy, CentrifugoProxyServer};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

type ConnectFn = dyn Fn(pp::ConnectRequest) -> Result<pp::ConnectResponse, Status> + Send + Sync;
type RpcFn = dyn Fn(pp::RpcRequest) -> Result<pp::RpcResponse, Status> + Send + Sync;

/// Metadata of one call, with the rpc name.
#[derive(Debug, Clone)]
pub struct Seen {
    pub rpc: &'static str,
    pub metadata: tonic::metadata::MetadataMap,
}

struct Service {
    connect: Arc<ConnectFn>,
    rpc: Arc<RpcFn>,
    seen: mpsc::UnboundedSender<Seen>,
}

#[tonic::async_trait]
impl CentrifugoProxy for Service {
    async fn connect(
        &self,
        request: Request<pp::ConnectRequest>,
    ) -> Result<Response<pp::ConnectResponse>, Status> {
        let _ = self.seen.send(Seen {
            rpc: "connect",
            metadata: request.metadata().clone(),
        });
        (self.connect)(request.into_inner()).map(Response::new)
    }

    async fn rpc(
        &self,
        request: Request<pp::RpcRequest>,
    ) -> Result<Response<pp::RpcResponse>, Status> {
        let _ = self.seen.send(Seen {
            rpc: "rpc",
            metadata: request.metadata().clone(),
        });
        (self.rpc)(request.into_inner()).map(Response::new)
    }
}

/// A running gRPC backend.
pub struct GrpcBackend {
    pub addr: SocketAddr,
    seen: mpsc::UnboundedReceiver<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl GrpcBackend {
    /// Starts a backend answering connect and rpc with the closures.
    pub async fn start(
        connect: impl Fn(pp::ConnectRequest) -> Result<pp::ConnectResponse, Status>
        + Send
        + Sync
        + 'static,
        rpc: impl Fn(pp::RpcRequest) -> Result<pp::RpcResponse, Status> + Send + Sync + 'static,
    ) -> Self {
        let (tx, seen) = mpsc::unbounded_channel();
        let svc = Service {
            connect: Arc::new(connect),
            rpc: Arc::new(rpc),
            seen: tx,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(CentrifugoProxyServer::new(svc))
                .serve_with_incoming(incoming)
                .await;
        });
        Self { addr, seen, task }
    }

    /// `grpc://addr`.
    pub fn endpoint(&self) -> String {
        format!("grpc://{}", self.addr)
    }

    /// The next call's metadata (fails the test after the deadline).
    pub async fn seen(&mut self) -> Seen {
        tokio::time::timeout(Duration::from_secs(5), self.seen.recv())
            .await
            .expect("backend called within deadline")
            .expect("backend running")
    }
}

impl Drop for GrpcBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}
