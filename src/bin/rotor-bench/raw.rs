//! The load tool's own minimal clients over a raw TCP stream: transports
//! tungstenite cannot speak, and a lean plain WebSocket:
//!
//! * `ws`: a plain WebSocket (optionally with the `centrifuge-protobuf`
//!   subprotocol), for any target. It reads into one growing buffer and
//!   hands out single-frame messages without copying, so the tool spends
//!   less of its core per frame than through tungstenite and measures the
//!   server rather than itself.
//! * `ws-deflate`: a WebSocket client offering permessage-deflate; server
//!   frames with RSV1 are inflated (the server answers
//!   `server_no_context_takeover`, so every message inflates on its own).
//!   Our frames are masked and uncompressed.
//! * `uni-sse`: `GET /connection/uni_sse?cf_connect=…` over HTTP/1.0 (so
//!   the body is close-delimited, not chunked); each `data:` event is one
//!   bare push.
//!
//! Both hand the rest of the tool `\n`-joined JSON, like a JSON WebSocket
//! frame, and count the bytes read off the socket.

use bytes::{Buf, Bytes, BytesMut};
use flate2::{Decompress, FlushDecompress, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Which raw transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawKind {
    /// Plain WebSocket; `protobuf` asks for `centrifuge-protobuf`.
    Ws { protobuf: bool },
    /// WebSocket with permessage-deflate.
    WsDeflate,
    /// Unidirectional SSE.
    UniSse,
    /// Bidirectional emulation over HTTP streaming (JSON): the connect
    /// command is the POST body, the reply and pushes stream back as
    /// `\n`-separated JSON. Nothing is sent after that (the tool's runs are
    /// shorter than the server's ping interval, so no pong is needed).
    HttpStream,
}

impl RawKind {
    /// Subscriptions come from the token's `channels` claim.
    pub fn server_side_only(self) -> bool {
        matches!(self, Self::UniSse | Self::HttpStream)
    }
}

/// A raw subscriber connection.
pub struct Raw {
    stream: TcpStream,
    kind: RawKind,
    buf: BytesMut,
    /// Made on the first compressed message (its state is tens of KiB).
    inflate: Option<Decompress>,
    /// Fragments of a WebSocket message being assembled.
    message: Vec<u8>,
    compressed: bool,
    /// Bytes read off the socket.
    pub wire_bytes: u64,
    /// The server accepted permessage-deflate.
    pub deflate: bool,
}

/// `host:port` and path of a `ws://` or `http://` URL.
fn split_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("not a ws:// or http:// URL: {url}"))?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    Ok((host.to_string(), format!("/{path}")))
}

