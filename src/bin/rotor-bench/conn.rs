//! One load-tool connection: a WebSocket speaking either the Centrifugo
//! client protocol (JSON or Protobuf) or the NATS text protocol.
//!
//! Frames are split into messages without decoding them: the hot path only
//! needs to recognise pings and to find the sequence number and send
//! timestamp inside a publication ([`seq_ts`]). Full decoding happens only
//! while setting up (connect and subscribe replies).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use rotor::proto::client::{Command, ConnectRequest, PublishRequest, Reply, SubscribeRequest};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::raw::{Raw, RawKind};

/// How long one setup step (handshake, connect, subscribe) may take.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// The server flavour and encoding of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Centrifugo protocol, `\n`-joined JSON in text frames.
    RotorJson,
    /// Centrifugo protocol, varint-delimited Protobuf in binary frames.
    RotorProto,
    /// NATS text protocol over WebSocket.
    Nats,
}

/// One message found in a frame.
#[derive(Debug)]
pub enum Msg<'a> {
    /// A server ping that must be answered.
    Ping,
    /// NATS `PONG`.
    Pong,
    /// NATS `-ERR …`.
    Err(&'a [u8]),
    /// A NATS `MSG` payload.
    Payload(&'a [u8]),
    /// A whole Centrifugo Reply (JSON line or Protobuf message), or any
    /// other NATS control line.
    Other(&'a [u8]),
}

/// The socket under a connection.
enum Io {
    /// A WebSocket through tungstenite.
    Ws(WebSocketStream<TcpStream>),
    /// A transport tungstenite cannot speak (deflate, SSE).
    Raw(Raw),
}

/// Which WebSocket client library a connection uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Client {
    /// tokio-tungstenite.
    Tungstenite,
    /// The tool's own minimal client ([`RawKind::Ws`]).
    Lean,
}

/// A connection with its protocol state.
pub struct Conn {
    io: Io,
    pub kind: Kind,
    /// NATS: bytes of an operation split across frames.
    partial: Vec<u8>,
    next_id: u32,
}

/// Host and port of a `ws://` URL.
fn authority(url: &str) -> Result<String, String> {
    let req = url.into_client_request().map_err(|e| e.to_string())?;
    req.uri()
        .authority()
        .map(|a| a.to_string())
        .ok_or_else(|| format!("no host in {url}"))
}

impl Conn {
    /// Opens the WebSocket (TCP + upgrade) without any protocol exchange.
    pub async fn open_ws(url: &str, kind: Kind) -> Result<Self, String> {
        let mut req = url.into_client_request().map_err(|e| e.to_string())?;
        if kind == Kind::RotorProto {
            req.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_static("centrifuge-protobuf"),
            );
        }
        let stream = TcpStream::connect(authority(url)?)
            .await
            .map_err(|e| format!("tcp connect: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let cfg = WebSocketConfig::default()
            .read_buffer_size(8 * 1024)
            .write_buffer_size(0);
        let (ws, _) = tokio_tungstenite::client_async_with_config(req, stream, Some(cfg))
            .await
            .map_err(|e| format!("ws handshake: {e}"))?;
        Ok(Self {
            io: Io::Ws(ws),
            kind,
            partial: Vec::new(),
            next_id: 0,
        })
    }

    /// Opens a Rotor JSON subscriber over a raw transport and connects with
    /// `token` (for `UniSse` the token's `channels` claim subscribes; the
    /// connect push is awaited).
    pub async fn open_raw(url: &str, raw: RawKind, token: &str) -> Result<Self, String> {
        let io = Raw::open(url, raw, token).await?;
        let mut c = Self {
            io: Io::Raw(io),
            kind: Kind::RotorJson,
            partial: Vec::new(),
            next_id: 0,
        };
        match raw {
            RawKind::Ws { .. } | RawKind::WsDeflate => {
                c.call(Command {
                    connect: Some(ConnectRequest {
                        token: token.into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await?;
            }
            RawKind::UniSse | RawKind::HttpStream => {
                // The connect push (uni) or the reply to command 1.
                let key: &[u8] = if raw == RawKind::UniSse {
                    b"{\"connect\":"
                } else {
                    b"{\"id\":1,\"connect\":"
                };
                tokio::time::timeout(STEP_TIMEOUT, async {
                    loop {
                        let frame = c.next_frame().await.ok_or("connection ended")??;
                        if frame.split(|&b| b == b'\n').any(|m| m.starts_with(key)) {
                            return Ok::<_, String>(());
                        }
                    }
                })
                .await
                .map_err(|_| "timed out waiting for the connect push".to_string())??;
            }
        }
        Ok(c)
    }

    /// Bytes read off the socket (raw transports only).
    pub fn wire_bytes(&self) -> Option<u64> {
        match &self.io {
            Io::Raw(r) => Some(r.wire_bytes),
            Io::Ws(_) => None,
        }
    }

    /// Subscriptions come from the token (unidirectional transports).
    fn server_side_only(&self) -> bool {
        matches!(&self.io, Io::Raw(r) if r.kind().server_side_only())
    }

    /// Opens and completes the protocol connect: a Centrifugo `connect` with
    /// `token` answered without error, or NATS `CONNECT` + `PING`/`PONG`.
    pub async fn open(url: &str, kind: Kind, token: &str, client: Client) -> Result<Self, String> {
        let mut c = match client {
            Client::Tungstenite => Self::open_ws(url, kind).await?,
            Client::Lean => {
                let protobuf = kind == Kind::RotorProto;
                Self {
                    io: Io::Raw(Raw::open(url, RawKind::Ws { protobuf }, token).await?),
                    kind,
                    partial: Vec::new(),
                    next_id: 0,
                }
            }
        };
        match kind {
            Kind::Nats => {
                c.send_raw(
                    b"CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1}\r\nPING\r\n"
                        .to_vec(),
                )
                .await?;
                c.wait_pong().await?;
            }
            _ => {
                c.call(Command {
                    connect: Some(ConnectRequest {
                        token: token.into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await?;
            }
        }
        Ok(c)
    }

    /// Subscribes to `channel` and waits until the server confirmed it.
    pub async fn subscribe(&mut self, channel: &str) -> Result<(), String> {
        if self.server_side_only() {
            return Ok(());
        }
        match self.kind {
            Kind::Nats => {
                self.send_raw(format!("SUB {channel} 1\r\nPING\r\n").into_bytes())
                    .await?;
                self.wait_pong().await
            }
            _ => {
                self.call(Command {
                    subscribe: Some(SubscribeRequest {
                        channel: channel.into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await?;
                Ok(())
            }
        }
    }

    /// Sends bytes as one frame (text for Centrifugo JSON, else binary).
    pub async fn send_raw(&mut self, bytes: Vec<u8>) -> Result<(), String> {
        let binary = self.kind != Kind::RotorJson;
        match &mut self.io {
            Io::Ws(ws) => {
                let msg = frame(binary, bytes)?;
                ws.send(msg).await.map_err(|e| e.to_string())
            }
            Io::Raw(r) => r.send(&bytes, binary).await,
        }
    }

    /// Queues a frame without flushing (raw transports send at once).
    pub async fn feed_raw(&mut self, bytes: Vec<u8>) -> Result<(), String> {
        let binary = self.kind != Kind::RotorJson;
        match &mut self.io {
            Io::Ws(ws) => {
                let msg = frame(binary, bytes)?;
                ws.feed(msg).await.map_err(|e| e.to_string())
            }
            Io::Raw(r) => r.send(&bytes, binary).await,
        }
    }

    /// Flushes queued frames.
    pub async fn flush(&mut self) -> Result<(), String> {
        match &mut self.io {
            Io::Ws(ws) => ws.flush().await.map_err(|e| e.to_string()),
            Io::Raw(_) => Ok(()),
        }
    }

    /// Answers `n` pings.
    pub async fn pong(&mut self, n: usize) -> Result<(), String> {
        for _ in 0..n {
            let bytes = match self.kind {
                Kind::RotorJson => b"{}".to_vec(),
                Kind::RotorProto => vec![0],
                Kind::Nats => b"PONG\r\n".to_vec(),
            };
            self.feed_raw(bytes).await?;
        }
        self.flush().await
    }

    /// The next frame's payload; `None` when the connection ended.
    pub async fn next_frame(&mut self) -> Option<Result<bytes::Bytes, String>> {
        let ws = match &mut self.io {
            Io::Ws(ws) => ws,
            Io::Raw(r) => return Some(r.next_frame().await),
        };
        loop {
            match ws.next().await? {
                Ok(Message::Text(t)) => return Some(Ok(t.into())),
                Ok(Message::Binary(b)) => return Some(Ok(b)),
                Ok(Message::Close(f)) => {
                    return Some(Err(format!(
                        "closed by server: {}",
                        f.map(|f| format!("{} {}", u16::from(f.code), f.reason))
                            .unwrap_or_default()
                    )));
                }
                Ok(_) => continue,
                Err(e) => return Some(Err(e.to_string())),
            }
        }
    }

    /// Splits a frame into messages, calling `f` for each. NATS operations
    /// cut across frames are kept until completed by the next frame.
    pub fn messages(&mut self, frame: &[u8], mut f: impl FnMut(Msg<'_>)) {
        match self.kind {
            Kind::RotorJson => {
                let mut start = 0;
                for end in memchr::memchr_iter(b'\n', frame).chain(std::iter::once(frame.len())) {
                    let line = &frame[start..end];
                    start = end + 1;
                    if line == b"{}" {
                        f(Msg::Ping);
                    } else if !line.is_empty() {
                        f(Msg::Other(line));
                    }
                }
            }
            Kind::RotorProto => {
                let mut rest = frame;
                while !rest.is_empty() {
                    let Ok(len) = prost::encoding::decode_varint(&mut rest) else {
                        return;
                    };
                    let len = (len as usize).min(rest.len());
                    let (msg, tail) = rest.split_at(len);
                    if msg.is_empty() {
                        f(Msg::Ping);
                    } else {
                        f(Msg::Other(msg));
                    }
                    rest = tail;
                }
            }
            Kind::Nats => {
                if self.partial.is_empty() {
                    let used = nats_ops(frame, &mut f);
                    if used < frame.len() {
                        self.partial.extend_from_slice(&frame[used..]);
                    }
                } else {
                    self.partial.extend_from_slice(frame);
                    let used = nats_ops(&self.partial, &mut f);
                    self.partial.drain(..used);
                }
            }
        }
    }

    /// Reads until a NATS `PONG`, answering pings on the way.
    async fn wait_pong(&mut self) -> Result<(), String> {
        tokio::time::timeout(STEP_TIMEOUT, async {
            loop {
                let frame = self.next_frame().await.ok_or("connection ended")??;
                let (mut pongs, mut pings, mut err) = (0, 0, None);
                self.messages(&frame, |m| match m {
                    Msg::Pong => pongs += 1,
                    Msg::Ping => pings += 1,
                    Msg::Err(e) => err = Some(String::from_utf8_lossy(e).into_owned()),
                    _ => {}
                });
                if let Some(e) = err {
                    return Err(e);
                }
                if pings > 0 {
                    self.pong(pings).await?;
                }
                if pongs > 0 {
                    return Ok(());
                }
            }
        })
        .await
        .map_err(|_| "timed out waiting for PONG".to_string())?
    }

    /// Encodes one Centrifugo command.
    pub fn encode(&self, cmd: &Command) -> Vec<u8> {
        match self.kind {
            Kind::RotorProto => cmd.encode_length_delimited_to_vec(),
            _ => serde_json::to_vec(cmd).unwrap_or_default(),
        }
    }

    /// Next command id.
    pub fn next_id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    /// Sends a Centrifugo command and waits for its reply (error → `Err`).
    async fn call(&mut self, mut cmd: Command) -> Result<Reply, String> {
        let id = self.next_id();
        cmd.id = id;
        let bytes = self.encode(&cmd);
        self.send_raw(bytes).await?;
        tokio::time::timeout(STEP_TIMEOUT, async {
            loop {
                let frame = self.next_frame().await.ok_or("connection ended")??;
                let mut pings = 0;
                let mut found = None;
                let kind = self.kind;
                self.messages(&frame, |m| match m {
                    Msg::Ping => pings += 1,
                    Msg::Other(b) => {
                        if let Some(r) = decode_reply(kind, b)
                            && r.id == id
                        {
                            found = Some(r);
                        }
                    }
                    _ => {}
                });
                if pings > 0 {
                    self.pong(pings).await?;
                }
                if let Some(r) = found {
                    return match r.error {
                        Some(e) => Err(format!("error {}: {}", e.code, e.message)),
                        None => Ok(r),
                    };
                }
            }
        })
        .await
        .map_err(|_| format!("timed out waiting for reply {id}"))?
    }

    /// Bytes of a publish: a Centrifugo publish command or a NATS `PUB`.
    pub fn publish_bytes(&mut self, channel: &str, data: &[u8]) -> Vec<u8> {
        match self.kind {
            Kind::Nats => {
                let mut out = format!("PUB {channel} {}\r\n", data.len()).into_bytes();
                out.extend_from_slice(data);
                out.extend_from_slice(b"\r\n");
                out
            }
            Kind::RotorJson => {
                let id = self.next_id();
                let mut out =
                    format!("{{\"id\":{id},\"publish\":{{\"channel\":\"{channel}\",\"data\":")
                        .into_bytes();
                out.extend_from_slice(data);
                out.extend_from_slice(b"}}");
                out
            }
            Kind::RotorProto => {
                let id = self.next_id();
                Command {
                    id,
                    publish: Some(PublishRequest {
                        channel: channel.into(),
                        data: bytes::Bytes::copy_from_slice(data),
                        ..Default::default()
                    }),
                    ..Default::default()
                }
                .encode_length_delimited_to_vec()
            }
        }
    }
}

/// A tungstenite text (or `binary`) message.
fn frame(binary: bool, bytes: Vec<u8>) -> Result<Message, String> {
    Ok(if binary {
        Message::binary(bytes)
    } else {
        Message::text(String::from_utf8(bytes).map_err(|e| e.to_string())?)
    })
}

/// Decodes one Centrifugo Reply.
pub fn decode_reply(kind: Kind, b: &[u8]) -> Option<Reply> {
    match kind {
        Kind::RotorProto => Reply::decode(b).ok(),
        Kind::RotorJson => serde_json::from_slice(b).ok(),
        Kind::Nats => None,
    }
}

/// Parses complete NATS operations; returns the bytes consumed.
fn nats_ops(buf: &[u8], f: &mut impl FnMut(Msg<'_>)) -> usize {
    let mut pos = 0;
    while pos < buf.len() {
        let rest = &buf[pos..];
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            break;
        };
        let line = rest[..nl].strip_suffix(b"\r").unwrap_or(&rest[..nl]);
        if line.starts_with(b"MSG ") || line.starts_with(b"HMSG ") {
            let len = line
                .rsplit(|&b| b == b' ')
                .next()
                .and_then(|t| std::str::from_utf8(t).ok())
                .and_then(|t| t.parse::<usize>().ok())
                .unwrap_or(0);
            let start = nl + 1;
            if rest.len() < start + len + 2 {
                break;
            }
            f(Msg::Payload(&rest[start..start + len]));
            pos += start + len + 2;
            continue;
        }
        match line {
            b"PING" => f(Msg::Ping),
            b"PONG" => f(Msg::Pong),
            l if l.starts_with(b"-ERR") => f(Msg::Err(l)),
            l if !l.is_empty() => f(Msg::Other(l)),
            _ => {}
        }
        pos += nl + 1;
    }
    pos
}

/// Finds `{"seq":N,"ts":T` in a message and returns (N, T).
pub fn seq_ts(msg: &[u8]) -> Option<(u64, u64)> {
    const KEY: &[u8] = b"{\"seq\":";
    let at = memchr::memmem::find(msg, KEY)?;
    let (seq, rest) = digits(&msg[at + KEY.len()..])?;
    let rest = rest.strip_prefix(b",\"ts\":")?;
    let (ts, _) = digits(rest)?;
    Some((seq, ts))
}

fn digits(b: &[u8]) -> Option<(u64, &[u8])> {
    let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in &b[..n] {
        v = v.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
    }
    Some((v, &b[n..]))
}

/// The publication payload: `{"seq":N,"ts":T,"p":"xxx…"}` padded to `size`.
pub fn payload(seq: u64, ts: u64, size: usize) -> Vec<u8> {
    let mut out = format!("{{\"seq\":{seq},\"ts\":{ts},\"p\":\"").into_bytes();
    let pad = size.saturating_sub(out.len() + 2);
    // Hex noise, not one repeated byte: compression then sees about what
    // it would in ids and hashes, not a best case.
    let mut x = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    out.extend((0..pad).map(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b"0123456789abcdef"[(x & 15) as usize]
    }));
    out.extend_from_slice(b"\"}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_seq_and_ts_in_a_push() {
        let p = payload(42, 123_456, 100);
        assert_eq!(p.len(), 100);
        let mut push = b"{\"push\":{\"channel\":\"bench\",\"pub\":{\"data\":".to_vec();
        push.extend_from_slice(&p);
        push.extend_from_slice(b",\"info\":{\"user\":\"u\",\"client\":\"c\"}}}}");
        assert_eq!(seq_ts(&push), Some((42, 123_456)));
        assert_eq!(seq_ts(b"{\"id\":3,\"publish\":{}}"), None);
    }

    #[test]
    fn nats_ops_keep_a_split_message() {
        let buf = b"PING\r\nMSG bench 1 5\r\nhello\r\nMSG bench 1 5\r\nhel";
        let mut seen = Vec::new();
        let used = nats_ops(buf, &mut |m| {
            seen.push(match m {
                Msg::Ping => "ping".to_string(),
                Msg::Payload(p) => String::from_utf8_lossy(p).into_owned(),
                _ => "other".to_string(),
            })
        });
        assert_eq!(seen, ["ping", "hello"]);
        assert_eq!(&buf[used..], b"MSG bench 1 5\r\nhel");
    }
}
