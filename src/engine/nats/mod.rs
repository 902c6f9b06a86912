//! The NATS [`Broker`] (`broker.enabled: true`, `broker.type: nats`): PUB/SUB
//! only, at most once, in NATS order, as Centrifugo's NATS broker.
//!
//! * Channel `ch` maps to the subject `<prefix>.client.<ch>`; payloads are
//!   Centrifugo's: a protobuf `Push` carrying `channel` and one of `pub`,
//!   `join`, `leave`, so Rotor and Centrifugo nodes can share one NATS.
//! * Channels that are not valid subject tails (empty tokens, whitespace,
//!   the wildcards `*` and `>`) are refused as bad requests: NATS would
//!   otherwise misroute or silently drop them.
//! * There is no history: publications carry no offset or epoch whatever
//!   the channel options say, and history reads and `remove_history` fail
//!   with [`EngineError::NotAvailable`] (Centrifugo's "not available").
//!   Idempotency keys and versions are ignored, as in Centrifugo.
//!   Presence comes from the engine (`engine.type` memory or redis).
//! * Each subscribed channel has one NATS subscription drained by one task,
//!   so deliveries of a channel are ordered and never concurrent.
//!   `subscribe` returns once the server has the subscription (a round trip
//!   after the `SUB`), so a publish from any node after it is delivered.
//! * A dead or unreachable NATS fails publishes at once while disconnected
//!   and within `write_timeout` otherwise; a NATS that stops answering
//!   without closing the connection is noticed by PINGs within ~5 s. The
//!   client reconnects forever and re-subscribes by itself.
//! * Cluster control (heartbeats, commands to every node, surveys,
//!   emulation forwarding) rides on the same connection, subject
//!   `<prefix>.control` ([`NatsControlBus`]).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use async_nats::client::RequestErrorKind;
use async_nats::connection::State;
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use prost::Message;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::engine::{
    Broker, BrokerEventHandler, ClientInfo, EngineError, HistoryOptions, HistoryResult,
    Publication, PublishOptions, PublishResult, StreamPosition,
};
use crate::proto::client::{Join, Leave, Push};

pub(crate) mod config;
mod control;

pub use config::{NatsSettings, NatsTls};

/// Tag under which Centrifugo attaches an epoch to a publication that
/// carries an offset (only the experimental Redis+NATS broker sends one).
const EPOCH_TAG: &str = "__centrifugo_epoch";

/// PING period: a server that stops answering without closing the
/// connection is dropped after three unanswered PINGs (~4.5 s), after which
/// publishes fail at once instead of vanishing into a dead socket.
const PING_INTERVAL: std::time::Duration = std::time::Duration::from_millis(1500);

fn unavailable(e: impl std::fmt::Display) -> EngineError {
    EngineError::Unavailable(format!("nats: {e}"))
}

