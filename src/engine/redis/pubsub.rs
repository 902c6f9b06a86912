//! Delivery from Redis PUB/SUB: the node's dedicated RESP3 connection, the
//! set of channels this node subscribed to, and the task that decodes
//! pushed messages and hands them to the [`BrokerEventHandler`].
//!
//! One task reads every push in arrival order and calls the handler
//! synchronously, so one channel's events reach the handler in the order
//! Redis published them (offset order, since the publish script is atomic)
//! and never concurrently. Messages for channels no longer in the local set
//! are dropped, so nothing is handed over once `unsubscribe` returned.
//!
//! On a Redis Cluster messages arrive as sharded messages (`smessage`) from
//! whichever node owns the channel's slot; the cluster connection moves the
//! subscriptions when slots move. With Sentinel, losing the connection (a
//! disconnection push or a failed probe) wakes the Sentinel watcher, which
//! re-asks for the master and, on a new one, calls [`Delivery::resubscribe_all`].

use std::collections::HashSet;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use prost::Message;
use redis::{PushInfo, PushKind, Value};
use tokio::sync::Notify;

use super::batch::Batcher;
use super::conn::Conn;
use super::{Keys, bytes_of};
use crate::engine::{BrokerEventHandler, ClientInfo, EngineError, Publication, StreamPosition};

/// Subscriptions and the handler, shared with the reading task.
pub(super) struct Delivery {
    keys: Keys,
    conn: Conn,
    call_timeout: Duration,
    /// Woken when the connection looks lost (Sentinel: re-ask at once).
    on_loss: Option<Arc<Notify>>,
    handler: OnceLock<Arc<dyn BrokerEventHandler>>,
    subscribed: Mutex<HashSet<String>>,
    batcher: Batcher,
    /// Where messages on the control channel go (see `super::control`).
    control: OnceLock<tokio::sync::mpsc::UnboundedSender<bytes::Bytes>>,
}

impl Delivery {
    /// Starts the reading task; it ends when the delivery is dropped (the
    /// connection, and with it the push sender, goes away).
    pub(super) fn start(
        keys: Keys,
        conn: Conn,
        pushes: tokio::sync::mpsc::UnboundedReceiver<PushInfo>,
        call_timeout: Duration,
        on_loss: Option<Arc<Notify>>,
    ) -> Arc<Self> {
        let delivery = Arc::new(Self {
            keys,
            batcher: Batcher::start(conn.clone(), call_timeout),
            conn,
            call_timeout,
            on_loss,
            handler: OnceLock::new(),
            subscribed: Mutex::new(HashSet::new()),
            control: OnceLock::new(),
        });
        tokio::spawn(read_loop(Arc::downgrade(&delivery), pushes));
        tokio::spawn(probe_loop(Arc::downgrade(&delivery)));
        delivery
    }

    pub(super) fn set_handler(&self, handler: Arc<dyn BrokerEventHandler>) {
        // As in the memory engine, a second call keeps the first handler.
        let _ = self.handler.set(handler);
    }

    async fn command(&self, subscribe: bool, channel: &str) -> Result<(), EngineError> {
        self.batcher
            .send(subscribe, self.keys.pubsub(channel))
            .await
    }

    pub(super) async fn subscribe(&self, channel: &str) -> Result<(), EngineError> {
        // Listed first: a message arriving right after Redis confirmed must
        // not be dropped as "not subscribed".
        let fresh = self.subscribed.lock().insert(channel.to_owned());
        if let Err(e) = self.command(true, channel).await {
            if fresh {
                self.subscribed.lock().remove(channel);
            }
            return Err(e);
        }
        Ok(())
    }

    pub(super) async fn unsubscribe(&self, channel: &str) -> Result<(), EngineError> {
        // Unlisted first: from now on nothing more is handed over, whatever
        // is still in flight.
        self.subscribed.lock().remove(channel);
        self.command(false, channel).await
    }

