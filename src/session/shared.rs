//! The part of a session that other tasks touch: its outbound queue and the
//! per-channel delivery state the hub consults on every publication.
//!
//! Lock order: hub shard → `Shared::state` → `Queue`. Nothing here awaits
//! while holding a lock. Work that needs the engine (removing a subscription
//! after a gap, for example) is recorded in `pending` and the session task is
//! woken through `signal` to do it.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::engine::{Publication, StreamPosition};
use crate::proto::client::{Push, Reply};
use crate::protocol::codec::{EncodeError, encode_push, encode_reply};
use crate::protocol::{Disconnect, Encoding, Unsubscribe};

use super::queue::Queue;

/// A publication encoded once per encoding, shared by all subscribers.
#[derive(Debug, Default)]
pub struct Prepared {
    json: std::sync::OnceLock<Result<Bytes, EncodeError>>,
    protobuf: std::sync::OnceLock<Bytes>,
}

impl Prepared {
    /// The encoded push for `encoding`, built on first use.
    pub fn get(&self, encoding: Encoding, build: impl Fn() -> Push) -> Result<Bytes, EncodeError> {
        match encoding {
            Encoding::Json => self
                .json
                .get_or_init(|| encode_push(Encoding::Json, build()))
                .clone(),
            Encoding::Protobuf => Ok(self
                .protobuf
                .get_or_init(|| encode_push(Encoding::Protobuf, build()).unwrap_or_default())
                .clone()),
        }
    }
}

/// Delivery state of one subscription.
#[derive(Debug, Default)]
pub struct Delivery {
    /// False while the subscribe is in progress: live publications are held
    /// in `buffer` (positioned subscriptions) or dropped.
    pub active: bool,
    /// Publications that arrived during the subscribe, for merging.
    pub buffer: Option<Vec<(Arc<Publication>, StreamPosition)>>,
    /// Track offsets and detect gaps.
    pub positioned: bool,
    /// Last delivered offset.
    pub offset: u64,
    /// Stream epoch the client holds.
    pub epoch: String,
    /// Push join/leave events to this client.
    pub push_join_leave: bool,
    /// Created by the server (token, personal channel): gaps disconnect.
    pub server_side: bool,
}

/// Something the session task must do that cannot be done under a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// The subscription was dropped after an Unsubscribe push; finish the
    /// cleanup (hub, engine, presence).
    Unsubscribed(String),
}

#[derive(Debug, Default)]
struct State {
    channels: HashMap<String, Delivery>,
    pending: Vec<Pending>,
}

/// Shared half of a session.
#[derive(Debug)]
pub struct Shared {
    /// Client id (UUID).
    pub id: Arc<str>,
    /// Wire encoding.
    pub encoding: Encoding,
    /// Outbound queue.
    pub queue: Queue,
    /// Wakes the session task to handle `pending`.
    pub signal: Notify,
    state: Mutex<State>,
    user: parking_lot::RwLock<Arc<str>>,
}

impl Shared {
    /// A new session's shared half.
    pub fn new(id: String, encoding: Encoding, queue_max_size: usize) -> Self {
        Self {
            id: id.into(),
            encoding,
            queue: Queue::new(queue_max_size),
            signal: Notify::new(),
            state: Mutex::new(State::default()),
            user: parking_lot::RwLock::new(Arc::from("")),
        }
    }

    /// User id (empty before connect and for anonymous clients).
    pub fn user(&self) -> Arc<str> {
        self.user.read().clone()
    }

    /// Sets the user id at connect.
    pub fn set_user(&self, user: &str) {
        *self.user.write() = Arc::from(user);
    }

    /// Closes the connection with `disconnect` after what is queued.
    pub fn disconnect(&self, disconnect: Disconnect) {
        self.queue.close(disconnect);
    }

    /// Enqueues an encoded reply or push.
    pub fn send(&self, bytes: Bytes) {
        let _ = self.queue.push(bytes);
    }

    /// Encodes and enqueues a reply; a payload the encoding cannot carry
    /// closes the connection with 3506.
    pub fn send_reply(&self, reply: &Reply) {
        match encode_reply(self.encoding, reply) {
            Ok(b) => self.send(b),
            Err(_) => self.disconnect(Disconnect::INAPPROPRIATE_PROTOCOL),
        }
    }

    /// Number of subscriptions (including ones being set up).
    pub fn channel_count(&self) -> usize {
        self.state.lock().channels.len()
    }

    /// True when subscribed or subscribing to `channel`.
    pub fn has_channel(&self, channel: &str) -> bool {
        self.state.lock().channels.contains_key(channel)
    }

    /// True when the subscription to `channel` is live.
    pub fn is_active(&self, channel: &str) -> bool {
        self.state
            .lock()
            .channels
            .get(channel)
            .is_some_and(|d| d.active)
    }

