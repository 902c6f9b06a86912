//! Cluster control: Rotor nodes sharing a broker act as one, as
//! Centrifugo's nodes do over their control channel.
//!
//! A [`ControlBus`] carries [`wire::ControlMessage`]s to every node (the
//! Redis engine: PUB/SUB channel `<prefix>.control`, see
//! `engine::redis::control`; the NATS broker: subject `<prefix>.control`,
//! see `engine::nats::control`). Over it each node
//!
//! * publishes a **heartbeat** ([`wire::NodeMsg`]: name, version, counters,
//!   uptime) at start and every [`HEARTBEAT_INTERVAL`] (3 s, Centrifugo's
//!   `nodeInfoPublishInterval`); a node not heard from for
//!   [`NODE_MAX_DELAY`] (7 s, Centrifugo's `nodeInfoMaxDelay` = 2 × 3 s +
//!   1 s) is dropped, so `info` lists live nodes only and a dead node leaves
//!   it within 7 s of its last heartbeat;
//! * announces a graceful **leave** ([`wire::ShutdownMsg`], as Centrifugo's
//!   shutdown command) when it shuts down: the others drop it from `info`
//!   at once, and ignore a heartbeat of it that was still in flight;
//! * sends the server API's **disconnect / unsubscribe / subscribe /
//!   refresh** to every other node, which applies them to its own
//!   connections (the calling node applies them itself and waits as on a
//!   single node; the others apply them asynchronously, in the order they
//!   were published);
//! * answers **surveys**: `channels` asks every live node for its channels
//!   and subscriber counts and merges the replies, waiting at most
//!   [`SURVEY_TIMEOUT`] (nodes that do not answer in time are left out).
//!   Heartbeats carry counts only, so the channel list never rides on them.
//!   Presence and presence stats need nothing here: the engine keeps
//!   presence cluster-wide already;
//! * **forwards `/emulation` frames** to the node holding the session
//!   ([`wire::EmulationMsg`] / [`wire::EmulationReply`]) — the node's
//!   [`EmulationForwarder`](super::emulation::EmulationForwarder).
//!
//! Without a bus (the memory engine) nothing of this runs and every
//! operation is local. [`LoopbackBus`] connects in-process nodes (tests).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use prost::Message;
use tokio::sync::{mpsc, oneshot};

use super::Node;
use super::control::NodeInfo;
use super::emulation::{EmulationError, EmulationForwarder};
use crate::engine::EngineError;

mod apply;
pub(crate) mod wire;

use wire::{ControlMessage, Kind};

/// How often a node publishes its heartbeat.
pub(crate) const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(3);
/// A node silent for longer is considered gone.
pub(crate) const NODE_MAX_DELAY: Duration = Duration::from_secs(7);
/// Longest a survey waits for the other nodes' replies.
pub(crate) const SURVEY_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest a shutting-down node waits to announce its leave.
pub(crate) const LEAVE_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest a forwarded emulation frame waits for its target node.
pub(crate) const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);

/// Carries control messages between the nodes of a cluster.
#[async_trait::async_trait]
pub trait ControlBus: Send + Sync {
    /// Sends `msg` to every node (this one included).
    async fn publish(&self, msg: Bytes) -> Result<(), EngineError>;
    /// Starts delivering every node's control messages to `sink`, in the
    /// order the bus received them; resolves once delivery is live.
    async fn run(&self, sink: mpsc::UnboundedSender<Bytes>) -> Result<(), EngineError>;
}

/// A live peer as its last heartbeat described it.
#[derive(Debug, Clone)]
struct Peer {
    info: NodeInfo,
    version: String,
    seen: Instant,
}

