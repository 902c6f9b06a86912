//! Frame codec for bidirectional transports.
//!
//! A frame carries one or more messages: JSON messages joined by `\n`, or
//! Protobuf messages each prefixed by its length as a varint. Decoding never
//! trusts a declared length: it is checked against what is left of the frame
//! and against the size limit before anything is allocated.

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message as _;

use crate::proto::client::{Command, Push, Reply};

/// Wire encoding of a connection; fixed for its lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Encoding {
    /// `\n`-separated JSON with raw embedded `data`.
    Json,
    /// Varint-length-delimited Protobuf.
    Protobuf,
}

/// Why a frame could not be decoded. Always a protocol violation (3501).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DecodeError {
    /// Nothing in the frame.
    #[error("empty frame")]
    Empty,
    /// Not a valid command.
    #[error("malformed command: {0}")]
    Malformed(String),
    /// A declared length runs past the frame or over the limit.
    #[error("bad length prefix")]
    BadLength,
}

/// Why a message could not be encoded for a connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EncodeError {
    /// The payload is not JSON and the connection speaks JSON (3506).
    #[error("payload is not valid JSON")]
    NotJson,
}

/// Decodes every command in `frame`, appending them to `out` in order.
/// `limit` bounds the size of one Protobuf message.
pub(crate) fn decode_commands(
    encoding: Encoding,
    frame: &[u8],
    limit: usize,
    out: &mut Vec<Command>,
) -> Result<(), DecodeError> {
    if frame.is_empty() {
        return Err(DecodeError::Empty);
    }
    match encoding {
        Encoding::Json => decode_json(frame, out),
        Encoding::Protobuf => decode_protobuf(frame, limit, out),
    }
}

fn decode_json(frame: &[u8], out: &mut Vec<Command>) -> Result<(), DecodeError> {
    let start = out.len();
    for line in frame.split(|&b| b == b'\n') {
        let Some(first) = line.iter().find(|b| !b.is_ascii_whitespace()) else {
            continue;
        };
        // serde would also read a struct from an array; the protocol does not.
        if *first != b'{' {
            return Err(DecodeError::Malformed(
                "command is not a JSON object".into(),
            ));
        }
        let cmd: Command =
            serde_json::from_slice(line).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        out.push(cmd);
    }
    if out.len() == start {
        return Err(DecodeError::Empty);
    }
    Ok(())
}

fn decode_protobuf(frame: &[u8], limit: usize, out: &mut Vec<Command>) -> Result<(), DecodeError> {
    let mut rest = frame;
    while !rest.is_empty() {
        let len = prost::encoding::decode_varint(&mut rest).map_err(|_| DecodeError::BadLength)?;
        let len = usize::try_from(len).map_err(|_| DecodeError::BadLength)?;
        if len > rest.len() || len > limit {
            return Err(DecodeError::BadLength);
        }
        let (msg, tail) = rest.split_at(len);
        let cmd = Command::decode(msg).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        out.push(cmd);
        rest = tail;
    }
    Ok(())
}

/// Encodes one reply as a frame element: JSON text, or a length-prefixed
/// Protobuf message, ready to be concatenated by [`FrameBuilder`].
pub(crate) fn encode_reply(encoding: Encoding, reply: &Reply) -> Result<Bytes, EncodeError> {
    match encoding {
        Encoding::Json => serde_json::to_vec(reply)
            .map(Bytes::from)
            .map_err(|_| EncodeError::NotJson),
        Encoding::Protobuf => Ok(Bytes::from(reply.encode_length_delimited_to_vec())),
    }
}

/// Encodes a push wrapped in a Reply (the bidirectional form).
pub(crate) fn encode_push(encoding: Encoding, push: Push) -> Result<Bytes, EncodeError> {
    encode_reply(
        encoding,
        &Reply {
            push: Some(push),
            ..Default::default()
        },
    )
}

/// The server ping: an empty Reply.
pub(crate) fn ping_bytes(encoding: Encoding) -> Bytes {
    match encoding {
        Encoding::Json => Bytes::from_static(b"{}"),
        Encoding::Protobuf => Bytes::from_static(&[0]),
    }
}

/// How messages are joined into one written frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// One WebSocket message: JSON `\n`-joined; Protobuf length-delimited,
    /// concatenated.
    Message,
    /// A byte stream (HTTP-streaming): JSON, each message followed by `\n`;
    /// Protobuf length-delimited, concatenated.
    Stream,
    /// Server-sent events: each message as `data: <json>\n\n` (JSON only).
    Sse,
}