    /// Registers a subscription in progress. Returns false if one exists.
    pub fn begin_subscription(&self, channel: &str, delivery: Delivery) -> bool {
        let mut st = self.state.lock();
        if st.channels.contains_key(channel) {
            return false;
        }
        st.channels.insert(channel.to_string(), delivery);
        true
    }

    /// Forgets a subscription; returns whether it existed.
    pub fn remove_subscription(&self, channel: &str) -> bool {
        self.state.lock().channels.remove(channel).is_some()
    }

    /// Channels currently held.
    pub fn channels(&self) -> Vec<String> {
        self.state.lock().channels.keys().cloned().collect()
    }

    /// Takes the pending work list.
    pub fn take_pending(&self) -> Vec<Pending> {
        std::mem::take(&mut self.state.lock().pending)
    }

    /// Runs `f` on the subscription map under the state lock. Deliveries
    /// cannot interleave, so replies enqueued inside `f` (through
    /// [`Shared::send`]) precede every live publication of a channel that
    /// `f` marks active.
    pub fn with_channels<R>(&self, f: impl FnOnce(&mut HashMap<String, Delivery>) -> R) -> R {
        let mut st = self.state.lock();
        f(&mut st.channels)
    }

    /// Hub fan-out of one publication to this session.
    pub fn deliver_publication(
        &self,
        channel: &str,
        publication: &Arc<Publication>,
        position: &StreamPosition,
        prepared: &Prepared,
    ) {
        let mut st = self.state.lock();
        let Some(d) = st.channels.get_mut(channel) else {
            return;
        };
        if !d.active {
            if let Some(buf) = d.buffer.as_mut() {
                buf.push((publication.clone(), position.clone()));
            }
            return;
        }
        if d.positioned && position.offset > 0 {
            if d.epoch.is_empty() {
                d.epoch = position.epoch.clone();
            }
            if position.epoch != d.epoch || position.offset > d.offset + 1 {
                self.insufficient_state(&mut st, channel);
                return;
            }
            if position.offset <= d.offset {
                return; // Already delivered (e.g. merged into a recovery).
            }
            d.offset = position.offset;
        }
        let build = || Push {
            channel: channel.to_string(),
            r#pub: Some((**publication).clone()),
            ..Default::default()
        };
        match prepared.get(self.encoding, build) {
            Ok(bytes) => {
                let _ = self.queue.push(bytes);
            }
            Err(_) => self.queue.close(Disconnect::INAPPROPRIATE_PROTOCOL),
        }
    }

    /// Hub fan-out of a join or leave push (already encoded per encoding).
    pub fn deliver_join_leave(&self, channel: &str, prepared: &Prepared, build: impl Fn() -> Push) {
        let st = self.state.lock();
        if !st
            .channels
            .get(channel)
            .is_some_and(|d| d.active && d.push_join_leave)
        {
            return;
        }
        drop(st);
        match prepared.get(self.encoding, build) {
            Ok(bytes) => {
                let _ = self.queue.push(bytes);
            }
            Err(_) => self.queue.close(Disconnect::INAPPROPRIATE_PROTOCOL),
        }
    }

    /// The position check found the client behind the stream.
    pub fn mark_insufficient(&self, channel: &str) {
        let mut st = self.state.lock();
        self.insufficient_state(&mut st, channel);
    }

    /// Position of a live positioned subscription.
    pub fn position(&self, channel: &str) -> Option<StreamPosition> {
        let st = self.state.lock();
        st.channels
            .get(channel)
            .filter(|d| d.active && d.positioned)
            .map(|d| StreamPosition {
                offset: d.offset,
                epoch: d.epoch.clone(),
            })
    }

    /// Sends an Unsubscribe push for `channel` and drops it; the session
    /// task finishes the cleanup.
    pub fn unsubscribe_push(&self, channel: &str, unsubscribe: Unsubscribe) {
        let mut st = self.state.lock();
        if st.channels.remove(channel).is_none() {
            return;
        }
        self.push_unsubscribe(channel, unsubscribe);
        st.pending.push(Pending::Unsubscribed(channel.to_string()));
        drop(st);
        self.signal.notify_one();
    }

    fn insufficient_state(&self, st: &mut State, channel: &str) {
        let server_side = st.channels.get(channel).is_some_and(|d| d.server_side);
        if server_side {
            self.queue.close(Disconnect::INSUFFICIENT_STATE);
            return;
        }
        st.channels.remove(channel);
        self.push_unsubscribe(channel, Unsubscribe::INSUFFICIENT_STATE);
        st.pending.push(Pending::Unsubscribed(channel.to_string()));
        self.signal.notify_one();
    }

    fn push_unsubscribe(&self, channel: &str, unsubscribe: Unsubscribe) {
        let push = Push {
            channel: channel.to_string(),
            unsubscribe: Some(crate::proto::client::Unsubscribe {
                code: unsubscribe.code,
                reason: unsubscribe.reason.to_string(),
            }),
            ..Default::default()
        };
        if let Ok(b) = encode_push(self.encoding, push) {
            let _ = self.queue.push(b);
        }
    }
}
