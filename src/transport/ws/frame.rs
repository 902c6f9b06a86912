//! RFC 6455 framing for the server side: an incremental parser of client
//! frames (masked, reassembled into messages, size-limited before anything
//! large is buffered) and the header encoder of server frames (unmasked).
//!
//! The parser checks everything that is framing: the mask, reserved bits,
//! opcodes, control-frame rules and continuation order. What a message
//! *means* (inflating a compressed one, checking that text is UTF-8) is left
//! to the connection, which does it once per complete message.

use bytes::{Buf, BytesMut};

/// Frame opcodes (RFC 6455 §5.2).
pub(crate) mod opcode {
    /// Continuation of a fragmented data message.
    pub(crate) const CONTINUATION: u8 = 0x0;
    /// Text data.
    pub(crate) const TEXT: u8 = 0x1;
    /// Binary data.
    pub(crate) const BINARY: u8 = 0x2;
    /// Close.
    pub(crate) const CLOSE: u8 = 0x8;
    /// Ping.
    pub(crate) const PING: u8 = 0x9;
    /// Pong.
    pub(crate) const PONG: u8 = 0xa;
}

const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;
const RSV23: u8 = 0x30;
const MASK: u8 = 0x80;
/// Largest payload of a control frame.
pub(crate) const MAX_CONTROL: usize = 125;
/// Longest server frame header (no mask).
pub(crate) const MAX_HEADER: usize = 10;

/// Why the connection must be failed: a close code and a short reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fail {
    /// WebSocket close code (1002, 1007, 1009).
    pub(crate) code: u16,
    /// Close reason.
    pub(crate) reason: &'static str,
}

impl Fail {
    /// A framing rule was broken.
    pub(crate) const fn protocol(reason: &'static str) -> Self {
        Self { code: 1002, reason }
    }
    /// The message is larger than allowed.
    pub(crate) const TOO_BIG: Self = Self {
        code: 1009,
        reason: "message too big",
    };
    /// Payload data that is not what it says (bad UTF-8, bad deflate data).
    pub(crate) const fn invalid(reason: &'static str) -> Self {
        Self { code: 1007, reason }
    }
}

/// What the parser produced.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// A complete data message (reassembled when fragmented).
    Message {
        /// Text (else binary).
        text: bool,
        /// RSV1 was set on its first frame: the payload is deflated.
        compressed: bool,
        /// The unmasked payload.
        payload: BytesMut,
    },
    /// A ping with its payload.
    Ping(BytesMut),
    /// A pong.
    Pong,
    /// A close frame: its code (if any) and reason bytes.
    Close(Option<u16>, BytesMut),
}

/// A data message whose first frames arrived without FIN.
#[derive(Debug)]
struct Partial {
    text: bool,
    compressed: bool,
    data: BytesMut,
}

/// Incremental parser of client frames.
#[derive(Debug)]
pub(crate) struct Parser {
    /// Largest data message (sum of its frames' payloads).
    max_message: usize,
    /// permessage-deflate was negotiated: RSV1 is allowed.
    deflate: bool,
    partial: Option<Box<Partial>>,
    /// Bytes the frame at the head of the buffer needs in total (0 when
    /// not known yet).
    want: usize,
}

impl Parser {
    /// A parser for messages up to `max_message` bytes; `deflate` allows
    /// compressed messages.
    pub(crate) fn new(max_message: usize, deflate: bool) -> Self {
        Self {
            max_message,
            deflate,
            partial: None,
            want: 0,
        }
    }

    /// Total bytes the frame at the head of the buffer needs (header and
    /// payload), once its header was seen; 0 otherwise.
    pub(crate) fn want(&self) -> usize {
        self.want
    }

    /// Takes the next event out of `buf`, `Ok(None)` when more bytes are
    /// needed. Consumed frames are removed from `buf`.
    pub(crate) fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Event>, Fail> {
        loop {
            let Some(head) = self.header(buf)? else {
                return Ok(None);
            };
            let total = head.len + head.payload as usize;
            if buf.len() < total {
                self.want = total;
                return Ok(None);
            }
            self.want = 0;
            let mut payload = buf.split_to(total);
            payload.advance(head.len);
            unmask(&mut payload, head.mask);
            if let Some(ev) = self.frame(head, payload)? {
                return Ok(Some(ev));
            }
        }
    }

