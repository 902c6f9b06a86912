//! The cluster [`ControlBus`] on NATS: every node publishes to and
//! subscribes the subject `<prefix>.control` (the subject Centrifugo's NATS
//! broker uses for its control messages), on the broker's own connection.
//! The NATS client resubscribes by itself after a reconnect; messages sent
//! while a node is disconnected are lost, as heartbeats and commands over
//! Redis PUB/SUB are.

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::{round_trip, unavailable};
use crate::engine::EngineError;
use crate::node::cluster::ControlBus;

/// Control messages over NATS core PUB/SUB.
pub(crate) struct NatsControlBus {
    client: async_nats::Client,
    subject: String,
    prefix: String,
    timeout: std::time::Duration,
}

impl std::fmt::Debug for NatsControlBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsControlBus")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl NatsControlBus {
    pub(super) fn new(
        client: async_nats::Client,
        prefix: &str,
        timeout: std::time::Duration,
    ) -> Self {
        Self {
            client,
            subject: format!("{prefix}.control"),
            prefix: prefix.to_owned(),
            timeout,
        }
    }
}

#[async_trait::async_trait]
impl ControlBus for NatsControlBus {
    async fn publish(&self, msg: Bytes) -> Result<(), EngineError> {
        let publish = self.client.publish(self.subject.clone(), msg);
        match tokio::time::timeout(self.timeout, publish).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(unavailable(format!("control publish: {e}"))),
            Err(_) => Err(unavailable("control publish timed out")),
        }
    }

    async fn run(&self, sink: mpsc::UnboundedSender<Bytes>) -> Result<(), EngineError> {
        let subscribe = self.client.subscribe(self.subject.clone());
        let mut subscriber = tokio::time::timeout(self.timeout, subscribe)
            .await
            .map_err(|_| unavailable("control subscribe timed out"))?
            .map_err(|e| unavailable(format!("control subscribe: {e}")))?;
        round_trip(&self.client, &self.prefix, self.timeout).await?;
        tokio::spawn(async move {
            while let Some(message) = subscriber.next().await {
                if sink.send(message.payload).is_err() {
                    break;
                }
            }
            let _ = subscriber.unsubscribe().await;
        });
        Ok(())
    }
}
