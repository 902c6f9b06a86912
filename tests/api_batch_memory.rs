//! Batch memory against the real binary: HTTP batches of 1M and 2M `{}`
//! commands and gRPC batches of 1M and 2M empty commands must not grow the
//! server's peak RSS beyond a bound tied to the request (and, for gRPC, the
//! response) size. Each case runs in a fresh process, so `VmHWM` (peak
//! RSS since start) minus `VmRSS` at idle is the growth the batch caused.
//! Before batches were run lazily, each of these grew the peak by about
//! 2 KB per command (1M: ~2 GB, 2M: ~4 GB).

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::binary::{Binary, free_port, start};
use support::grpc_raw;

const KEY: &str = "batch-memory-key";
const MIB: u64 = 1 << 20;

/// One HTTP reply to `{}`: method not found.
const HTTP_REPLY: &[u8] = br#"{"error":{"code":104,"message":"not found"}}"#;

/// A `/proc/<pid>/status` field in bytes (`VmRSS`, `VmHWM`; given in kB).
fn status_bytes(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in status"));
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("bad {field} line {line:?}"));
    kb * 1024
}

/// A fresh server with both APIs keyed.
async fn server(dir: &std::path::Path, name: &str) -> (Binary, u16) {
    let grpc_port = free_port();
    let cfg = json!({
        "http_api": {"key": KEY},
        "grpc_api": {"enabled": true, "key": KEY, "port": grpc_port},
        "log": {"level": "error"}
    });
    let bin = start(dir, name, &cfg).await;
    support::binary::wait_port(grpc_port, "gRPC API").await;
    (bin, grpc_port)
}

/// Peak growth and body size of one case, printed for the record.
struct Measured {
    body: u64,
    response: u64,
    growth: u64,
    took: Duration,
}

impl Measured {
    fn report(&self, what: &str, bound: u64) {
        eprintln!(
            "{what}: body {:.1} MiB, response {:.1} MiB, peak RSS growth {:.1} MiB \
             (bound {:.1} MiB), {:.1?}",
            self.body as f64 / MIB as f64,
            self.response as f64 / MIB as f64,
            self.growth as f64 / MIB as f64,
            bound as f64 / MIB as f64,
            self.took,
        );
        assert!(self.growth <= bound, "{what}: peak RSS grew past the bound");
    }
}

async fn http_case(n: usize, parallel: bool) -> Measured {
    let dir = tempfile::tempdir().expect("tempdir");
    let (bin, _) = server(dir.path(), "http").await;
    let pid = bin.child.id();
    let mut body = Vec::with_capacity(n * 3 + 64);
    body.extend_from_slice(b"{\"commands\":[");
    for i in 0..n {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(b"{}");
    }
    body.extend_from_slice(format!("],\"parallel\":{parallel}}}").as_bytes());
    let body_len = body.len() as u64;
    let before = status_bytes(pid, "VmRSS");
    let started = Instant::now();
    let resp = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/api/batch", bin.port))
        .header("X-API-Key", KEY)
        .body(body)
        .send()
        .await
        .expect("batch sent");
    assert_eq!(resp.status().as_u16(), 200);
    let out = resp.bytes().await.expect("batch reply");
    let took = started.elapsed();
    let growth = status_bytes(pid, "VmHWM").saturating_sub(before);
    // `{"replies":[R,R,…,R]}`, every R the same not-found error.
    let inner = out
        .strip_prefix(b"{\"replies\":[")
        .and_then(|b| b.strip_suffix(b"]}"))
        .expect("replies envelope");
    assert_eq!(inner.len(), n * (HTTP_REPLY.len() + 1) - 1, "reply count");
    for (i, unit) in inner.chunks(HTTP_REPLY.len() + 1).enumerate() {
        assert_eq!(&unit[..HTTP_REPLY.len()], HTTP_REPLY, "reply {i}");
    }
    Measured {
        body: body_len,
        response: out.len() as u64,
        growth,
        took,
    }
}

/// `BatchResponse.replies` entry for an empty command: field 1 holding a
/// `Reply` whose field 2 is `Error { code: 104, message: "not found" }`.
fn grpc_reply() -> Vec<u8> {
    let mut error = vec![0x08, 104, 0x12, 9];
    error.extend_from_slice(b"not found");
    let mut reply = vec![0x12, error.len() as u8];
    reply.extend_from_slice(&error);
    let mut entry = vec![0x0a, reply.len() as u8];
    entry.extend_from_slice(&reply);
    entry
}

async fn grpc_case(n: usize, parallel: bool) -> Measured {
    let dir = tempfile::tempdir().expect("tempdir");
    let (bin, grpc_port) = server(dir.path(), "grpc").await;
    let pid = bin.child.id();
    // n × field 1 with an empty `Command`, then `parallel` as field 2.
    let mut body = Vec::with_capacity(n * 2 + 2);
    for _ in 0..n {
        body.extend_from_slice(&[0x0a, 0x00]);
    }
    if parallel {
        body.extend_from_slice(&[0x10, 0x01]);
    }
    let body_len = body.len() as u64;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{grpc_port}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("grpc connects");
    let before = status_bytes(pid, "VmRSS");
    let started = Instant::now();
    let out = grpc_raw::unary(channel, grpc_raw::BATCH, body, KEY)
        .await
        .expect("batch OK");
    let took = started.elapsed();
    let growth = status_bytes(pid, "VmHWM").saturating_sub(before);
    let entry = grpc_reply();
    assert_eq!(out.len(), n * entry.len(), "reply count");
    for (i, unit) in out.chunks(entry.len()).enumerate() {
        assert_eq!(unit, &entry[..], "reply {i}");
    }
    Measured {
        body: body_len,
        response: out.len() as u64,
        growth,
        took,
    }
}

/// Slack for what does not scale with the batch: a `parallel` window of
/// 1024 commands in flight, the streamed chunks queued (4 × 64 KiB), the
/// connection's buffers and the allocator's per-thread arenas.
const SLACK: u64 = 32 * MIB;

/// HTTP: the body is held once (plus a transient copy while it is
/// collected from the connection, so 2×); commands are decoded one at a
/// time and replies leave in 64 KiB chunks, so the response does not count.
fn http_bound(m: &Measured) -> u64 {
    4 * m.body + SLACK
}

/// gRPC: the request as HTTP/2 frames and as the message (2×), and the
/// response held once (a unary message needs its length before its
/// bytes): the reply chunks are moved into tonic's buffer as it is filled,
/// but the allocator may keep the freed chunks, so 2× the response.
fn grpc_bound(m: &Measured) -> u64 {
    4 * m.body + 2 * m.response + SLACK
}

#[tokio::test]
async fn http_batch_memory_is_bounded() {
    for (n, parallel) in [(1_000_000, true), (2_000_000, false)] {
        let m = http_case(n, parallel).await;
        let what = format!("HTTP batch of {n} (parallel: {parallel})");
        m.report(&what, http_bound(&m));
    }
}

#[tokio::test]
async fn grpc_batch_memory_is_bounded() {
    for (n, parallel) in [(1_000_000, true), (2_000_000, false)] {
        let m = grpc_case(n, parallel).await;
        let what = format!("gRPC batch of {n} (parallel: {parallel})");
        m.report(&what, grpc_bound(&m));
    }
}