    /// Subscribes the control channel; its messages go to `sink` from now
    /// on (a second call keeps the first sink).
    pub(super) async fn subscribe_control(
        &self,
        sink: tokio::sync::mpsc::UnboundedSender<bytes::Bytes>,
    ) -> Result<(), EngineError> {
        let _ = self.control.set(sink);
        self.subscribe_control_channel().await
    }

    async fn subscribe_control_channel(&self) -> Result<(), EngineError> {
        let call = self.conn.subscribe_plain(self.keys.control());
        match tokio::time::timeout(self.call_timeout, call).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(super::unavailable(e)),
            Err(_) => Err(super::unavailable("subscribe timed out")),
        }
    }

    /// Subscribes every listed channel (and the control channel) again, on
    /// a connection that replaced the old one (Sentinel failover).
    pub(super) async fn resubscribe_all(&self) -> Result<(), EngineError> {
        let channels: Vec<String> = self.subscribed.lock().iter().cloned().collect();
        let calls = channels.iter().map(|c| self.command(true, c));
        futures_util::future::try_join_all(calls).await?;
        if self.control.get().is_some() {
            self.subscribe_control_channel().await?;
        }
        Ok(())
    }

    fn lost(&self) {
        if let Some(notify) = &self.on_loss {
            notify.notify_one();
        }
    }

    fn dispatch(&self, push: PushInfo) {
        if push.kind == PushKind::Disconnection {
            tracing::warn!("redis PUB/SUB connection lost; reconnecting and resubscribing");
            self.lost();
            return;
        }
        if push.kind != PushKind::Message && push.kind != PushKind::SMessage {
            return;
        }
        let (Some(name), Some(payload)) = (
            push.data.first().and_then(bytes_of),
            push.data.get(1).and_then(bytes_of),
        ) else {
            return;
        };
        let Ok(name) = std::str::from_utf8(name) else {
            return;
        };
        if name == self.keys.control() {
            if let Some(sink) = self.control.get() {
                let _ = sink.send(bytes::Bytes::copy_from_slice(payload));
            }
            return;
        }
        let Some(channel) = self.keys.channel_of(name) else {
            return;
        };
        if !self.subscribed.lock().contains(channel) {
            return;
        }
        let Some(handler) = self.handler.get() else {
            return;
        };
        match decode(payload) {
            Some(Event::Publication(publication, position, prev)) => {
                handler.handle_publication(channel, Arc::new(publication), position, prev);
            }
            Some(Event::Join(info)) => handler.handle_join(channel, info),
            Some(Event::Leave(info)) => handler.handle_leave(channel, info),
            None => tracing::warn!(channel, "undecodable message on redis PUB/SUB; dropped"),
        }
    }
}

async fn read_loop(
    delivery: Weak<Delivery>,
    mut pushes: tokio::sync::mpsc::UnboundedReceiver<PushInfo>,
) {
    while let Some(push) = pushes.recv().await {
        let Some(delivery) = delivery.upgrade() else {
            return;
        };
        delivery.dispatch(push);
    }
}

/// How often the PUB/SUB connection is probed with a PING.
const PROBE_INTERVAL: Duration = Duration::from_secs(10);

/// Liveness probe of the PUB/SUB connection: a connection that receives
/// nothing looks the same whether it is healthy or wedged, so it is pinged.
/// A failed PING surfaces (and on an I/O error triggers) the reconnect,
/// after which the connection manager resubscribes every channel.
async fn probe_loop(delivery: Weak<Delivery>) {
    loop {
        tokio::time::sleep(PROBE_INTERVAL).await;
        let Some(delivery) = delivery.upgrade() else {
            return;
        };
        let mut conn = delivery.conn.clone();
        let ping = async move { redis::cmd("PING").query_async::<Value>(&mut conn).await };
        match tokio::time::timeout(delivery.call_timeout, ping).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "redis PUB/SUB liveness probe failed");
                delivery.lost();
            }
            Err(_) => {
                tracing::warn!("redis PUB/SUB liveness probe timed out");
                delivery.lost();
            }
        }
    }
}

