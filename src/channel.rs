//! Channel names and the options that apply to them.
//!
//! A channel `ns:name` belongs to namespace `ns` (which must be configured);
//! a name without the namespace boundary uses `without_namespace`. A leading
//! private prefix (`$`) marks channels that need a subscription token, and a
//! user boundary (`#`) followed by comma-separated user ids limits a channel
//! to those users. [`ChannelRules`] is built once from config and swapped as
//! a whole on reload.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;

use crate::config::{self, DataFormat};
use crate::protocol::ClientError;

/// Options of one namespace, with derived values computed once.
#[derive(Debug)]
pub struct ResolvedOptions {
    /// Namespace name; empty for `without_namespace`.
    pub(crate) namespace: String,
    /// The configured options.
    pub(crate) opts: config::ChannelOptions,
    /// Compiled `channel_regex`.
    pub(crate) regex: Option<Regex>,
    /// Effective stream meta TTL.
    pub(crate) history_meta_ttl: Duration,
}

impl ResolvedOptions {
    /// True when the namespace keeps a history stream.
    pub(crate) fn has_history(&self) -> bool {
        self.opts.history_size > 0 && !self.opts.history_ttl.is_zero()
    }

    /// True in cache recovery mode.
    pub(crate) fn cache_mode(&self) -> bool {
        self.opts.force_recovery_mode == crate::config::RecoveryMode::Cache
    }
}

/// Channel naming rules and per-namespace options.
#[derive(Debug)]
pub struct ChannelRules {
    max_length: usize,
    private_prefix: String,
    namespace_boundary: String,
    user_boundary: String,
    user_separator: String,
    without_namespace: Arc<ResolvedOptions>,
    namespaces: HashMap<String, Arc<ResolvedOptions>>,
}

impl ChannelRules {
    /// Compiles the rules. Fails on an invalid `channel_regex`, naming it.
    pub(crate) fn new(cfg: &config::Channel) -> Result<Self, String> {
        let resolve = |namespace: &str,
                       opts: &config::ChannelOptions|
         -> Result<Arc<ResolvedOptions>, String> {
            let regex = if opts.channel_regex.is_empty() {
                None
            } else {
                Some(Regex::new(&opts.channel_regex).map_err(|e| {
                    format!("invalid channel_regex in namespace {namespace:?}: {e}")
                })?)
            };
            let meta = if opts.history_meta_ttl.is_zero() {
                cfg.history_meta_ttl
            } else {
                opts.history_meta_ttl
            };
            let mut opts = opts.clone();
            // The global data format is the default of every namespace.
            if opts.publication_data_format == DataFormat::Unset {
                opts.publication_data_format = cfg.publication_data_format;
            }
            Ok(Arc::new(ResolvedOptions {
                namespace: namespace.to_string(),
                opts,
                regex,
                history_meta_ttl: meta.get(),
            }))
        };
        let mut namespaces = HashMap::new();
        for ns in &cfg.namespaces {
            namespaces.insert(ns.name.clone(), resolve(&ns.name, &ns.options)?);
        }
        Ok(Self {
            max_length: cfg.max_length,
            private_prefix: cfg.private_prefix.clone(),
            namespace_boundary: cfg.namespace_boundary.clone(),
            user_boundary: cfg.user_boundary.clone(),
            user_separator: cfg.user_separator.clone(),
            without_namespace: resolve("", &cfg.without_namespace)?,
            namespaces,
        })
    }

