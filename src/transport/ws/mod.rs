//! Our own server-side WebSocket: RFC 6455 framing and RFC 7692
//! permessage-deflate, over a socket hyper upgraded. Lean by design: no
//! per-connection zlib state, a 1 KiB read buffer, one write per frame.

pub(crate) mod conn;
pub(crate) mod deflate;
pub(crate) mod frame;
pub(crate) mod handshake;

pub(crate) use conn::{Deflate, Options, Read, WsConn};
