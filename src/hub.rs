//! This node's registry of connections and subscriptions, the local
//! fan-out of what the broker delivers, and the hand-off of server-control
//! operations ([`Control`]) to the connections they target.
//!
//! Both maps are split into shards by hash so that unrelated channels and
//! users do not contend on one lock. Fan-out holds a shard's read lock while
//! it enqueues into each subscriber's queue; enqueueing never blocks, so a
//! slow client cannot stall the hub (it is disconnected with 3008 instead).
//! A publication is encoded at most once per encoding, and its delta at most
//! once per publication ([`Prepared`]).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use parking_lot::RwLock;
use tokio::sync::oneshot;

use crate::control::{Control, Target};
use crate::engine::{BrokerEventHandler, ClientInfo, Publication, StreamPosition};
use crate::proto::client::{Join, Leave, Push};
use crate::protocol::Disconnect;
use crate::session::prepared::Prepared;
use crate::session::shared::{Ack, Shared, Slot};

const SHARDS: usize = 64;

type Sessions = HashMap<Arc<str>, Arc<Shared>>;

/// A local subscriber of a channel: the session and its delivery slot.
#[derive(Debug)]
struct Subscriber {
    session: Arc<Shared>,
    slot: Arc<Slot>,
}

type Subscribers = HashMap<Arc<str>, Subscriber>;

/// Connections and subscriptions of this node.
#[derive(Debug)]
pub struct Hub {
    hasher: std::collections::hash_map::RandomState,
    channels: Vec<RwLock<HashMap<String, Subscribers>>>,
    users: Vec<RwLock<HashMap<Arc<str>, Sessions>>>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    /// An empty hub.
    pub(crate) fn new() -> Self {
        Self {
            hasher: std::collections::hash_map::RandomState::new(),
            channels: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            users: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
        }
    }

    fn shard<K: Hash + ?Sized>(&self, key: &K) -> usize {
        (self.hasher.hash_one(key) as usize) % SHARDS
    }

    /// Adds a connection under its user.
    pub(crate) fn add_connection(&self, session: &Arc<Shared>) {
        let user = session.user();
        let mut shard = self.users[self.shard(&*user)].write();
        shard
            .entry(user)
            .or_default()
            .insert(session.id.clone(), session.clone());
    }

    /// Removes a connection.
    pub(crate) fn remove_connection(&self, session: &Shared) {
        let user = session.user();
        let mut shard = self.users[self.shard(&*user)].write();
        if let Some(conns) = shard.get_mut(&*user) {
            conns.remove(&session.id);
            if conns.is_empty() {
                shard.remove(&*user);
            }
        }
    }

    /// The target's connections on this node, minus `whitelist`ed client ids.
    fn targets(&self, target: &Target, whitelist: &[String]) -> Vec<Arc<Shared>> {
        let user = target.user.as_str();
        let mut sessions: Vec<Arc<Shared>> = self.users[self.shard(user)]
            .read()
            .get(user)
            .map(|c| c.values().cloned().collect())
            .unwrap_or_default();
        sessions.retain(|s| {
            (target.client.is_empty() || *s.id == *target.client)
                && (target.session.is_empty() || *s.session() == *target.session)
                && !whitelist.iter().any(|w| **w == *s.id)
        });
        sessions
    }

    /// Hands `control` to the target's connections on this node, except the
    /// client ids in `whitelist`. Each receiver resolves once its session
    /// applied the operation, or once it never will (the session finished).
    pub(crate) fn control(
        &self,
        target: &Target,
        whitelist: &[String],
        control: &Control,
    ) -> Vec<oneshot::Receiver<()>> {
        hand(&self.targets(target, whitelist), control)
    }

    /// Closes the target's connections on this node, except the client ids
    /// in `whitelist`, with `disconnect`. Each receiver resolves once its
    /// session has cleaned up.
    pub(crate) fn disconnect(
        &self,
        target: &Target,
        whitelist: &[String],
        disconnect: &Disconnect,
    ) -> Vec<oneshot::Receiver<()>> {
        let sessions = self.targets(target, whitelist);
        for s in &sessions {
            s.disconnect(disconnect.clone());
        }
        hand(&sessions, &Control::Closed)
    }

    /// Number of connections of a user on this node.
    pub fn user_connection_count(&self, user: &str) -> usize {
        self.users[self.shard(user)]
            .read()
            .get(user)
            .map_or(0, HashMap::len)
    }