/// One channel's NATS subscription: the task draining it and its stop
/// signal.
struct ChannelSub {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// [`Broker`] on NATS core PUB/SUB.
pub struct NatsBroker {
    client: async_nats::Client,
    settings: NatsSettings,
    client_prefix: String,
    handler: Arc<OnceLock<Arc<dyn BrokerEventHandler>>>,
    subs: tokio::sync::Mutex<HashMap<String, ChannelSub>>,
}

impl std::fmt::Debug for NatsBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsBroker")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl NatsBroker {
    /// Connects to NATS; fails within `dial_timeout` (plus margin) when the
    /// server cannot be reached.
    pub async fn connect(settings: &NatsSettings) -> Result<Self, EngineError> {
        let url = config::redact(&settings.url);
        let options = async_nats::ConnectOptions::new()
            .name("rotor")
            .connection_timeout(settings.dial_timeout)
            .request_timeout(Some(settings.write_timeout))
            .max_reconnects(None)
            .ping_interval(PING_INTERVAL)
            .event_callback(move |event| {
                let url = url.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => tracing::info!(%url, "nats connected"),
                        async_nats::Event::Disconnected => {
                            tracing::warn!(%url, "nats disconnected")
                        }
                        other => tracing::warn!(%url, event = %other, "nats event"),
                    }
                }
            });
        let options = match &settings.tls {
            None => options,
            Some(tls) => options
                .require_tls(true)
                .tls_client_config(client_tls(tls).map_err(unavailable)?),
        };
        let connect = options.connect(settings.url.as_str());
        let client = tokio::time::timeout(settings.dial_timeout * 2, connect)
            .await
            .map_err(|_| {
                unavailable(format!(
                    "connect to {}: timed out",
                    config::redact(&settings.url)
                ))
            })?
            .map_err(|e| {
                unavailable(format!("connect to {}: {e}", config::redact(&settings.url)))
            })?;
        Ok(Self {
            client,
            client_prefix: format!("{}.client.", settings.prefix),
            settings: settings.clone(),
            handler: Arc::new(OnceLock::new()),
            subs: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The subject of `channel`, or a bad request when the channel cannot
    /// be one.
    fn subject(&self, channel: &str) -> Result<String, EngineError> {
        let subject = format!("{}{channel}", self.client_prefix);
        if config::valid_subject(&subject) {
            Ok(subject)
        } else {
            Err(EngineError::BadRequest(
                "channel name is not usable as a NATS subject",
            ))
        }
    }

    fn check_connected(&self) -> Result<(), EngineError> {
        match self.client.connection_state() {
            State::Connected => Ok(()),
            state => Err(unavailable(format!("not connected ({state})"))),
        }
    }

    async fn send(&self, channel: &str, push: Push) -> Result<(), EngineError> {
        let subject = self.subject(channel)?;
        self.check_connected()?;
        let payload = Bytes::from(push.encode_to_vec());
        match tokio::time::timeout(
            self.settings.write_timeout,
            self.client.publish(subject, payload),
        )
        .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => match e.kind() {
                async_nats::client::PublishErrorKind::MaxPayloadExceeded => Err(
                    EngineError::BadRequest("payload exceeds the NATS max_payload"),
                ),
                async_nats::client::PublishErrorKind::InvalidSubject => Err(
                    EngineError::BadRequest("channel name is not usable as a NATS subject"),
                ),
                _ => Err(unavailable(format!("publish: {e}"))),
            },
            Err(_) => Err(unavailable("publish timed out")),
        }
    }

    /// The cluster control bus on this broker's connection.
    pub(crate) fn control_bus(&self) -> control::NatsControlBus {
        control::NatsControlBus::new(
            self.client.clone(),
            &self.settings.prefix,
            self.settings.write_timeout,
        )
    }

    async fn round_trip(&self) -> Result<(), EngineError> {
        round_trip(
            &self.client,
            &self.settings.prefix,
            self.settings.write_timeout,
        )
        .await
    }
}

/// Waits until the server has processed everything sent before: a
/// request nobody answers comes back "no responders" only after the
/// server handled the commands queued ahead of it.
async fn round_trip(
    client: &async_nats::Client,
    prefix: &str,
    timeout: std::time::Duration,
) -> Result<(), EngineError> {
    let request = client.request(format!("{prefix}.rotor.sync"), Bytes::new());
    match tokio::time::timeout(timeout, request).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) if e.kind() == RequestErrorKind::NoResponders => Ok(()),
        Ok(Err(e)) => Err(unavailable(format!("subscribe: {e}"))),
        Err(_) => Err(unavailable("subscribe timed out")),
    }
}

/// Decodes one NATS message and hands it to the handler; malformed
/// payloads are logged and dropped.
fn deliver(handler: &dyn BrokerEventHandler, channel: &str, payload: &[u8]) {
    let push = match Push::decode(payload) {
        Ok(push) => push,
        Err(e) => {
            tracing::warn!(channel, error = %e, "undecodable message from nats");
            return;
        }
    };
    if let Some(mut publication) = push.r#pub {
        let position = match publication.tags.get(EPOCH_TAG) {
            Some(epoch) if publication.offset > 0 => StreamPosition {
                offset: publication.offset,
                epoch: epoch.clone(),
            },
            _ => StreamPosition::default(),
        };
        publication.delta = false;
        // No history on NATS, so no previous publication to diff against.
        handler.handle_publication(channel, Arc::new(publication), position, None);
    } else if let Some(join) = push.join {
        handler.handle_join(channel, join.info.unwrap_or_default());
    } else if let Some(leave) = push.leave {
        handler.handle_leave(channel, leave.info.unwrap_or_default());
    } else {
        tracing::warn!(channel, "unknown push from nats");
    }
}

