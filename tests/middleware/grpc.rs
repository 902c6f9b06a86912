//! The gRPC stack in front of a tonic-health server: refusals are gRPC
//! statuses.

use std::task::{Context, Poll};
use std::time::Duration;

use rotor::config::Config;
use rotor::middleware::stack;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use super::support::PATIENCE;
use super::{HOUR, rule};

/// Delays every call by `delay` (to make the health service slow) and
/// reports each call it starts on `entered`.
#[derive(Clone)]
struct Slow<S> {
    inner: S,
    delay: Duration,
    entered: mpsc::UnboundedSender<()>,
}

impl<S, R> tower::Service<R> for Slow<S>
where
    S: tower::Service<R> + Send,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        let fut = self.inner.call(req);
        let delay = self.delay;
        let _ = self.entered.send(());
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            fut.await
        })
    }
}

type Client = HealthClient<tonic::transport::Channel>;

/// A tonic-health server behind the gRPC stack (plus `delay` inside it);
/// the receiver gets one message per call that passed the stack.
async fn serve_grpc(cfg: &Config, delay: Duration) -> (Client, mpsc::UnboundedReceiver<()>) {
    let (entered, entered_rx) = mpsc::unbounded_channel();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let server = tonic::transport::Server::builder()
        .layer(stack::grpc(cfg))
        .layer(tower::layer::layer_fn(move |inner| Slow {
            inner,
            delay,
            entered: entered.clone(),
        }))
        .add_service(health);
    tokio::spawn(async move {
        let _ = server.serve_with_incoming(incoming).await;
    });
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    (HealthClient::new(channel), entered_rx)
}

async fn check(client: &mut HealthClient<tonic::transport::Channel>) -> Result<(), tonic::Status> {
    let req = HealthCheckRequest {
        service: String::new(),
    };
    tokio::time::timeout(PATIENCE, client.check(req))
        .await
        .expect("answer")
        .map(|_| ())
}

#[tokio::test]
async fn grpc_rate_limit_is_resource_exhausted() {
    let mut cfg = Config::default();
    cfg.middleware.rate_limit.per_ip = rule(2, HOUR, 2);
    let (mut client, _) = serve_grpc(&cfg, Duration::ZERO).await;
    check(&mut client).await.expect("first");
    check(&mut client).await.expect("second");
    let e = check(&mut client).await.expect_err("third is refused");
    assert_eq!(e.code(), tonic::Code::ResourceExhausted);

    let mut cfg = Config::default();
    cfg.middleware.rate_limit.per_api_key = rule(1, HOUR, 1);
    let (mut client, _) = serve_grpc(&cfg, Duration::ZERO).await;
    let keyed = |key: &str| {
        let mut r = tonic::Request::new(HealthCheckRequest {
            service: String::new(),
        });
        r.metadata_mut().insert(
            "authorization",
            format!("apikey {key}").parse().expect("meta"),
        );
        r
    };
    assert!(client.check(keyed("a")).await.is_ok());
    let e = client.check(keyed("a")).await.expect_err("refused");
    assert_eq!(e.code(), tonic::Code::ResourceExhausted);
    assert!(client.check(keyed("b")).await.is_ok());
}

#[tokio::test]
async fn grpc_slow_call_is_deadline_exceeded() {
    let mut cfg = Config::default();
    cfg.middleware.timeout.request = rotor::config::Duration::from_millis(100);
    let (mut client, _) = serve_grpc(&cfg, HOUR).await;
    let e = check(&mut client).await.expect_err("times out");
    assert_eq!(e.code(), tonic::Code::DeadlineExceeded);
}

#[tokio::test]
async fn grpc_shedding_is_unavailable() {
    let mut cfg = Config::default();
    cfg.middleware.load_shed.max_in_flight = 1;
    let (client, mut entered) = serve_grpc(&cfg, HOUR).await;
    let mut slow = client.clone();
    // The first call holds the only slot (it never finishes).
    tokio::spawn(async move {
        let _ = slow
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await;
    });
    tokio::time::timeout(PATIENCE, entered.recv())
        .await
        .expect("first call is in flight");
    let e = check(&mut client.clone()).await.expect_err("shed");
    assert_eq!(e.code(), tonic::Code::Unavailable);
}
