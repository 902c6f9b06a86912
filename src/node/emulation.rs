//! Routing of emulated client commands (`/emulation`) to the connection
//! they belong to.
//!
//! HTTP-streaming and SSE connections have no read side: the client posts
//! its commands to `/emulation` with the `session` and `node` ids it got in
//! its connect reply, and the POST may land on any node of a cluster. Each
//! node keeps a registry `session id → inbox` of its own emulated
//! connections; [`Node::route_emulation`] delivers locally when the target
//! node is this one and otherwise hands the commands to the
//! [`EmulationForwarder`] installed by the broker (none on a single node).
//!
//! Inboxes are bounded in frames. A full inbox refuses the request
//! ([`EmulationError::InboxFull`], HTTP 503) instead of dropping it:
//! commands must not vanish silently, and the SDK closes its transport on a
//! 5xx and reconnects (recovering its subscriptions), which is the right
//! outcome for a client whose connection cannot keep up. Entries leave the
//! registry when the connection ends ([`InboxGuard`]).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::Node;

/// Frames an emulated connection may have waiting before `/emulation`
/// refuses more (each frame is at most `emulation.max_request_body_size`).
pub const INBOX_FRAMES: usize = 32;

/// Why emulated commands were not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EmulationError {
    /// No live node has this id (HTTP 404: the SDK reconnects).
    #[error("unknown node")]
    UnknownNode,
    /// The connection has too many frames waiting (HTTP 503).
    #[error("session inbox is full")]
    InboxFull,
    /// Forwarding to another node failed (HTTP 500).
    #[error("forwarding failed: {0}")]
    Forward(String),
}

/// Delivers emulated commands to other nodes of a cluster.
///
/// Contract: `forward` resolves once the node `node` has taken the frame
/// (its [`Node::deliver_emulation`] returned), with `Ok(())` also when that
/// node no longer has the session (the client learns it from its stream
/// ending); [`EmulationError::UnknownNode`] when no live node has that id;
/// [`EmulationError::InboxFull`] when the target node refused it for a
/// full inbox; [`EmulationError::Forward`] for a broker failure. It must be
/// bounded in time (a broker request timeout).
#[async_trait::async_trait]
pub(crate) trait EmulationForwarder: Send + Sync {
    /// Hands `data` (encoded commands) for `session` to the node `node`.
    async fn forward(&self, node: &str, session: &str, data: Bytes) -> Result<(), EmulationError>;
}

/// The node's emulation state: the local inbox registry and the forwarder.
#[derive(Default)]
pub struct Emulation {
    inboxes: Arc<Mutex<HashMap<Arc<str>, mpsc::Sender<Bytes>>>>,
    forwarder: OnceLock<Arc<dyn EmulationForwarder>>,
}

impl std::fmt::Debug for Emulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulation")
            .field("sessions", &self.len())
            .field("forwarder", &self.forwarder.get().is_some())
            .finish()
    }
}

/// Keeps a session's inbox registered; removes it when dropped.
#[derive(Debug)]
pub(crate) struct InboxGuard {
    inboxes: Arc<Mutex<HashMap<Arc<str>, mpsc::Sender<Bytes>>>>,
    session: Arc<str>,
}

impl Drop for InboxGuard {
    fn drop(&mut self) {
        self.inboxes.lock().remove(&self.session);
    }
}

impl Emulation {
    /// Registers the inbox of the local emulated connection `session`.
    /// Session ids are fresh UUIDs, so a clash replaces nothing live.
    pub(crate) fn register(&self, session: &str) -> (InboxGuard, mpsc::Receiver<Bytes>) {
        let (tx, rx) = mpsc::channel(INBOX_FRAMES);
        let session: Arc<str> = Arc::from(session);
        self.inboxes.lock().insert(session.clone(), tx);
        let guard = InboxGuard {
            inboxes: self.inboxes.clone(),
            session,
        };
        (guard, rx)
    }

    /// Emulated connections registered on this node.
    pub(crate) fn len(&self) -> usize {
        self.inboxes.lock().len()
    }