#[async_trait]
impl Broker for NatsBroker {
    async fn run(&self, handler: Arc<dyn BrokerEventHandler>) -> Result<(), EngineError> {
        self.handler
            .set(handler)
            .map_err(|_| EngineError::BadRequest("broker already running"))
    }

    async fn publish(
        &self,
        channel: &str,
        data: Bytes,
        opts: &PublishOptions,
    ) -> Result<PublishResult, EngineError> {
        let push = Push {
            channel: channel.to_owned(),
            r#pub: Some(Publication {
                data,
                info: opts.client_info.clone(),
                tags: opts.tags.clone(),
                ..Publication::default()
            }),
            ..Push::default()
        };
        self.send(channel, push).await?;
        Ok(PublishResult::default())
    }

    async fn publish_join(&self, channel: &str, info: &ClientInfo) -> Result<(), EngineError> {
        let push = Push {
            channel: channel.to_owned(),
            join: Some(Join {
                info: Some(info.clone()),
            }),
            ..Push::default()
        };
        self.send(channel, push).await
    }

    async fn publish_leave(&self, channel: &str, info: &ClientInfo) -> Result<(), EngineError> {
        let push = Push {
            channel: channel.to_owned(),
            leave: Some(Leave {
                info: Some(info.clone()),
            }),
            ..Push::default()
        };
        self.send(channel, push).await
    }

    async fn subscribe(&self, channel: &str) -> Result<(), EngineError> {
        let subject = self.subject(channel)?;
        {
            let mut subs = self.subs.lock().await;
            if subs.contains_key(channel) {
                return Ok(());
            }
            self.check_connected()?;
            let subscribe = self.client.subscribe(subject);
            let mut subscriber = tokio::time::timeout(self.settings.write_timeout, subscribe)
                .await
                .map_err(|_| unavailable("subscribe timed out"))?
                .map_err(|e| unavailable(format!("subscribe: {e}")))?;
            let stop = CancellationToken::new();
            let handler = self.handler.clone();
            let name = channel.to_owned();
            let stopped = stop.clone();
            let task = tokio::spawn(async move {
                loop {
                    tokio::select! {
                        biased;
                        () = stopped.cancelled() => break,
                        message = subscriber.next() => {
                            let Some(message) = message else { break };
                            if let Some(handler) = handler.get() {
                                deliver(handler.as_ref(), &name, &message.payload);
                            }
                        }
                    }
                }
                let _ = subscriber.unsubscribe().await;
            });
            subs.insert(channel.to_owned(), ChannelSub { stop, task });
        }
        if let Err(e) = self.round_trip().await {
            // Not known to be active: undo, so a retry subscribes afresh.
            let _ = self.unsubscribe(channel).await;
            return Err(e);
        }
        Ok(())
    }

    async fn unsubscribe(&self, channel: &str) -> Result<(), EngineError> {
        let removed = self.subs.lock().await.remove(channel);
        if let Some(sub) = removed {
            sub.stop.cancel();
            // The task stops between deliveries: once it has ended nothing
            // more is delivered for this subscription.
            let _ = sub.task.await;
        }
        Ok(())
    }

    async fn history(
        &self,
        _channel: &str,
        _opts: &HistoryOptions,
    ) -> Result<HistoryResult, EngineError> {
        Err(EngineError::NotAvailable)
    }

    async fn remove_history(&self, _channel: &str) -> Result<(), EngineError> {
        Err(EngineError::NotAvailable)
    }
}

impl Drop for NatsBroker {
    fn drop(&mut self) {
        if let Ok(subs) = self.subs.try_lock() {
            for sub in subs.values() {
                sub.stop.cancel();
            }
        }
    }
}

/// The rustls client configuration of `tls`: its CA (else the system
/// roots) and its client certificate.
fn client_tls(tls: &NatsTls) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    match &tls.server_ca_pem {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| format!("broker.nats.tls.server_ca_pem: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("broker.nats.tls.server_ca_pem: {e}"))?;
            }
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("broker.nats.tls: {e}"))?
        .with_root_certificates(roots);
    match &tls.client_cert {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("broker.nats.tls.cert_pem: {e}"))?;
            let key = PrivateKeyDer::from_pem_slice(key)
                .map_err(|e| format!("broker.nats.tls.key_pem: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("broker.nats.tls.cert_pem: {e}"))
        }
    }
}
