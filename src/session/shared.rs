//! The part of a session that other tasks touch: its outbound queue and the
//! per-channel delivery state the hub consults on every publication.
//!
//! Each subscription's delivery state lives in its own [`Slot`], held both by
//! the session's channel map and by the hub's subscriber list, so the hub's
//! fan-out goes straight to it: one lock and one cache line per subscriber
//! instead of a map lookup in every session.
//!
//! Lock order: hub shard → `Shared::state` → `Slot` → `Queue`; each may be
//! skipped, none is taken in the other direction. Nothing here awaits while
//! holding a lock. Work that needs the engine (removing a subscription after
//! a gap, for example) is recorded in `pending` and the session task is woken
//! through `signal` to do it. Server API operations reach the session the
//! same way ([`Shared::push_control`]), each with an [`Ack`] the caller may
//! wait on.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::control::Control;
use crate::engine::{Publication, StreamPosition};
use crate::proto::client::{FilterNode, Push, Reply};
use crate::protocol::codec::{encode_push, encode_reply};
use crate::protocol::filter;
use crate::protocol::{Disconnect, Encoding, Unsubscribe};

use super::prepared::{DeltaForm, Prepared, publication_push};
use super::queue::Queue;

/// One subscription's delivery state, shared by the session and the hub.
/// A subscription that was dropped keeps its slot alive in the hub until the
/// session task removes it there; [`Slot::retire`] makes it deliver nothing
/// in the meantime.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    delivery: Mutex<Delivery>,
}

impl Slot {
    fn new(delivery: Delivery) -> Self {
        Self {
            delivery: Mutex::new(delivery),
        }
    }

    /// Stops all deliveries; returns whether the subscription was server-side.
    fn retire(&self) -> bool {
        let mut d = self.delivery.lock();
        d.active = false;
        d.buffer = None;
        d.server_side
    }
}

/// Delivery state of one subscription.
#[derive(Debug, Default)]
pub(crate) struct Delivery {
    /// False while the subscribe is in progress: live publications are held
    /// in `buffer` (positioned subscriptions) or dropped.
    pub(crate) active: bool,
    /// Publications that arrived during the subscribe, for merging.
    pub(crate) buffer: Option<Vec<(Arc<Publication>, StreamPosition)>>,
    /// Track offsets and detect gaps.
    pub(crate) positioned: bool,
    /// Last delivered offset.
    pub(crate) offset: u64,
    /// Stream epoch the client holds.
    pub(crate) epoch: String,
    /// Push join/leave events to this client.
    pub(crate) push_join_leave: bool,
    /// Created by the server (token, personal channel): gaps disconnect.
    pub(crate) server_side: bool,
    /// The client negotiated fossil delta for this subscription.
    pub(crate) delta: bool,
    /// The client holds the previous publication's data, so the next one
    /// may come as a delta: set by the first publication sent in full, or
    /// by a recovery that sent the chain.
    pub(crate) delta_ready: bool,
    /// The client's tags filter: publications it rejects are not sent (a
    /// positioned subscription still advances past them).
    pub(crate) filter: Option<Arc<FilterNode>>,
}

/// Something the session task must do that cannot be done under a lock.
#[derive(Debug)]
pub(crate) enum Pending {
    /// The subscription was dropped after an Unsubscribe push; finish the
    /// cleanup (hub, engine, presence).
    Unsubscribed(String),
    /// A server API operation, acknowledged through the [`Ack`] once the
    /// session applied it (or, for a closing connection, once it closed).
    Control(Control, Ack),
}

/// Tells a waiting control call that its operation was applied. Dropping
/// it unsent also ends the wait (the operation will never be applied).
#[derive(Debug)]
pub(crate) struct Ack(tokio::sync::oneshot::Sender<()>);

impl Ack {
    /// An acknowledgement and the receiver that waits for it.
    pub(crate) fn new() -> (Self, tokio::sync::oneshot::Receiver<()>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (Self(tx), rx)
    }

    /// Signals the waiter.
    pub(crate) fn done(self) {
        let _ = self.0.send(());
    }
}

#[derive(Debug, Default)]
struct State {
    channels: HashMap<String, Arc<Slot>>,
    pending: Vec<Pending>,
    /// The session task finished its cleanup: nobody will take `pending`.
    finished: bool,
}

/// Shared half of a session.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Client id (UUID).
    pub(crate) id: Arc<str>,
    /// Wire encoding.
    pub(crate) encoding: Encoding,
    /// Outbound queue.
    pub(crate) queue: Queue,
    /// Wakes the session task to handle `pending`.
    pub(crate) signal: Notify,
    state: Mutex<State>,
    user: parking_lot::RwLock<Arc<str>>,
    session: parking_lot::RwLock<Arc<str>>,
}

