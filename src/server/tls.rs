//! TLS for Rotor's own listeners: a rustls server configuration from a
//! Centrifugo `tls` object (`cert_pem`, `key_pem`, optional `client_ca_pem`
//! for client certificates), with the ALPN protocols the listener speaks.
//! The handshake runs in the connection's task, inside its header-read
//! deadline, never in the accept loop.
//!
//! Which HTTP port gets which object follows Centrifugo: `http_server.tls`
//! covers every HTTP port, or only the external one with
//! `http_server.tls_external`; a separate internal port takes
//! `http_server.internal_tls` instead when that is enabled.
//!
//! [`check`] builds every enabled object once, so that `checkconfig` and
//! start-up refuse a missing or bad certificate naming its key, before
//! anything is bound.
//!
//! Each TLS listener reads its configuration from a [`TlsSlot`]; SIGHUP
//! rebuilds them all ([`ListenerTls::reload`]) and swaps them in together,
//! or keeps the running ones when any fails. Connections accepted after
//! that use the new certificates; open ones are not touched.
//!
//! With `http_server.tls_autocert` on, the HTTP ports that `http_server.tls`
//! would cover take their certificates from the ACME manager instead
//! ([`super::acme`]), as in Centrifugo, where autocert wins over `tls`.

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::{LazyConfigAcceptor, TlsAcceptor};

use super::acme;
use crate::config::Config;
use crate::config::types::Tls;

/// ALPN of the HTTP ports: HTTP/2, then HTTP/1.1 (WebSocket upgrades).
const HTTP_ALPN: &[&[u8]] = &[b"h2", b"http/1.1"];
/// ALPN of the gRPC ports.
pub(crate) const GRPC_ALPN: &[&[u8]] = &[b"h2"];

/// Reads the PEM value of `key` (see [`crate::config::pem`]).
pub(crate) fn pem(value: &str, key: &str) -> Result<Vec<u8>, String> {
    if value.is_empty() {
        return Err(format!("{key}: required when TLS is enabled"));
    }
    crate::config::pem::load(value).map_err(|e| format!("{key}: {e}"))
}

/// The server configuration for a listener whose `tls` object is `tls`
/// (`section` names it in errors); `alpn` lists the protocols offered,
/// preferred first.
fn server_config(
    tls: &Tls,
    section: &str,
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ServerConfig>, String> {
    let key_of = |what: &str| format!("{section}.{what}");
    let certs = CertificateDer::pem_slice_iter(&pem(&tls.cert_pem, &key_of("cert_pem"))?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", key_of("cert_pem")))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate found", key_of("cert_pem")));
    }
    let key = PrivateKeyDer::from_pem_slice(&pem(&tls.key_pem, &key_of("key_pem"))?)
        .map_err(|e| format!("{}: {e}", key_of("key_pem")))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("{section}: {e}"))?;
    let builder = if tls.client_ca_pem.is_empty() {
        builder.with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        let ca_key = key_of("client_ca_pem");
        for cert in CertificateDer::pem_slice_iter(&pem(&tls.client_ca_pem, &ca_key)?) {
            let cert = cert.map_err(|e| format!("{ca_key}: {e}"))?;
            roots.add(cert).map_err(|e| format!("{ca_key}: {e}"))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| format!("{ca_key}: {e}"))?;
        builder.with_client_cert_verifier(verifier)
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("{section}: certificate and key: {e}"))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// One listener's TLS configuration, replaceable while it serves, and the
/// ACME manager when its certificates come from one.
#[derive(Debug)]
pub(crate) struct TlsSlot {
    config: ArcSwap<rustls::ServerConfig>,
    acme: Option<Arc<acme::Manager>>,
}

impl TlsSlot {
    fn new(config: Arc<rustls::ServerConfig>, acme: Option<Arc<acme::Manager>>) -> Arc<Self> {
        Arc::new(Self {
            config: ArcSwap::new(config),
            acme,
        })
    }

    /// A slot serving `acme`'s certificates (for tests).
    #[cfg(test)]
    pub(crate) fn for_acme(acme: Arc<acme::Manager>) -> Arc<Self> {
        Self::new(acme.server_config(), Some(acme))
    }