/// A decoded PUB/SUB message.
#[derive(Debug, PartialEq)]
pub(super) enum Event {
    /// A publication, its position and, for a delta publish, the data of
    /// the previous one.
    Publication(Publication, StreamPosition, Option<bytes::Bytes>),
    Join(ClientInfo),
    Leave(ClientInfo),
}

/// `j` / `l` followed by the protobuf ClientInfo.
pub(super) fn encode_presence_event(join: bool, info: &ClientInfo) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + info.encoded_len());
    out.push(if join { b'j' } else { b'l' });
    info.encode(&mut out).unwrap_or_default();
    out
}

/// Decodes the wire format described in the module docs of
/// [`super`]; `None` for anything malformed.
pub(super) fn decode(payload: &[u8]) -> Option<Event> {
    let (&tag, rest) = payload.split_first()?;
    match tag {
        b'p' | b'd' => {
            let (offset, rest) = number_field(rest)?;
            let colon = rest.iter().position(|b| *b == b':')?;
            let epoch = std::str::from_utf8(&rest[..colon]).ok()?.to_owned();
            let mut rest = &rest[colon + 1..];
            let mut prev = None;
            if tag == b'd' {
                let (len, after) = number_field(rest)?;
                let len = usize::try_from(len).ok().filter(|l| *l <= after.len())?;
                let entry = Publication::decode(&after[..len]).ok()?;
                prev = Some(entry.data);
                rest = &after[len..];
            }
            let mut publication = Publication::decode(rest).ok()?;
            publication.offset = offset;
            Some(Event::Publication(
                publication,
                StreamPosition { offset, epoch },
                prev,
            ))
        }
        b'j' => ClientInfo::decode(rest).ok().map(Event::Join),
        b'l' => ClientInfo::decode(rest).ok().map(Event::Leave),
        _ => None,
    }
}

/// A decimal number up to the next `:`, and what follows the colon.
fn number_field(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let colon = bytes.iter().position(|b| *b == b':')?;
    let n = std::str::from_utf8(&bytes[..colon]).ok()?.parse().ok()?;
    Some((n, &bytes[colon + 1..]))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn wire_format_round_trips() {
        let info = ClientInfo {
            user: "u".into(),
            client: "c".into(),
            conn_info: Bytes::from_static(b"{}"),
            chan_info: Bytes::new(),
        };
        assert_eq!(
            decode(&encode_presence_event(true, &info)),
            Some(Event::Join(info.clone()))
        );
        assert_eq!(
            decode(&encode_presence_event(false, &info)),
            Some(Event::Leave(info.clone()))
        );
        let publication = Publication {
            data: Bytes::from_static(b"{\"a\":1}"),
            info: Some(info),
            ..Publication::default()
        };
        let mut wire = b"p7:abc:".to_vec();
        wire.extend(publication.encode_to_vec());
        let Some(Event::Publication(p, pos, None)) = decode(&wire) else {
            panic!("not decoded");
        };
        assert_eq!(pos.offset, 7);
        assert_eq!(pos.epoch, "abc");
        assert_eq!(p.offset, 7);
        assert_eq!(p.data, publication.data);
        assert!(
            decode(b"p0::").is_some(),
            "empty publication without history"
        );
        let entry = Publication {
            data: Bytes::from_static(b"{\"a\":0}"),
            ..Publication::default()
        }
        .encode_to_vec();
        let mut wire = format!("d8:abc:{}:", entry.len()).into_bytes();
        wire.extend(&entry);
        wire.extend(publication.encode_to_vec());
        let Some(Event::Publication(p, pos, Some(prev))) = decode(&wire) else {
            panic!("delta message not decoded");
        };
        assert_eq!((pos.offset, p.data), (8, publication.data));
        assert_eq!(&prev[..], b"{\"a\":0}");
        for bad in [
            &b""[..],
            b"x",
            b"p",
            b"pz:e:",
            b"p1:e",
            b"d1:e:",
            b"d1:e:99:",
            b"d1:e:x:",
        ] {
            assert!(decode(bad).is_none(), "{bad:?}");
        }
    }
}