/// A queued message with its push envelope removed, for unidirectional
/// transports: JSON `{"push":P}` becomes `P`; a length-delimited Protobuf
/// `Reply{push: P}` becomes the length-delimited `P`. Anything else (the
/// ping, an empty Reply — which encodes the same as an empty Push) is
/// returned unchanged. No copy: the result shares the input's buffer.
pub(crate) fn unwrap_push(encoding: Encoding, msg: Bytes) -> Bytes {
    match encoding {
        Encoding::Json => {
            const HEAD: &[u8] = b"{\"push\":";
            if msg.len() > HEAD.len() && msg.starts_with(HEAD) && msg.ends_with(b"}") {
                msg.slice(HEAD.len()..msg.len() - 1)
            } else {
                msg
            }
        }
        Encoding::Protobuf => {
            let mut rest = &msg[..];
            let Ok(outer) = prost::encoding::decode_varint(&mut rest) else {
                return msg;
            };
            // Field 4 (push), wire type 2 (length-delimited).
            if outer as usize != rest.len() || rest.first() != Some(&0x22) {
                return msg;
            }
            let start = msg.len() - rest.len() + 1;
            let mut inner = &rest[1..];
            match prost::encoding::decode_varint(&mut inner) {
                Ok(n) if n as usize == inner.len() => msg.slice(start..),
                _ => msg,
            }
        }
    }
}

/// Splits a frame of length-delimited Protobuf messages into the messages
/// (slices of the frame, no copy).
pub(crate) fn split_delimited(frame: Bytes) -> Result<Vec<Bytes>, DecodeError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < frame.len() {
        let mut rest = &frame[pos..];
        let before = rest.len();
        let len = prost::encoding::decode_varint(&mut rest).map_err(|_| DecodeError::BadLength)?;
        let start = pos + (before - rest.len());
        let len = usize::try_from(len).map_err(|_| DecodeError::BadLength)?;
        let end = start.checked_add(len).ok_or(DecodeError::BadLength)?;
        if end > frame.len() {
            return Err(DecodeError::BadLength);
        }
        out.push(frame.slice(start..end));
        pos = end;
    }
    Ok(out)
}

/// Joins encoded messages into one frame.
#[derive(Debug)]
pub(crate) struct FrameBuilder {
    encoding: Encoding,
    framing: Framing,
    /// Strip the Reply envelope of pushes (unidirectional transports).
    uni: bool,
    buf: BytesMut,
    first: Option<Bytes>,
    count: usize,
}

impl FrameBuilder {
    #[cfg(test)]
    /// An empty WebSocket-message frame of bidirectional replies.
    pub(crate) fn new(encoding: Encoding) -> Self {
        Self::framed(encoding, Framing::Message, false)
    }

    /// An empty frame with the given framing; `uni` sends pushes bare.
    pub(crate) fn framed(encoding: Encoding, framing: Framing, uni: bool) -> Self {
        Self {
            encoding,
            framing,
            uni,
            buf: BytesMut::new(),
            first: None,
            count: 0,
        }
    }

    /// Appends one encoded message.
    pub(crate) fn push(&mut self, msg: Bytes) {
        let msg = if self.uni {
            unwrap_push(self.encoding, msg)
        } else {
            msg
        };
        self.count += 1;
        let json = self.encoding == Encoding::Json;
        match self.framing {
            Framing::Message => {
                if self.count == 1 {
                    // A frame with one message is sent without copying.
                    self.first = Some(msg);
                    return;
                }
                if let Some(first) = self.first.take() {
                    self.buf.reserve(first.len() + msg.len() + 1);
                    self.buf.put_slice(&first);
                }
                if json {
                    self.buf.put_u8(b'\n');
                }
                self.buf.put_slice(&msg);
            }
            Framing::Stream => {
                self.buf.put_slice(&msg);
                if json {
                    self.buf.put_u8(b'\n');
                }
            }
            Framing::Sse => {
                self.buf.reserve(msg.len() + 8);
                self.buf.put_slice(b"data: ");
                self.buf.put_slice(&msg);
                self.buf.put_slice(b"\n\n");
            }
        }
    }

    /// Makes room for about `bytes` more bytes, so a batch is gathered
    /// without growing the buffer step by step.
    pub(crate) fn reserve(&mut self, bytes: usize) {
        self.buf.reserve(bytes);
    }

    /// Messages in the frame.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// True when nothing was pushed.
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes in the frame so far.
    pub(crate) fn size(&self) -> usize {
        self.first.as_ref().map_or(self.buf.len(), Bytes::len)
    }

