//! Transports turn bytes into commands and replies into bytes, for one
//! framing and encoding each. They hold no protocol logic: every transport
//! drives the same [`crate::session::Session`] through [`driver::drive`].

pub mod driver;
pub mod origin;
pub mod websocket;
pub mod ws;
