//! WebSocket permessage-deflate (RFC 7692) on `/connection/websocket`:
//! negotiation, compressed frames both ways, the inflate limit (a
//! decompression bomb closes with 1009 and the server stays up), and no
//! extension when compression is off; `/connection/uni_websocket` follows
//! its own `uni_websocket.compression`. The deflating client is written here
//! frame by frame (tokio-tungstenite has no permessage-deflate); flate2
//! inflates and deflates for it.

mod support;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use rotor::config::Config;
use support::{PATIENCE, TestServer, assert_healthy, base_config, token, unique};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn compression_config(on: bool) -> Config {
    let mut cfg = base_config();
    cfg.websocket.compression = on;
    cfg.websocket.compression_min_size = 0;
    cfg
}

/// A raw WebSocket client: handshake, masked frames, deflate by hand.
struct RawWs {
    s: TcpStream,
    /// The handshake response head, lower-cased.
    head: String,
}

impl RawWs {
    async fn open(srv: &TestServer, extensions: Option<&str>) -> Self {
        Self::open_path(srv, "/connection/websocket", extensions).await
    }

    async fn open_path(srv: &TestServer, path: &str, extensions: Option<&str>) -> Self {
        let mut s = TcpStream::connect(srv.addr).await.expect("tcp");
        let ext = extensions
            .map(|e| format!("Sec-WebSocket-Extensions: {e}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{ext}\r\n",
            srv.addr
        );
        s.write_all(req.as_bytes()).await.expect("write");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = tokio::time::timeout(PATIENCE, s.read(&mut byte))
                .await
                .expect("response head")
                .expect("read");
            assert_eq!(n, 1, "eof in response head");
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 101"), "{head}");
        Self { s, head }
    }

    fn deflate_negotiated(&self) -> bool {
        self.head
            .contains("sec-websocket-extensions: permessage-deflate")
    }

    /// Sends one masked frame with first byte `b0`.
    async fn send_frame(&mut self, b0: u8, payload: &[u8]) {
        let mask = [0x11, 0x22, 0x33, 0x44];
        let mut f = vec![b0];
        match payload.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n <= 0xffff => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.s.write_all(&f).await.expect("write frame");
    }

    /// Sends a text message, deflated (RSV1) when `compress`.
    async fn send_text(&mut self, text: &str, compress: bool) {
        if compress {
            self.send_frame(0xc1, &deflate(text.as_bytes())).await;
        } else {
            self.send_frame(0x81, text.as_bytes()).await;
        }
    }

    /// Reads one server frame: (first byte, payload).
    async fn recv_frame(&mut self) -> (u8, Vec<u8>) {
        tokio::time::timeout(PATIENCE, async {
            let mut h = [0u8; 2];
            self.s.read_exact(&mut h).await.expect("frame header");
            assert_eq!(h[1] & 0x80, 0, "server frames are unmasked");
            let len = match h[1] & 0x7f {
                126 => usize::from(self.s.read_u16().await.expect("len")),
                127 => self.s.read_u64().await.expect("len") as usize,
                n => usize::from(n),
            };
            let mut p = vec![0u8; len];
            self.s.read_exact(&mut p).await.expect("payload");
            (h[0], p)
        })
        .await
        .expect("a frame in time")
    }

    /// Reads one data message, inflating it when RSV1 is set; returns it
    /// with whether it was compressed.
    async fn recv_text(&mut self) -> (String, bool) {
        let (b0, p) = self.recv_frame().await;
        assert_eq!(b0 & 0x8f, 0x81, "a single text frame, got {b0:#x}");
        let compressed = b0 & 0x40 != 0;
        let data = if compressed { inflate(&p) } else { p };
        (String::from_utf8(data).expect("utf-8"), compressed)
    }

    /// Reads until the close frame and returns its code.
    async fn close_code(&mut self) -> u16 {
        loop {
            let (b0, p) = self.recv_frame().await;
            if b0 & 0x0f == 0x8 {
                assert!(p.len() >= 2, "close with a code");
                return u16::from_be_bytes([p[0], p[1]]);
            }
        }
    }
}

/// Raw deflate with a sync flush, the 4-byte tail stripped.
fn deflate(data: &[u8]) -> Vec<u8> {
    let mut c = Compress::new(Compression::new(6), false);
    let mut out = Vec::with_capacity(data.len() + 64);
    c.compress_vec(data, &mut out, FlushCompress::Sync)
        .expect("deflate");
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]), "sync flush tail");
    out.truncate(out.len() - 4);
    out
}

fn inflate(data: &[u8]) -> Vec<u8> {
    let mut input = data.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut d = Decompress::new(false);
    let mut out = Vec::with_capacity(data.len() * 4 + 1024);
    loop {
        let done = d.total_in() as usize;
        d.decompress_vec(&input[done..], &mut out, FlushDecompress::Sync)
            .expect("inflate");
        if d.total_in() as usize == input.len() && out.len() < out.capacity() {
            return out;
        }
        out.reserve(out.capacity());
    }
}

fn connect_json(id: u32, user: &str) -> String {
    format!(
        "{{\"id\":{id},\"connect\":{{\"token\":\"{}\"}}}}",
        token(user, 3600)
    )
}

