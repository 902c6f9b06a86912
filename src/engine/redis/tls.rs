//! The `tls` object of the Redis object: custom certificates for
//! `rediss://` connections.
//!
//! Each PEM is text, base64 of it or a file path, as Centrifugo v6 reads
//! it, or comes from the older `<name>_file` key.
//!
//! * `server_ca_pem` (or `server_ca_pem_file`) — trust these roots instead
//!   of the system ones;
//! * `cert_pem` + `key_pem` (or the `_file` forms) — a client certificate
//!   (mutual TLS);
//! * `insecure_skip_verify` — accept any server certificate.
//!
//! `server_name` (a verification name other than the host) is not built
//! and is refused rather than ignored. The material goes to every
//! connection of the engine (each shard, each cluster node, the master a
//! Sentinel names); the `sentinel_tls` object does not take certificates
//! yet.

use crate::config::BackendTls;
use crate::engine::settings::key_err;

/// Custom TLS material (PEM text).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct TlsSettings {
    /// Client certificate (may be empty).
    pub(crate) cert_pem: String,
    /// Client key (may be empty); never logged.
    pub(crate) key_pem: String,
    /// Roots that verify the server (empty: the system roots).
    pub(crate) server_ca_pem: String,
    /// Accept any server certificate.
    pub(crate) insecure_skip_verify: bool,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("client_cert", &!self.cert_pem.is_empty())
            .field("server_ca", &!self.server_ca_pem.is_empty())
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .finish_non_exhaustive()
    }
}

/// Reads the PEM `name` (`value`): PEM text, base64 of it or a file path
/// (Centrifugo v6), or else the file at the older `<name>_file` key.
fn pem(name: &str, value: &str, file: &str) -> Result<String, (String, String)> {
    let key = format!("tls.{name}");
    if !value.is_empty() {
        return crate::config::pem::load(value)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .map_err(|e| key_err(&key, &e));
    }
    if file.is_empty() {
        return Ok(String::new());
    }
    std::fs::read_to_string(file)
        .map_err(|e| key_err(&format!("{key}_file"), &format!("cannot read {file}: {e}")))
}

/// Reads the `tls` object; `None` when it asks for nothing custom.
pub(super) fn read(tls: &BackendTls) -> Result<Option<TlsSettings>, (String, String)> {
    if !tls.server_name.is_empty() {
        return Err(key_err(
            "tls.server_name",
            "is not supported by this build yet",
        ));
    }
    let settings = TlsSettings {
        cert_pem: pem("cert_pem", &tls.cert_pem, &tls.cert_pem_file)?,
        key_pem: pem("key_pem", &tls.key_pem, &tls.key_pem_file)?,
        server_ca_pem: pem("server_ca_pem", &tls.server_ca_pem, &tls.server_ca_pem_file)?,
        insecure_skip_verify: tls.insecure_skip_verify,
    };
    if settings.cert_pem.is_empty() != settings.key_pem.is_empty() {
        return Err(key_err(
            "tls.cert_pem",
            "a client certificate needs both cert_pem and key_pem",
        ));
    }
    if settings == TlsSettings::default() {
        return Ok(None);
    }
    Ok(Some(settings))
}

/// The certificates for the client library, if any are configured.
pub(super) fn certificates(tls: Option<&TlsSettings>) -> Option<redis::TlsCertificates> {
    let tls = tls?;
    let client_tls = (!tls.cert_pem.is_empty()).then(|| redis::ClientTlsConfig {
        client_cert: tls.cert_pem.as_bytes().to_vec(),
        client_key: tls.key_pem.as_bytes().to_vec(),
    });
    let root_cert = (!tls.server_ca_pem.is_empty()).then(|| tls.server_ca_pem.as_bytes().to_vec());
    if client_tls.is_none() && root_cert.is_none() {
        return None;
    }
    Some(redis::TlsCertificates {
        client_tls,
        root_cert,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn read_json(v: &Value) -> Result<Option<TlsSettings>, (String, String)> {
        let tls: BackendTls = serde_json::from_value(v.clone()).expect("a tls object");
        read(&tls)
    }

    #[test]
    fn reads_pems_and_refuses_what_is_not_built() {
        assert_eq!(read_json(&json!({"enabled": true})), Ok(None));
        const CA: &str = "-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----\n";
        let s = read_json(&json!({"server_ca_pem": CA, "insecure_skip_verify": true}))
            .expect("read")
            .expect("custom");
        assert_eq!(s.server_ca_pem, CA);
        assert!(s.insecure_skip_verify);
        // Centrifugo v6's other forms: base64 of PEM, and a file path.
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(CA);
        let s = read_json(&json!({"server_ca_pem": b64})).expect("read");
        assert_eq!(s.expect("custom").server_ca_pem, CA);
        let dir = tempfile::tempdir().expect("tempdir");
        let ca_path = dir.path().join("ca.crt");
        std::fs::write(&ca_path, CA).expect("write");
        let s = read_json(&json!({"server_ca_pem": ca_path})).expect("read");
        assert_eq!(s.expect("custom").server_ca_pem, CA);
        let err = |v| read_json(&v).expect_err("must fail").0;
        assert_eq!(err(json!({"server_ca_pem": "CA"})), "tls.server_ca_pem");
        assert_eq!(err(json!({"server_name": "x"})), "tls.server_name");
        assert_eq!(err(json!({"cert_pem": "C"})), "tls.cert_pem");
        assert_eq!(
            err(json!({"server_ca_pem_file": "/nonexistent/ca.pem"})),
            "tls.server_ca_pem_file"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "FROM FILE").expect("write");
        let s = read_json(&json!({"server_ca_pem_file": path}))
            .expect("read")
            .expect("custom");
        assert_eq!(s.server_ca_pem, "FROM FILE");
    }
}
