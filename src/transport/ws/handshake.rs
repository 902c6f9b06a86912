//! The server half of the opening handshake: the `Sec-WebSocket-Accept`
//! key and the permessage-deflate negotiation (RFC 7692 §5, §7.1).
//!
//! We always answer `server_no_context_takeover; client_no_context_takeover`
//! (see [`super::deflate`]). An offer is declined when it has unknown or
//! repeated parameters, bad values, or asks us to deflate with a window
//! below 15 bits (our compressor always uses 15); the next offer is tried.

use base64::Engine;
use sha1::{Digest, Sha1};

/// The `Sec-WebSocket-Extensions` value we answer with.
pub(crate) const DEFLATE_RESPONSE: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// `Sec-WebSocket-Accept` for a client key.
pub(crate) fn accept_key(key: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(key);
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// Whether one of the offers in the `Sec-WebSocket-Extensions` header
/// values is a permessage-deflate we can honour.
pub(crate) fn accepts_deflate<'a>(values: impl IntoIterator<Item = &'a str>) -> bool {
    values.into_iter().flat_map(split_offers).any(acceptable)
}

/// Splits a header value into offers at commas outside quoted strings.
fn split_offers(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&value[start..]);
    out
}

/// Whether one offer (`name; param; param=value`) is a permessage-deflate
/// we can honour.
fn acceptable(offer: &str) -> bool {
    let mut parts = offer.split(';').map(str::trim);
    if !parts
        .next()
        .is_some_and(|n| n.eq_ignore_ascii_case("permessage-deflate"))
    {
        return false;
    }
    let mut seen = [false; 4];
    for p in parts {
        let (name, value) = match p.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (p, None),
        };
        let slot = match name.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" if value.is_none() => 0,
            "client_no_context_takeover" if value.is_none() => 1,
            "server_max_window_bits" => match value.map(window_bits) {
                // We deflate with a 15-bit window; a smaller one is not
                // something we can honour.
                Some(Some(15)) => 2,
                _ => return false,
            },
            "client_max_window_bits" => match value.map(window_bits) {
                // We inflate with a 15-bit window, so any client window is
                // fine and we need not answer with a value.
                None | Some(Some(_)) => 3,
                Some(None) => return false,
            },
            _ => return false,
        };
        if std::mem::replace(&mut seen[slot], true) {
            return false;
        }
    }
    true
}

fn window_bits(v: &str) -> Option<u8> {
    if v.is_empty() || v.len() > 2 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok().filter(|n| (8..=15).contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_accept_key() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn offers() {
        let yes = [
            "permessage-deflate",
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; client_max_window_bits=10; server_no_context_takeover",
            "Permessage-Deflate; server_max_window_bits=15",
            "permessage-deflate; client_max_window_bits=\"12\"",
            "x-webkit-deflate-frame, permessage-deflate",
            "permessage-deflate; server_max_window_bits=10, permessage-deflate",
        ];
        for v in yes {
            assert!(accepts_deflate([v]), "{v}");
        }
        let no = [
            "",
            "x-webkit-deflate-frame",
            "permessage-deflate; server_max_window_bits=10",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; unknown",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover=1",
        ];
        for v in no {
            assert!(!accepts_deflate([v]), "{v}");
        }
        assert!(accepts_deflate(["foo", "permessage-deflate"]));
    }
}
