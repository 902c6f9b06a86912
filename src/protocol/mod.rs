//! The client protocol: codes and the frame codec.

pub(crate) mod codes;

pub(crate) use codes::{ClientError, Disconnect, Unsubscribe};
pub(crate) mod codec;
pub(crate) mod delta;
pub(crate) mod filter;

pub(crate) use codec::Encoding;
