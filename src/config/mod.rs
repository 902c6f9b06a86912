//! Configuration: Centrifugo v6's layout, read from a file (JSON, YAML or
//! TOML), `CENTRIFUGO_*` environment variables and command-line flags, in that
//! order of increasing precedence; defaults live in [`types`].

mod channel_rules;
mod duration;
pub(crate) mod env;
mod error;
pub(crate) mod formats;
pub mod keys;
mod load;
pub(crate) mod pem;
mod schema;
pub(crate) mod types;
mod validate;

pub use duration::Duration;
pub use error::ConfigError;
pub use load::{
    Loaded, default_value, known_env_vars, load, load_from, load_with_env, read, read_from,
};
pub use types::*;
pub use validate::{validate, warnings};

#[cfg(test)]
mod tests_load;
#[cfg(test)]
mod tests_validate;
