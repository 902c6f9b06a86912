//! Applying other nodes' API commands (disconnect, unsubscribe, subscribe,
//! refresh) to this node's connections.
//!
//! One task applies them one after another in arrival order, so commands
//! for the same user keep the order their node published them in (each
//! waits at most [`CONTROL_WAIT`](crate::node::control::CONTROL_WAIT) for
//! stuck sessions). Heartbeats, surveys and emulation frames do not queue
//! behind them: the reading task handles those itself.

use std::sync::Weak;

use tokio::sync::mpsc;

use super::wire::{Kind, target_of};
use crate::node::Node;

/// Applies queued commands until the node or the queue goes away.
pub(super) async fn command_loop(node: Weak<Node>, mut rx: mpsc::UnboundedReceiver<Kind>) {
    while let Some(cmd) = rx.recv().await {
        let Some(node) = node.upgrade() else { return };
        apply(&node, cmd).await;
    }
}

async fn apply(node: &Node, cmd: Kind) {
    match cmd {
        Kind::Disconnect(m) => {
            let target = target_of(m.target);
            node.local_disconnect(&target, &m.whitelist, m.code, &m.reason)
                .await;
        }
        Kind::Unsubscribe(m) => {
            let target = target_of(m.target);
            node.local_unsubscribe(&m.channel, &target).await;
        }
        Kind::Subscribe(m) => node.local_subscribe(m.into()).await,
        Kind::Refresh(m) => {
            let refresh = m.refresh();
            node.local_refresh(&target_of(m.target), refresh).await;
        }
        _ => {}
    }
}
