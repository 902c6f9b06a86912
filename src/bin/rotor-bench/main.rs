//! `rotor-bench`: load tool comparing Rotor with nats-server over WebSocket.
//!
//! * `fanout`: N subscribers on one channel, one publisher at a fixed rate;
//!   deliveries, loss, latency, frames, server CPU and RSS.
//! * `idle`: server RSS per idle (connected + subscribed) connection.
//! * `connect-rate`: protocol-level connects per second.
//! * `grpc-api`: gRPC server API calls per second (publish, batch, no-op).
//! * `proxy-backend`: a gRPC connect proxy backend for `connect-rate
//!   --no-token` (Rotor with `client.proxy.connect` enabled).
//!
//! Everything runs on one tokio runtime with one task per connection and
//! stops by itself. Loopback only.

mod conn;
mod conns;
mod fanout;
mod grpc_api;
mod proxy_backend;
mod raw;
mod stats;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use conn::{Client, Kind};

#[derive(Debug, Parser)]
#[command(
    name = "rotor-bench",
    about = "Load tool: Rotor vs nats-server over WebSocket"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// One channel, N subscribers, one publisher at a fixed rate.
    Fanout(FanoutArgs),
    /// Server RSS per idle connected and subscribed connection.
    Idle(IdleArgs),
    /// Protocol-level connects per second.
    ConnectRate(RateArgs),
    /// gRPC server API calls per second: publish and batch beside a no-op.
    GrpcApi(GrpcApiArgs),
    /// gRPC connect proxy backend answering every Connect with a user.
    ProxyBackend(ProxyBackendArgs),
}

/// Server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// Rotor / Centrifugo client protocol.
    Rotor,
    /// nats-server WebSocket listener (NATS text protocol).
    Nats,
}

/// Options every subcommand takes.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Server flavour.
    #[arg(long, value_enum)]
    pub target: Target,
    /// WebSocket URL (loopback), e.g. ws://127.0.0.1:8000/connection/websocket.
    #[arg(long)]
    pub url: String,
    /// Centrifugo Protobuf encoding (subprotocol `centrifuge-protobuf`).
    #[arg(long)]
    pub protobuf: bool,
    /// HMAC secret for connection JWTs (Rotor).
    #[arg(long, default_value = "bench-secret")]
    pub secret: String,
    /// Channel (NATS subject).
    #[arg(long, default_value = "bench")]
    pub channel: String,
    /// Server process id: CPU and RSS are read from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Scenario name for the printed markdown row.
    #[arg(long, default_value = "")]
    pub label: String,
    /// How fan-out subscribers connect (Rotor JSON): `ws` (tungstenite),
    /// `raw-ws` (our raw client offering permessage-deflate; counts wire
    /// bytes), `uni-sse` (GET /connection/uni_sse, subscribed by the
    /// token's `channels` claim; counts wire bytes), `http-stream` (POST
    /// /connection/http_stream, bidirectional emulation, subscribed by the
    /// token's claim; counts wire bytes).
    #[arg(long, value_enum, default_value_t = SubTransport::Ws)]
    pub sub_transport: SubTransport,
    /// WebSocket client of the `ws` connections (all of them in `idle` and
    /// `connect-rate`; subscribers and publisher in `fanout`):
    /// `tungstenite`, or `lean` (the tool's own minimal client, which
    /// costs the tool less per frame and per handshake).
    #[arg(long, value_enum, default_value_t = Client::Tungstenite)]
    pub client: Client,
}

/// Subscriber transport of the fan-out scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SubTransport {
    /// WebSocket through tungstenite.
    Ws,
    /// Raw WebSocket client offering permessage-deflate.
    RawWs,
    /// Unidirectional SSE.
    UniSse,
    /// Bidirectional emulation over HTTP streaming (JSON).
    HttpStream,
}

impl Common {
    /// Connection kind.
    pub fn kind(&self) -> Kind {
        match (self.target, self.protobuf) {
            (Target::Nats, _) => Kind::Nats,
            (Target::Rotor, false) => Kind::RotorJson,
            (Target::Rotor, true) => Kind::RotorProto,
        }
    }

