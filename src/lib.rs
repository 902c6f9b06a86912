//! Rotor: a real-time messaging server, wire-compatible with Centrifugo v6.

pub mod channel;
pub mod cli;
pub mod config;
pub mod engine;
pub mod proto;
pub mod protocol;
pub mod server;
pub mod session;