    /// Parses and checks the header at the head of `buf`.
    fn header(&self, buf: &[u8]) -> Result<Option<Header>, Fail> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        if b0 & RSV23 != 0 {
            return Err(Fail::protocol("reserved bits set"));
        }
        let fin = b0 & FIN != 0;
        let rsv1 = b0 & RSV1 != 0;
        let op = b0 & 0x0f;
        if b1 & MASK == 0 {
            return Err(Fail::protocol("unmasked client frame"));
        }
        match op {
            opcode::CONTINUATION => {
                if self.partial.is_none() {
                    return Err(Fail::protocol("continuation without a message"));
                }
                if rsv1 {
                    return Err(Fail::protocol("RSV1 on a continuation frame"));
                }
            }
            opcode::TEXT | opcode::BINARY => {
                if self.partial.is_some() {
                    return Err(Fail::protocol("new message inside a fragmented one"));
                }
                if rsv1 && !self.deflate {
                    return Err(Fail::protocol("RSV1 without permessage-deflate"));
                }
            }
            opcode::CLOSE | opcode::PING | opcode::PONG => {
                if !fin {
                    return Err(Fail::protocol("fragmented control frame"));
                }
                if rsv1 {
                    return Err(Fail::protocol("RSV1 on a control frame"));
                }
            }
            _ => return Err(Fail::protocol("unknown opcode")),
        }
        let (len, payload) = match b1 & 0x7f {
            126 => {
                let Some(b) = buf.get(2..4) else {
                    return Ok(None);
                };
                (4, u64::from(u16::from_be_bytes([b[0], b[1]])))
            }
            127 => {
                let Some(b) = buf.get(2..10) else {
                    return Ok(None);
                };
                let mut n = [0u8; 8];
                n.copy_from_slice(b);
                let n = u64::from_be_bytes(n);
                if n >> 63 != 0 {
                    return Err(Fail::protocol("payload length with the top bit set"));
                }
                (10, n)
            }
            n => (2, u64::from(n)),
        };
        if op >= opcode::CLOSE && payload > MAX_CONTROL as u64 {
            return Err(Fail::protocol("control frame too long"));
        }
        if op < opcode::CLOSE {
            let so_far = self.partial.as_ref().map_or(0, |p| p.data.len()) as u64;
            if so_far.saturating_add(payload) > self.max_message as u64 {
                return Err(Fail::TOO_BIG);
            }
        }
        let Some(m) = buf.get(len..len + 4) else {
            return Ok(None);
        };
        Ok(Some(Header {
            fin,
            rsv1,
            op,
            len: len + 4,
            payload,
            mask: [m[0], m[1], m[2], m[3]],
        }))
    }

    /// Turns one complete frame into an event, or keeps it as part of a
    /// fragmented message.
    fn frame(&mut self, h: Header, payload: BytesMut) -> Result<Option<Event>, Fail> {
        match h.op {
            opcode::PING => Ok(Some(Event::Ping(payload))),
            opcode::PONG => Ok(Some(Event::Pong)),
            opcode::CLOSE => close_event(payload).map(Some),
            opcode::CONTINUATION => {
                let Some(p) = self.partial.as_mut() else {
                    return Err(Fail::protocol("continuation without a message"));
                };
                p.data.extend_from_slice(&payload);
                if !h.fin {
                    return Ok(None);
                }
                let Some(p) = self.partial.take() else {
                    return Ok(None);
                };
                Ok(Some(Event::Message {
                    text: p.text,
                    compressed: p.compressed,
                    payload: p.data,
                }))
            }
            op => {
                let text = op == opcode::TEXT;
                if h.fin {
                    return Ok(Some(Event::Message {
                        text,
                        compressed: h.rsv1,
                        payload,
                    }));
                }
                // Own the data: the frame is a slice of the read buffer.
                let mut data = BytesMut::with_capacity(payload.len() * 2);
                data.extend_from_slice(&payload);
                self.partial = Some(Box::new(Partial {
                    text,
                    compressed: h.rsv1,
                    data,
                }));
                Ok(None)
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Header {
    fin: bool,
    rsv1: bool,
    op: u8,
    /// Header length, mask included.
    len: usize,
    payload: u64,
    mask: [u8; 4],
}

/// The total length (header and payload) of the frame at the head of
/// `buf`, read without any checks, once its header is there; for skipping
/// a frame the parser refused.
pub(crate) fn frame_len(buf: &[u8]) -> Option<u64> {
    let b1 = *buf.get(1)?;
    let mask = if b1 & MASK != 0 { 4 } else { 0 };
    let (len, payload) = match b1 & 0x7f {
        126 => (
            4,
            u64::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])),
        ),
        127 => {
            let mut n = [0u8; 8];
            n.copy_from_slice(buf.get(2..10)?);
            (10, u64::from_be_bytes(n))
        }
        n => (2, u64::from(n)),
    };
    Some(payload.saturating_add(len + mask))
}

