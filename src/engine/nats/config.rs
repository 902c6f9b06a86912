//! The `broker.nats` object of the configuration ([`NatsConfig`]) turned
//! into connection settings.
//!
//! Keys follow Centrifugo v6: `url`, `prefix`, `dial_timeout`,
//! `write_timeout`, `tls`. This build speaks NATS with Centrifugo's wire
//! format, over TLS with the `tls` object's PEMs (`server_ca_pem`, or the
//! system roots; `cert_pem` + `key_pem` for mutual TLS; each as text,
//! base64 or a file path, or from the older `*_pem_file` keys). A custom
//! server name and skipping verification are refused, as are (by the key
//! table) wildcard subscriptions and raw mode.

use std::time::Duration;

use crate::config::{BackendTls, NatsConfig};
use crate::engine::settings::key_err;

/// Default server URL.
pub(crate) const DEFAULT_URL: &str = "nats://127.0.0.1:4222";
/// Default subject prefix.
pub(crate) const DEFAULT_PREFIX: &str = "centrifugo";
/// Default dial timeout.
pub(crate) const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(1);
/// Default write timeout (how long a publish may wait to be queued).
pub(crate) const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Typed NATS broker settings.
#[derive(Clone, PartialEq, Eq)]
pub struct NatsSettings {
    /// Server URL (`nats://host:port`, userinfo allowed; never logged).
    pub url: String,
    /// Subject prefix: channels map to `<prefix>.client.<channel>`.
    pub prefix: String,
    /// Dial timeout.
    pub dial_timeout: Duration,
    /// Bound on queueing one publish and on the subscribe round trip.
    pub write_timeout: Duration,
    /// TLS, when `tls.enabled`.
    pub tls: Option<NatsTls>,
}

/// TLS to NATS: PEM material (from Centrifugo's `cert_pem`, `key_pem`,
/// `server_ca_pem` as text, base64 or a file path, or Rotor's older
/// `*_pem_file` keys).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct NatsTls {
    /// CA bundle that signs the server certificate (system roots if unset).
    pub server_ca_pem: Option<Vec<u8>>,
    /// Client certificate chain and key (PEM) for mutual TLS.
    pub client_cert: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for NatsTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsTls")
            .field("server_ca", &self.server_ca_pem.is_some())
            .field("client_cert", &self.client_cert.is_some())
            .finish()
    }
}

impl Default for NatsSettings {
    fn default() -> Self {
        Self {
            url: DEFAULT_URL.to_owned(),
            prefix: DEFAULT_PREFIX.to_owned(),
            dial_timeout: DEFAULT_DIAL_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            tls: None,
        }
    }
}

impl std::fmt::Debug for NatsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsSettings")
            .field("url", &redact(&self.url))
            .field("prefix", &self.prefix)
            .field("dial_timeout", &self.dial_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("tls", &self.tls)
            .finish()
    }
}

/// A URL without its userinfo part, for logs and errors.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://***@{}", &url[..scheme_end], &url[at + 1..])
        }
        (None, Some(at)) => format!("***@{}", &url[at + 1..]),
        _ => url.to_owned(),
    }
}

impl NatsSettings {
    /// Reads the `broker.nats` object. Errors name the offending key
    /// relative to the object (`url`, `tls.key_pem_file`, ...). Keys Rotor
    /// refuses (wildcards, raw mode) never get here: the key table refuses
    /// them when the configuration is loaded.
    pub(crate) fn from_config(cfg: &NatsConfig) -> Result<Self, (String, String)> {
        let mut s = Self::default();
        let url = &cfg.url;
        if !url.is_empty() {
            if url.chars().any(char::is_whitespace) {
                return Err(key_err("url", "must not contain whitespace"));
            }
            if url.contains(',') {
                return Err(key_err(
                    "url",
                    "several servers are not supported by this build yet",
                ));
            }
            s.url = url.clone();
        }
        if !cfg.prefix.is_empty() {
            if !valid_subject(&cfg.prefix) {
                return Err(key_err(
                    "prefix",
                    "must be a NATS subject (no spaces, wildcards or empty tokens)",
                ));
            }
            s.prefix = cfg.prefix.clone();
        }
        if !cfg.dial_timeout.is_zero() {
            s.dial_timeout = cfg.dial_timeout.get();
        }
        if !cfg.write_timeout.is_zero() {
            s.write_timeout = cfg.write_timeout.get();
        }
        s.tls = tls(&cfg.tls)?;
        Ok(s)
    }
}

/// Reads the TLS object; `None` unless `enabled`.
fn tls(tls: &BackendTls) -> Result<Option<NatsTls>, (String, String)> {
    if !tls.enabled {
        return Ok(None);
    }
    if !tls.server_name.is_empty() {
        return Err(key_err(
            "tls.server_name",
            "is not supported by this build yet",
        ));
    }
    if tls.insecure_skip_verify {
        return Err(key_err(
            "tls.insecure_skip_verify",
            "is not supported by this build yet",
        ));
    }
    let pem = |name: &str, value: &str, file: &str| -> Result<Option<Vec<u8>>, (String, String)> {
        if !value.is_empty() {
            return crate::config::pem::load(value)
                .map(Some)
                .map_err(|e| key_err(&format!("tls.{name}"), &e));
        }
        if file.is_empty() {
            return Ok(None);
        }
        std::fs::read(file).map(Some).map_err(|e| {
            key_err(
                &format!("tls.{name}_file"),
                &format!("cannot read {file}: {e}"),
            )
        })
    };
    let cert = pem("cert_pem", &tls.cert_pem, &tls.cert_pem_file)?;
    let key = pem("key_pem", &tls.key_pem, &tls.key_pem_file)?;
    let client_cert = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        (Some(_), None) => return Err(key_err("tls.key_pem", "is required with cert_pem")),
        (None, Some(_)) => return Err(key_err("tls.cert_pem", "is required with key_pem")),
    };
    Ok(Some(NatsTls {
        server_ca_pem: pem("server_ca_pem", &tls.server_ca_pem, &tls.server_ca_pem_file)?,
        client_cert,
    }))
}

