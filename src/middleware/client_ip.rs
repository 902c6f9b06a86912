//! The client's IP address: the TCP peer (axum `ConnectInfo<SocketAddr>` or
//! tonic's `TcpConnectInfo`), or — only when that peer is a configured
//! trusted proxy — the address it reports in `X-Forwarded-For` (the
//! right-most entry that is not itself a trusted proxy) or `X-Real-IP`.
//! [`ClientIpLayer`] stores the result as [`ClientIp`] in the request
//! extensions for the layers below it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request};
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tower::{Layer, Service};

use crate::config::parse_cidr;

/// The resolved client address (request extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Trusted proxy addresses and networks.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustedProxies {
    nets: Vec<(IpAddr, u8)>,
}

fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

impl TrustedProxies {
    /// From `middleware.client_ip.trusted_proxies` (entries that do not
    /// parse are skipped; config validation reports them).
    pub(crate) fn new(list: &[String]) -> Self {
        Self {
            nets: list
                .iter()
                .filter_map(|s| parse_cidr(s).ok())
                .map(|(ip, bits)| (canonical(ip), bits))
                .collect(),
        }
    }

    /// True when nothing is trusted.
    pub(crate) fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// True when `ip` lies in one of the trusted networks.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|&(net, bits)| match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        })
    }
}

/// The TCP peer address recorded by axum or tonic, if any.
pub(crate) fn peer_addr<B>(req: &Request<B>) -> Option<IpAddr> {
    let ext = req.extensions();
    let addr: Option<SocketAddr> = ext
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .or_else(|| ext.get::<TcpConnectInfo>().and_then(|c| c.remote_addr()))
        .or_else(|| {
            ext.get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|c| c.get_ref().remote_addr())
        });
    addr.map(|a| canonical(a.ip()))
}

fn forwarded(headers: &HeaderMap, trusted: &TrustedProxies) -> Option<IpAddr> {
    let mut hops: Vec<IpAddr> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(text) = value.to_str() else {
            return None;
        };
        for part in text.split(',') {
            hops.push(canonical(part.trim().parse().ok()?));
        }
    }
    if let Some(&first) = hops.first() {
        return Some(
            hops.iter()
                .rev()
                .copied()
                .find(|ip| !trusted.contains(*ip))
                .unwrap_or(first),
        );
    }
    headers
        .get("x-real-ip")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse().ok())
        .map(canonical)
}

/// The client address of `req` under `trusted` (see the module docs).
/// `None` when the transport recorded no peer address.
pub(crate) fn resolve<B>(req: &Request<B>, trusted: &TrustedProxies) -> Option<IpAddr> {
    let peer = peer_addr(req)?;
    if trusted.is_empty() || !trusted.contains(peer) {
        return Some(peer);
    }
    Some(forwarded(req.headers(), trusted).unwrap_or(peer))
}

/// Adds [`ClientIp`] to each request.
#[derive(Debug, Clone)]
pub(crate) struct ClientIpLayer {
    trusted: Arc<TrustedProxies>,
}

impl ClientIpLayer {
    /// Trusting forwarding headers from `trusted` peers only.
    pub(crate) fn new(trusted: TrustedProxies) -> Self {
        Self {
            trusted: Arc::new(trusted),
        }
    }
}

impl<S> Layer<S> for ClientIpLayer {
    type Service = ClientIpService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientIpService {
            inner,
            trusted: self.trusted.clone(),
        }
    }
}

/// The service of [`ClientIpLayer`].
#[derive(Debug, Clone)]
pub struct ClientIpService<S> {
    inner: S,
    trusted: Arc<TrustedProxies>,
}

impl<S, B> Service<Request<B>> for ClientIpService<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        if let Some(ip) = resolve(&req, &self.trusted) {
            req.extensions_mut().insert(ClientIp(ip));
        }
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(peer: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder();
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let mut r = b.body(()).expect("request");
        let addr: SocketAddr = format!("{peer}:5000").parse().expect("addr");
        r.extensions_mut().insert(ConnectInfo(addr));
        r
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn untrusted_peer_headers_are_ignored() {
        let t = TrustedProxies::new(&["10.0.0.0/8".into()]);
        let r = req("192.0.2.1", &[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(resolve(&r, &t), Some(ip("192.0.2.1")));
        let none = TrustedProxies::default();
        let r = req("10.1.1.1", &[("x-real-ip", "203.0.113.9")]);
        assert_eq!(resolve(&r, &none), Some(ip("10.1.1.1")));
    }

    #[test]
    fn trusted_peer_forwarded_for_rightmost_untrusted() {
        let t = TrustedProxies::new(&["10.0.0.0/8".into(), "127.0.0.1".into()]);
        let r = req(
            "127.0.0.1",
            &[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.2.3.4")],
        );
        assert_eq!(resolve(&r, &t), Some(ip("203.0.113.9")));
        let r = req("10.9.9.9", &[("x-real-ip", "198.51.100.7")]);
        assert_eq!(resolve(&r, &t), Some(ip("198.51.100.7")));
        let r = req("10.9.9.9", &[("x-forwarded-for", "garbage")]);
        assert_eq!(resolve(&r, &t), Some(ip("10.9.9.9")));
    }

    #[test]
    fn cidr_matching_and_mapped_addresses() {
        let t = TrustedProxies::new(&["192.168.0.0/16".into(), "::1".into(), "0.0.0.0/0".into()]);
        assert!(t.contains(ip("192.168.44.1")));
        assert!(t.contains(ip("::1")));
        assert!(t.contains(ip("8.8.8.8")));
        let t = TrustedProxies::new(&["192.168.0.0/16".into()]);
        assert!(t.contains(ip("::ffff:192.168.1.1")));
        assert!(!t.contains(ip("192.169.0.1")));
    }

    #[test]
    fn no_peer_no_ip() {
        let r = Request::new(());
        assert_eq!(resolve(&r, &TrustedProxies::default()), None);
    }
}
