//! A private nats-server on a free port (the `nats-server` binary on
//! PATH), to kill, freeze and restart under a running broker.

use std::time::{Duration, Instant};

/// A private nats-server, killed on drop.
pub struct NatsServer {
    child: std::process::Child,
    pub port: u16,
}

impl NatsServer {
    /// Starts one on a free port.
    pub async fn start() -> Self {
        Self::start_on(free_port()).await
    }

    /// Starts one on `port` (to bring a killed one back at its address).
    pub async fn start_on(port: u16) -> Self {
        Self::start_with(port, &[]).await
    }

    /// Starts one on `port` with extra command-line arguments.
    pub async fn start_with(port: u16, extra: &[&str]) -> Self {
        let child = std::process::Command::new(binary())
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server (Debian package nats-server)");
        wait_listening(port, "nats-server").await;
        Self { child, port }
    }

    /// Sends a signal (`STOP` freezes it, `CONT` thaws it).
    pub fn signal(&self, name: &str) {
        let status = self.kill(name).expect("kill");
        assert!(status.success(), "kill -{name}");
    }

    fn kill(&self, name: &str) -> std::io::Result<std::process::ExitStatus> {
        std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.kill("CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ROTOR_TEST_NATS_SERVER`, else Debian's `/usr/sbin/nats-server`, else
/// `nats-server` on PATH.
fn binary() -> String {
    std::env::var("ROTOR_TEST_NATS_SERVER").unwrap_or_else(|_| {
        let debian = "/usr/sbin/nats-server";
        if std::path::Path::new(debian).exists() {
            debian.to_owned()
        } else {
            "nats-server".to_owned()
        }
    })
}

/// Waits until something accepts TCP on `port`.
pub async fn wait_listening(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "{what} did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub use crate::support::binary::free_port;