    /// The frame; empty when nothing was pushed.
    pub(crate) fn finish(&mut self) -> Bytes {
        self.count = 0;
        match self.first.take() {
            Some(b) => {
                // Room reserved for a batch that ended up a single message
                // is not kept by an idle connection.
                if self.buf.capacity() > 0 {
                    self.buf = BytesMut::new();
                }
                b
            }
            // Take the buffer whole: `split` would keep its allocation alive
            // here after the frame is sent.
            None => std::mem::take(&mut self.buf).freeze(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn uni_frames_carry_bare_pushes() {
        let push = Push {
            channel: "c".into(),
            ..Default::default()
        };
        for enc in [Encoding::Json, Encoding::Protobuf] {
            let wrapped = encode_push(enc, push.clone()).expect("encodes");
            let bare = unwrap_push(enc, wrapped);
            match enc {
                Encoding::Json => assert_eq!(&bare[..], br#"{"channel":"c"}"#),
                Encoding::Protobuf => {
                    assert_eq!(bare, Bytes::from(push.encode_length_delimited_to_vec()));
                }
            }
            // The ping (an empty Reply) is already an empty Push.
            assert_eq!(unwrap_push(enc, ping_bytes(enc)), ping_bytes(enc));
        }
        let mut f = FrameBuilder::framed(Encoding::Json, Framing::Sse, true);
        f.push(encode_push(Encoding::Json, push.clone()).expect("encodes"));
        f.push(ping_bytes(Encoding::Json));
        assert_eq!(
            &f.finish()[..],
            b"data: {\"channel\":\"c\"}\n\ndata: {}\n\n"
        );
        let mut f = FrameBuilder::framed(Encoding::Json, Framing::Stream, false);
        f.push(Bytes::from_static(b"{}"));
        assert_eq!(&f.finish()[..], b"{}\n");
        let mut f = FrameBuilder::framed(Encoding::Protobuf, Framing::Message, true);
        f.push(encode_push(Encoding::Protobuf, push.clone()).expect("encodes"));
        f.push(ping_bytes(Encoding::Protobuf));
        let parts = split_delimited(f.finish()).expect("splits");
        assert_eq!(parts.len(), 2);
        assert_eq!(Push::decode(parts[0].clone()).expect("push"), push);
        assert!(parts[1].is_empty());
        assert_eq!(
            split_delimited(Bytes::from_static(&[5, 1])),
            Err(DecodeError::BadLength)
        );
    }

    #[test]
    fn json_batch_decodes_in_order_and_tolerates_trailing_newline() {
        let mut out = Vec::new();
        decode_commands(
            Encoding::Json,
            b"{\"id\":1,\"connect\":{}}\n{\"id\":2,\"subscribe\":{\"channel\":\"a\"}}\n",
            65536,
            &mut out,
        )
        .expect("decodes");
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[1].subscribe.as_ref().map(|s| s.channel.as_str()),
            Some("a")
        );
    }

    #[test]
    fn bad_frames_are_errors() {
        let mut out = Vec::new();
        assert_eq!(
            decode_commands(Encoding::Json, b"", 65536, &mut out),
            Err(DecodeError::Empty)
        );
        assert_eq!(
            decode_commands(Encoding::Json, b"\n", 65536, &mut out),
            Err(DecodeError::Empty)
        );
        assert!(decode_commands(Encoding::Json, b"{nope", 65536, &mut out).is_err());
        assert!(decode_commands(Encoding::Json, b"[1]", 65536, &mut out).is_err());
        // A varint near 2^64 (protocol fuzz regression) must not panic.
        let evil = [0xfc, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(
            decode_commands(Encoding::Protobuf, &evil, 65536, &mut out),
            Err(DecodeError::BadLength)
        );
        assert_eq!(
            decode_commands(Encoding::Protobuf, &[0x05, 0x08], 65536, &mut out),
            Err(DecodeError::BadLength)
        );
    }

    #[test]
    fn protobuf_pong_is_one_zero_byte() {
        let mut out = Vec::new();
        decode_commands(Encoding::Protobuf, &[0], 65536, &mut out).expect("decodes");
        assert_eq!(out, vec![Command::default()]);
    }

    #[test]
    fn protobuf_limit_applies_per_message() {
        let cmd = Command {
            id: 1,
            ..Default::default()
        };
        let bytes = cmd.encode_length_delimited_to_vec();
        let mut out = Vec::new();
        assert_eq!(
            decode_commands(Encoding::Protobuf, &bytes, 1, &mut out),
            Err(DecodeError::BadLength)
        );
        decode_commands(Encoding::Protobuf, &bytes, 2, &mut out).expect("fits");
    }

    #[test]
    fn frame_builder_joins() {
        let mut f = FrameBuilder::new(Encoding::Json);
        f.push(Bytes::from_static(b"{}"));
        f.push(Bytes::from_static(b"{\"id\":1}"));
        assert_eq!(&f.finish()[..], b"{}\n{\"id\":1}");
        f.push(Bytes::from_static(b"{}"));
        assert_eq!(&f.finish()[..], b"{}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]
        #[test]
        fn decoders_never_panic(frame in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut out = Vec::new();
            let _ = decode_commands(Encoding::Json, &frame, 65536, &mut out);
            let _ = decode_commands(Encoding::Protobuf, &frame, 65536, &mut out);
        }

        #[test]
        fn json_like_frames_never_panic(frame in "[{}\\[\\]\":,0-9a-z_\\n ]{0,200}") {
            let mut out = Vec::new();
            let _ = decode_commands(Encoding::Json, frame.as_bytes(), 65536, &mut out);
        }

        #[test]
        fn protobuf_round_trips(id in any::<u32>(), channel in "[a-z:#$]{0,40}") {
            let cmd = Command { id, subscribe: Some(crate::proto::client::SubscribeRequest { channel, ..Default::default() }), ..Default::default() };
            let mut frame = cmd.encode_length_delimited_to_vec();
            frame.extend(cmd.encode_length_delimited_to_vec());
            let mut out = Vec::new();
            decode_commands(Encoding::Protobuf, &frame, 65536, &mut out).expect("round trip");
            prop_assert_eq!(out, vec![cmd.clone(), cmd]);
        }
    }
}
