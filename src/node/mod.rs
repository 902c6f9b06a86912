//! The node: owns the configuration snapshot, the hub, the engine and the
//! token verifiers, and carries the publish path (node → engine → every
//! node's hub → sessions).

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use tokio_util::sync::CancellationToken;

pub(crate) use crate::auth::Verifiers;
use crate::channel::{ChannelRules, ResolvedOptions};
use crate::config::Config;
use crate::engine::{
    Broker, ClientInfo, EngineError, HistoryFilter, HistoryOptions, HistoryResult, PresenceManager,
    PresenceStats, PublishOptions, PublishResult,
};
use crate::hub::Hub;
use crate::protocol::Disconnect;
use crate::proxy::Proxies;
use crate::settings::Settings;

pub(crate) mod cluster;
pub mod control;
pub mod emulation;
mod engines;
pub(crate) mod limits;

/// Version reported to clients in connect replies.
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Lock stripes serializing hub membership changes with engine
/// subscribe/unsubscribe for the same channel.
const SUB_LOCKS: usize = 256;

/// The orchestrator of one Rotor process.
pub struct Node {
    /// Unique id of this process (sent to emulation clients).
    pub id: String,
    /// Human name (`node.name`, default `<hostname>_<port>`).
    pub name: String,
    config: Arc<Config>,
    rules: ArcSwap<ChannelRules>,
    verifiers: ArcSwap<Verifiers>,
    /// Local registry and fan-out.
    pub hub: Arc<Hub>,
    broker: Arc<dyn Broker>,
    presence: Arc<dyn PresenceManager>,
    sub_locks: Vec<tokio::sync::Mutex<()>>,
    /// Admission of new connections (limits shared by every transport).
    pub(crate) admission: Arc<limits::Admission>,
    /// Cancelled when the node shuts down.
    pub(crate) shutdown: CancellationToken,
    /// When the node was built (for the uptime in `info`).
    started: std::time::Instant,
    /// Every configured proxy (event hook).
    proxies: Proxies,
    /// Emulated connections' inboxes and the cluster forwarder.
    pub emulation: emulation::Emulation,
    /// Other nodes of the cluster and the control bus (none on one node).
    pub(crate) cluster: cluster::Cluster,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// Builds a node on the engine, broker and presence manager the config
    /// names (see [`engines`]), joined to the cluster when the broker
    /// carries a control bus.
    pub async fn new(config: Config) -> Result<Arc<Self>, String> {
        let settings = Settings::resolve(&config)?;
        let built = engines::build(&settings.backends).await?;
        let node = Self::assemble(config, settings, built.broker, built.presence).await?;
        if let Some(bus) = built.bus {
            cluster::start(&node, bus)
                .await
                .map_err(|e| format!("engine: control channel: {e}"))?;
        }
        Ok(node)
    }

    async fn assemble(
        config: Config,
        settings: Settings,
        broker: Arc<dyn Broker>,
        presence: Arc<dyn PresenceManager>,
    ) -> Result<Arc<Self>, String> {
        let Settings {
            rules,
            verifiers,
            proxies,
            ..
        } = settings;
        let name = if config.node.name.is_empty() {
            let host = hostname::get()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_else(|_| "rotor".into());
            format!("{host}_{}", config.http_server.port)
        } else {
            config.node.name.clone()
        };
        let hub = Arc::new(Hub::new());
        broker
            .run(hub.clone())
            .await
            .map_err(|e| format!("engine: {e}"))?;
        let admission = Arc::new(limits::Admission::new(
            config.client.connection_limit,
            config.client.connection_rate_limit,
        ));
        Ok(Arc::new(Self {
            admission,
            id: uuid::Uuid::new_v4().to_string(),
            name,
            config: Arc::new(config),
            rules: ArcSwap::from_pointee(rules),
            verifiers: ArcSwap::from_pointee(verifiers),
            hub,
            broker,
            presence,
            sub_locks: (0..SUB_LOCKS)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            shutdown: CancellationToken::new(),
            started: std::time::Instant::now(),
            proxies,
            emulation: emulation::Emulation::default(),
            cluster: cluster::Cluster::default(),
        }))
    }

    /// The configuration in force.
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// Channel rules in force.
    pub fn rules(&self) -> Arc<ChannelRules> {
        self.rules.load_full()
    }

    /// Every configured proxy.
    pub(crate) fn proxies(&self) -> &Proxies {
        &self.proxies
    }

    /// Token verifiers in force.
    pub(crate) fn verifiers(&self) -> Arc<Verifiers> {
        self.verifiers.load_full()
    }