#[tokio::test]
async fn client_without_deflate_still_works() {
    let srv = TestServer::start(compression_config(true)).await;
    let mut c = srv.connected(false, "plain").await;
    let ch = unique("plain-");
    c.subscribe(&ch).await.subscribe.expect("subscribed");
    c.publish(&ch, r#"{"n":1}"#)
        .await
        .publish
        .expect("published");
    assert_eq!(&c.publication(&ch).await.data[..], br#"{"n":1}"#);
    let raw = RawWs::open(&srv, None).await;
    assert!(
        !raw.head.contains("sec-websocket-extensions"),
        "{}",
        raw.head
    );
    srv.stop().await;
}

#[tokio::test]
async fn deflate_is_negotiated_and_frames_are_compressed_both_ways() {
    let srv = TestServer::start(compression_config(true)).await;
    let mut c = RawWs::open(&srv, Some("permessage-deflate; client_max_window_bits")).await;
    assert!(c.deflate_negotiated(), "{}", c.head);
    assert!(c.head.contains("server_no_context_takeover"), "{}", c.head);
    assert!(c.head.contains("client_no_context_takeover"), "{}", c.head);

    c.send_text(&connect_json(1, "deflater"), true).await;
    let (reply, compressed) = c.recv_text().await;
    assert!(
        compressed,
        "compression_min_size 0: every frame is compressed"
    );
    assert!(
        reply.contains("\"id\":1") && reply.contains("\"client\""),
        "{reply}"
    );

    // Subscribe uncompressed, publish compressed, and a large publication
    // comes back compressed and intact.
    let ch = unique("deflate-");
    c.send_text(
        &format!("{{\"id\":2,\"subscribe\":{{\"channel\":\"{ch}\"}}}}"),
        false,
    )
    .await;
    let (reply, _) = c.recv_text().await;
    assert!(reply.contains("\"id\":2"), "{reply}");
    let blob = "abc".repeat(5000);
    c.send_text(
        &format!("{{\"id\":3,\"publish\":{{\"channel\":\"{ch}\",\"data\":{{\"b\":\"{blob}\"}}}}}}"),
        true,
    )
    .await;
    // The reply and the publication, in one frame or two.
    let mut got = String::new();
    while !(got.contains("\"id\":3") && got.contains(&blob)) {
        let (msg, compressed) = c.recv_text().await;
        assert!(compressed);
        got.push_str(&msg);
        got.push('\n');
    }
    assert!(got.contains("\"id\":3"), "{got}");
    assert!(got.contains(&blob), "the publication is intact");
    drop(c);
    srv.stop().await;
}

#[tokio::test]
async fn decompression_bomb_closes_1009_and_the_server_stays_up() {
    let srv = TestServer::start(compression_config(true)).await;
    let mut c = RawWs::open(&srv, Some("permessage-deflate")).await;
    assert!(c.deflate_negotiated(), "{}", c.head);
    c.send_text(&connect_json(1, "bomber"), true).await;
    let (reply, _) = c.recv_text().await;
    assert!(reply.contains("\"id\":1"), "{reply}");
    // 8 MB of spaces deflates to a few KB: far past the inflate limit
    // (10 × message_size_limit by default) while the frame itself is small.
    let bomb = deflate(&vec![b' '; 8 << 20]);
    assert!(bomb.len() < 65_536, "the frame is within the size limit");
    c.send_frame(0xc1, &bomb).await;
    assert_eq!(c.close_code().await, 1009);
    drop(c);
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn compression_disabled_does_not_answer_the_offer() {
    let srv = TestServer::start(compression_config(false)).await;
    let mut c = RawWs::open(&srv, Some("permessage-deflate; client_max_window_bits")).await;
    assert!(!c.head.contains("sec-websocket-extensions"), "{}", c.head);
    c.send_text(&connect_json(1, "nodeflate"), false).await;
    let (reply, compressed) = c.recv_text().await;
    assert!(!compressed);
    assert!(reply.contains("\"id\":1"), "{reply}");
    // An RSV1 frame is then a protocol error.
    c.send_frame(0xc1, &deflate(b"{}")).await;
    assert_eq!(c.close_code().await, 1002);
    drop(c);
    srv.stop().await;
}

#[tokio::test]
async fn offers_we_cannot_honour_are_declined() {
    let srv = TestServer::start(compression_config(true)).await;
    let c = RawWs::open(&srv, Some("permessage-deflate; server_max_window_bits=10")).await;
    assert!(!c.deflate_negotiated(), "{}", c.head);
    drop(c);
    let c = RawWs::open(
        &srv,
        Some("permessage-deflate; server_max_window_bits=10, permessage-deflate"),
    )
    .await;
    assert!(
        c.deflate_negotiated(),
        "the second offer is taken: {}",
        c.head
    );
    srv.stop().await;
}

#[tokio::test]
async fn uni_websocket_negotiates_deflate_with_its_own_flag() {
    let mut cfg = compression_config(false);
    cfg.uni_websocket.enabled = true;
    cfg.uni_websocket.compression = true;
    let srv = TestServer::start(cfg).await;
    let mut c = RawWs::open_path(
        &srv,
        "/connection/uni_websocket",
        Some("permessage-deflate"),
    )
    .await;
    assert!(c.deflate_negotiated(), "{}", c.head);
    // The ConnectRequest as the first (compressed) message.
    c.send_text(&format!("{{\"token\":\"{}\"}}", token("uni", 3600)), true)
        .await;
    let (msg, compressed) = c.recv_text().await;
    assert!(compressed);
    assert!(msg.contains("\"connect\""), "{msg}");
    drop(c);
    // websocket.compression is off: the bidirectional endpoint declines.
    let c = RawWs::open(&srv, Some("permessage-deflate")).await;
    assert!(!c.deflate_negotiated(), "{}", c.head);
    drop(c);
    srv.stop().await;
}
