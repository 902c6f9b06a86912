//! Transports turn bytes into commands and replies into bytes, for one
//! framing and encoding each. They hold no protocol logic: every transport
//! drives the same [`crate::session::Session`] through [`driver::drive`].

pub(crate) mod driver;
pub(crate) mod emulation;
pub(crate) mod origin;
pub(crate) mod uni_grpc;
pub(crate) mod uni_stream;
pub(crate) mod uni_websocket;
pub(crate) mod websocket;
pub(crate) mod ws;

use std::sync::Arc;

use crate::node::Node;
use crate::proxy::CallContext;

/// What proxies may forward of a connection's HTTP request: its headers and
/// the TCP peer address. Kept only when some proxy forwards headers;
/// otherwise every connection shares one empty context, so idle
/// connections stay small.
pub(crate) fn call_context(node: &Node, req: &axum::extract::Request) -> Arc<CallContext> {
    static EMPTY: std::sync::OnceLock<Arc<CallContext>> = std::sync::OnceLock::new();
    if !node.proxies().forwards_headers() {
        return EMPTY.get_or_init(Arc::default).clone();
    }
    let remote_addr = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0);
    Arc::new(CallContext {
        headers: req.headers().clone(),
        remote_addr,
        ..Default::default()
    })
}
