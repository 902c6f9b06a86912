//! Presence conformance bodies and their runner.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;

use super::*;
use crate::engine::{PresenceManager, PresenceStats};

// ---------------------------------------------------------------------------
// Presence bodies
// ---------------------------------------------------------------------------

/// Added entries are listed; removed ones disappear; removing the last one
/// (or an unknown one) leaves an empty channel.
pub async fn presence_add_get_remove(presence: Arc<dyn PresenceManager>) {
    let channel = unique_channel("presence");
    assert!(
        presence
            .presence(&channel)
            .await
            .expect("presence")
            .is_empty()
    );
    let a = client_info("u1", "c1");
    let b = client_info("u2", "c2");
    presence
        .add_presence(&channel, "c1", &a)
        .await
        .expect("add");
    presence
        .add_presence(&channel, "c2", &b)
        .await
        .expect("add");
    let all = presence.presence(&channel).await.expect("presence");
    assert_eq!(all.len(), 2);
    assert_eq!(all.get("c1"), Some(&a));
    assert_eq!(all.get("c2"), Some(&b));
    presence
        .remove_presence(&channel, "c1", "u1")
        .await
        .expect("remove");
    let left = presence.presence(&channel).await.expect("presence");
    assert_eq!(left.len(), 1);
    assert_eq!(left.get("c2"), Some(&b));
    presence
        .remove_presence(&channel, "missing", "nobody")
        .await
        .expect("remove unknown");
    presence
        .remove_presence(&channel, "c2", "u2")
        .await
        .expect("remove");
    assert!(
        presence
            .presence(&channel)
            .await
            .expect("presence")
            .is_empty()
    );
    assert_eq!(
        presence.presence_stats(&channel).await.expect("stats"),
        PresenceStats::default()
    );
}

/// Stats count connections and distinct users.
pub async fn presence_stats_distinct_users(presence: Arc<dyn PresenceManager>) {
    let channel = unique_channel("presence-stats");
    assert_eq!(
        presence.presence_stats(&channel).await.expect("stats"),
        PresenceStats::default()
    );
    presence
        .add_presence(&channel, "c1", &client_info("u1", "c1"))
        .await
        .expect("add");
    presence
        .add_presence(&channel, "c2", &client_info("u1", "c2"))
        .await
        .expect("add");
    presence
        .add_presence(&channel, "c3", &client_info("u2", "c3"))
        .await
        .expect("add");
    // Anonymous connections share the empty user id.
    presence
        .add_presence(&channel, "c4", &client_info("", "c4"))
        .await
        .expect("add");
    let stats = presence.presence_stats(&channel).await.expect("stats");
    assert_eq!(
        stats,
        PresenceStats {
            num_clients: 4,
            num_users: 3
        }
    );
    presence
        .remove_presence(&channel, "c1", "u1")
        .await
        .expect("remove");
    let stats = presence.presence_stats(&channel).await.expect("stats");
    assert_eq!(
        stats,
        PresenceStats {
            num_clients: 3,
            num_users: 3
        }
    );
    presence
        .remove_presence(&channel, "c2", "u1")
        .await
        .expect("remove");
    let stats = presence.presence_stats(&channel).await.expect("stats");
    assert_eq!(
        stats,
        PresenceStats {
            num_clients: 2,
            num_users: 2
        }
    );
}

/// Adding an existing client id replaces its info without a second entry.
pub async fn presence_refresh_replaces_info(presence: Arc<dyn PresenceManager>) {
    let channel = unique_channel("presence-refresh");
    presence
        .add_presence(&channel, "c1", &client_info("u1", "c1"))
        .await
        .expect("add");
    let mut updated = client_info("u1", "c1");
    updated.chan_info = Bytes::from_static(b"{\"new\":true}");
    presence
        .add_presence(&channel, "c1", &updated)
        .await
        .expect("refresh");
    let all = presence.presence(&channel).await.expect("presence");
    assert_eq!(all.len(), 1);
    assert_eq!(all.get("c1"), Some(&updated));
    let stats = presence.presence_stats(&channel).await.expect("stats");
    assert_eq!(
        stats,
        PresenceStats {
            num_clients: 1,
            num_users: 1
        }
    );
}

/// Channels do not see each other's entries.
pub async fn presence_channels_isolated(presence: Arc<dyn PresenceManager>) {
    let one = unique_channel("presence-one");
    let two = unique_channel("presence-two");
    presence
        .add_presence(&one, "c1", &client_info("u1", "c1"))
        .await
        .expect("add");
    presence
        .add_presence(&two, "c2", &client_info("u2", "c2"))
        .await
        .expect("add");
    let in_one = presence.presence(&one).await.expect("presence");
    assert_eq!(in_one.keys().collect::<Vec<_>>(), vec!["c1"]);
    presence
        .remove_presence(&two, "c1", "u1")
        .await
        .expect("remove from wrong channel");
    assert_eq!(presence.presence(&one).await.expect("presence").len(), 1);
    assert_eq!(presence.presence(&two).await.expect("presence").len(), 1);
}

/// Runs every presence body, each on a fresh manager from `make`.
pub async fn run_presence_suite<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn PresenceManager>>,
{
    presence_add_get_remove(make().await).await;
    presence_stats_distinct_users(make().await).await;
    presence_refresh_replaces_info(make().await).await;
    presence_channels_isolated(make().await).await;
}
