//! Connections of the Redis engine, one type for the three topologies.
//!
//! [`Conn`] is a command connection and, with a push sender, a PUB/SUB
//! connection:
//! * `Single` — one standalone Redis through a `ConnectionManager`
//!   (multiplexed, reconnecting; the PUB/SUB one resubscribes itself);
//! * `Cluster` — a Redis Cluster connection that routes each command by its
//!   key's slot, follows `MOVED`/`ASK`, refreshes the slot map and
//!   re-establishes (sharded) subscriptions on the node owning their slot;
//! * `Sentinel` — a `ConnectionManager` to the current master, swapped by
//!   [`super::sentinel`] when the Sentinels name another one.
//!
//! Deliveries use sharded PUB/SUB on a cluster (`SSUBSCRIBE`; one command
//! per channel, since one command may only name channels of one slot) and
//! plain PUB/SUB elsewhere. The control channel is plain PUB/SUB everywhere
//! (a cluster forwards `PUBLISH` to every node).

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, IntoConnectionInfo, Pipeline, ProtocolVersion, PushInfo, RedisFuture, Value};
use tokio::sync::mpsc::UnboundedSender;

use super::{EngineError, RedisSettings, config, unavailable};

/// A command or PUB/SUB connection (see the module docs).
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
    Sentinel(Arc<ArcSwap<ConnectionManager>>),
}

impl Conn {
    /// The current manager (not for `Cluster`).
    fn manager(&self) -> Option<ConnectionManager> {
        match self {
            Conn::Single(m) => Some(m.clone()),
            Conn::Sentinel(m) => Some(ConnectionManager::clone(&m.load())),
            Conn::Cluster(_) => None,
        }
    }

    /// Whether deliveries use sharded PUB/SUB (`SPUBLISH`/`SSUBSCRIBE`).
    pub(super) fn sharded(&self) -> bool {
        matches!(self, Conn::Cluster(_))
    }

    /// Subscribes or unsubscribes delivery channels.
    pub(super) async fn subscribe_channels(
        &self,
        subscribe: bool,
        names: Vec<String>,
    ) -> redis::RedisResult<()> {
        match (self, self.manager()) {
            (Conn::Cluster(c), _) => {
                let calls = names.into_iter().map(|name| {
                    let mut c = c.clone();
                    async move {
                        if subscribe {
                            c.ssubscribe(name).await
                        } else {
                            c.sunsubscribe(name).await
                        }
                    }
                });
                futures_util::future::try_join_all(calls).await.map(|_| ())
            }
            (_, Some(mut m)) => {
                if subscribe {
                    m.subscribe(names).await
                } else {
                    m.unsubscribe(names).await
                }
            }
            (_, None) => Ok(()),
        }
    }

    /// Subscribes a plain PUB/SUB channel (the control channel).
    pub(super) async fn subscribe_plain(&self, name: String) -> redis::RedisResult<()> {
        match (self, self.manager()) {
            (Conn::Cluster(c), _) => c.clone().subscribe(name).await,
            (_, Some(mut m)) => m.subscribe(name).await,
            (_, None) => Ok(()),
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(m) => m.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
            Conn::Sentinel(s) => {
                let mut m = ConnectionManager::clone(&s.load());
                Box::pin(async move { m.req_packed_command(cmd).await })
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(m) => m.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Sentinel(s) => {
                let mut m = ConnectionManager::clone(&s.load());
                Box::pin(async move { m.req_packed_commands(pipeline, offset, count).await })
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(m) => m.get_db(),
            Conn::Cluster(c) => c.get_db(),
            Conn::Sentinel(s) => s.load().get_db(),
        }
    }
}

/// Connection info for `address` with the object's db and credentials.
pub(super) fn connection_info(
    settings: &RedisSettings,
    address: &str,
    protocol: ProtocolVersion,
) -> Result<redis::ConnectionInfo, EngineError> {
    let info = address
        .into_connection_info()
        .map_err(|e| unavailable(format!("bad address {}: {e}", config::redact(address))))?;
    let mut redis_settings = info.redis_settings().clone().set_protocol(protocol);
    if settings.db != 0 {
        redis_settings = redis_settings.set_db(settings.db);
    }
    if !settings.user.is_empty() {
        redis_settings = redis_settings.set_username(&settings.user);
    }
    if !settings.password.is_empty() {
        redis_settings = redis_settings.set_password(&settings.password);
    }
    let mut info = info
        .set_redis_settings(redis_settings)
        .set_tcp_settings(tcp_settings(settings));
    if settings
        .tls
        .as_ref()
        .is_some_and(|t| t.insecure_skip_verify)
        && let redis::ConnectionAddr::TcpTls {
            host,
            port,
            tls_params,
            ..
        } = info.addr().clone()
    {
        info = info.set_addr(redis::ConnectionAddr::TcpTls {
            host,
            port,
            insecure: true,
            tls_params,
        });
    }
    Ok(info)
}

/// Keepalive probes find a dead peer on an idle connection (the PUB/SUB one
/// is idle whenever nothing is published), and `TCP_USER_TIMEOUT` drops a
/// connection whose writes go unacknowledged for `io_timeout`; both end in
/// an I/O error, which makes the connection reconnect.
fn tcp_settings(settings: &RedisSettings) -> redis::io::tcp::TcpSettings {
    use redis::io::tcp::socket2::TcpKeepalive;
    let keepalive = TcpKeepalive::new()
        .with_time(Duration::from_secs(1))
        .with_interval(Duration::from_secs(1))
        .with_retries(3);
    redis::io::tcp::TcpSettings::default()
        .set_nodelay(true)
        .set_keepalive(keepalive)
        .set_user_timeout(settings.io_timeout)
}

fn manager_config(settings: &RedisSettings) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(settings.connect_timeout))
        .set_response_timeout(Some(settings.io_timeout))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(1))
}