impl Shared {
    /// A new session's shared half.
    pub(crate) fn new(id: String, encoding: Encoding, queue: Queue) -> Self {
        Self {
            id: id.into(),
            encoding,
            queue,
            signal: Notify::new(),
            state: Mutex::new(State::default()),
            user: parking_lot::RwLock::new(Arc::from("")),
            session: parking_lot::RwLock::new(Arc::from("")),
        }
    }

    /// User id (empty before connect and for anonymous clients).
    pub(crate) fn user(&self) -> Arc<str> {
        self.user.read().clone()
    }

    /// Sets the user id at connect.
    pub(crate) fn set_user(&self, user: &str) {
        *self.user.write() = Arc::from(user);
    }

    /// Session id: set on emulated transports only (as in Centrifugo, where
    /// a bidirectional WebSocket connection has none).
    pub(crate) fn session(&self) -> Arc<str> {
        self.session.read().clone()
    }

    /// Sets the session id at connect.
    pub(crate) fn set_session(&self, session: &str) {
        *self.session.write() = Arc::from(session);
    }

    /// Hands a control operation to the session task. Returns false (and
    /// drops `ack`, which ends the wait) when the session already finished.
    pub(crate) fn push_control(&self, control: Control, ack: Ack) -> bool {
        let mut st = self.state.lock();
        if st.finished {
            return false;
        }
        st.pending.push(Pending::Control(control, ack));
        drop(st);
        self.signal.notify_one();
        true
    }

    /// Takes what is pending for the last time: later work is refused.
    pub(crate) fn finish(&self) -> Vec<Pending> {
        let mut st = self.state.lock();
        st.finished = true;
        std::mem::take(&mut st.pending)
    }

    /// Closes the connection with `disconnect` after what is queued.
    pub(crate) fn disconnect(&self, disconnect: Disconnect) {
        self.queue.close(disconnect);
    }

    /// Enqueues an encoded reply or push.
    pub(crate) fn send(&self, bytes: Bytes) {
        let _ = self.queue.push(bytes);
    }

    /// Encodes and enqueues a reply; a payload the encoding cannot carry
    /// closes the connection with 3506.
    pub(crate) fn send_reply(&self, reply: &Reply) {
        match encode_reply(self.encoding, reply) {
            Ok(b) => self.send(b),
            Err(_) => self.disconnect(Disconnect::INAPPROPRIATE_PROTOCOL),
        }
    }

    /// Number of subscriptions (including ones being set up).
    pub(crate) fn channel_count(&self) -> usize {
        self.state.lock().channels.len()
    }

    /// True when subscribed or subscribing to `channel`.
    pub(crate) fn has_channel(&self, channel: &str) -> bool {
        self.state.lock().channels.contains_key(channel)
    }

    /// True when the subscription to `channel` is live.
    pub(crate) fn is_active(&self, channel: &str) -> bool {
        self.slot(channel)
            .is_some_and(|slot| slot.delivery.lock().active)
    }

    /// The delivery slot of a subscription (live or being set up).
    pub(crate) fn slot(&self, channel: &str) -> Option<Arc<Slot>> {
        self.state.lock().channels.get(channel).cloned()
    }

    /// Registers a subscription in progress. Returns false if one exists.
    pub(crate) fn begin_subscription(&self, channel: &str, delivery: Delivery) -> bool {
        let mut st = self.state.lock();
        if st.channels.contains_key(channel) {
            return false;
        }
        st.channels
            .insert(channel.to_string(), Arc::new(Slot::new(delivery)));
        true
    }

    /// Forgets a subscription; returns whether it existed.
    pub(crate) fn remove_subscription(&self, channel: &str) -> bool {
        let removed = self.state.lock().channels.remove(channel);
        removed.map(|slot| slot.retire()).is_some()
    }

    /// Takes the pending work list.
    pub(crate) fn take_pending(&self) -> Vec<Pending> {
        std::mem::take(&mut self.state.lock().pending)
    }

    /// Runs `f` on the delivery state of `channels` (in that order) with all
    /// of them locked, so deliveries to them cannot interleave: replies
    /// enqueued inside `f` (through [`Shared::send`]) precede every live
    /// publication of a channel that `f` marks active. `None` when one of
    /// the channels is no longer held.
    pub(crate) fn with_deliveries<R>(
        &self,
        channels: &[&str],
        f: impl FnOnce(&mut [&mut Delivery]) -> R,
    ) -> Option<R> {
        let slots: Option<Vec<Arc<Slot>>> = {
            let st = self.state.lock();
            channels
                .iter()
                .map(|c| st.channels.get(*c).cloned())
                .collect()
        };
        let slots = slots?;
        let mut guards: Vec<_> = slots.iter().map(|s| s.delivery.lock()).collect();
        let mut deliveries: Vec<&mut Delivery> = guards.iter_mut().map(|g| &mut **g).collect();
        Some(f(&mut deliveries))
    }