/// Checks a close frame's payload (RFC 6455 §5.5.1, §7.4).
fn close_event(mut payload: BytesMut) -> Result<Event, Fail> {
    match payload.len() {
        0 => Ok(Event::Close(None, payload)),
        1 => Err(Fail::protocol("close frame of one byte")),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            if !valid_close_code(code) {
                return Err(Fail::protocol("invalid close code"));
            }
            payload.advance(2);
            if std::str::from_utf8(&payload).is_err() {
                return Err(Fail::invalid("close reason is not UTF-8"));
            }
            Ok(Event::Close(Some(code), payload))
        }
    }
}

/// Whether a peer may send this close code.
pub(crate) fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// XORs `data` with the 4-byte mask, eight bytes at a time.
pub(crate) fn unmask(data: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        c.copy_from_slice(&(u64::from_ne_bytes(w) ^ wide).to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// Writes a server frame header (FIN set, no mask) into `out` and returns
/// its length.
pub(crate) fn encode_header(out: &mut [u8; MAX_HEADER], op: u8, rsv1: bool, len: usize) -> usize {
    out[0] = FIN | if rsv1 { RSV1 } else { 0 } | (op & 0x0f);
    if len < 126 {
        out[1] = len as u8;
        2
    } else if len <= usize::from(u16::MAX) {
        out[1] = 126;
        out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        4
    } else {
        out[1] = 127;
        out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_all(p: &mut Parser, bytes: &[u8]) -> Result<Vec<Event>, Fail> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(ev) = p.next(&mut buf)? {
            out.push(ev);
        }
        Ok(out)
    }

    fn msg(text: bool, payload: &[u8]) -> Event {
        Event::Message {
            text,
            compressed: false,
            payload: BytesMut::from(payload),
        }
    }

    /// Masks `payload` into a client frame.
    fn client_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut hdr = [0u8; MAX_HEADER];
        let n = encode_header(&mut hdr, b0 & 0x0f, b0 & RSV1 != 0, payload.len());
        hdr[0] = b0;
        hdr[1] |= MASK;
        let mut f = hdr[..n].to_vec();
        f.extend_from_slice(&mask);
        let mut p = payload.to_vec();
        unmask(&mut p, mask);
        f.extend_from_slice(&p);
        f
    }

    #[test]
    fn rfc6455_single_frame_masked_text() {
        // RFC 6455 §5.7: a single-frame masked text message "Hello".
        let f = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let mut p = Parser::new(100, false);
        assert_eq!(parse_all(&mut p, &f), Ok(vec![msg(true, b"Hello")]));
    }

    #[test]
    fn rfc6455_unmasked_client_frame_is_refused() {
        let f = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        let mut p = Parser::new(100, false);
        assert_eq!(
            parse_all(&mut p, &f).map(|_| ()),
            Err(Fail::protocol("unmasked client frame"))
        );
    }

    #[test]
    fn rfc6455_fragmented_text_with_ping_between() {
        let mut bytes = client_frame(0x01, b"Hel");
        bytes.extend(client_frame(0x89, b"Hi"));
        bytes.extend(client_frame(0x80, b"lo"));
        let mut p = Parser::new(100, false);
        let evs = parse_all(&mut p, &bytes).expect("parsed");
        assert_eq!(
            evs,
            vec![Event::Ping(BytesMut::from(&b"Hi"[..])), msg(true, b"Hello")]
        );
    }

    #[test]
    fn byte_at_a_time_gives_the_same_events() {
        let mut bytes = client_frame(0x82, &[7u8; 300]);
        bytes.extend(client_frame(0x82, &vec![9u8; 70_000]));
        bytes.extend(client_frame(0x88, &[0x03, 0xe8, b'o', b'k']));
        let mut p = Parser::new(100_000, false);
        let mut buf = BytesMut::new();
        let mut evs = Vec::new();
        for b in bytes {
            buf.extend_from_slice(&[b]);
            while let Some(ev) = p.next(&mut buf).expect("valid") {
                evs.push(ev);
            }
        }
        assert_eq!(
            evs,
            vec![
                msg(false, &[7u8; 300]),
                msg(false, &vec![9u8; 70_000]),
                Event::Close(Some(1000), BytesMut::from(&b"ok"[..])),
            ]
        );
    }

    #[test]
    fn size_limit_is_checked_on_the_header() {
        let mut p = Parser::new(10, false);
        // Only the header of a huge frame: refused before its payload.
        let f = [0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4];
        assert_eq!(p.next(&mut BytesMut::from(&f[..])), Err(Fail::TOO_BIG));
        // The limit applies to the sum of fragments.
        let mut p = Parser::new(10, false);
        let mut bytes = client_frame(0x02, &[1; 6]);
        bytes.extend(client_frame(0x80, &[1; 5]));
        assert_eq!(parse_all(&mut p, &bytes), Err(Fail::TOO_BIG));
        let mut p = Parser::new(10, false);
        assert_eq!(
            parse_all(&mut p, &client_frame(0x82, &[1; 10])).map(|v| v.len()),
            Ok(1)
        );
    }

    #[test]
    fn framing_rules() {
        let cases: &[(&[u8], u16)] = &[
            (&[0xa1, 0x80, 0, 0, 0, 0], 1002),                   // RSV2
            (&[0xc1, 0x80, 0, 0, 0, 0], 1002),                   // RSV1 without deflate
            (&[0x83, 0x80, 0, 0, 0, 0], 1002),                   // opcode 3
            (&[0x8b, 0x80, 0, 0, 0, 0], 1002),                   // opcode 11
            (&[0x80, 0x80, 0, 0, 0, 0], 1002),                   // continuation first
            (&[0x09, 0x80, 0, 0, 0, 0], 1002),                   // fragmented ping
            (&[0x89, 0xfe, 0, 126, 0, 0, 0, 0], 1002),           // ping of 126 bytes
            (&[0x88, 0x81, 0, 0, 0, 0, 3], 1002),                // close of one byte
            (&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xed], 1002),       // code 1005
            (&[0x88, 0x83, 0, 0, 0, 0, 0x03, 0xe8, 0xff], 1007), // bad reason
        ];
        for (f, code) in cases {
            let mut p = Parser::new(100, false);
            let got = parse_all(&mut p, f).map(|_| ()).map_err(|e| e.code);
            assert_eq!(got, Err(*code), "{f:02x?}");
        }
        // A new data message inside a fragmented one.
        let mut bytes = client_frame(0x01, b"a");
        bytes.extend(client_frame(0x81, b"b"));
        assert_eq!(
            parse_all(&mut Parser::new(100, false), &bytes).map_err(|e| e.code),
            Err(1002)
        );
        // RSV1 allowed on the first frame only, when deflate is on.
        let mut bytes = client_frame(0x41, b"a");
        bytes.extend(client_frame(0x80, b"b"));
        let evs = parse_all(&mut Parser::new(100, true), &bytes).expect("valid");
        assert!(matches!(
            evs[..],
            [Event::Message {
                compressed: true,
                ..
            }]
        ));
        let mut bytes = client_frame(0x01, b"a");
        bytes.extend(client_frame(0xc0, b"b"));
        assert_eq!(
            parse_all(&mut Parser::new(100, true), &bytes).map_err(|e| e.code),
            Err(1002)
        );
    }

    #[test]
    fn frame_len_of_refused_frames() {
        assert_eq!(frame_len(&[0x81]), None);
        assert_eq!(frame_len(&[0x81, 0x05]), Some(7));
        assert_eq!(frame_len(&[0xf1, 0x85]), Some(11));
        assert_eq!(frame_len(&[0x82, 0xfe, 1]), None);
        assert_eq!(frame_len(&[0x82, 0xfe, 1, 0]), Some(264));
        assert_eq!(
            frame_len(&[0x82, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Some(u64::MAX)
        );
    }

    #[test]
    fn header_encoding() {
        let mut h = [0u8; MAX_HEADER];
        assert_eq!(encode_header(&mut h, opcode::TEXT, false, 5), 2);
        assert_eq!(h[..2], [0x81, 5]);
        assert_eq!(encode_header(&mut h, opcode::BINARY, true, 256), 4);
        assert_eq!(h[..4], [0xc2, 126, 1, 0]);
        assert_eq!(encode_header(&mut h, opcode::BINARY, false, 65536), 10);
        assert_eq!(h[..10], [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), deflate: bool, split in 0usize..512) {
            let mut p = Parser::new(200, deflate);
            let split = split.min(bytes.len());
            let mut buf = BytesMut::from(&bytes[..split]);
            let mut failed = false;
            loop {
                match p.next(&mut buf) {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => { failed = true; break }
                }
            }
            if !failed {
                buf.extend_from_slice(&bytes[split..]);
                while let Ok(Some(_)) = p.next(&mut buf) {}
            }
        }

        #[test]
        fn masked_frames_round_trip(payload in proptest::collection::vec(any::<u8>(), 0..3000)) {
            let f = client_frame(0x82, &payload);
            let mut p = Parser::new(4000, false);
            prop_assert_eq!(parse_all(&mut p, &f), Ok(vec![msg(false, &payload)]));
        }
    }
}