    /// Short name of target and encoding.
    pub fn name(&self) -> &'static str {
        match self.kind() {
            Kind::Nats => "nats-server",
            Kind::RotorJson => "rotor json",
            Kind::RotorProto => "rotor protobuf",
        }
    }

    /// `/proc` id of the server.
    pub fn pid(&self) -> Option<String> {
        self.server_pid.map(|p| p.to_string())
    }

    fn check(&self) -> Result<(), String> {
        if self.protobuf && self.target == Target::Nats {
            return Err("--protobuf applies to --target rotor only".into());
        }
        if self.sub_transport != SubTransport::Ws && (self.protobuf || self.target == Target::Nats)
        {
            return Err("--sub-transport raw-ws / uni-sse / http-stream: Rotor JSON only".into());
        }
        if !(self.url.starts_with("ws://127.0.0.1:") || self.url.starts_with("ws://localhost:")) {
            return Err("loopback ws:// URLs only (ws://127.0.0.1:PORT/...)".into());
        }
        Ok(())
    }
}

#[derive(Debug, Args)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub common: Common,
    /// Subscribers.
    #[arg(long, default_value_t = 1000)]
    pub subscribers: usize,
    /// Publications per second.
    #[arg(long, default_value_t = 800)]
    pub rate: u64,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// Bytes of publication data.
    #[arg(long, default_value_t = 128)]
    pub payload: usize,
    /// Subscribers being set up at once.
    #[arg(long, default_value_t = 100)]
    pub connect_concurrency: usize,
    /// Publish through another node (loopback ws:// URL of the same
    /// cluster): cross-node fan-out. Default: the subscribers' `--url`.
    #[arg(long)]
    pub publish_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct IdleArgs {
    #[command(flatten)]
    pub common: Common,
    /// Connections to hold.
    #[arg(long, default_value_t = 10_000)]
    pub connections: usize,
    /// Connections being set up at once.
    #[arg(long, default_value_t = 100)]
    pub connect_concurrency: usize,
    /// Seconds to wait after the last connection before reading RSS.
    #[arg(long, default_value_t = 5)]
    pub settle: u64,
}

#[derive(Debug, Args)]
pub struct RateArgs {
    #[command(flatten)]
    pub common: Common,
    /// Connections to open.
    #[arg(long, default_value_t = 2000)]
    pub connections: usize,
    /// Connects in flight at once.
    #[arg(long, default_value_t = 50)]
    pub concurrency: usize,
    /// Connect without a token (Rotor): the server's connect proxy decides.
    #[arg(long)]
    pub no_token: bool,
}

/// `proxy-backend` options.
#[derive(Debug, Args)]
pub struct ProxyBackendArgs {
    /// Listen address (loopback), e.g. 127.0.0.1:10001.
    #[arg(long)]
    pub addr: String,
    /// Seconds to serve before stopping (at most 3600).
    #[arg(long, default_value_t = 300)]
    pub duration: u64,
}

/// `grpc-api` options.
#[derive(Debug, Args)]
pub struct GrpcApiArgs {
    /// gRPC API address (loopback), e.g. 127.0.0.1:10000.
    #[arg(long)]
    pub addr: String,
    /// API key (sent as `authorization: apikey <KEY>`).
    #[arg(long, default_value = "")]
    pub api_key: String,
    /// Channel to publish to.
    #[arg(long, default_value = "bench")]
    pub channel: String,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// HTTP/2 connections the calls are spread over.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Seconds per row.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Server process id, for its CPU seconds.
    #[arg(long)]
    pub server_pid: Option<u32>,
}

/// HS256 connection tokens `bench-0` … `bench-(n-1)`.
pub fn tokens(common: &Common, n: usize) -> Result<Vec<String>, String> {
    tokens_for(common, n, None)
}

/// Connection tokens; with `channel`, a `channels` claim subscribes the
/// connection to it on the server side.
pub fn tokens_for(common: &Common, n: usize, channel: Option<&str>) -> Result<Vec<String>, String> {
    if common.target == Target::Nats {
        return Ok(vec![String::new(); n]);
    }
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        + 3600;
    let key = jsonwebtoken::EncodingKey::from_secret(common.secret.as_bytes());
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    (0..n)
        .map(|i| {
            let mut claims = serde_json::json!({ "sub": format!("bench-{i}"), "exp": exp });
            if let Some(ch) = channel {
                claims["channels"] = serde_json::json!([ch]);
            }
            jsonwebtoken::encode(&header, &claims, &key).map_err(|e| e.to_string())
        })
        .collect()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    stats::start();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.cmd {
            Cmd::Fanout(a) => {
                a.common.check()?;
                fanout::run(a).await
            }
            Cmd::Idle(a) => {
                a.common.check()?;
                conns::idle(a).await
            }
            Cmd::ConnectRate(a) => {
                a.common.check()?;
                conns::connect_rate(a).await
            }
            Cmd::GrpcApi(a) => grpc_api::run(a).await,
            Cmd::ProxyBackend(a) => proxy_backend::run(a).await,
        }
    });
    // Connection tasks still answering pings are not waited for.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rotor-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
