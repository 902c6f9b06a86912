//! A gRPC client over raw message bytes, for calls whose request is built
//! by hand (malformed or very large messages) or whose response is walked
//! without decoding millions of messages.

use bytes::{Buf, BufMut, Bytes};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

/// Passes message bytes through unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// The path of `CentrifugoApi`'s `Batch`.
pub const BATCH: &str = "/centrifugal.centrifugo.api.CentrifugoApi/Batch";

/// Calls the unary `path` with `body` as the request message and the API
/// key `key`; the response message comes back as bytes (any size).
pub async fn unary(
    channel: Channel,
    path: &'static str,
    body: Vec<u8>,
    key: &str,
) -> Result<Bytes, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel).max_decoding_message_size(usize::MAX);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut req = tonic::Request::new(Bytes::from(body));
    req.metadata_mut().insert(
        "authorization",
        format!("apikey {key}").parse().expect("metadata"),
    );
    let path = http::uri::PathAndQuery::from_static(path);
    grpc.unary(req, path, RawCodec)
        .await
        .map(tonic::Response::into_inner)
}
