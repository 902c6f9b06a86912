//! Unidirectional gRPC (`uni_grpc`): the `CentrifugoUniStream` service of
//! `proto/unistream.proto` on a listener of its own (`uni_grpc.address`,
//! `uni_grpc.port`, TLS from `uni_grpc.tls`).
//!
//! `Consume` takes a ConnectRequest and answers with a server stream of
//! Push messages. The request is decoded straight into the client
//! protocol's `ConnectRequest` and the stream items are the queued Push
//! bytes, written as they are ([`UniCodec`]): unistream.proto is a
//! field-compatible subset of client.proto, so nothing is re-encoded. Pings
//! are empty Push messages; the last item is a Disconnect push, after which
//! the stream ends with status OK. The incoming gRPC metadata is what
//! proxies forward under `grpc_metadata`.

use std::pin::Pin;
use std::sync::Arc;

use bytes::{BufMut, Bytes};
use futures_util::Stream;
use prost::Message as _;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Request, Response, Status};
use tower::Layer as _;

use crate::node::Node;
use crate::proto::client::{ConnectRequest, Push};
use crate::protocol::codec::{Framing, split_delimited};
use crate::protocol::{Disconnect, Encoding};
use crate::session::{Session, TransportInfo};
use crate::transport::driver::{DriveOptions, Inbound, Link, LinkGone, drive};

mod generated {
    #![allow(clippy::all, missing_docs, unused_qualifications)]
    include!(concat!(
        env!("OUT_DIR"),
        "/centrifugal.centrifugo.unistream.rs"
    ));
}

use generated::centrifugo_uni_stream_server::{CentrifugoUniStream, CentrifugoUniStreamServer};

/// Transport name (metrics, proxies).
const NAME: &str = "uni_grpc";
/// Pushes buffered between the connection task and the gRPC stream; a
/// client that stops reading fills it and the write timeout ends the
/// connection.
const STREAM_BUFFER: usize = 16;

/// One encoded client protocol Push, sent as a stream item as it is.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawPush(pub Bytes);

/// The codec of `Consume`: decodes the ConnectRequest, writes [`RawPush`]
/// bytes verbatim.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct UniCodec;

/// Writes a [`RawPush`].
#[derive(Debug)]
pub(crate) struct RawEncoder;

/// Reads a ConnectRequest.
#[derive(Debug)]
pub(crate) struct ConnectDecoder;

impl Codec for UniCodec {
    type Encode = RawPush;
    type Decode = ConnectRequest;
    type Encoder = RawEncoder;
    type Decoder = ConnectDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> ConnectDecoder {
        ConnectDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = RawPush;
    type Error = Status;

    fn encode(&mut self, item: RawPush, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item.0);
        Ok(())
    }
}

impl Decoder for ConnectDecoder {
    type Item = ConnectRequest;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<ConnectRequest>, Status> {
        ConnectRequest::decode(src)
            .map(Some)
            .map_err(|e| Status::invalid_argument(format!("invalid connect request: {e}")))
    }
}

/// The `CentrifugoUniStream` service.
pub(crate) struct UniStream {
    node: Arc<Node>,
    tracker: TaskTracker,
}

type PushStream = Pin<Box<dyn Stream<Item = Result<RawPush, Status>> + Send>>;

#[tonic::async_trait]
impl CentrifugoUniStream for UniStream {
    type ConsumeStream = PushStream;

    async fn consume(
        &self,
        request: Request<ConnectRequest>,
    ) -> Result<Response<PushStream>, Status> {
        let node = self.node.clone();
        if node.shutdown.is_cancelled() {
            return Err(Status::unavailable("shutting down"));
        }
        let permit = node.admission.admit().map_err(|why| {
            tracing::info!(?why, "uni_grpc connection refused by node limits");
            Status::unavailable("connection limit reached")
        })?;
        let call = call_context(&request);
        let limit = node.config().uni_grpc.max_receive_message_size;
        let info = TransportInfo {
            name: NAME,
            encoding: Encoding::Protobuf,
            emulated: false,
            uni: true,
            message_size_limit: if limit == 0 { 65536 } else { limit },
            call,
        };
        let mut session = Session::new(node.clone(), info);
        if let Err(d) = Box::pin(session.connect_uni(request.into_inner())).await {
            session.shared().disconnect(d);
        }
        let (tx, mut rx) = mpsc::channel(STREAM_BUFFER);
        let link = GrpcLink { tx };
        let opts = DriveOptions {
            framing: Framing::Message,
            uni: true,
            max_frame: 0,
            write_timeout: node.config().websocket.write_timeout.get(),
            transport: NAME,
        };
        self.tracker.spawn(async move {
            let _permit = permit;
            drive(node, session, link, opts).await;
        });
        let stream: PushStream =
            Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
        Ok(Response::new(stream))
    }
}

/// Headers for proxies: the incoming metadata (forwarded when a proxy
/// lists it in `grpc_metadata`). Kept for every stream: a gRPC stream
/// costs far more than one header map.
fn call_context(req: &Request<ConnectRequest>) -> Arc<crate::proxy::CallContext> {
    Arc::new(crate::proxy::CallContext {
        grpc_metadata: req.metadata().clone().into_headers(),
        remote_addr: req.remote_addr(),
        ..Default::default()
    })
}

/// The write side of one `Consume` stream.
struct GrpcLink {
    tx: mpsc::Sender<Result<RawPush, Status>>,
}

impl GrpcLink {
    async fn push(&mut self, msg: Bytes) -> Result<(), LinkGone> {
        self.tx.send(Ok(RawPush(msg))).await.map_err(|_| LinkGone)
    }
}

impl Link for GrpcLink {
    async fn recv(&mut self) -> Inbound {
        // Nothing is read: the stream ends when the client goes away.
        self.tx.closed().await;
        Inbound::Gone
    }

    async fn send(&mut self, frame: Bytes) -> Result<(), LinkGone> {
        // The frame holds length-delimited Pushes; each is one item.
        let msgs = split_delimited(frame).map_err(|_| LinkGone)?;
        for msg in msgs {
            self.push(msg).await?;
        }
        Ok(())
    }

    async fn close(&mut self, d: Disconnect) {
        if d != Disconnect::CONNECTION_CLOSED {
            let push = Push {
                disconnect: Some(d.to_proto()),
                ..Default::default()
            };
            let _ = self.push(Bytes::from(push.encode_to_vec())).await;
        }
        // Dropping the sender (with the link) ends the stream: status OK.
    }
}

/// The uni gRPC listener on `socket` (TLS from `uni_grpc.tls`: its `tls`
/// slot).
pub(crate) fn listener(
    node: Arc<Node>,
    tracker: TaskTracker,
    socket: TcpListener,
    tls: Option<Arc<crate::server::tls::TlsSlot>>,
) -> Result<
    crate::server::listen::Listener<impl crate::server::conn::ConnService<tonic::body::Body>>,
    String,
> {
    let cfg = &node.config().uni_grpc;
    let mut svc = CentrifugoUniStreamServer::new(UniStream {
        node: node.clone(),
        tracker,
    });
    if cfg.max_receive_message_size > 0 {
        svc = svc.max_decoding_message_size(cfg.max_receive_message_size);
    }
    let addr = socket.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(addr = %addr, "serving unidirectional gRPC");
    Ok(crate::server::listen::Listener {
        socket,
        protocol: crate::server::conn::Protocol::Grpc,
        tls,
        // Over-limit messages are refused as grpc-go refuses them.
        service: tonic::service::Routes::new(
            crate::middleware::grpc_status::GrpcStatusLayer.layer(svc),
        ),
        name: "uni_grpc",
    })
}
