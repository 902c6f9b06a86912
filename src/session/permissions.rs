//! Who may do what on a channel without a token or proxy. Deny by default:
//! every `allow_*` namespace flag starts false (Centrifugo v4+).

use crate::channel::ResolvedOptions;

/// What the permission checks need to know about the client.
#[derive(Debug, Clone, Copy)]
pub(super) struct Who<'a> {
    pub(crate) user: &'a str,
    /// The client is subscribed (or being subscribed) to the channel.
    pub(crate) subscribed: bool,
    /// `client.insecure` lifts the checks.
    pub(crate) insecure: bool,
}

impl Who<'_> {
    fn anonymous(&self) -> bool {
        self.user.is_empty()
    }

    /// `allow_X_for_client` (and `_for_anonymous` for anonymous users).
    fn client_flag(&self, for_client: bool, for_anonymous: bool) -> bool {
        for_client && (!self.anonymous() || for_anonymous)
    }
}

/// Client-side subscribe without token, user limit or proxy.
pub(super) fn can_subscribe(who: Who<'_>, o: &ResolvedOptions) -> bool {
    who.client_flag(
        o.opts.allow_subscribe_for_client,
        o.opts.allow_subscribe_for_anonymous,
    ) || who.insecure
}

/// The `allow_X_for_client` / `_for_subscriber` / `_for_anonymous` rule
/// shared by publish, presence and history.
fn allowed(who: Who<'_>, for_client: bool, for_subscriber: bool, for_anonymous: bool) -> bool {
    who.insecure
        || who.client_flag(for_client, for_anonymous)
        || (for_subscriber && who.subscribed && (!who.anonymous() || for_anonymous))
}

/// Client publish.
pub(super) fn can_publish(who: Who<'_>, o: &ResolvedOptions) -> bool {
    let p = &o.opts;
    allowed(
        who,
        p.allow_publish_for_client,
        p.allow_publish_for_subscriber,
        p.allow_publish_for_anonymous,
    )
}

/// Presence and presence stats.
pub(super) fn can_presence(who: Who<'_>, o: &ResolvedOptions) -> bool {
    let p = &o.opts;
    allowed(
        who,
        p.allow_presence_for_client,
        p.allow_presence_for_subscriber,
        p.allow_presence_for_anonymous,
    )
}

/// History.
pub(super) fn can_history(who: Who<'_>, o: &ResolvedOptions) -> bool {
    let p = &o.opts;
    allowed(
        who,
        p.allow_history_for_client,
        p.allow_history_for_subscriber,
        p.allow_history_for_anonymous,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    fn opts(f: impl FnOnce(&mut config::ChannelOptions)) -> ResolvedOptions {
        let mut o = config::ChannelOptions::default();
        f(&mut o);
        ResolvedOptions {
            namespace: String::new(),
            opts: o,
            regex: None,
            history_meta_ttl: std::time::Duration::ZERO,
        }
    }

    const USER: Who<'static> = Who {
        user: "42",
        subscribed: false,
        insecure: false,
    };

    #[test]
    fn deny_by_default() {
        let o = opts(|_| {});
        assert!(!can_subscribe(USER, &o));
        assert!(!can_publish(
            Who {
                subscribed: true,
                ..USER
            },
            &o
        ));
        assert!(!can_presence(
            Who {
                subscribed: true,
                ..USER
            },
            &o
        ));
        assert!(!can_history(
            Who {
                subscribed: true,
                ..USER
            },
            &o
        ));
        assert!(can_subscribe(
            Who {
                insecure: true,
                ..USER
            },
            &o
        ));
    }

    #[test]
    fn anonymous_needs_its_own_flag() {
        let o = opts(|o| o.allow_subscribe_for_client = true);
        assert!(can_subscribe(USER, &o));
        assert!(!can_subscribe(Who { user: "", ..USER }, &o));
        let o = opts(|o| {
            o.allow_subscribe_for_client = true;
            o.allow_subscribe_for_anonymous = true;
        });
        assert!(can_subscribe(Who { user: "", ..USER }, &o));
    }

    #[test]
    fn subscriber_flags_need_the_subscription() {
        let o = opts(|o| o.allow_publish_for_subscriber = true);
        assert!(!can_publish(USER, &o));
        assert!(can_publish(
            Who {
                subscribed: true,
                ..USER
            },
            &o
        ));
    }
}