    /// Namespace name of a channel ("" when it has none).
    pub(crate) fn namespace_of<'a>(&self, channel: &'a str) -> &'a str {
        let bare = self.strip_private(channel);
        match bare.find(self.namespace_boundary.as_str()) {
            Some(i) if !self.namespace_boundary.is_empty() => &bare[..i],
            _ => "",
        }
    }

    /// Options for a channel; unknown namespace → 102.
    pub fn options(&self, channel: &str) -> Result<Arc<ResolvedOptions>, ClientError> {
        let ns = self.namespace_of(channel);
        if ns.is_empty() {
            return Ok(self.without_namespace.clone());
        }
        self.namespaces
            .get(ns)
            .cloned()
            .ok_or(ClientError::UnknownChannel)
    }

    /// Checks a client-chosen channel name: length, ASCII and the
    /// namespace's `channel_regex` (→ 107).
    pub(crate) fn validate_client_channel(
        &self,
        channel: &str,
        opts: &ResolvedOptions,
    ) -> Result<(), ClientError> {
        if channel.len() > self.max_length || !channel.is_ascii() {
            return Err(ClientError::BadRequest);
        }
        if let Some(re) = &opts.regex {
            let bare = self.strip_private(channel);
            let name = if opts.namespace.is_empty() {
                bare
            } else {
                &bare[opts.namespace.len() + self.namespace_boundary.len()..]
            };
            if !re.is_match(name) {
                return Err(ClientError::BadRequest);
            }
        }
        Ok(())
    }

    /// True for channels that start with the private prefix.
    pub(crate) fn is_private(&self, channel: &str) -> bool {
        !self.private_prefix.is_empty() && channel.starts_with(self.private_prefix.as_str())
    }

    /// True when the channel names the users allowed in it.
    pub(crate) fn is_user_limited(&self, channel: &str) -> bool {
        !self.user_boundary.is_empty() && channel.contains(self.user_boundary.as_str())
    }

    /// True when `user` is listed after the last user boundary.
    pub(crate) fn user_allowed(&self, channel: &str, user: &str) -> bool {
        if user.is_empty() || self.user_boundary.is_empty() {
            return false;
        }
        match channel.rfind(self.user_boundary.as_str()) {
            Some(i) => channel[i + self.user_boundary.len()..]
                .split(self.user_separator.as_str())
                .any(|u| u == user),
            None => false,
        }
    }

    /// The personal channel of a user: `#<user>` or `<ns>:#<user>`.
    pub(crate) fn personal_channel(&self, namespace: &str, user: &str) -> String {
        if namespace.is_empty() {
            format!("{}{user}", self.user_boundary)
        } else {
            format!(
                "{namespace}{}{}{user}",
                self.namespace_boundary, self.user_boundary
            )
        }
    }

    fn strip_private<'a>(&self, channel: &'a str) -> &'a str {
        if self.private_prefix.is_empty() {
            channel
        } else {
            channel
                .strip_prefix(self.private_prefix.as_str())
                .unwrap_or(channel)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> ChannelRules {
        let mut cfg = config::Channel::default();
        cfg.namespaces.push(config::Namespace {
            name: "chat".into(),
            options: config::ChannelOptions {
                channel_regex: "^[a-z]+$".into(),
                ..Default::default()
            },
        });
        ChannelRules::new(&cfg).expect("valid")
    }

    #[test]
    fn resolves_namespaces() {
        let r = rules();
        assert_eq!(r.namespace_of("chat:room"), "chat");
        assert_eq!(r.namespace_of("$chat:room"), "chat");
        assert_eq!(r.namespace_of("news"), "");
        assert!(r.options("chat:room").is_ok());
        assert_eq!(
            r.options("nope:room").err(),
            Some(ClientError::UnknownChannel)
        );
        assert_eq!(
            r.options("plain").map(|o| o.namespace.clone()),
            Ok(String::new())
        );
    }

    #[test]
    fn validates_client_channels() {
        let r = rules();
        let chat = r.options("chat:room").expect("ns");
        assert!(r.validate_client_channel("chat:room", &chat).is_ok());
        assert_eq!(
            r.validate_client_channel("chat:Room1", &chat),
            Err(ClientError::BadRequest)
        );
        let plain = r.options("x").expect("ns");
        assert_eq!(
            r.validate_client_channel(&"a".repeat(256), &plain),
            Err(ClientError::BadRequest)
        );
        assert_eq!(
            r.validate_client_channel("канал", &plain),
            Err(ClientError::BadRequest)
        );
    }

    #[test]
    fn user_limited_and_private() {
        let r = rules();
        assert!(r.is_user_limited("dialog#42,43"));
        assert!(r.user_allowed("dialog#42,43", "43"));
        assert!(!r.user_allowed("dialog#42,43", "4"));
        assert!(!r.user_allowed("dialog#42,43", ""));
        assert!(r.is_private("$secret"));
        assert_eq!(r.personal_channel("", "7"), "#7");
        assert_eq!(r.personal_channel("personal", "7"), "personal:#7");
    }
}
