//! The client protocol: codes and the frame codec.

pub mod codes;

pub use codes::{ClientError, Disconnect, Unsubscribe};
pub mod codec;

pub use codec::Encoding;