    /// Hub fan-out of one publication to this session's subscription `slot`.
    pub(crate) fn deliver_publication(
        &self,
        slot: &Slot,
        channel: &str,
        publication: &Arc<Publication>,
        position: &StreamPosition,
        prepared: &Prepared,
    ) {
        let mut d = slot.delivery.lock();
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
                drop(d);
                self.insufficient_state(slot, channel);
                return;
            }
            if position.offset <= d.offset {
                return; // Already delivered (e.g. merged into a recovery).
            }
            d.offset = position.offset;
        }
        if let Some(f) = &d.filter
            && !filter::matches(f, &publication.tags)
        {
            return;
        }
        let encoded = if d.delta {
            // A delta needs the client to hold exactly the previous stream
            // entry: true for a positioned subscription that saw every
            // offset since its first full publication.
            let form = if d.delta_ready && d.positioned && position.offset > 0 {
                DeltaForm::Patch
            } else {
                d.delta_ready = true;
                DeltaForm::Full
            };
            prepared.get_delta(self.encoding, form, channel, publication)
        } else {
            prepared.get(self.encoding, || {
                publication_push(channel, (**publication).clone())
            })
        };
        // Enqueued under the slot lock: see `with_deliveries`.
        match encoded {
            Ok(bytes) => {
                let _ = self.queue.push(bytes);
            }
            Err(_) => self.queue.close(Disconnect::INAPPROPRIATE_PROTOCOL),
        }
    }

    /// Hub fan-out of a join or leave push (already encoded per encoding).
    pub(crate) fn deliver_join_leave(
        &self,
        slot: &Slot,
        prepared: &Prepared,
        build: impl Fn() -> Push,
    ) {
        let d = slot.delivery.lock();
        if !(d.active && d.push_join_leave) {
            return;
        }
        match prepared.get(self.encoding, build) {
            Ok(bytes) => {
                let _ = self.queue.push(bytes);
            }
            Err(_) => self.queue.close(Disconnect::INAPPROPRIATE_PROTOCOL),
        }
        drop(d);
    }

    /// The position check found the client behind the stream.
    pub(crate) fn mark_insufficient(&self, channel: &str) {
        if let Some(slot) = self.slot(channel) {
            self.insufficient_state(&slot, channel);
        }
    }

    /// Position of a live positioned subscription.
    pub(crate) fn position(&self, channel: &str) -> Option<StreamPosition> {
        let slot = self.slot(channel)?;
        let d = slot.delivery.lock();
        (d.active && d.positioned).then(|| StreamPosition {
            offset: d.offset,
            epoch: d.epoch.clone(),
        })
    }

    /// Sends an Unsubscribe push for `channel` and drops it; the session
    /// task finishes the cleanup.
    pub(crate) fn unsubscribe_push(&self, channel: &str, unsubscribe: Unsubscribe) {
        let mut st = self.state.lock();
        let Some(slot) = st.channels.remove(channel) else {
            return;
        };
        slot.retire();
        self.push_unsubscribe(channel, unsubscribe);
        st.pending.push(Pending::Unsubscribed(channel.to_string()));
        drop(st);
        self.signal.notify_one();
    }

    /// Drops the subscription to `channel` with an Unsubscribe push, for the
    /// session task itself, which does the cleanup right away. Returns
    /// whether it was held.
    pub(crate) fn drop_with_push(&self, channel: &str, unsubscribe: Unsubscribe) -> bool {
        let mut st = self.state.lock();
        let Some(slot) = st.channels.remove(channel) else {
            return false;
        };
        slot.retire();
        self.push_unsubscribe(channel, unsubscribe);
        true
    }

    /// Encodes and enqueues a push; a payload the encoding cannot carry
    /// closes the connection with 3506.
    pub(crate) fn send_push(&self, push: Push) {
        match encode_push(self.encoding, push) {
            Ok(b) => self.send(b),
            Err(_) => self.disconnect(Disconnect::INAPPROPRIATE_PROTOCOL),
        }
    }

    /// Drops a subscription that fell behind its stream: an Unsubscribe
    /// push (the client resubscribes and recovers), or for a server-side
    /// subscription, which the client cannot resubscribe to, a disconnect.
    fn insufficient_state(&self, slot: &Slot, channel: &str) {
        let mut st = self.state.lock();
        // Only if the map still holds this very subscription: a newer one
        // under the same name is not affected.
        if !st
            .channels
            .get(channel)
            .is_some_and(|held| std::ptr::eq(Arc::as_ptr(held), slot))
        {
            return;
        }
        if slot.retire() {
            drop(st);
            self.queue.close(Disconnect::INSUFFICIENT_STATE);
            return;
        }
        st.channels.remove(channel);
        self.push_unsubscribe(channel, Unsubscribe::INSUFFICIENT_STATE);
        st.pending.push(Pending::Unsubscribed(channel.to_string()));
        drop(st);
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