    /// The server side of a TLS handshake on `tcp`. With ACME, the client's
    /// hello is read first, so that a host whose certificate is on its way
    /// waits for it (the caller's deadline bounds the whole handshake).
    pub(crate) async fn accept(&self, tcp: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        let config = self.config.load_full();
        let Some(acme) = &self.acme else {
            return TlsAcceptor::from(config).accept(tcp).await;
        };
        let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp).await?;
        let (sni, validation) = {
            let hello = start.client_hello();
            let validation = acme::is_validation(&hello);
            (hello.server_name().map(str::to_string), validation)
        };
        acme.prepare(sni.as_deref(), validation).await;
        start.into_stream(config).await
    }
}

/// The configurations of every listener, built from `cfg`: external and
/// internal HTTP port (the internal one is used only when it is a port of
/// its own), gRPC API, uni gRPC. `None` where TLS is off.
type Configs = [Option<Arc<rustls::ServerConfig>>; 4];

/// Which ports of [`Configs`] take their certificates from ACME.
fn acme_ports(cfg: &Config) -> [bool; 4] {
    let hs = &cfg.http_server;
    let external = hs.tls_autocert.enabled;
    let internal = external && !hs.internal_tls.enabled && !hs.tls_external;
    [external, internal, false, false]
}

/// `acme` is the manager of `cfg.http_server.tls_autocert` when that is on.
fn configs(cfg: &Config, acme: Option<&acme::Manager>) -> Result<Configs, String> {
    let hs = &cfg.http_server;
    let build = |on: bool, tls: &Tls, section: &str, alpn: &[&[u8]]| {
        on.then(|| server_config(tls, section, alpn)).transpose()
    };
    let external = match acme {
        Some(acme) => Some(acme.server_config()),
        None => build(hs.tls.enabled, &hs.tls, "http_server.tls", HTTP_ALPN)?,
    };
    let internal = if hs.internal_tls.enabled {
        build(
            true,
            &hs.internal_tls,
            "http_server.internal_tls",
            HTTP_ALPN,
        )?
    } else if hs.tls_external {
        None
    } else {
        external.clone()
    };
    let g = &cfg.grpc_api;
    let grpc_api = build(
        g.enabled && g.tls.enabled,
        &g.tls,
        "grpc_api.tls",
        GRPC_ALPN,
    )?;
    let u = &cfg.uni_grpc;
    let uni_grpc = build(
        u.enabled && u.tls.enabled,
        &u.tls,
        "uni_grpc.tls",
        GRPC_ALPN,
    )?;
    Ok([external, internal, grpc_api, uni_grpc])
}

/// The TLS of every listener, by port.
#[derive(Debug)]
pub(crate) struct ListenerTls {
    slots: [Option<Arc<TlsSlot>>; 4],
    acme: Option<Arc<acme::Manager>>,
}

impl ListenerTls {
    /// Builds every enabled `tls` object of `cfg` (and the ACME manager of
    /// `tls_autocert`, not started).
    pub(crate) fn new(cfg: &Config) -> Result<Self, String> {
        let autocert = &cfg.http_server.tls_autocert;
        let acme = autocert
            .enabled
            .then(|| acme::Manager::new(autocert))
            .transpose()?;
        let managed = acme_ports(cfg);
        let mut slots = configs(cfg, acme.as_deref())?.map(|c| c.map(|c| (c, None)));
        for (slot, managed) in slots.iter_mut().zip(managed) {
            if let (Some((_, m)), true) = (slot.as_mut(), managed) {
                *m = acme.clone();
            }
        }
        Ok(Self {
            slots: slots.map(|s| s.map(|(c, m)| TlsSlot::new(c, m))),
            acme,
        })
    }

    /// The ACME manager, when `tls_autocert` is on.
    pub(crate) fn acme(&self) -> Option<&Arc<acme::Manager>> {
        self.acme.as_ref()
    }

    /// The external HTTP port's.
    pub(crate) fn external(&self) -> Option<Arc<TlsSlot>> {
        self.slots[0].clone()
    }

    /// The internal HTTP port's (when it is a port of its own).
    pub(crate) fn internal(&self) -> Option<Arc<TlsSlot>> {
        self.slots[1].clone()
    }

    /// The gRPC API port's.
    pub(crate) fn grpc_api(&self) -> Option<Arc<TlsSlot>> {
        self.slots[2].clone()
    }

    /// The uni gRPC port's.
    pub(crate) fn uni_grpc(&self) -> Option<Arc<TlsSlot>> {
        self.slots[3].clone()
    }