/// The rustls TLS connector builds its config from the process default
/// provider; make sure there is one (a no-op if installed).
fn tls_provider(addresses: &[String]) {
    if addresses.iter().any(|a| a.starts_with("rediss://")) {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}

/// Connects one `ConnectionManager` to `address`; with `pushes`, a RESP3
/// PUB/SUB connection that resubscribes after reconnecting.
pub(super) async fn manager(
    settings: &RedisSettings,
    address: &str,
    pushes: Option<UnboundedSender<PushInfo>>,
) -> Result<ConnectionManager, EngineError> {
    tls_provider(&[address.to_owned()]);
    let (protocol, config) = match pushes {
        Some(tx) => (
            ProtocolVersion::RESP3,
            manager_config(settings)
                .set_push_sender(tx)
                .set_automatic_resubscription(),
        ),
        None => (ProtocolVersion::RESP2, manager_config(settings)),
    };
    let info = connection_info(settings, address, protocol)?;
    let client = match super::tls::certificates(settings.tls.as_ref()) {
        Some(certs) if address.starts_with("rediss://") => {
            redis::Client::build_with_tls(info, certs).map_err(unavailable)?
        }
        _ => redis::Client::open(info).map_err(unavailable)?,
    };
    let budget = settings.connect_timeout + settings.io_timeout;
    match tokio::time::timeout(budget, ConnectionManager::new_with_config(client, config)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(unavailable(e)),
        Err(_) => Err(unavailable("connect timed out")),
    }
}

/// Connects to the Redis Cluster whose seed nodes are `settings.addresses`;
/// with `pushes`, a RESP3 connection for (sharded) PUB/SUB.
pub(super) async fn cluster(
    settings: &RedisSettings,
    pushes: Option<UnboundedSender<PushInfo>>,
) -> Result<ClusterConnection, EngineError> {
    tls_provider(&settings.addresses);
    let protocol = if pushes.is_some() {
        ProtocolVersion::RESP3
    } else {
        ProtocolVersion::RESP2
    };
    let mut builder = ClusterClientBuilder::new(settings.addresses.iter().map(String::as_str))
        .connection_timeout(settings.connect_timeout)
        .response_timeout(settings.io_timeout)
        .retries(2)
        .max_retry_wait(1000)
        .use_protocol(protocol)
        .tcp_settings(tcp_settings(settings));
    if !settings.user.is_empty() {
        builder = builder.username(&settings.user);
    }
    if !settings.password.is_empty() {
        builder = builder.password(&settings.password);
    }
    if let Some(tx) = pushes {
        builder = builder.push_sender(tx);
    }
    if settings
        .addresses
        .iter()
        .any(|a| a.starts_with("rediss://"))
    {
        if let Some(certs) = super::tls::certificates(settings.tls.as_ref()) {
            builder = builder.certs(certs);
        }
        if settings
            .tls
            .as_ref()
            .is_some_and(|t| t.insecure_skip_verify)
        {
            builder = builder.tls(redis::TlsMode::Insecure);
        }
    }
    let client = builder.build().map_err(unavailable)?;
    let budget = settings.connect_timeout + settings.io_timeout;
    match tokio::time::timeout(budget, client.get_async_connection()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(unavailable(e)),
        Err(_) => Err(unavailable("connect timed out")),
    }
}
