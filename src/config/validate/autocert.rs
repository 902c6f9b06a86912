//! Validation of `http_server.tls_autocert` (ACME certificates), with the
//! host-name rules of `server::acme`.
//!
//! Centrifugo checks nothing here at start-up: a name Go's autocert cannot
//! get a certificate for fails every handshake later. Rotor refuses such a
//! name when the configuration loads instead, naming the key.

use super::{Check, invalid};
use crate::config::types::Config;
use crate::server::acme::names::{host_name, split_addr};

pub(super) fn check_autocert(cfg: &Config) -> Check {
    let a = &cfg.http_server.tls_autocert;
    if !a.enabled {
        return Ok(());
    }
    let key = |k: &str| format!("http_server.tls_autocert.{k}");
    for (i, host) in a.host_whitelist.iter().enumerate() {
        host_name(host).map_err(|e| invalid(format!("{}[{i}]", key("host_whitelist")), e))?;
    }
    if !a.server_name.is_empty() {
        let name = host_name(&a.server_name).map_err(|e| invalid(key("server_name"), e))?;
        let listed = a
            .host_whitelist
            .iter()
            .any(|h| host_name(h).is_ok_and(|h| h == name));
        if !a.host_whitelist.is_empty() && !listed {
            return Err(invalid(
                key("server_name"),
                format!(
                    "{:?} is not in http_server.tls_autocert.host_whitelist, so clients that send no server name would get no certificate",
                    a.server_name
                ),
            ));
        }
    }
    if a.http {
        split_addr(&a.http_addr).map_err(|e| invalid(key("http_addr"), e))?;
    }
    let url = &a.acme_directory_url;
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(invalid(
            key("acme_directory_url"),
            format!("{url:?} is not an http(s) URL"),
        ));
    }
    Ok(())
}

/// Warn-level findings of an enabled `tls_autocert`.
pub(super) fn autocert_warnings(cfg: &Config, out: &mut Vec<String>) {
    let h = &cfg.http_server;
    let a = &h.tls_autocert;
    if !a.enabled {
        return;
    }
    if a.host_whitelist.is_empty() {
        out.push(
            "http_server.tls_autocert.host_whitelist is empty: a certificate is requested for any name a client sends – set the names this server answers to"
                .into(),
        );
    }
    if a.cache_dir.is_empty() {
        out.push(
            "http_server.tls_autocert.cache_dir is empty: certificates are kept in memory only and requested again at every start (mind the CA's rate limits)"
                .into(),
        );
    }
    if h.tls.enabled {
        out.push(
            "http_server.tls is enabled together with http_server.tls_autocert: the ACME certificates are used, the tls certificate is not"
                .into(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_name_the_key() {
        let mut cfg = Config::default();
        cfg.http_server.tls_autocert.enabled = true;
        cfg.http_server.tls_autocert.host_whitelist = vec!["a.example".into(), "localhost".into()];
        let e = check_autocert(&cfg).expect_err("localhost");
        assert!(
            e.to_string()
                .contains("http_server.tls_autocert.host_whitelist[1]"),
            "{e}"
        );
        cfg.http_server.tls_autocert.host_whitelist = vec!["a.example".into()];
        cfg.http_server.tls_autocert.server_name = "b.example".into();
        let e = check_autocert(&cfg).expect_err("not listed");
        assert!(e.to_string().contains("server_name"), "{e}");
        cfg.http_server.tls_autocert.server_name = "A.example".into();
        check_autocert(&cfg).expect("listed");
        cfg.http_server.tls_autocert.http = true;
        cfg.http_server.tls_autocert.http_addr = "80".into();
        let e = check_autocert(&cfg).expect_err("addr");
        assert!(e.to_string().contains("http_addr"), "{e}");
        let mut w = Vec::new();
        cfg.http_server.tls_autocert.host_whitelist.clear();
        cfg.http_server.tls_autocert.server_name.clear();
        autocert_warnings(&cfg, &mut w);
        assert_eq!(w.len(), 2, "{w:?}");
    }
}