    /// Rebuilds every configuration from `cfg` and swaps them in together;
    /// on any error nothing changes. A port whose TLS `cfg` turns on or off
    /// keeps what it has (a listener cannot change that while it runs):
    /// returned as a warning.
    ///
    /// `tls_autocert` is not reloaded: a change to it is returned as a
    /// warning too, and the running manager goes on.
    pub(crate) fn reload(&self, cfg: &Config) -> Result<Vec<String>, String> {
        const PORTS: [&str; 4] = ["external HTTP", "internal HTTP", "gRPC API", "uni gRPC"];
        let mut warnings = Vec::new();
        let mut cfg = std::borrow::Cow::Borrowed(cfg);
        let changed = match &self.acme {
            Some(acme) => acme.config() != &cfg.http_server.tls_autocert,
            None => cfg.http_server.tls_autocert.enabled,
        };
        if changed {
            warnings.push("http_server.tls_autocert changed: that takes a restart".to_string());
            cfg.to_mut().http_server.tls_autocert = match &self.acme {
                Some(acme) => acme.config().clone(),
                None => Default::default(),
            };
        }
        let fresh = configs(&cfg, self.acme.as_deref())?;
        for ((slot, config), port) in self.slots.iter().zip(fresh).zip(PORTS) {
            match (slot, config) {
                (Some(slot), Some(config)) => slot.config.store(config),
                (None, None) => {}
                (Some(_), None) | (None, Some(_)) => warnings.push(format!(
                    "TLS on the {port} port was turned on or off: that takes a restart"
                )),
            }
        }
        Ok(warnings)
    }
}

/// Builds every enabled `tls` object of the listeners, naming the key of
/// the first that cannot be used.
pub(crate) fn check(cfg: &Config) -> Result<(), String> {
    ListenerTls::new(cfg).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_key() {
        let tls = Tls {
            enabled: true,
            cert_pem: "/nonexistent/cert.pem".into(),
            key_pem: "/nonexistent/key.pem".into(),
            ..Default::default()
        };
        let e = server_config(&tls, "grpc_api.tls", GRPC_ALPN).expect_err("fails");
        assert!(e.starts_with("grpc_api.tls.cert_pem:"), "{e}");
        let tls = Tls {
            cert_pem: "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n".into(),
            ..tls
        };
        let e = server_config(&tls, "uni_grpc.tls", GRPC_ALPN).expect_err("fails");
        assert!(e.starts_with("uni_grpc.tls."), "{e}");
        let e = server_config(&Tls::default(), "http_server.tls", HTTP_ALPN).expect_err("fails");
        assert_eq!(e, "http_server.tls.cert_pem: required when TLS is enabled");
    }

    #[test]
    fn autocert_takes_the_http_ports_and_is_not_reloaded() {
        let mut cfg = Config::default();
        cfg.http_server.tls_autocert.enabled = true;
        cfg.http_server.tls_autocert.host_whitelist = vec!["a.example".into()];
        let tls = ListenerTls::new(&cfg).expect("built");
        assert!(tls.acme().is_some());
        let managed = |slot: Option<Arc<TlsSlot>>| slot.is_some_and(|s| s.acme.is_some());
        assert!(managed(tls.external()) && managed(tls.internal()));
        assert!(tls.reload(&cfg).expect("reload").is_empty());
        let mut changed = cfg.clone();
        changed.http_server.tls_autocert.email = "ops@a.example".into();
        let warnings = tls.reload(&changed).expect("reload");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("tls_autocert"), "{warnings:?}");
        // tls_external: the internal port goes without TLS.
        cfg.http_server.tls_external = true;
        let tls = ListenerTls::new(&cfg).expect("built");
        assert!(managed(tls.external()) && tls.internal().is_none());
    }

    #[test]
    fn pem_is_text_then_base64_then_a_file() {
        use base64::Engine as _;
        let text = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert_eq!(pem(text, "k").expect("text"), text.as_bytes());
        let b64 = base64::engine::general_purpose::STANDARD.encode(text);
        assert_eq!(pem(&b64, "k").expect("base64"), text.as_bytes());
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.pem");
        std::fs::write(&path, text).expect("write");
        let path = path.to_string_lossy().into_owned();
        assert_eq!(pem(&path, "k").expect("file"), text.as_bytes());
        std::fs::write(&path, "not pem").expect("write");
        assert!(
            pem(&path, "k")
                .expect_err("no PEM")
                .contains("holds no PEM")
        );
        let e = pem("/nonexistent/x.pem", "a.b").expect_err("missing");
        assert!(e.starts_with("a.b: not PEM text"), "{e}");
    }
}
