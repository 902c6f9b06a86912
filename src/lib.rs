//! Rotor: a real-time messaging server, wire-compatible with Centrifugo v6.

pub mod auth;
pub mod channel;
pub mod config;
pub mod engine;
pub mod proto;
pub mod protocol;
pub mod session;
