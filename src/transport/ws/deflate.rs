//! permessage-deflate (RFC 7692) without per-connection state.
//!
//! The server always negotiates `server_no_context_takeover` and
//! `client_no_context_takeover`, so every message is deflated and inflated
//! on its own. One compressor and one decompressor per thread, reset before
//! each message, serve every connection: an idle connection holds no zlib
//! state at all. Raw deflate with a sync flush; the `00 00 ff ff` tail is
//! stripped from what we send and appended to what we receive.

use std::cell::RefCell;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The empty stored block a sync flush ends with.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

thread_local! {
    static COMPRESSOR: RefCell<Option<(u32, Compress)>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<Decompress>> = const { RefCell::new(None) };
}

/// Maps the config's `compression_level` (Go's flate levels: -2 Huffman
/// only, -1 default, 0..=9) to a flate2 level.
pub(crate) fn level(configured: i32) -> u32 {
    match configured {
        -1 => 6,
        ..=-2 => 1,
        n => n.clamp(0, 9) as u32,
    }
}

/// Why a message could not be inflated.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum InflateError {
    /// It inflates past the limit.
    TooBig,
    /// It is not valid deflate data.
    Invalid,
}

/// Deflates one message at `level` (0..=9) into a fresh buffer, without the
/// sync-flush tail; `None` if the compressor failed (send it as is).
pub(crate) fn compress(data: &[u8], level: u32) -> Option<Vec<u8>> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let c = match &mut *slot {
            Some((l, c)) if *l == level => {
                c.reset();
                c
            }
            other => {
                &mut other
                    .insert((level, Compress::new(Compression::new(level), false)))
                    .1
            }
        };
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        let mut consumed = 0usize;
        loop {
            let before = c.total_in();
            let status = c.compress_vec(&data[consumed..], &mut out, FlushCompress::Sync);
            consumed += (c.total_in() - before) as usize;
            // Done once all input went in and the flush did not fill the
            // output (a full buffer may hold more to come).
            status.ok()?;
            if consumed >= data.len() && out.len() < out.capacity() {
                break;
            }
            out.reserve(out.capacity().max(64));
        }
        // A sync flush always ends with the empty stored block.
        if !out.ends_with(&TAIL) {
            return None;
        }
        out.truncate(out.len() - TAIL.len());
        Some(out)
    })
}

/// Inflates one message, refusing to produce more than `limit` bytes.
pub(crate) fn decompress(data: &[u8], limit: usize) -> Result<Vec<u8>, InflateError> {
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let d = match &mut *slot {
            Some(d) => {
                d.reset(false);
                d
            }
            none => none.insert(Decompress::new(false)),
        };
        // Never more than limit + 1 bytes of room: one byte over the limit
        // is enough to know.
        let cap = limit.saturating_add(1);
        let mut out = Vec::with_capacity(cap.min(data.len().saturating_mul(4).max(256)));
        for chunk in [data, &TAIL[..]] {
            let mut pos = 0usize;
            loop {
                if out.len() == out.capacity() {
                    if out.len() >= cap {
                        return Err(InflateError::TooBig);
                    }
                    let grow = out.capacity().max(256).min(cap - out.len());
                    out.reserve_exact(grow);
                }
                let (in_before, out_before) = (d.total_in(), out.len());
                let status = d
                    .decompress_vec(&chunk[pos..], &mut out, FlushDecompress::Sync)
                    .map_err(|_| InflateError::Invalid)?;
                pos += (d.total_in() - in_before) as usize;
                if out.len() > limit {
                    return Err(InflateError::TooBig);
                }
                if status == Status::StreamEnd {
                    // A final block: whatever follows is ignored.
                    return Ok(out);
                }
                let progressed = d.total_in() != in_before || out.len() != out_before;
                if pos >= chunk.len() && out.len() < out.capacity() {
                    break;
                }
                if !progressed && out.len() < out.capacity() {
                    return Err(InflateError::Invalid);
                }
            }
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_at_every_level() {
        let text = "{\"push\":{\"channel\":\"news\",\"pub\":{\"data\":{\"n\":1}}}}\n".repeat(50);
        for l in 0..=9 {
            let c = compress(text.as_bytes(), l).expect("deflates");
            assert!(!c.ends_with(&TAIL));
            if l > 0 {
                assert!(c.len() < text.len() / 4, "level {l}: {}", c.len());
            }
            assert_eq!(decompress(&c, 1 << 20).expect("inflates"), text.as_bytes());
        }
        // Each message stands alone (no context takeover).
        let a = compress(b"hello hello hello", 1).expect("deflates");
        let b = compress(b"hello hello hello", 1).expect("deflates");
        assert_eq!(a, b);
        assert_eq!(
            decompress(&compress(b"", 1).expect("deflates"), 10).expect("empty"),
            b""
        );
    }

    #[test]
    fn rfc7692_example() {
        // RFC 7692 §7.2.3.1: "Hello" deflated.
        let data = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(decompress(&data, 100).expect("inflates"), b"Hello");
        assert_eq!(decompress(&data, 5).expect("exactly the limit"), b"Hello");
        assert_eq!(decompress(&data, 4), Err(InflateError::TooBig));
    }

    #[test]
    fn bomb_stops_at_the_limit() {
        let zeros = vec![0u8; 10 << 20];
        let bomb = compress(&zeros, 9).expect("deflates");
        assert!(bomb.len() < 20_000, "{}", bomb.len());
        assert_eq!(decompress(&bomb, 1 << 20), Err(InflateError::TooBig));
        // The decompressor is reusable afterwards.
        assert_eq!(
            decompress(&compress(b"ok", 1).expect("deflates"), 10).expect("ok"),
            b"ok"
        );
    }

    #[test]
    fn garbage_is_invalid_not_a_panic() {
        for g in [
            &[0xffu8, 0xff, 0xff][..],
            &[0x07],
            &[0x00, 0x01, 0x00, 0xaa],
        ] {
            let _ = decompress(g, 1000);
        }
        assert_eq!(
            decompress(&[0xff, 0xff, 0xff], 1000),
            Err(InflateError::Invalid)
        );
    }

    #[test]
    fn levels_from_config() {
        assert_eq!(level(1), 1);
        assert_eq!(level(-1), 6);
        assert_eq!(level(-2), 1);
        assert_eq!(level(12), 9);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_input_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let _ = decompress(&bytes, 1000);
        }
    }
}
