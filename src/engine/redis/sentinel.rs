//! Redis Sentinel: the master is whatever the Sentinels name.
//!
//! At connect the Sentinels are asked in turn (`SENTINEL
//! get-master-addr-by-name`; the first answer wins) and the command and
//! PUB/SUB connections go to that master. A watcher task then asks again
//! every [`REFRESH_INTERVAL`] and at once when something looks lost (a
//! failed command, a PUB/SUB disconnection or a failed liveness probe).
//! When the answer is another address it connects there, swaps both
//! connections in (callers pick the new ones up on their next call) and
//! subscribes every channel again on the new PUB/SUB connection. The
//! periodic check also catches the quiet failure of centrifugo #1189, where
//! the old connection stays up on a node that is no longer the master.

use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use redis::aio::ConnectionManager;
use redis::{IntoConnectionInfo, PushInfo};
use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedSender;

use super::conn::{self, Conn};
use super::pubsub::Delivery;
use super::{EngineError, Node, RedisSettings, SentinelSettings, Shard, config, unavailable};

/// How often the Sentinels are asked for the master without a reason.
pub(super) const REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// Least time between two checks, so a burst of failing calls does not
/// flood the Sentinels.
const MIN_GAP: Duration = Duration::from_millis(300);

/// The watcher of one Sentinel-managed master.
pub(crate) struct Sentinel {
    settings: RedisSettings,
    /// `host:port` of the master the connections point at.
    master: Mutex<String>,
    commands: Arc<ArcSwap<ConnectionManager>>,
    pubsub: Arc<ArcSwap<ConnectionManager>>,
    pushes: UnboundedSender<PushInfo>,
    refresh: Arc<Notify>,
}

fn sentinel_settings(settings: &RedisSettings) -> Result<&SentinelSettings, EngineError> {
    settings
        .sentinel
        .as_ref()
        .ok_or_else(|| unavailable("no sentinel settings"))
}

/// Asks one Sentinel for the master's `host:port`.
async fn ask(
    settings: &RedisSettings,
    sentinel: &SentinelSettings,
    address: &str,
) -> Result<String, EngineError> {
    let info = address.into_connection_info().map_err(|e| {
        unavailable(format!(
            "bad sentinel address {}: {e}",
            config::redact(address)
        ))
    })?;
    let mut redis_settings = info.redis_settings().clone();
    if !sentinel.user.is_empty() {
        redis_settings = redis_settings.set_username(&sentinel.user);
    }
    if !sentinel.password.is_empty() {
        redis_settings = redis_settings.set_password(&sentinel.password);
    }
    let client =
        redis::Client::open(info.set_redis_settings(redis_settings)).map_err(unavailable)?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(settings.connect_timeout))
        .set_response_timeout(Some(settings.io_timeout));
    let query = async {
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(&sentinel.master_name)
            .query_async::<Option<(String, u16)>>(&mut conn)
            .await
    };
    let budget = settings.connect_timeout + settings.io_timeout;
    match tokio::time::timeout(budget, query).await {
        Ok(Ok(Some((host, port)))) if host.contains(':') => Ok(format!("[{host}]:{port}")),
        Ok(Ok(Some((host, port)))) => Ok(format!("{host}:{port}")),
        Ok(Ok(None)) => Err(unavailable(format!(
            "sentinel {} knows no master {:?}",
            config::redact(address),
            sentinel.master_name
        ))),
        Ok(Err(e)) => Err(unavailable(format!(
            "sentinel {}: {e}",
            config::redact(address)
        ))),
        Err(_) => Err(unavailable(format!(
            "sentinel {} timed out",
            config::redact(address)
        ))),
    }
}

/// Asks the Sentinels in turn; the first answer wins.
async fn master_address(settings: &RedisSettings) -> Result<String, EngineError> {
    let sentinel = sentinel_settings(settings)?;
    let mut last = unavailable("no sentinel address");
    for address in &sentinel.addresses {
        match ask(settings, sentinel, address).await {
            Ok(master) => return Ok(master),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn master_url(sentinel: &SentinelSettings, master: &str) -> String {
    let scheme = if sentinel.master_tls {
        "rediss"
    } else {
        "redis"
    };
    format!("{scheme}://{master}")
}

/// Finds the master and connects to it; the watcher starts once the broker
/// has its delivery ([`Sentinel::watch`]).
pub(super) async fn connect(settings: &RedisSettings) -> Result<Node, EngineError> {
    let sentinel = sentinel_settings(settings)?;
    let master = master_address(settings).await?;
    let url = master_url(sentinel, &master);
    let commands = conn::manager(settings, &url, None).await?;
    let (tx, pushes) = tokio::sync::mpsc::unbounded_channel();
    let pubsub = conn::manager(settings, &url, Some(tx.clone())).await?;
    let commands = Arc::new(ArcSwap::from_pointee(commands));
    let pubsub = Arc::new(ArcSwap::from_pointee(pubsub));
    let refresh = Arc::new(Notify::new());
    tracing::info!(%master, name = %sentinel.master_name, "redis sentinel: master found");
    let watcher = Arc::new(Sentinel {
        settings: settings.clone(),
        master: Mutex::new(master),
        commands: commands.clone(),
        pubsub: pubsub.clone(),
        pushes: tx,
        refresh: refresh.clone(),
    });
    Ok(Node {
        shard: Shard::new(settings, Conn::Sentinel(commands), Some(refresh)),
        pubsub: Conn::Sentinel(pubsub),
        pushes,
        sentinel: Some(watcher),
    })
}

impl Sentinel {
    /// What wakes the watcher before its next periodic check.
    pub(super) fn refresh_signal(&self) -> Arc<Notify> {
        self.refresh.clone()
    }

    /// Starts the watcher; it ends when the delivery is dropped.
    pub(super) fn watch(self: Arc<Self>, delivery: Weak<Delivery>) {
        tokio::spawn(async move { self.run(delivery).await });
    }

    async fn run(&self, delivery: Weak<Delivery>) {
        // Channels still to subscribe after a switch whose resubscribe
        // failed.
        let mut resubscribe = false;
        loop {
            tokio::select! {
                () = tokio::time::sleep(REFRESH_INTERVAL) => {}
                () = self.refresh.notified() => {}
            }
            if delivery.strong_count() == 0 {
                return;
            }
            match master_address(&self.settings).await {
                Ok(master) if *self.master.lock() != master => match self.switch(&master).await {
                    Ok(()) => resubscribe = true,
                    Err(e) => tracing::warn!(error = %e, %master, "redis sentinel: switch failed"),
                },
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "redis sentinel: no master"),
            }
            if resubscribe && let Some(delivery) = delivery.upgrade() {
                match delivery.resubscribe_all().await {
                    Ok(()) => resubscribe = false,
                    Err(e) => tracing::warn!(error = %e, "redis sentinel: resubscribe failed"),
                }
            }
            tokio::time::sleep(MIN_GAP).await;
        }
    }

    /// Connects to `master` and swaps the connections in.
    async fn switch(&self, master: &str) -> Result<(), EngineError> {
        let url = master_url(sentinel_settings(&self.settings)?, master);
        let commands = conn::manager(&self.settings, &url, None).await?;
        let pubsub = conn::manager(&self.settings, &url, Some(self.pushes.clone())).await?;
        self.commands.store(Arc::new(commands));
        self.pubsub.store(Arc::new(pubsub));
        let old = std::mem::replace(&mut *self.master.lock(), master.to_owned());
        tracing::warn!(%old, new = %master, "redis sentinel: switched to a new master");
        Ok(())
    }
}
