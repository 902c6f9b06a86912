//! Configuration errors. Every message names what is wrong: the key path
//! (`client.ping_interval: …`) or, for unreadable files, the file.

/// Why a configuration could not be loaded or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file exists but cannot be read or parsed.
    #[error("error reading config file {path}: {message}")]
    File { path: String, message: String },
    /// An environment variable's text does not fit the key's type.
    #[error("{key}: {message} (from env {var})")]
    Env {
        key: String,
        var: String,
        message: String,
    },
    /// A command-line flag is unknown or its text does not fit the type.
    #[error("{key}: {message} (from command-line flag)")]
    Flag { key: String, message: String },
    /// The merged value has the wrong type for the key.
    #[error("{key}: {message}")]
    Type { key: String, message: String },
    /// Keys are set that Rotor refuses (see [`super::keys`]); `key` is the
    /// first, the message names them all.
    #[error("{message}")]
    Refused { key: String, message: String },
    /// The config is well-typed but violates a rule.
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

impl ConfigError {
    /// A validation error for `key`.
    pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }

    /// The key path (or file path for [`ConfigError::File`]).
    pub fn key(&self) -> &str {
        match self {
            Self::File { path, .. } => path,
            Self::Env { key, .. }
            | Self::Flag { key, .. }
            | Self::Type { key, .. }
            | Self::Refused { key, .. }
            | Self::Invalid { key, .. } => key,
        }
    }

    /// True when the config was read fine but failed validation.
    pub(crate) fn is_validation(&self) -> bool {
        matches!(self, Self::Invalid { .. } | Self::Refused { .. })
    }
}
