//! The gRPC `Batch` rpc in memory bounded by the request. The generated
//! service would decode every `Command` of a `BatchRequest` into a prost
//! struct (about 2 KB each) and build every `Reply` before encoding; here
//! the request stays the received bytes: one pass checks it exactly as
//! prost would decode it (same errors, same `INTERNAL` status) and counts
//! the commands against `middleware.batch.max_commands`, then each command
//! is decoded just before it runs and each reply is encoded at once into
//! chunks that the encoder moves into tonic's buffer, dropping them as it
//! goes. [`ApiService`] routes `Batch` here and every other method to the
//! generated server, under the same compression and size settings.

use std::convert::Infallible;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes};
use futures_util::StreamExt;
use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};
use prost::{DecodeError, Message};
use tonic::codec::{
    Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings, EncodeBuf, Encoder,
};
use tonic::codegen::{BoxFuture, StdError};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status};
use tower::Service;

use crate::api::batch;
use crate::api::executor::Executor;
use crate::api::grpc::GrpcApi;
use crate::config::BatchLimits;
use crate::middleware::Refusal;
use crate::proto::api::centrifugo_api_server::{CentrifugoApiServer, SERVICE_NAME};
use crate::proto::api::{BatchRequest, BatchResponse, Command, Reply};

/// Bytes of encoded replies per chunk.
const CHUNK: usize = 64 << 10;

/// The encoded `BatchResponse`: its `replies` entries in chunks.
#[derive(Debug, Default)]
pub(crate) struct Replies {
    chunks: Vec<Vec<u8>>,
    current: Vec<u8>,
    len: usize,
}

impl Replies {
    /// Appends `reply` as one `replies` entry (field 1).
    fn push(&mut self, reply: &Reply) {
        prost::encoding::message::encode(1, reply, &mut self.current);
        if self.current.len() >= CHUNK {
            self.seal();
        }
    }

    fn seal(&mut self) {
        if !self.current.is_empty() {
            self.len += self.current.len();
            let full = std::mem::replace(&mut self.current, Vec::with_capacity(CHUNK));
            self.chunks.push(full);
        }
    }
}

/// Passes the request through as bytes and writes [`Replies`] out.
#[derive(Debug, Clone, Copy, Default)]
struct BatchCodec;

impl Codec for BatchCodec {
    type Encode = Replies;
    type Decode = Bytes;
    type Encoder = BatchCodec;
    type Decoder = BatchCodec;

    fn encoder(&mut self) -> Self::Encoder {
        BatchCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        BatchCodec
    }
}

impl Encoder for BatchCodec {
    type Item = Replies;
    type Error = Status;

    fn encode(&mut self, mut item: Replies, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.seal();
        dst.reserve(item.len);
        // Each chunk is freed as soon as it is copied.
        for chunk in item.chunks {
            dst.put_slice(&chunk);
        }
        Ok(())
    }
}

impl Decoder for BatchCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// tonic's status for a message that does not decode.
fn decode_status(e: DecodeError) -> Status {
    Status::internal(e.to_string())
}

/// What checking a request found.
#[derive(Debug, PartialEq, Eq)]
struct Checked {
    count: usize,
    parallel: bool,
}

/// Checks a `BatchRequest` before anything runs, walking it as prost's
/// decoder would (field by field, every command decoded and dropped, the
/// same errors), and counts the commands against the cap.
fn check(mut body: &[u8], limits: BatchLimits) -> Result<Checked, Status> {
    let ctx = DecodeContext::default();
    let mut scratch = Command::default();
    let mut checked = Checked {
        count: 0,
        parallel: false,
    };
    while body.has_remaining() {
        let (tag, wire_type) = decode_key(&mut body).map_err(decode_status)?;
        match tag {
            1 => {
                prost::encoding::message::merge(wire_type, &mut scratch, &mut body, ctx.clone())
                    .map_err(|mut e| {
                        e.push("BatchRequest", "commands");
                        decode_status(e)
                    })?;
                scratch.clear();
                checked.count += 1;
                if limits.too_many(checked.count) {
                    let refusal = Refusal::TOO_MANY_COMMANDS;
                    return Err(Status::new(refusal.grpc, refusal.message));
                }
            }
            2 => prost::encoding::bool::merge(
                wire_type,
                &mut checked.parallel,
                &mut body,
                ctx.clone(),
            )
            .map_err(|mut e| {
                e.push("BatchRequest", "parallel");
                decode_status(e)
            })?,
            _ => skip_field(wire_type, tag, &mut body, ctx.clone()).map_err(decode_status)?,
        }
    }
    Ok(checked)
}