    /// Swaps the reloadable parts (channel options and token keys).
    pub(crate) fn reload(&self, cfg: &Config) -> Result<(), String> {
        let rules = ChannelRules::new(&cfg.channel)?;
        let verifiers = Verifiers::new(cfg)?;
        self.rules.store(Arc::new(rules));
        self.verifiers.store(Arc::new(verifiers));
        Ok(())
    }

    fn sub_lock(&self, channel: &str) -> &tokio::sync::Mutex<()> {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let h = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .hash_one(channel);
        &self.sub_locks[(h as usize) % SUB_LOCKS]
    }

    /// Adds the local subscriber `client_id` to the channel with `add` (the
    /// session's [`Hub::add_subscriber`], which says whether it is the
    /// channel's first here), subscribing this node in the engine when it
    /// is; if that fails, the subscriber is removed again. The channel's
    /// lock orders this with [`Node::remove_subscription`].
    pub(crate) async fn add_subscription(
        &self,
        channel: &str,
        client_id: &str,
        add: impl FnOnce(&Hub) -> bool,
    ) -> Result<(), EngineError> {
        let _guard = self.sub_lock(channel).lock().await;
        if add(&self.hub)
            && let Err(e) = self.broker.subscribe(channel).await
        {
            self.hub.remove_subscriber(channel, client_id);
            return Err(e);
        }
        Ok(())
    }

    /// Removes a local subscriber, unsubscribing this node in the engine
    /// when it was the last.
    pub(crate) async fn remove_subscription(&self, channel: &str, client_id: &str) {
        let _guard = self.sub_lock(channel).lock().await;
        if self.hub.remove_subscriber(channel, client_id)
            && let Err(e) = self.broker.unsubscribe(channel).await
        {
            tracing::warn!(channel, error = %e, "engine unsubscribe failed");
        }
    }

    /// Engine options for publishing into a channel with these options.
    pub fn publish_options(&self, opts: &ResolvedOptions) -> PublishOptions {
        PublishOptions {
            history_size: opts.opts.history_size,
            history_ttl: opts.opts.history_ttl.get(),
            history_meta_ttl: opts.history_meta_ttl,
            use_delta: opts.opts.delta_publish,
            ..Default::default()
        }
    }

    /// Publishes into a channel.
    pub async fn publish(
        &self,
        channel: &str,
        data: Bytes,
        opts: &PublishOptions,
    ) -> Result<PublishResult, EngineError> {
        self.broker.publish(channel, data, opts).await
    }

    /// Reads a channel's history.
    pub async fn history(
        &self,
        channel: &str,
        filter: HistoryFilter,
        meta_ttl: Duration,
    ) -> Result<HistoryResult, EngineError> {
        self.broker
            .history(channel, &HistoryOptions { filter, meta_ttl })
            .await
    }

    /// Drops a channel's history.
    pub(crate) async fn remove_history(&self, channel: &str) -> Result<(), EngineError> {
        self.broker.remove_history(channel).await
    }

    /// Announces a join.
    pub(crate) async fn publish_join(
        &self,
        channel: &str,
        info: &ClientInfo,
    ) -> Result<(), EngineError> {
        self.broker.publish_join(channel, info).await
    }

    /// Announces a leave.
    pub(crate) async fn publish_leave(
        &self,
        channel: &str,
        info: &ClientInfo,
    ) -> Result<(), EngineError> {
        self.broker.publish_leave(channel, info).await
    }

    /// Everyone present in a channel.
    pub async fn presence(
        &self,
        channel: &str,
    ) -> Result<std::collections::HashMap<String, ClientInfo>, EngineError> {
        self.presence.presence(channel).await
    }

    /// Presence counts.
    pub(crate) async fn presence_stats(&self, channel: &str) -> Result<PresenceStats, EngineError> {
        self.presence.presence_stats(channel).await
    }

    /// Adds or refreshes a presence entry.
    pub(crate) async fn add_presence(
        &self,
        channel: &str,
        client_id: &str,
        info: &ClientInfo,
    ) -> Result<(), EngineError> {
        self.presence.add_presence(channel, client_id, info).await
    }

    /// Removes a presence entry.
    pub(crate) async fn remove_presence(
        &self,
        channel: &str,
        client_id: &str,
        user: &str,
    ) -> Result<(), EngineError> {
        self.presence
            .remove_presence(channel, client_id, user)
            .await
    }

    /// Phase one of shutdown: every client is told to reconnect (3001).
    pub(crate) fn shutdown_clients(&self) {
        self.shutdown.cancel();
        self.hub.disconnect_all(&Disconnect::SHUTDOWN);
    }
}