/// The node's view of the cluster.
#[derive(Default)]
pub(crate) struct Cluster {
    bus: OnceLock<Arc<dyn ControlBus>>,
    peers: Mutex<HashMap<String, Peer>>,
    /// Nodes that announced their leave, and when (kept for
    /// [`NODE_MAX_DELAY`] so that a late heartbeat does not revive them).
    left: Mutex<HashMap<String, Instant>>,
    /// Signalled when this node's own leave announcement came back over
    /// the bus (so it reached the bus server, not just a client buffer).
    leave_echo: tokio::sync::Notify,
    surveys: Mutex<HashMap<u64, mpsc::UnboundedSender<wire::SurveyReply>>>,
    forwards: Mutex<HashMap<u64, oneshot::Sender<u32>>>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("bus", &self.bus.get().is_some())
            .field("peers", &self.peers.lock().len())
            .finish()
    }
}

/// A node's report for `info`: its counters and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeReport {
    /// Counters.
    pub(crate) info: NodeInfo,
    /// Server version.
    pub(crate) version: String,
}

impl Cluster {
    /// Whether a bus is installed (the node is part of a cluster).
    pub(crate) fn enabled(&self) -> bool {
        self.bus.get().is_some()
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Live peers (other nodes), dropping those silent for too long.
    fn live_peers(&self) -> Vec<(String, Peer)> {
        let mut peers = self.peers.lock();
        peers.retain(|_, p| p.seen.elapsed() <= NODE_MAX_DELAY);
        peers.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// A peer announced its leave.
    fn remove_peer(&self, uid: String) {
        self.peers.lock().remove(&uid);
        let mut left = self.left.lock();
        left.retain(|_, at| at.elapsed() <= NODE_MAX_DELAY);
        left.insert(uid, Instant::now());
    }

    /// Records a heartbeat unless its node has left.
    fn heard(&self, uid: String, peer: Peer) {
        let gone = self
            .left
            .lock()
            .get(&uid)
            .is_some_and(|at| at.elapsed() <= NODE_MAX_DELAY);
        if !gone {
            self.peers.lock().insert(uid, peer);
        }
    }

    fn is_live(&self, node: &str) -> bool {
        self.peers
            .lock()
            .get(node)
            .is_some_and(|p| p.seen.elapsed() <= NODE_MAX_DELAY)
    }
}

/// Joins `node` to the cluster over `bus`: delivery of control messages,
/// heartbeats, and the emulation forwarder. Tasks end with the node.
pub(crate) async fn start(node: &Arc<Node>, bus: Arc<dyn ControlBus>) -> Result<(), EngineError> {
    if node.cluster.bus.set(bus.clone()).is_err() {
        return Ok(());
    }
    let (tx, rx) = mpsc::unbounded_channel();
    bus.run(tx).await?;
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    tokio::spawn(read_loop(Arc::downgrade(node), rx, cmd_tx));
    tokio::spawn(apply::command_loop(Arc::downgrade(node), cmd_rx));
    tokio::spawn(heartbeat_loop(Arc::downgrade(node)));
    node.emulation.set_forwarder(Arc::new(Forwarder {
        node: Arc::downgrade(node),
    }));
    Ok(())
}

impl Node {
    /// Publishes a control message from this node (a no-op without a bus).
    pub(crate) async fn broadcast(&self, kind: Kind) -> Result<(), EngineError> {
        let Some(bus) = self.cluster.bus.get() else {
            return Ok(());
        };
        let msg = ControlMessage {
            uid: self.id.clone(),
            kind: Some(kind),
        };
        bus.publish(Bytes::from(msg.encode_to_vec())).await
    }

    /// Announces that this node leaves the cluster (graceful shutdown), so
    /// the others drop it at once; heartbeats stop with
    /// [`Node::shutdown`](super::Node::shutdown). Returns once the
    /// announcement came back over the bus (a NATS publish only fills the
    /// client's buffer, which a process exit would lose), or after
    /// [`LEAVE_TIMEOUT`]; a no-op without a bus.
    pub(crate) async fn leave_cluster(&self) {
        if !self.cluster.enabled() {
            return;
        }
        let announce = async {
            self.broadcast(Kind::Shutdown(wire::ShutdownMsg {})).await?;
            self.cluster.leave_echo.notified().await;
            Ok::<(), EngineError>(())
        };
        match tokio::time::timeout(LEAVE_TIMEOUT, announce).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cluster leave not announced"),
            Err(_) => tracing::warn!("cluster leave not confirmed in time"),
        }
    }

    /// How many nodes are live, this one included.
    pub(crate) fn num_nodes(&self) -> usize {
        1 + self.cluster.live_peers().len()
    }

    /// Every live node's report, this node's first, then by name.
    pub(crate) fn cluster_info(&self) -> Vec<NodeReport> {
        let mut others: Vec<NodeReport> = self
            .cluster
            .live_peers()
            .into_iter()
            .map(|(_, p)| NodeReport {
                info: p.info,
                version: p.version,
            })
            .collect();
        others.sort_by(|a, b| a.info.name.cmp(&b.info.name));
        let mut all = vec![NodeReport {
            info: self.info(),
            version: super::VERSION.to_owned(),
        }];
        all.extend(others);
        all
    }

    /// Channels with subscribers on any live node and their total counts.
    pub(crate) async fn cluster_channels(&self) -> Result<Vec<(String, u32)>, EngineError> {
        let mut total: HashMap<String, u32> = HashMap::new();
        for (name, n) in self.channel_counts() {
            *total.entry(name).or_default() += n;
        }
        let expected = self.cluster.live_peers().len();
        if !self.cluster.enabled() || expected == 0 {
            return Ok(total.into_iter().collect());
        }
        let id = self.cluster.next_id();
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.cluster.surveys.lock().insert(id, tx);
        let sent = self
            .broadcast(Kind::Survey(wire::SurveyRequest {
                id,
                op: "channels".into(),
            }))
            .await;
        if let Err(e) = sent {
            self.cluster.surveys.lock().remove(&id);
            return Err(e);
        }
        let gather = async {
            let mut got = 0;
            while got < expected {
                let Some(reply) = rx.recv().await else { break };
                got += 1;
                for (name, n) in reply.channels {
                    let slot = total.entry(name).or_default();
                    *slot = slot.saturating_add(n);
                }
            }
            got
        };
        let got = tokio::time::timeout(SURVEY_TIMEOUT, gather).await;
        self.cluster.surveys.lock().remove(&id);
        if got.is_err() {
            tracing::warn!(expected, "channels survey: not every node answered in time");
        }
        Ok(total.into_iter().collect())
    }

    async fn heartbeat(&self) {
        let info = self.info();
        let msg = wire::NodeMsg {
            name: info.name,
            version: super::VERSION.to_owned(),
            num_clients: info.num_clients,
            num_users: info.num_users,
            num_channels: info.num_channels,
            num_subs: info.num_subs,
            uptime: info.uptime,
        };
        if let Err(e) = self.broadcast(Kind::Node(msg)).await {
            tracing::warn!(error = %e, "cluster heartbeat not published");
        }
    }

    /// Handles one incoming control message.
    fn on_control(
        self: &Arc<Self>,
        payload: &[u8],
        commands: &mpsc::UnboundedSender<Kind>,
    ) -> Option<()> {
        let msg = match ControlMessage::decode(payload) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable control message; dropped");
                return None;
            }
        };
        if msg.uid == self.id {
            if matches!(msg.kind, Some(Kind::Shutdown(_))) {
                self.cluster.leave_echo.notify_one();
            }
            return Some(());
        }
        match msg.kind? {
            Kind::Node(n) => {
                let info = NodeInfo {
                    uid: msg.uid.clone(),
                    name: n.name,
                    num_clients: n.num_clients,
                    num_users: n.num_users,
                    num_channels: n.num_channels,
                    num_subs: n.num_subs,
                    uptime: n.uptime,
                };
                let peer = Peer {
                    info,
                    version: n.version,
                    seen: Instant::now(),
                };
                self.cluster.heard(msg.uid, peer);
            }
            Kind::Shutdown(_) => self.cluster.remove_peer(msg.uid),
            cmd @ (Kind::Disconnect(_)
            | Kind::Unsubscribe(_)
            | Kind::Subscribe(_)
            | Kind::Refresh(_)) => {
                let _ = commands.send(cmd);
            }
            Kind::Survey(req) => {
                if req.op != "channels" {
                    return Some(());
                }
                let reply = wire::SurveyReply {
                    id: req.id,
                    to: msg.uid,
                    channels: self.channel_counts().into_iter().collect(),
                };
                self.spawn_broadcast(Kind::SurveyReply(reply));
            }
            Kind::SurveyReply(reply) => {
                if reply.to == self.id
                    && let Some(tx) = self.cluster.surveys.lock().get(&reply.id)
                {
                    let _ = tx.send(reply);
                }
            }
            Kind::Emulation(req) => {
                if req.to != self.id {
                    return Some(());
                }
                let code = match self.deliver_emulation(&req.session, req.data) {
                    Err(EmulationError::InboxFull) => wire::EMULATION_FULL,
                    _ => wire::EMULATION_OK,
                };
                let reply = wire::EmulationReply {
                    id: req.id,
                    to: msg.uid,
                    code,
                };
                self.spawn_broadcast(Kind::EmulationReply(reply));
            }
            Kind::EmulationReply(reply) => {
                if reply.to == self.id
                    && let Some(tx) = self.cluster.forwards.lock().remove(&reply.id)
                {
                    let _ = tx.send(reply.code);
                }
            }
        }
        Some(())
    }

    fn spawn_broadcast(self: &Arc<Self>, kind: Kind) {
        let node = self.clone();
        tokio::spawn(async move {
            if let Err(e) = node.broadcast(kind).await {
                tracing::warn!(error = %e, "cluster reply not published");
            }
        });
    }
}

