//! Session.
pub mod queue;
