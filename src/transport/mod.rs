//! Transports turn bytes into commands and replies into bytes, for one
//! framing and encoding each. They hold no protocol logic: every transport
//! drives the same [`crate::session::Session`] through [`driver::drive`].

pub mod driver;
pub mod emulation;
pub mod origin;
pub mod uni_grpc;
pub mod uni_stream;
pub mod uni_websocket;
pub mod websocket;
pub mod ws;
