//! Compact JWS parsing: splits a token into header, claims and signature
//! without trusting anything in it. Signature checks live in `keys`/`jwks`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// A token split into its parts; nothing here is verified yet.
pub(crate) struct ParsedToken<'a> {
    /// Raw `alg` header value.
    pub(crate) alg: String,
    /// Header `kid`, if it is a string.
    pub(crate) kid: Option<String>,
    /// `base64(header).base64(payload)`: the signed bytes.
    pub(crate) signing_input: &'a str,
    /// Third segment, still base64url.
    pub(crate) signature: &'a str,
    /// Decoded payload text (kept for raw JSON values such as `info`).
    pub(crate) payload_text: String,
    /// Payload parsed as a JSON object.
    pub(crate) payload: Map<String, Value>,
}

/// Splits and decodes a compact JWS. Errors never quote the token.
pub(crate) fn parse(token: &str) -> Result<ParsedToken<'_>, String> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("malformed token: expected three segments".into());
    };
    let signing_input = &token[..h.len() + 1 + p.len()];

    let header_bytes = URL_SAFE_NO_PAD
        .decode(h)
        .map_err(|_| "malformed token header encoding")?;
    let header: Map<String, Value> =
        serde_json::from_slice(&header_bytes).map_err(|_| "malformed token header JSON")?;
    if header.contains_key("crit") {
        // RFC 7515 §4.1.11: extensions we do not understand must be rejected.
        return Err("unsupported critical header extension".into());
    }
    if header.get("b64") == Some(&Value::Bool(false)) {
        return Err("unencoded payloads are not supported".into());
    }
    let alg = match header.get("alg") {
        Some(Value::String(a)) => a.clone(),
        Some(_) => return Err("malformed alg header".into()),
        None => String::new(),
    };
    let kid = match header.get("kid") {
        Some(Value::String(k)) => Some(k.clone()),
        _ => None,
    };

    let payload_bytes = URL_SAFE_NO_PAD
        .decode(p)
        .map_err(|_| "malformed token payload encoding")?;
    let payload_text =
        String::from_utf8(payload_bytes).map_err(|_| "token payload is not UTF-8")?;
    let payload: Map<String, Value> =
        serde_json::from_str(&payload_text).map_err(|_| "token payload is not a JSON object")?;

    Ok(ParsedToken {
        alg,
        kid,
        signing_input,
        signature: s,
        payload_text,
        payload,
    })
}
