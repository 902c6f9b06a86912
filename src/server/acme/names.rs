//! Host names and addresses as Go's autocert takes them.

/// The form certificates are requested, cached and looked up under: what
/// Go's autocert does to a client's SNI (IDNA to ASCII, lower case, no
/// trailing dot). A name needs a dot (`localhost` has none) and cannot be
/// an IP address or a wildcard (neither HTTP-01 nor TLS-ALPN-01 proves
/// those).
pub(crate) fn host_name(raw: &str) -> Result<String, String> {
    if raw.trim_matches('.').is_empty() {
        return Err("an empty host name".into());
    }
    if !raw.trim_matches('.').contains('.') {
        return Err(format!(
            "{raw:?} has no dot: an ACME CA issues certificates for domain names only"
        ));
    }
    let ascii = idna::domain_to_ascii(raw.trim_end_matches('.'))
        .map_err(|_| format!("{raw:?} is not a valid domain name"))?;
    if ascii.is_empty() || ascii.contains(['+', '/', '\\', ':', ' ']) {
        return Err(format!("{raw:?} is not a valid domain name"));
    }
    if ascii.contains('*') {
        return Err(format!(
            "{raw:?} is a wildcard: that takes the DNS-01 challenge, which tls_autocert does not use"
        ));
    }
    if ascii.parse::<std::net::IpAddr>().is_ok() {
        return Err(format!(
            "{raw:?} is an IP address: tls_autocert gets certificates for domain names"
        ));
    }
    Ok(ascii)
}

/// The host and port of an address in Go's form (`":80"`, `"0.0.0.0:80"`,
/// `"[::1]:80"`); an empty host means every interface.
pub(crate) fn split_addr(addr: &str) -> Result<(String, u16), String> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("{addr:?} is not host:port (\":80\" for every interface)"))?;
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("{addr:?}: {port:?} is not a port number"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_follow_go_autocert() {
        assert_eq!(host_name("Example.COM.").expect("ok"), "example.com");
        assert_eq!(
            host_name("bücher.example").expect("ok"),
            "xn--bcher-kva.example"
        );
        for bad in [
            "",
            ".",
            "localhost",
            "*.example.com",
            "127.0.0.1",
            "a/b.com",
            "a b.com",
        ] {
            assert!(host_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn addresses_in_go_form() {
        assert_eq!(split_addr(":80").expect("ok"), (String::new(), 80));
        assert_eq!(split_addr("[::1]:8080").expect("ok"), ("::1".into(), 8080));
        assert!(split_addr("80").is_err());
        assert!(split_addr(":http").is_err());
    }
}
