//! Two in-process nodes joined by a [`LoopbackBus`].

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::config::Config;

/// An in-process bus: every clone delivers to the sinks of all clones
/// (nodes of one process, for tests).
#[derive(Clone, Default)]
struct LoopbackBus {
    sinks: Arc<Mutex<Vec<mpsc::UnboundedSender<Bytes>>>>,
}

#[async_trait::async_trait]
impl ControlBus for LoopbackBus {
    async fn publish(&self, msg: Bytes) -> Result<(), EngineError> {
        self.sinks.lock().retain(|s| s.send(msg.clone()).is_ok());
        Ok(())
    }

    async fn run(&self, sink: mpsc::UnboundedSender<Bytes>) -> Result<(), EngineError> {
        self.sinks.lock().push(sink);
        Ok(())
    }
}

async fn pair() -> (Arc<Node>, Arc<Node>) {
    let bus = LoopbackBus::default();
    let a = Node::new(Config::default()).await.expect("node a");
    let b = Node::new(Config::default()).await.expect("node b");
    start(&a, Arc::new(bus.clone())).await.expect("a joins");
    start(&b, Arc::new(bus)).await.expect("b joins");
    // The first heartbeats went out at start; wait until both saw them.
    for _ in 0..100 {
        if a.cluster_info().len() == 2 && b.cluster_info().len() == 2 {
            return (a, b);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("nodes did not see each other");
}

#[tokio::test]
async fn heartbeats_list_both_nodes() {
    let (a, b) = pair().await;
    let on_a = a.cluster_info();
    assert_eq!(on_a[0].info.uid, a.id);
    assert_eq!(on_a[1].info.uid, b.id);
    assert_eq!(on_a[1].version, crate::node::VERSION);
}

#[tokio::test]
async fn stale_peers_are_dropped() {
    let (a, b) = pair().await;
    if let Some(p) = a.cluster.peers.lock().get_mut(&b.id) {
        p.seen = Instant::now()
            .checked_sub(NODE_MAX_DELAY + Duration::from_secs(1))
            .expect("instant");
    }
    assert_eq!(a.cluster_info().len(), 1);
}

#[tokio::test]
async fn emulation_is_forwarded_to_the_owning_node() {
    let (a, b) = pair().await;
    let (_guard, mut rx) = b.emulation.register("s");
    let b_id = b.id.clone();
    assert_eq!(
        a.route_emulation(&b_id, "s", Bytes::from_static(b"cmd"))
            .await,
        Ok(())
    );
    assert_eq!(rx.recv().await.as_deref(), Some(&b"cmd"[..]));
    assert_eq!(
        a.route_emulation("nobody", "s", Bytes::new()).await,
        Err(EmulationError::UnknownNode)
    );
}

#[tokio::test]
async fn channels_survey_answers_without_other_channels() {
    let (a, _b) = pair().await;
    let channels = a.cluster_channels().await.expect("survey");
    assert!(channels.is_empty());
}

#[tokio::test]
async fn a_leaving_node_is_dropped_at_once_and_stays_dropped() {
    let (a, b) = pair().await;
    b.shutdown.cancel();
    b.leave_cluster().await;
    for _ in 0..100 {
        if a.cluster_info().len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(a.cluster_info().len(), 1);
    // A heartbeat that was still in flight does not bring it back.
    b.heartbeat().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(a.cluster_info().len(), 1);
}
