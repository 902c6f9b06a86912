//! A gRPC proxy backend for subscription streams: a tonic
//! `CentrifugoProxy` server on 127.0.0.1:0 that hands every stream Rotor
//! opens (unidirectional or bidirectional) to the test, which answers the
//! first message, streams publications, reads the client's publications
//! and observes when Rotor drops the stream. Unary hooks answer
//! `unimplemented`.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use rotor::proto::proxy as pp;
use rotor::proto::proxy::centrifugo_proxy_server::{CentrifugoProxy, CentrifugoProxyServer};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

type Item = Result<pp::StreamSubscribeResponse, Status>;
type Stream = Pin<Box<dyn futures_util::Stream<Item = Item> + Send>>;

const PATIENCE: Duration = Duration::from_secs(5);

/// One stream Rotor opened.
pub struct Opened {
    /// The subscribe request (first message of a bidirectional stream).
    pub request: pp::SubscribeRequest,
    /// Opened with `SubscribeBidirectional`.
    pub bidirectional: bool,
    tx: mpsc::Sender<Item>,
    upstream: Option<tonic::Streaming<pp::StreamSubscribeRequest>>,
}

impl Opened {
    /// Sends a raw message (or error status) down the stream.
    pub async fn send(&self, item: Item) {
        self.tx.send(item).await.expect("stream open");
    }

    /// Allows the subscription (empty result).
    pub async fn accept(&self) {
        self.answer(pp::SubscribeResponse {
            result: Some(pp::SubscribeResult::default()),
            ..Default::default()
        })
        .await;
    }

    /// Sends the first message with `resp`.
    pub async fn answer(&self, resp: pp::SubscribeResponse) {
        self.send(Ok(pp::StreamSubscribeResponse {
            subscribe_response: Some(resp),
            publication: None,
        }))
        .await;
    }

    /// Streams one publication with `data`.
    pub async fn publish(&self, data: &str) {
        self.send(Ok(pp::StreamSubscribeResponse {
            subscribe_response: None,
            publication: Some(pp::Publication {
                data: bytes::Bytes::copy_from_slice(data.as_bytes()),
                ..Default::default()
            }),
        }))
        .await;
    }

    /// Streams one publication unless Rotor dropped the stream; returns
    /// whether it was sent.
    pub async fn offer(&self, data: &str) -> bool {
        let msg = pp::StreamSubscribeResponse {
            subscribe_response: None,
            publication: Some(pp::Publication {
                data: bytes::Bytes::copy_from_slice(data.as_bytes()),
                ..Default::default()
            }),
        };
        self.tx.send(Ok(msg)).await.is_ok()
    }

    /// Ends the stream from the backend side (gRPC OK).
    pub fn finish(self) {}

    /// Waits until Rotor dropped the stream (fails after the deadline).
    pub async fn closed(&self) {
        tokio::time::timeout(PATIENCE, self.tx.closed())
            .await
            .expect("stream dropped by Rotor within deadline");
    }

    /// The next client publication that came up a bidirectional stream.
    pub async fn upstream(&mut self) -> pp::Publication {
        let s = self.upstream.as_mut().expect("bidirectional stream");
        loop {
            let m = tokio::time::timeout(PATIENCE, s.message())
                .await
                .expect("upstream message within deadline")
                .expect("upstream ok")
                .expect("upstream open");
            if let Some(p) = m.publication {
                return p;
            }
        }
    }
}

struct Service {
    opened: mpsc::UnboundedSender<Opened>,
}

fn response(rx: mpsc::Receiver<Item>) -> Response<Stream> {
    let s =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    Response::new(Box::pin(s))
}

#[tonic::async_trait]
impl CentrifugoProxy for Service {
    async fn subscribe_unidirectional(
        &self,
        request: Request<pp::SubscribeRequest>,
    ) -> Result<Response<Stream>, Status> {
        let (tx, rx) = mpsc::channel(16);
        let _ = self.opened.send(Opened {
            request: request.into_inner(),
            bidirectional: false,
            tx,
            upstream: None,
        });
        Ok(response(rx))
    }

    async fn subscribe_bidirectional(
        &self,
        request: Request<tonic::Streaming<pp::StreamSubscribeRequest>>,
    ) -> Result<Response<Stream>, Status> {
        let mut upstream = request.into_inner();
        let first = upstream
            .message()
            .await?
            .and_then(|m| m.subscribe_request)
            .ok_or_else(|| Status::invalid_argument("first message without subscribe request"))?;
        let (tx, rx) = mpsc::channel(16);
        let _ = self.opened.send(Opened {
            request: first,
            bidirectional: true,
            tx,
            upstream: Some(upstream),
        });
        Ok(response(rx))
    }
}

/// A running stream backend.
pub struct StreamBackend {
    pub addr: SocketAddr,
    opened: mpsc::UnboundedReceiver<Opened>,
    task: tokio::task::JoinHandle<()>,
}

impl StreamBackend {
    /// Starts the backend.
    pub async fn start() -> Self {
        let (tx, opened) = mpsc::unbounded_channel();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(CentrifugoProxyServer::new(Service { opened: tx }))
                .serve_with_incoming(incoming)
                .await;
        });
        Self { addr, opened, task }
    }

    /// `grpc://addr`.
    pub fn endpoint(&self) -> String {
        format!("grpc://{}", self.addr)
    }

    /// The next stream Rotor opens (fails the test after the deadline).
    pub async fn opened(&mut self) -> Opened {
        tokio::time::timeout(PATIENCE, self.opened.recv())
            .await
            .expect("stream opened within deadline")
            .expect("backend running")
    }
}

impl Drop for StreamBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}
