//! Configuration: Centrifugo v6's layout, read from a file (JSON, YAML or
//! TOML), `CENTRIFUGO_*` environment variables and command-line flags, in that
//! order of increasing precedence; defaults live in [`types`].

mod duration;
pub mod types;

pub use duration::Duration;
pub use types::*;
