//! PEM values as Centrifugo v6 reads them (its `PEMData`): raw PEM text,
//! else base64 of PEM text, else the path of a file holding PEM. Used by
//! every `tls` object: the listeners' and the Redis engine's.

use base64::Engine as _;

/// Whether `bytes` hold a PEM block (a BEGIN line and its END line).
pub(crate) fn is_pem(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    let Some(start) = text.find("-----BEGIN ") else {
        return false;
    };
    let rest = &text[start + "-----BEGIN ".len()..];
    let Some(end) = rest.find("-----") else {
        return false;
    };
    let label = &rest[..end];
    rest.contains(&format!("-----END {label}-----"))
}

/// The PEM bytes `value` stands for; the error says why not (the caller
/// names the key).
pub fn load(value: &str) -> Result<Vec<u8>, String> {
    if is_pem(value.as_bytes()) {
        return Ok(value.as_bytes().to_vec());
    }
    if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(value.trim())
        && is_pem(&decoded)
    {
        return Ok(decoded);
    }
    match std::fs::read(value) {
        Ok(bytes) if is_pem(&bytes) => Ok(bytes),
        Ok(_) => Err(format!("file {value:?} holds no PEM data")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "not PEM text, base64 of PEM, or an existing file ({value:?} not found)"
        )),
        Err(e) => Err(format!("cannot read {value:?}: {e}")),
    }
}
