//! Batching of `SUBSCRIBE` / `UNSUBSCRIBE` on the PUB/SUB connection.
//!
//! Requests queue up while a command is in flight; the next command then
//! carries all of them (up to [`MAX_BATCH`] channels), so a burst of
//! subscriptions — many clients connecting, or a node resubscribing after
//! a restart — costs a few round trips instead of one per channel. Requests
//! are taken in arrival order and only consecutive requests of the same kind
//! are merged, so one channel's subscribe/unsubscribe order is kept. On a
//! Redis Cluster one batch becomes one `SSUBSCRIBE` per channel, sent
//! concurrently (see [`Conn::subscribe_channels`]).

use std::collections::HashSet;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::conn::Conn;
use super::unavailable;
use crate::engine::EngineError;

/// Most channels in one command.
const MAX_BATCH: usize = 512;

struct Request {
    /// PUB/SUB channel name (already prefixed).
    name: String,
    subscribe: bool,
    done: oneshot::Sender<Result<(), EngineError>>,
}

/// Handle to the batching task; the task ends when the handle is dropped.
pub(super) struct Batcher {
    tx: mpsc::UnboundedSender<Request>,
    call_timeout: Duration,
}

impl Batcher {
    /// Starts the task that sends the commands on `conn`.
    pub(super) fn start(conn: Conn, call_timeout: Duration) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(worker(conn, call_timeout, rx));
        Self { tx, call_timeout }
    }

    /// Subscribes (`subscribe`) or unsubscribes the PUB/SUB channel `name`;
    /// resolves when Redis confirmed, failing after the call timeout.
    pub(super) async fn send(&self, subscribe: bool, name: String) -> Result<(), EngineError> {
        let (done, result) = oneshot::channel();
        self.tx
            .send(Request {
                name,
                subscribe,
                done,
            })
            .map_err(|_| unavailable("subscription task stopped"))?;
        match tokio::time::timeout(self.call_timeout, result).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(unavailable("subscription task stopped")),
            Err(_) => Err(unavailable("subscribe timed out")),
        }
    }
}

async fn worker(conn: Conn, call_timeout: Duration, mut rx: mpsc::UnboundedReceiver<Request>) {
    let mut pending: Vec<Request> = Vec::new();
    while let Some(first) = rx.recv().await {
        pending.push(first);
        while pending.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(request) => pending.push(request),
                Err(_) => break,
            }
        }
        while let Some(kind) = pending.first().map(|r| r.subscribe) {
            let n = pending
                .iter()
                .position(|r| r.subscribe != kind)
                .unwrap_or(pending.len());
            let run: Vec<Request> = pending.drain(..n).collect();
            let mut seen = HashSet::with_capacity(run.len());
            let names: Vec<String> = run
                .iter()
                .filter(|r| seen.insert(r.name.as_str()))
                .map(|r| r.name.clone())
                .collect();
            let result = execute(conn.clone(), kind, names, call_timeout).await;
            for request in run {
                // The caller may have given up (timeout); nothing to do then.
                let _ = request.done.send(result.clone());
            }
        }
    }
}

async fn execute(
    conn: Conn,
    subscribe: bool,
    names: Vec<String>,
    call_timeout: Duration,
) -> Result<(), EngineError> {
    let call = async move { conn.subscribe_channels(subscribe, names).await };
    match tokio::time::timeout(call_timeout, call).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(unavailable(e)),
        Err(_) => Err(unavailable("subscribe timed out")),
    }
}