async fn read_loop(
    node: Weak<Node>,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
    commands: mpsc::UnboundedSender<Kind>,
) {
    while let Some(payload) = rx.recv().await {
        let Some(node) = node.upgrade() else { return };
        let _ = node.on_control(&payload, &commands);
    }
}

async fn heartbeat_loop(node: Weak<Node>) {
    loop {
        {
            let Some(node) = node.upgrade() else { return };
            if node.shutdown.is_cancelled() {
                return;
            }
            node.heartbeat().await;
        }
        tokio::time::sleep(HEARTBEAT_INTERVAL).await;
    }
}

/// Forwards `/emulation` frames over the control bus.
struct Forwarder {
    node: Weak<Node>,
}

#[async_trait::async_trait]
impl EmulationForwarder for Forwarder {
    async fn forward(&self, to: &str, session: &str, data: Bytes) -> Result<(), EmulationError> {
        let Some(node) = self.node.upgrade() else {
            return Err(EmulationError::Forward("node stopped".into()));
        };
        if !node.cluster.is_live(to) {
            return Err(EmulationError::UnknownNode);
        }
        let id = node.cluster.next_id();
        let (tx, rx) = oneshot::channel();
        node.cluster.forwards.lock().insert(id, tx);
        let msg = wire::EmulationMsg {
            id,
            to: to.to_owned(),
            session: session.to_owned(),
            data,
        };
        if let Err(e) = node.broadcast(Kind::Emulation(msg)).await {
            node.cluster.forwards.lock().remove(&id);
            return Err(EmulationError::Forward(e.to_string()));
        }
        let outcome = tokio::time::timeout(FORWARD_TIMEOUT, rx).await;
        node.cluster.forwards.lock().remove(&id);
        match outcome {
            Ok(Ok(wire::EMULATION_FULL)) => Err(EmulationError::InboxFull),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) | Err(_) => Err(EmulationError::Forward("no reply from node".into())),
        }
    }
}

#[cfg(test)]
mod tests;