    /// Adds a subscriber; true when it is the channel's first on this node.
    /// A session that no longer holds the subscription is not added.
    pub(crate) fn add_subscriber(&self, channel: &str, session: &Arc<Shared>) -> bool {
        let Some(slot) = session.slot(channel) else {
            return false;
        };
        let sub = Subscriber {
            session: session.clone(),
            slot,
        };
        let mut shard = self.channels[self.shard(channel)].write();
        match shard.get_mut(channel) {
            Some(subs) => {
                subs.insert(session.id.clone(), sub);
                false
            }
            None => {
                let mut subs = HashMap::new();
                subs.insert(session.id.clone(), sub);
                shard.insert(channel.to_string(), subs);
                true
            }
        }
    }

    /// Removes a subscriber; true when the channel has none left here.
    pub(crate) fn remove_subscriber(&self, channel: &str, client_id: &str) -> bool {
        let mut shard = self.channels[self.shard(channel)].write();
        let Some(subs) = shard.get_mut(channel) else {
            return false;
        };
        subs.remove(client_id);
        if subs.is_empty() {
            shard.remove(channel);
            return true;
        }
        false
    }

    /// Counts: (connections, distinct users, channels, subscriptions).
    pub fn stats(&self) -> HubStats {
        let mut s = HubStats::default();
        for shard in &self.users {
            let shard = shard.read();
            s.users += shard.len();
            s.clients += shard.values().map(HashMap::len).sum::<usize>();
        }
        for shard in &self.channels {
            let shard = shard.read();
            s.channels += shard.len();
            s.subscriptions += shard.values().map(HashMap::len).sum::<usize>();
        }
        s
    }

    /// Closes every connection on this node with `disconnect` (shutdown).
    pub(crate) fn disconnect_all(&self, disconnect: &Disconnect) {
        let mut all = Vec::new();
        for shard in &self.users {
            for conns in shard.read().values() {
                all.extend(conns.values().cloned());
            }
        }
        for s in all {
            s.disconnect(disconnect.clone());
        }
    }

    /// Channels with subscribers on this node and their subscriber counts
    /// (read locks only; no session is touched).
    pub(crate) fn channel_counts(&self) -> Vec<(String, u32)> {
        let mut out = Vec::new();
        for shard in &self.channels {
            let shard = shard.read();
            out.extend(
                shard
                    .iter()
                    .map(|(ch, subs)| (ch.clone(), u32::try_from(subs.len()).unwrap_or(u32::MAX))),
            );
        }
        out
    }
}

/// Hands each session `control`; the receivers of those that took it.
fn hand(sessions: &[Arc<Shared>], control: &Control) -> Vec<oneshot::Receiver<()>> {
    let mut applied = Vec::with_capacity(sessions.len());
    for s in sessions {
        let (ack, rx) = Ack::new();
        if s.push_control(control.clone(), ack) {
            applied.push(rx);
        }
    }
    applied
}

/// Hub counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HubStats {
    /// Connections.
    pub clients: usize,
    /// Distinct users.
    pub(crate) users: usize,
    /// Channels with subscribers.
    pub(crate) channels: usize,
    /// Subscriptions.
    pub(crate) subscriptions: usize,
}

impl BrokerEventHandler for Hub {
    fn handle_publication(
        &self,
        channel: &str,
        publication: Arc<Publication>,
        position: StreamPosition,
        prev: Option<bytes::Bytes>,
    ) {
        let shard = self.channels[self.shard(channel)].read();
        let Some(subs) = shard.get(channel) else {
            return;
        };
        let prepared = Prepared::with_prev(prev);
        for sub in subs.values() {
            sub.session
                .deliver_publication(&sub.slot, channel, &publication, &position, &prepared);
        }
        let n = subs.len() as u64;
        drop(shard);
        metrics::counter!("centrifugo_node_messages_sent_count", "type" => "publication")
            .increment(n);
    }

    fn handle_join(&self, channel: &str, info: ClientInfo) {
        self.join_leave(channel, || Push {
            channel: channel.to_string(),
            join: Some(Join {
                info: Some(info.clone()),
            }),
            ..Default::default()
        });
    }

    fn handle_leave(&self, channel: &str, info: ClientInfo) {
        self.join_leave(channel, || Push {
            channel: channel.to_string(),
            leave: Some(Leave {
                info: Some(info.clone()),
            }),
            ..Default::default()
        });
    }
}

impl Hub {
    fn join_leave(&self, channel: &str, build: impl Fn() -> Push) {
        let shard = self.channels[self.shard(channel)].read();
        let Some(subs) = shard.get(channel) else {
            return;
        };
        let prepared = Prepared::default();
        for sub in subs.values() {
            sub.session.deliver_join_leave(&sub.slot, &prepared, &build);
        }
    }
}
