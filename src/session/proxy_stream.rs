//! Subscription streams (`subscribe_stream_proxy_enabled`): the subscribe of
//! such a channel opens a gRPC stream to the backend, whose first message
//! decides like a subscribe proxy answer. Every later publication on the
//! stream goes to this one client only (no hub, broker or history), through
//! the connection's bounded outbound queue in stream order. With
//! `subscribe_stream_proxy_bidirectional` the client's `publish` on the
//! channel goes up the stream instead of the broker.
//!
//! The stream is dropped (and so cancelled at the backend) when the
//! subscription ends for any reason. When the backend ends the stream the
//! client is unsubscribed with code 2000; when the stream fails, with 2500
//! (insufficient state: the SDK resubscribes), as Centrifugo does.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::prepared::Prepared;
use super::proxy::{b64_or, failed, payload, rejection};
use super::publish::data_format_ok;
use super::shared::{Shared, Slot};
use super::subscribe::SubRequest;
use super::{Fail, Session, now_unix};
use crate::config::DataFormat;
use crate::engine::{Publication, StreamPosition};
use crate::proto::client::{PublishResult, Reply};
use crate::proto::proxy as pp;
use crate::protocol::{ClientError, Unsubscribe};
use crate::proxy::{StreamReader, StreamWriter};

/// One subscription's open stream, held by the session. Dropping it stops
/// the reading task, which drops the stream.
#[derive(Debug)]
pub(super) struct ProxyStream {
    /// Hands the live subscription's slot to the reading task once the
    /// subscribe reply is queued.
    start: Option<oneshot::Sender<Arc<Slot>>>,
    writer: Option<StreamWriter>,
    task: tokio::task::JoinHandle<()>,
}

/// The open streams of one session, by channel.
#[derive(Debug, Default)]
pub(super) struct ProxyStreams(HashMap<String, ProxyStream>);

impl Drop for ProxyStream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Session {
    /// Opens the namespace's subscription stream; the backend's first
    /// message decides the subscribe (and may set channel info, reply data,
    /// presence/join-leave overrides and an expiry). Recovery and
    /// positioning do not apply to streamed channels.
    pub(super) async fn proxy_stream_subscribe(
        &mut self,
        r: &mut SubRequest,
        data: &Bytes,
        token: String,
    ) -> Result<(), Fail> {
        let node = self.node.clone();
        let o = &r.opts.opts;
        let bidirectional = o.subscribe_stream_proxy_bidirectional;
        let Some(p) = node
            .proxies()
            .subscribe_stream(&o.subscribe_stream_proxy_name)
        else {
            tracing::warn!(name = %o.subscribe_stream_proxy_name, "subscribe stream proxy not configured");
            return Err(ClientError::NotAvailable.into());
        };
        let h = self.proxy_head(p);
        let (raw, b64data) = payload(p, data);
        let request = pp::SubscribeRequest {
            client: h.client,
            transport: h.transport,
            protocol: h.protocol,
            encoding: h.encoding,
            user: self.user.clone(),
            channel: r.channel.clone(),
            token,
            data: raw,
            b64data,
            meta: self.meta_for(p),
            ..Default::default()
        };
        let (resp, stream) = p
            .subscribe_stream(&self.transport.call, request, bidirectional)
            .await
            .map_err(|e| failed("subscribe_stream", &e))?;
        if let Some(f) = rejection(resp.error, resp.disconnect) {
            return Err(f);
        }
        if let Some(res) = resp.result {
            r.chan_info = b64_or(res.info, &res.b64info)?;
            r.data = b64_or(res.data, &res.b64data)?;
            r.override_ = res.r#override.map(Into::into).unwrap_or_default();
            if res.expire_at > 0 {
                if res.expire_at <= now_unix() {
                    return Err(ClientError::Expired.into());
                }
                r.expire_at = Some(res.expire_at);
            }
        }
        r.override_.force_recovery = Some(false);
        r.override_.force_positioning = Some(false);
        r.want_positioned = false;
        r.want_recoverable = false;
        r.recover = false;
        r.proxy_refresh = false;
        let (reader, writer) = stream.split();
        let (start, ready) = oneshot::channel();
        let task = tokio::spawn(pump(self.shared.clone(), r.channel.clone(), ready, reader));
        self.streams.get_or_insert_default().0.insert(
            r.channel.clone(),
            ProxyStream {
                start: Some(start),
                writer,
                task,
            },
        );
        Ok(())
    }

    /// Lets the stream of `channel` deliver, once the subscribe reply is
    /// queued. No-op for channels without a stream.
    pub(super) fn start_proxy_stream(&mut self, channel: &str) {
        let Some(s) = self.streams.as_mut().and_then(|m| m.0.get_mut(channel)) else {
            return;
        };
        match (s.start.take(), self.shared.slot(channel)) {
            (Some(start), Some(slot)) => {
                let _ = start.send(slot);
            }
            _ => self.stop_proxy_stream(channel),
        }
    }

    /// Drops the stream of `channel`, if any (subscription over).
    pub(super) fn stop_proxy_stream(&mut self, channel: &str) {
        if let Some(m) = self.streams.as_mut() {
            m.0.remove(channel);
            if m.0.is_empty() {
                self.streams = None;
            }
        }
    }

    /// Client `publish` on a streamed channel: up the bidirectional stream
    /// of the client's subscription. Without one the channel does not
    /// accept publications (108).
    pub(super) async fn stream_publish(
        &mut self,
        id: u32,
        channel: &str,
        data: Bytes,
        format: DataFormat,
    ) -> Result<(), Fail> {
        let Some(writer) = self
            .streams
            .as_ref()
            .and_then(|m| m.0.get(channel))
            .filter(|s| s.start.is_none())
            .and_then(|s| s.writer.clone())
        else {
            return Err(ClientError::NotAvailable.into());
        };
        if !data_format_ok(format, &data) {
            return Err(ClientError::BadRequest.into());
        }
        writer
            .publish(data)
            .await
            .map_err(|e| failed("subscribe_stream", &e))?;
        self.reply(Reply {
            id,
            publish: Some(PublishResult {}),
            ..Default::default()
        });
        Ok(())
    }
}

/// The reading task of one stream: waits until the subscription is live,
/// then writes each publication to the client in order. When the stream
/// ends or fails, unsubscribes the client (if the subscription is still
/// this one).
async fn pump(
    shared: Arc<Shared>,
    channel: String,
    ready: oneshot::Receiver<Arc<Slot>>,
    mut reader: StreamReader,
) {
    let Ok(slot) = ready.await else {
        return;
    };
    let position = StreamPosition::default();
    let unsubscribe = loop {
        match reader.next().await {
            Ok(Some(p)) => {
                let publication = Arc::new(Publication {
                    data: p.data,
                    tags: p.tags,
                    ..Default::default()
                });
                // Checks that the subscription is live and enqueues under
                // its lock; queue overflow closes the connection (3008).
                shared.deliver_publication(
                    &slot,
                    &channel,
                    &publication,
                    &position,
                    &Prepared::default(),
                );
                if shared.queue.closed().is_some() {
                    return;
                }
            }
            Ok(None) => break Unsubscribe::SERVER,
            Err(e) => {
                tracing::debug!(%channel, error = %e, "subscription stream failed");
                break Unsubscribe::INSUFFICIENT_STATE;
            }
        }
    };
    if shared
        .slot(&channel)
        .is_some_and(|held| Arc::ptr_eq(&held, &slot))
    {
        shared.unsubscribe_push(&channel, unsubscribe);
    }
}
