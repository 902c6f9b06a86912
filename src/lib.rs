//! Rotor: a real-time messaging server, wire-compatible with Centrifugo v6.
//!
//! The map: [`node`] orchestrates; [`hub`] fans out locally; [`session`] is
//! the client state machine, fed by a [`transport`]; [`engine`] holds
//! PUB/SUB, history and presence; [`auth`] verifies tokens; [`config`] is
//! Centrifugo's v6 configuration; [`control`] is the server-control
//! vocabulary the API, node, cluster and session share; [`server`]
//! assembles listeners and routes.

pub mod api;
pub(crate) mod auth;
pub(crate) mod channel;
pub mod cli;
pub mod config;
pub mod control;
pub mod engine;
pub(crate) mod hub;
pub(crate) mod metrics;
pub mod middleware;
pub mod node;
pub mod proto;
pub(crate) mod protocol;
pub mod proxy;
pub mod server;
pub(crate) mod session;
pub(crate) mod settings;
pub(crate) mod transport;