/// True when `subject` is a literal NATS subject: non-empty dot-separated
/// tokens without whitespace, control characters or wildcards.
pub(crate) fn valid_subject(subject: &str) -> bool {
    !subject.is_empty()
        && subject.split('.').all(|token| {
            !token.is_empty()
                && token != "*"
                && token != ">"
                && !token
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '*' || c == '>')
        })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn from_json(v: &Value) -> Result<NatsSettings, (String, String)> {
        let cfg: NatsConfig = serde_path_to_error::deserialize(v.clone())
            .map_err(|e| (e.path().to_string(), e.inner().to_string()))?;
        NatsSettings::from_config(&cfg)
    }

    #[test]
    fn defaults_and_keys() {
        assert_eq!(from_json(&json!({})), Ok(NatsSettings::default()));
        let s = from_json(&json!({
            "url": "nats://u:p@10.0.0.1:4333", "prefix": "app.rt",
            "dial_timeout": "250ms", "write_timeout": "2s"
        }))
        .expect("valid");
        assert_eq!(s.url, "nats://u:p@10.0.0.1:4333");
        assert_eq!(s.prefix, "app.rt");
        assert_eq!(s.dial_timeout, Duration::from_millis(250));
        assert_eq!(s.write_timeout, Duration::from_secs(2));
        assert!(!format!("{s:?}").contains("u:p"));
    }

    #[test]
    fn rejects_bad_and_unbuilt_keys() {
        let key = |v: Value| from_json(&v).expect_err("invalid").0;
        assert_eq!(key(json!({"url": 5})), "url");
        assert_eq!(key(json!({"prefix": "a b"})), "prefix");
        assert_eq!(key(json!({"prefix": "a..b"})), "prefix");
        assert_eq!(key(json!({"write_timeout": "soon"})), "write_timeout");
        assert_eq!(
            key(json!({"tls": {"enabled": true, "cert_pem": "x"}})),
            "tls.cert_pem"
        );
        assert_eq!(
            key(json!({"tls": {"enabled": true, "server_name": "n"}})),
            "tls.server_name"
        );
        assert_eq!(
            key(json!({"tls": {"enabled": true, "insecure_skip_verify": true}})),
            "tls.insecure_skip_verify"
        );
        assert_eq!(
            key(json!({"tls": {"enabled": true, "cert_pem_file": "/nonexistent/c.pem"}})),
            "tls.cert_pem_file"
        );
        assert_eq!(key(json!("x")), ".");
    }

    #[test]
    fn tls_pems_as_text_base64_paths_or_files() {
        let s = from_json(&json!({"tls": {"enabled": false, "cert_pem": "x"}}))
            .expect("disabled tls is not read");
        assert_eq!(s.tls, None);
        const CA: &str = "-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----\n";
        const CERT: &str = "-----BEGIN CERTIFICATE-----\nQw==\n-----END CERTIFICATE-----\n";
        const KEY: &str = "-----BEGIN PRIVATE KEY-----\nSw==\n-----END PRIVATE KEY-----\n";
        let dir = tempfile::tempdir().expect("tempdir");
        let (ca, cert, key) = (
            dir.path().join("ca.pem"),
            dir.path().join("c.pem"),
            dir.path().join("k.pem"),
        );
        std::fs::write(&ca, CA).expect("write");
        std::fs::write(&cert, CERT).expect("write");
        std::fs::write(&key, KEY).expect("write");
        let want = Some(NatsTls {
            server_ca_pem: Some(CA.as_bytes().to_vec()),
            client_cert: Some((CERT.as_bytes().to_vec(), KEY.as_bytes().to_vec())),
        });
        let s = from_json(&json!({"tls": {
            "enabled": true, "server_ca_pem_file": ca, "cert_pem_file": cert, "key_pem_file": key
        }}))
        .expect("older file keys");
        assert_eq!(s.tls, want);
        use base64::Engine as _;
        let s = from_json(&json!({"tls": {
            "enabled": true, "server_ca_pem": CA,
            "cert_pem": base64::engine::general_purpose::STANDARD.encode(CERT),
            "key_pem": key
        }}))
        .expect("text, base64 and a path");
        assert_eq!(s.tls, want);
        assert_eq!(
            from_json(&json!({"tls": {"enabled": true, "cert_pem": CERT}}))
                .expect_err("no key")
                .0,
            "tls.key_pem"
        );
    }

    #[test]
    fn subjects() {
        assert!(valid_subject("centrifugo.client.news:sport"));
        assert!(valid_subject("centrifugo.client.a.b#42,7"));
        for bad in ["", "a..b", "a.", ".a", "a b", "a.*", "a.>", "a*", "a\tb"] {
            assert!(!valid_subject(bad), "{bad:?}");
        }
    }
}