/// Percent-encodes a query value.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Raw {
    /// Opens the connection and completes the HTTP part of the handshake.
    /// For `UniSse` and `HttpStream` the URL's path is replaced by
    /// `/connection/uni_sse` or `/connection/http_stream` and
    /// `token` connects (its `channels` claim subscribes).
    pub async fn open(url: &str, kind: RawKind, token: &str) -> Result<Self, String> {
        let (host, path) = split_url(url)?;
        let mut stream = TcpStream::connect(&host)
            .await
            .map_err(|e| format!("tcp connect: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let request = match kind {
            RawKind::Ws { protobuf } => format!(
                "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{}\r\n",
                if protobuf {
                    "Sec-WebSocket-Protocol: centrifuge-protobuf\r\n"
                } else {
                    ""
                }
            ),
            RawKind::WsDeflate => format!(
                "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
                 Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
            ),
            RawKind::HttpStream => {
                let body =
                    serde_json::json!({ "id": 1, "connect": { "token": token } }).to_string();
                format!(
                    "POST /connection/http_stream HTTP/1.0\r\nHost: {host}\r\n\
                     Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
            }
            RawKind::UniSse => {
                let connect = serde_json::json!({ "token": token }).to_string();
                format!(
                    "GET /connection/uni_sse?cf_connect={} HTTP/1.0\r\nHost: {host}\r\n\
                     Accept: text/event-stream\r\n\r\n",
                    query_escape(&connect)
                )
            }
        };
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut raw = Self {
            stream,
            kind,
            buf: BytesMut::with_capacity(4 * 1024),
            inflate: None,
            message: Vec::new(),
            compressed: false,
            wire_bytes: 0,
            deflate: false,
        };
        let head = raw.read_head().await?;
        let status_ok = match kind {
            RawKind::Ws { .. } | RawKind::WsDeflate => head.starts_with("HTTP/1.1 101"),
            RawKind::UniSse | RawKind::HttpStream => {
                head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200")
            }
        };
        if !status_ok {
            return Err(format!(
                "handshake refused: {}",
                head.lines().next().unwrap_or("")
            ));
        }
        raw.deflate = head.lines().any(|l| {
            l.to_ascii_lowercase()
                .starts_with("sec-websocket-extensions: permessage-deflate")
        });
        Ok(raw)
    }

    async fn fill(&mut self) -> Result<(), String> {
        let n = self
            .stream
            .read_buf(&mut self.buf)
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection ended".into());
        }
        self.wire_bytes += n as u64;
        Ok(())
    }

    /// Which transport.
    pub fn kind(&self) -> RawKind {
        self.kind
    }

    /// Reads the HTTP response head.
    async fn read_head(&mut self) -> Result<String, String> {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = self.buf.split_to(end + 4);
                return Ok(String::from_utf8_lossy(&head).into_owned());
            }
            if self.buf.len() > 16 * 1024 {
                return Err("response head too large".into());
            }
            self.fill().await?;
        }
    }

    /// The next batch of messages as `\n`-joined JSON.
    pub async fn next_frame(&mut self) -> Result<Bytes, String> {
        loop {
            let parsed = match self.kind {
                RawKind::Ws { .. } | RawKind::WsDeflate => self.parse_ws()?,
                RawKind::UniSse => self.parse_sse(),
                RawKind::HttpStream => self.parse_lines(),
            };
            if let Some(frame) = parsed {
                return Ok(frame);
            }
            self.fill().await?;
        }
    }

    /// Complete `\n`-terminated JSON lines in the buffer, as one batch.
    fn parse_lines(&mut self) -> Option<Bytes> {
        let end = self.buf.iter().rposition(|&b| b == b'\n')? + 1;
        Some(self.buf.split_to(end).freeze())
    }

    /// Complete SSE events in the buffer, their data lines `\n`-joined.
    fn parse_sse(&mut self) -> Option<Bytes> {
        let end = self.buf.windows(2).rposition(|w| w == b"\n\n")? + 2;
        let events = self.buf.split_to(end);
        let mut out = Vec::with_capacity(events.len());
        for line in events[..].split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if let Some(data) = line.strip_prefix(b"data: ") {
                if !out.is_empty() {
                    out.push(b'\n');
                }
                out.extend_from_slice(data);
            }
        }
        if out.is_empty() {
            // Only the opening `\r\n` or comments: look for more.
            return self.parse_sse();
        }
        Some(Bytes::from(out))
    }

    /// One complete WebSocket data message, inflated when compressed.
    fn parse_ws(&mut self) -> Result<Option<Bytes>, String> {
        loop {
            if self.buf.len() < 2 {
                return Ok(None);
            }
            let (b0, b1) = (self.buf[0], self.buf[1]);
            let (mut len, mut head) = (u64::from(b1 & 0x7f), 2usize);
            if len == 126 {
                if self.buf.len() < 4 {
                    return Ok(None);
                }
                len = u64::from(u16::from_be_bytes([self.buf[2], self.buf[3]]));
                head = 4;
            } else if len == 127 {
                if self.buf.len() < 10 {
                    return Ok(None);
                }
                let mut be = [0u8; 8];
                be.copy_from_slice(&self.buf[2..10]);
                len = u64::from_be_bytes(be);
                head = 10;
            }
            let len = usize::try_from(len).map_err(|_| "frame too large")?;
            if self.buf.len() < head + len {
                self.buf.reserve(head + len - self.buf.len());
                return Ok(None);
            }
            self.buf.advance(head);
            let payload = self.buf.split_to(len);
            let (fin, rsv1, opcode) = (b0 & 0x80 != 0, b0 & 0x40 != 0, b0 & 0x0f);
            if fin && !rsv1 && (opcode == 0x1 || opcode == 0x2) {
                // A whole message in one frame: no copy.
                self.message.clear();
                return Ok(Some(payload.freeze()));
            }
            match opcode {
                0x8 => return Err("closed by server".into()),
                0x9 | 0xA => continue,
                0x1 | 0x2 => {
                    self.message.clear();
                    self.compressed = rsv1;
                }
                0x0 => {}
                _ => return Err(format!("unexpected opcode {opcode}")),
            }
            self.message.extend_from_slice(&payload);
            if !fin {
                continue;
            }
            let data = std::mem::take(&mut self.message);
            if !self.compressed {
                return Ok(Some(Bytes::from(data)));
            }
            return self.inflate_message(data).map(Some);
        }
    }

    fn inflate_message(&mut self, mut data: Vec<u8>) -> Result<Bytes, String> {
        data.extend_from_slice(&[0, 0, 0xff, 0xff]);
        let inflate = self.inflate.get_or_insert_with(|| Decompress::new(false));
        inflate.reset(false);
        let mut out = Vec::with_capacity(data.len() * 4);
        let mut input = &data[..];
        loop {
            let before_in = inflate.total_in();
            let status = inflate
                .decompress_vec(input, &mut out, FlushDecompress::Sync)
                .map_err(|e| format!("inflate: {e}"))?;
            let used = (inflate.total_in() - before_in) as usize;
            input = &input[used..];
            if input.is_empty() || status == Status::StreamEnd {
                return Ok(Bytes::from(out));
            }
            out.reserve(out.capacity().max(1024));
        }
    }

    /// Sends `data` as one masked text (or `binary`) frame (WebSocket
    /// only; SSE has no way back and ignores it).
    pub async fn send(&mut self, data: &[u8], binary: bool) -> Result<(), String> {
        if self.kind.server_side_only() {
            return Ok(());
        }
        let mask = [0x37u8, 0xfa, 0x21, 0x3d];
        let mut frame = Vec::with_capacity(data.len() + 14);
        frame.push(if binary { 0x82 } else { 0x81 });
        match data.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= 0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(data.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream
            .write_all(&frame)
            .await
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_queries() {
        assert_eq!(
            split_url("ws://127.0.0.1:8000/connection/websocket").expect("url"),
            ("127.0.0.1:8000".into(), "/connection/websocket".into())
        );
        assert_eq!(query_escape("{\"a\":1}"), "%7B%22a%22%3A1%7D");
    }
}
