//! Own `redis-server` processes for the topology tests (sharding, Cluster,
//! Sentinel) on free loopback ports, without persistence. [`Servers`] kills
//! and reaps every process it started when dropped, also when a test
//! panics. Without the `redis-server` binary the tests skip with a printed
//! reason, unless `ROTOR_REQUIRE_SERVICES=1`, then they fail.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;

/// `true` when the binaries are there; otherwise prints why the test is
/// skipped (or panics under `ROTOR_REQUIRE_SERVICES=1`).
pub fn available(binaries: &[&str]) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for binary in binaries {
        let found = std::env::split_paths(&path).any(|dir| dir.join(binary).is_file());
        if !found {
            assert!(
                std::env::var("ROTOR_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "{binary} is required (ROTOR_REQUIRE_SERVICES=1) but not found"
            );
            eprintln!("skipped: {binary} not found");
            return false;
        }
    }
    true
}

/// A free port whose cluster bus port (port + 10000) is free too.
pub fn free_port() -> u16 {
    for _ in 0..200 {
        let port: u16 = rand::rng().random_range(20000..50000);
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(port) && free(port + 10000) {
            return port;
        }
    }
    panic!("no free port pair found");
}

/// Processes started by one test; killed on drop.
pub struct Servers {
    /// Port and process of each server started.
    children: Vec<(u16, Child)>,
    pub dir: tempfile::TempDir,
}

impl Drop for Servers {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Servers {
    pub fn new() -> Self {
        Self {
            children: Vec::new(),
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// Kills the server on `port` (a crashed node).
    pub fn kill(&mut self, port: u16) {
        for (p, child) in &mut self.children {
            if *p == port {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    /// Starts `redis-server` with `args` (after the common ones) on a free
    /// port and waits until it answers PING; returns the port.
    pub async fn redis(&mut self, args: &[&str]) -> u16 {
        let port = free_port();
        self.spawn_redis(port, &["--port", &port.to_string()], args);
        wait_ping(port).await;
        port
    }

    /// Spawns `redis-server` with `ports` (which listener on `port`), loopback
    /// only, without persistence, in this set's directory, plus `args`.
    fn spawn_redis(&mut self, port: u16, ports: &[&str], args: &[&str]) {
        let child = Command::new("redis-server")
            .args(ports)
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.children.push((port, child));
    }

    /// Starts `redis-server` serving only TLS on a free port (`args` name
    /// the certificate files) and waits until it accepts connections.
    pub async fn redis_tls(&mut self, args: &[&str]) -> u16 {
        let port = free_port();
        self.spawn_redis(
            port,
            &["--port", "0", "--tls-port", &port.to_string()],
            args,
        );
        wait_until(Duration::from_secs(10), || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(|_| ())
        })
        .await;
        port
    }

    /// Starts a cluster node (cluster mode on, own nodes file).
    pub async fn cluster_node(&mut self) -> u16 {
        let port = free_port();
        self.cluster_node_on(port).await;
        port
    }

    /// Starts (or, after [`Servers::kill`], restarts with its nodes file, so
    /// it rejoins with its slots) the cluster node on `port`.
    pub async fn cluster_node_on(&mut self, port: u16) {
        let nodes = self.dir.path().join(format!("nodes-{port}.conf"));
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes", "--cluster-config-file"])
            .arg(&nodes)
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.children.push((port, child));
        wait_ping(port).await;
    }

    /// Waits until the node on `port` reports `cluster_state:ok`.
    pub async fn cluster_ok(&self, port: u16) {
        wait_until(Duration::from_secs(30), || async move {
            let info: String = query(port, redis::cmd("CLUSTER").arg("INFO")).await?;
            Some(()).filter(|()| info.contains("cluster_state:ok"))
        })
        .await;
    }

    /// Starts a 3-master cluster and waits for `cluster_state:ok` on every
    /// node; returns the node ports.
    pub async fn cluster(&mut self) -> Vec<u16> {
        let mut ports = Vec::new();
        for _ in 0..3 {
            ports.push(self.cluster_node().await);
        }
        let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let status = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli --cluster create");
        assert!(status.success(), "cluster create failed");
        for port in &ports {
            self.cluster_ok(*port).await;
        }
        ports
    }

    /// Starts a Sentinel that monitors `127.0.0.1:<master>` as `name`
    /// (quorum 1); returns its port once it names the master.
    pub async fn sentinel(&mut self, master: u16, name: &str) -> u16 {
        let port = free_port();
        let conf = self.dir.path().join(format!("sentinel-{port}.conf"));
        write_sentinel_conf(&conf, port, master, name);
        let child = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis sentinel");
        self.children.push((port, child));
        let name = name.to_owned();
        wait_until(Duration::from_secs(10), || {
            let name = name.clone();
            async move {
                let addr: Option<(String, u16)> = query(
                    port,
                    redis::cmd("SENTINEL")
                        .arg("get-master-addr-by-name")
                        .arg(&name),
                )
                .await?;
                addr.filter(|(_, p)| *p == master).map(|_| ())
            }
        })
        .await;
        port
    }
}

fn write_sentinel_conf(path: &Path, port: u16, master: u16, name: &str) {
    let text = format!(
        "port {port}\nbind 127.0.0.1\nsentinel monitor {name} 127.0.0.1 {master} 1\n\
         sentinel down-after-milliseconds {name} 1000\nsentinel failover-timeout {name} 5000\n"
    );
    std::fs::write(path, text).expect("write sentinel.conf");
}

/// One command on a fresh connection to `127.0.0.1:<port>`; `None` on any
/// error.
pub async fn query<T: redis::FromRedisValue>(port: u16, cmd: &redis::Cmd) -> Option<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    let call = async {
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        cmd.query_async(&mut conn).await.ok()
    };
    tokio::time::timeout(Duration::from_secs(2), call)
        .await
        .ok()
        .flatten()
}

async fn wait_ping(port: u16) {
    wait_until(Duration::from_secs(10), || async move {
        query::<String>(port, &redis::cmd("PING")).await.map(|_| ())
    })
    .await;
}

/// Polls `probe` until it gives `Some`, failing the test after `limit`.
pub async fn wait_until<F, Fut>(limit: Duration, probe: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<()>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if probe().await.is_some() {
            return;
        }
        assert!(Instant::now() < deadline, "not ready within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A random key prefix.
pub fn prefix() -> String {
    let suffix: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(10)
        .map(char::from)
        .collect();
    format!("rotor-topo-{suffix}")
}