    /// True when no emulated connection is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `session` is registered on this node.
    pub fn contains(&self, session: &str) -> bool {
        self.inboxes.lock().contains_key(session)
    }

    /// Installs the cluster forwarder (once; later calls are ignored and
    /// return false).
    pub(crate) fn set_forwarder(&self, forwarder: Arc<dyn EmulationForwarder>) -> bool {
        self.forwarder.set(forwarder).is_ok()
    }

    /// Puts `data` in the inbox of the local `session`. A session this node
    /// does not have (any more) is not an error.
    pub(crate) fn deliver(&self, session: &str, data: Bytes) -> Result<(), EmulationError> {
        let Some(tx) = self.inboxes.lock().get(session).cloned() else {
            return Ok(());
        };
        match tx.try_send(data) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::info!(session, "emulation inbox full; request refused");
                Err(EmulationError::InboxFull)
            }
        }
    }
}

impl Node {
    /// Routes emulated commands to the connection `session` on the node
    /// `node_id`: delivered locally when that is this node, else handed to
    /// the cluster forwarder ([`EmulationError::UnknownNode`] without one).
    pub(crate) async fn route_emulation(
        &self,
        node_id: &str,
        session: &str,
        data: Bytes,
    ) -> Result<(), EmulationError> {
        if node_id == self.id {
            return self.deliver_emulation(session, data);
        }
        match self.emulation.forwarder.get() {
            Some(f) if !node_id.is_empty() => f.forward(node_id, session, data).await,
            _ => Err(EmulationError::UnknownNode),
        }
    }

    /// Delivers emulated commands to a connection of this node (what a
    /// forwarder calls on the target node).
    pub(crate) fn deliver_emulation(
        &self,
        session: &str,
        data: Bytes,
    ) -> Result<(), EmulationError> {
        self.emulation.deliver(session, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliver_fills_then_refuses_and_guard_removes() {
        let e = Emulation::default();
        let (guard, mut rx) = e.register("s1");
        assert!(e.contains("s1"));
        for _ in 0..INBOX_FRAMES {
            assert_eq!(e.deliver("s1", Bytes::from_static(b"{}")), Ok(()));
        }
        assert_eq!(
            e.deliver("s1", Bytes::from_static(b"{}")),
            Err(EmulationError::InboxFull)
        );
        assert!(rx.try_recv().is_ok());
        assert_eq!(e.deliver("s1", Bytes::from_static(b"{}")), Ok(()));
        // Unknown sessions are not an error.
        assert_eq!(e.deliver("nope", Bytes::new()), Ok(()));
        drop(guard);
        assert!(e.is_empty());
        assert_eq!(e.deliver("s1", Bytes::new()), Ok(()));
    }

    struct Echo;

    #[async_trait::async_trait]
    impl EmulationForwarder for Echo {
        async fn forward(&self, node: &str, _: &str, _: Bytes) -> Result<(), EmulationError> {
            Err(EmulationError::Forward(node.to_string()))
        }
    }

    #[tokio::test]
    async fn routes_locally_or_through_the_forwarder() {
        let node = Node::new(crate::config::Config::default())
            .await
            .expect("node");
        let (_guard, mut rx) = node.emulation.register("s");
        let id = node.id.clone();
        assert_eq!(
            node.route_emulation(&id, "s", Bytes::from_static(b"x"))
                .await,
            Ok(())
        );
        assert_eq!(rx.recv().await.as_deref(), Some(&b"x"[..]));
        assert_eq!(
            node.route_emulation("other", "s", Bytes::new()).await,
            Err(EmulationError::UnknownNode)
        );
        assert!(node.emulation.set_forwarder(Arc::new(Echo)));
        assert!(!node.emulation.set_forwarder(Arc::new(Echo)));
        assert_eq!(
            node.route_emulation("other", "s", Bytes::new()).await,
            Err(EmulationError::Forward("other".into()))
        );
        assert_eq!(
            node.route_emulation("", "s", Bytes::new()).await,
            Err(EmulationError::UnknownNode)
        );
    }
}
