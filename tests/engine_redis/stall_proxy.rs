//! A TCP proxy in front of the test Redis that can stall (hold all
//! traffic), refuse new connections and cut existing ones, to show how the
//! Redis engine behaves when Redis stops answering or goes away.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A TCP proxy to Redis that can be stalled: while stalled it holds
/// everything it reads, like a Redis that stopped answering without closing
/// its connections.
pub struct StallProxy {
    pub addr: std::net::SocketAddr,
    stalled: Arc<AtomicBool>,
    down: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
    pumps: Arc<parking_lot::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl StallProxy {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stalled = Arc::new(AtomicBool::new(false));
        let flag = stalled.clone();
        let down = Arc::new(AtomicBool::new(false));
        let refuse = down.clone();
        let pumps = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let tasks = pumps.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if refuse.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(upstream) = tokio::net::TcpStream::connect("127.0.0.1:6379").await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (ur, uw) = upstream.into_split();
                let mut tasks = tasks.lock();
                tasks.push(tokio::spawn(pump(cr, uw, flag.clone())));
                tasks.push(tokio::spawn(pump(ur, cw, flag.clone())));
            }
        });
        Self {
            addr,
            stalled,
            down,
            task,
            pumps,
        }
    }

    /// While down, new connections are closed at once (Redis unreachable).
    pub fn set_down(&self, on: bool) {
        self.down.store(on, Ordering::SeqCst);
    }

    /// Drops every proxied connection (new ones are still accepted), as a
    /// Redis restart or a network blip would.
    pub fn cut(&self) {
        for pump in self.pumps.lock().drain(..) {
            pump.abort();
        }
    }

    pub fn stall(&self, on: bool) {
        self.stalled.store(on, Ordering::SeqCst);
    }
}

impl Drop for StallProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    stalled: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
