//! The resolve step: from a loaded [`Config`] to what a node is built from.
//!
//! `rotor checkconfig` and start-up ([`crate::node::Node::new`]) both run
//! [`Settings::resolve`], so what is checked is exactly what is built: the
//! engine choice with its Redis or NATS settings, the channel rules, the
//! token verifiers and the proxy clients. (The loader has already typed the
//! configuration and run [`crate::config::validate`]; listener TLS is
//! resolved by [`crate::server::tls`].)

use crate::auth::Verifiers;
use crate::channel::ChannelRules;
use crate::config::Config;
use crate::engine::Backends;
use crate::proxy::Proxies;

/// Everything a node is built from besides the configuration itself.
pub(crate) struct Settings {
    /// Which broker and presence manager, with their connection settings.
    pub(crate) backends: Backends,
    /// Channel naming rules and per-namespace options.
    pub(crate) rules: ChannelRules,
    /// Connection and subscription token verifiers.
    pub(crate) verifiers: Verifiers,
    /// The proxy clients.
    pub(crate) proxies: Proxies,
}

impl Settings {
    /// Resolves `config`; the error names the key at fault.
    pub(crate) fn resolve(config: &Config) -> Result<Self, String> {
        Ok(Self {
            backends: Backends::from_config(config).map_err(|e| e.to_string())?,
            rules: ChannelRules::new(&config.channel)?,
            verifiers: Verifiers::new(config)?,
            proxies: Proxies::from_config(config)?,
        })
    }
}