/// The commands of a checked request, each decoded when it is reached
/// (sharing the request's bytes).
fn decode_commands(mut body: Bytes) -> impl Iterator<Item = Option<Command>> + Send {
    std::iter::from_fn(move || {
        loop {
            if !body.has_remaining() {
                return None;
            }
            let (tag, wire_type) = decode_key(&mut body).ok()?;
            if tag == 1 && wire_type == WireType::LengthDelimited {
                let len = usize::try_from(decode_varint(&mut body).ok()?).ok()?;
                if len > body.remaining() {
                    return None;
                }
                // Checked already, so this decodes; if not, it answers 107.
                return Some(Command::decode(body.split_to(len)).ok());
            }
            skip_field(wire_type, tag, &mut body, DecodeContext::default()).ok()?;
        }
    })
}

/// Runs a checked request's commands, encoding each reply as it comes.
async fn run(ex: &Executor, body: Bytes, parallel: bool, limits: BatchLimits) -> Replies {
    let mut out = Replies::default();
    let mut replies = pin!(batch::replies(ex, decode_commands(body), parallel, limits));
    while let Some(reply) = replies.next().await {
        out.push(&reply);
    }
    out
}

/// The `Batch` method over raw bytes. Like the generated one, it never
/// turns API errors into statuses (transport error mode does not apply).
#[derive(Clone)]
struct BatchCall {
    executor: Arc<Executor>,
    limits: BatchLimits,
}

impl UnaryService<Bytes> for BatchCall {
    type Response = Replies;
    type Future = BoxFuture<Response<Replies>, Status>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let (ex, limits) = (self.executor.clone(), self.limits);
        Box::pin(async move {
            let body = request.into_inner();
            let checked = check(&body, limits)?;
            let replies = run(&ex, body, checked.parallel, limits).await;
            Ok(Response::new(replies))
        })
    }
}

impl GrpcApi {
    /// The generated `batch` method (used when the generated server is
    /// called directly): the same checks and runner, replies collected.
    pub(crate) async fn run_batch(
        &self,
        request: Request<BatchRequest>,
    ) -> Result<Response<BatchResponse>, Status> {
        let req = request.into_inner();
        if self.batch.too_many(req.commands.len()) {
            let refusal = Refusal::TOO_MANY_COMMANDS;
            return Err(Status::new(refusal.grpc, refusal.message));
        }
        let commands = req.commands.into_iter().map(Some);
        let replies = batch::replies(&self.executor, commands, req.parallel, self.batch)
            .collect()
            .await;
        Ok(Response::new(BatchResponse { replies }))
    }
}

/// `CentrifugoApi`: `Batch` over raw bytes ([`BatchCall`]), every other
/// method by the generated server, with the same compression and message
/// size settings for both.
#[derive(Clone)]
pub(crate) struct ApiService {
    generated: CentrifugoApiServer<GrpcApi>,
    batch: BatchCall,
    accept: EnabledCompressionEncodings,
    send: EnabledCompressionEncodings,
    max_decoding: Option<usize>,
}

impl ApiService {
    /// Serves `api`, accepting and sending `encodings`, refusing request
    /// messages over `max_decoding` bytes (`None`: tonic's 4 MiB).
    pub(crate) fn new(
        api: GrpcApi,
        encodings: &[CompressionEncoding],
        max_decoding: Option<usize>,
    ) -> Self {
        let batch = BatchCall {
            executor: api.executor.clone(),
            limits: api.batch,
        };
        let mut generated = CentrifugoApiServer::new(api);
        let mut enabled = EnabledCompressionEncodings::default();
        for &encoding in encodings {
            generated = generated
                .accept_compressed(encoding)
                .send_compressed(encoding);
            enabled.enable(encoding);
        }
        if let Some(limit) = max_decoding {
            generated = generated.max_decoding_message_size(limit);
        }
        Self {
            generated,
            batch,
            accept: enabled,
            send: enabled,
            max_decoding,
        }
    }
}

impl NamedService for ApiService {
    const NAME: &'static str = SERVICE_NAME;
}

/// True for `/<service>/Batch`.
fn is_batch(path: &str) -> bool {
    path.strip_prefix('/')
        .and_then(|p| p.strip_prefix(SERVICE_NAME))
        .is_some_and(|p| p == "/Batch")
}

impl<B> Service<http::Request<B>> for ApiService
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if !is_batch(req.uri().path()) {
            return self.generated.call(req);
        }
        let mut grpc = Grpc::new(BatchCodec)
            .apply_compression_config(self.accept, self.send)
            .apply_max_message_size_config(self.max_decoding, None);
        let call = self.batch.clone();
        Box::pin(async move { Ok(grpc.unary(call, req).await) })
    }
}

#[cfg(test)]
#[path = "grpc_batch_tests.rs"]
mod tests;
