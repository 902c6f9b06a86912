//! `grpc-api`: gRPC server API calls per second, each beside its ceiling.
//!
//! Three rows, each for `--duration` seconds with `--concurrency` calls in
//! flight over `--connections` HTTP/2 connections:
//! * `noop`: `RPC` with an unregistered method — auth, decode, dispatch and
//!   an error reply (104), no work: the ceiling of the API stack;
//! * `publish`: `Publish` of a 128-byte JSON payload to one channel;
//! * `batch100`: `Batch` of 100 such publishes (publications/s = calls × 100).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rotor::proto::api::centrifugo_api_client::CentrifugoApiClient;
use rotor::proto::api::{BatchRequest, Command, PublishRequest, RpcRequest};
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

use crate::GrpcApiArgs;
use crate::stats::{self, Histogram};

/// What each call of a row sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Noop,
    Publish,
    Batch100,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Noop => "grpc-noop",
            Mode::Publish => "grpc-publish",
            Mode::Batch100 => "grpc-batch100",
        }
    }
}

fn publish(channel: &str) -> PublishRequest {
    let payload = format!(r#"{{"seq":1,"p":"{}"}}"#, "x".repeat(104));
    PublishRequest {
        channel: channel.to_string(),
        data: Bytes::from(payload),
        ..Default::default()
    }
}

async fn call(
    client: &mut CentrifugoApiClient<Channel>,
    mode: Mode,
    key: &MetadataValue<tonic::metadata::Ascii>,
    channel: &str,
) -> Result<(), String> {
    fn req<T>(msg: T, key: &MetadataValue<tonic::metadata::Ascii>) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        r.metadata_mut().insert("authorization", key.clone());
        r
    }
    match mode {
        Mode::Noop => {
            let msg = RpcRequest {
                method: "noop".into(),
                ..Default::default()
            };
            client.rpc(req(msg, key)).await.map_err(|e| e.to_string())?;
        }
        Mode::Publish => {
            let resp = client
                .publish(req(publish(channel), key))
                .await
                .map_err(|e| e.to_string())?;
            if let Some(err) = resp.into_inner().error {
                return Err(format!("publish error {}: {}", err.code, err.message));
            }
        }
        Mode::Batch100 => {
            let commands = (0..100)
                .map(|_| Command {
                    publish: Some(publish(channel)),
                    ..Default::default()
                })
                .collect();
            let msg = BatchRequest {
                commands,
                parallel: false,
            };
            client
                .batch(req(msg, key))
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

async fn row(args: &GrpcApiArgs, channels: &[Channel], mode: Mode) -> Result<(), String> {
    let key: MetadataValue<_> = format!("apikey {}", args.api_key)
        .parse()
        .map_err(|_| "the API key is not valid metadata".to_string())?;
    let stop = Arc::new(AtomicBool::new(false));
    let cpu0 = args
        .server_pid
        .and_then(|p| stats::cpu_seconds(&p.to_string()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..args.concurrency {
        let mut client = CentrifugoApiClient::new(channels[i % channels.len()].clone());
        let (stop, key, channel) = (stop.clone(), key.clone(), args.channel.clone());
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::default();
            let mut errors = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                match call(&mut client, mode, &key, &channel).await {
                    Ok(()) => hist.record(t.elapsed().as_micros() as u64),
                    Err(_) => errors += 1,
                }
            }
            (hist, errors)
        }));
    }
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    stop.store(true, Ordering::Relaxed);
    let mut hist = Histogram::default();
    let mut errors = 0;
    for t in tasks {
        let (h, e) = t.await.map_err(|e| e.to_string())?;
        hist.merge(&h);
        errors += e;
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = match (cpu0, args.server_pid) {
        (Some(a), Some(p)) => stats::cpu_seconds(&p.to_string()).map(|b| b - a),
        _ => None,
    };
    let calls = hist.count();
    println!(
        "ROW {} calls={} seconds={:.2} calls_per_s={:.0} p50_ms={:.3} p99_ms={:.3} errors={} server_cpu_s={}",
        mode.name(),
        calls,
        secs,
        calls as f64 / secs,
        hist.quantile(0.5) as f64 / 1000.0,
        hist.quantile(0.99) as f64 / 1000.0,
        errors,
        cpu.map_or("-".to_string(), |c| format!("{c:.2}")),
    );
    Ok(())
}

/// Runs the three rows against `--addr`.
pub async fn run(args: GrpcApiArgs) -> Result<(), String> {
    if !(args.addr.starts_with("127.0.0.1:") || args.addr.starts_with("localhost:")) {
        return Err("loopback addresses only (127.0.0.1:PORT)".into());
    }
    let mut channels = Vec::new();
    for _ in 0..args.connections.max(1) {
        let ch = Endpoint::from_shared(format!("http://{}", args.addr))
            .map_err(|e| e.to_string())?
            .connect()
            .await
            .map_err(|e| format!("connect {}: {e}", args.addr))?;
        channels.push(ch);
    }
    for mode in [Mode::Noop, Mode::Publish, Mode::Batch100] {
        row(&args, &channels, mode).await?;
    }
    Ok(())
}
