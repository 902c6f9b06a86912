//! A small service that calls Rotor's HTTP server API with crates.io `cent`,
//! Centrifugo's official Rust API client. `tests/interop_cent.rs` builds it
//! and runs one operation per process:
//!
//! ```text
//! rotor-cent-interop [--api URL] [--key KEY | --no-key] [--timeout-ms N] OP ARGS...
//!
//!   publish CHANNEL DATA [--idempotency-key K] [--skip-history] [--tag NAME=VALUE]...
//!   history CHANNEL [--limit N] [--since OFFSET EPOCH] [--reverse]
//!   history-remove CHANNEL
//!   broadcast DATA CHANNEL... [--idempotency-key K]
//!   info
//!   batch-publish CHANNEL COUNT [--parallel]
//!   batch [--parallel] COMMANDS
//! ```
//!
//! The API URL and key default to `ROTOR_API_URL` and `ROTOR_API_KEY`.
//! `DATA` is JSON text. `batch-publish` publishes `{"n": i, "text": ...}` for
//! `i` in `0..COUNT` as one batch. `batch` sends `COMMANDS`, a JSON array of
//! API commands as Centrifugo's batch takes them (`{"publish": {...}}`,
//! `{"history": {...}}`, ...), each read into `cent`'s own request type.
//!
//! It prints one JSON line on stdout: `{"ok": true, "result": ...}` on
//! success, with the result as `cent` decoded it and encodes it again; or
//! `{"ok": false, "error": {...}}` and exit code 1 when `cent` returned an
//! error. A batch also prints every command's own outcome in `replies`. Bad
//! arguments exit with 2.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use cent::{
    BatchOptions, BroadcastRequest, ChannelsRequest, Client, Config, Error, HistoryRemoveRequest,
    HistoryRequest, InfoRequest, PresenceRequest, PresenceStatsRequest, PublishRequest, RawValue,
    StreamPosition,
};
use serde_json::{Value, json};

/// The command line, once the global options are read.
struct Cli {
    api: String,
    key: Option<String>,
    timeout: Duration,
    op: String,
    args: Vec<String>,
}

/// What an operation ends with: its result or `cent`'s error, and for a
/// batch every command's own outcome.
struct Outcome {
    result: Result<Value, Error>,
    replies: Option<Vec<Value>>,
}

impl Outcome {
    fn of<T: serde::Serialize>(r: Result<T, Error>) -> Self {
        Outcome {
            result: r.map(|v| to_json(&v)),
            replies: None,
        }
    }
}

fn main() -> ExitCode {
    let cli = match parse_cli(std::env::args().skip(1).collect()) {
        Ok(c) => c,
        Err(e) => return usage(&e),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rotor-cent-interop: tokio runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = match runtime.block_on(run(cli)) {
        Ok(o) => o,
        Err(e) => return usage(&e),
    };
    let mut line = serde_json::Map::new();
    let ok = outcome.result.is_ok();
    line.insert("ok".into(), Value::Bool(ok));
    match outcome.result {
        Ok(v) => {
            line.insert("result".into(), v);
        }
        Err(e) => {
            line.insert("error".into(), error_json(&e));
        }
    }
    if let Some(replies) = outcome.replies {
        line.insert("replies".into(), Value::Array(replies));
    }
    println!("{}", Value::Object(line));
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("rotor-cent-interop: {problem} (see the comment at the top of src/main.rs)");
    ExitCode::from(2)
}

fn parse_cli(raw: Vec<String>) -> Result<Cli, String> {
    let mut api = std::env::var("ROTOR_API_URL").ok();
    let mut key = std::env::var("ROTOR_API_KEY").ok();
    let mut timeout = Duration::from_secs(10);
    let mut it = raw.into_iter();
    let op = loop {
        let Some(a) = it.next() else {
            return Err("no operation given".into());
        };
        match a.as_str() {
            "--api" => api = Some(value(&mut it, "--api")?),
            "--key" => key = Some(value(&mut it, "--key")?),
            "--no-key" => key = None,
            "--timeout-ms" => {
                let ms = value(&mut it, "--timeout-ms")?;
                let ms: u64 = ms.parse().map_err(|_| format!("bad --timeout-ms {ms:?}"))?;
                timeout = Duration::from_millis(ms);
            }
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            _ => break a,
        }
    };
    let api = api.ok_or("no API URL: pass --api or set ROTOR_API_URL")?;
    Ok(Cli {
        api,
        key,
        timeout,
        op,
        args: it.collect(),
    })
}

fn value(it: &mut impl Iterator<Item = String>, flag: &str) -> Result<String, String> {
    it.next().ok_or_else(|| format!("{flag} needs a value"))
}

/// The positional arguments and flags of an operation.
struct OpArgs {
    positional: Vec<String>,
    flags: BTreeMap<String, Vec<Vec<String>>>,
}

impl OpArgs {
    /// Reads `args`; `arity` gives how many values each known flag takes.
    fn parse(args: Vec<String>, arity: &[(&str, usize)]) -> Result<Self, String> {
        let mut positional = Vec::new();
        let mut flags: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
        let mut it = args.into_iter();
        while let Some(a) = it.next() {
            if !a.starts_with("--") {
                positional.push(a);
                continue;
            }
            let Some(&(_, n)) = arity.iter().find(|(f, _)| *f == a) else {
                return Err(format!("unknown flag {a}"));
            };
            let mut values = Vec::with_capacity(n);
            for _ in 0..n {
                values.push(value(&mut it, &a)?);
            }
            flags.entry(a).or_default().push(values);
        }
        Ok(OpArgs { positional, flags })
    }

    fn has(&self, flag: &str) -> bool {
        self.flags.contains_key(flag)
    }

    /// The values of the last use of `flag`.
    fn last(&self, flag: &str) -> Option<&[String]> {
        self.flags
            .get(flag)
            .and_then(|uses| uses.last())
            .map(Vec::as_slice)
    }

    fn all(&self, flag: &str) -> impl Iterator<Item = &[String]> {
        self.flags
            .get(flag)
            .into_iter()
            .flatten()
            .map(Vec::as_slice)
    }

    /// Exactly `n` positional arguments, or at least `n` with `at_least`.
    fn expect(&self, n: usize, at_least: bool, what: &str) -> Result<(), String> {
        let got = self.positional.len();
        if got == n || (at_least && got > n) {
            Ok(())
        } else {
            Err(format!("expected {what}, got {got} arguments"))
        }
    }
}

/// JSON text from the command line, as a `cent` payload.
fn payload(text: &str) -> Result<Box<RawValue>, String> {
    RawValue::from_string(text.to_owned()).map_err(|e| format!("{text:?} is not JSON: {e}"))
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_else(|e| json!({ "unencodable": e.to_string() }))
}

async fn run(cli: Cli) -> Result<Outcome, String> {
    let mut config = Config::new(cli.api).request_timeout(cli.timeout);
    if let Some(key) = cli.key {
        config = config.api_key(key);
    }
    let client = match Client::new(config) {
        Ok(c) => c,
        Err(e) => return Ok(Outcome::of::<()>(Err(e))),
    };
    let outcome = match cli.op.as_str() {
        "publish" => publish(&client, cli.args).await?,
        "history" => history(&client, cli.args).await?,
        "history-remove" => {
            let a = OpArgs::parse(cli.args, &[])?;
            a.expect(1, false, "CHANNEL")?;
            let req = HistoryRemoveRequest::new(&a.positional[0]);
            Outcome::of(client.history_remove(req).await)
        }
        "broadcast" => broadcast(&client, cli.args).await?,
        "info" => {
            OpArgs::parse(cli.args, &[])?.expect(0, false, "no arguments")?;
            Outcome::of(client.info(InfoRequest::new()).await)
        }
        "batch-publish" => batch_publish(&client, cli.args).await?,
        "batch" => batch(&client, cli.args).await?,
        other => return Err(format!("unknown operation {other:?}")),
    };
    // Sends nothing more: waits for calls in progress (none by now).
    let _ = client.close(Duration::from_secs(1)).await;
    Ok(outcome)
}

async fn publish(client: &Client, args: Vec<String>) -> Result<Outcome, String> {
    let a = OpArgs::parse(
        args,
        &[
            ("--idempotency-key", 1),
            ("--skip-history", 0),
            ("--tag", 1),
        ],
    )?;
    a.expect(2, false, "CHANNEL DATA")?;
    let mut req = PublishRequest::new(&a.positional[0]).data(payload(&a.positional[1])?);
    if let Some(k) = a.last("--idempotency-key") {
        req = req.idempotency_key(&k[0]);
    }
    if a.has("--skip-history") {
        req = req.skip_history(true);
    }
    let mut tags = Vec::new();
    for t in a.all("--tag") {
        let (k, v) = t[0]
            .split_once('=')
            .ok_or_else(|| format!("--tag {:?} is not NAME=VALUE", t[0]))?;
        tags.push((k.to_owned(), v.to_owned()));
    }
    if !tags.is_empty() {
        req = req.tags(tags);
    }
    Ok(Outcome::of(client.publish(req).await))
}

async fn history(client: &Client, args: Vec<String>) -> Result<Outcome, String> {
    let a = OpArgs::parse(args, &[("--limit", 1), ("--since", 2), ("--reverse", 0)])?;
    a.expect(1, false, "CHANNEL")?;
    let mut req = HistoryRequest::new(&a.positional[0]);
    if let Some(l) = a.last("--limit") {
        let limit: i32 = l[0]
            .parse()
            .map_err(|_| format!("bad --limit {:?}", l[0]))?;
        req = req.limit(limit);
    }
    if let Some(s) = a.last("--since") {
        let offset: u64 = s[0].parse().map_err(|_| format!("bad offset {:?}", s[0]))?;
        req = req.since(StreamPosition::new().offset(offset).epoch(&s[1]));
    }
    if a.has("--reverse") {
        req = req.reverse(true);
    }
    Ok(Outcome::of(client.history(req).await))
}

async fn broadcast(client: &Client, args: Vec<String>) -> Result<Outcome, String> {
    let a = OpArgs::parse(args, &[("--idempotency-key", 1)])?;
    a.expect(2, true, "DATA CHANNEL...")?;
    let mut req = BroadcastRequest::new(&a.positional[1..]).data(payload(&a.positional[0])?);
    if let Some(k) = a.last("--idempotency-key") {
        req = req.idempotency_key(&k[0]);
    }
    Ok(Outcome::of(client.broadcast(req).await))
}

async fn batch_publish(client: &Client, args: Vec<String>) -> Result<Outcome, String> {
    let a = OpArgs::parse(args, &[("--parallel", 0)])?;
    a.expect(2, false, "CHANNEL COUNT")?;
    let channel = &a.positional[0];
    let count: usize = a.positional[1]
        .parse()
        .map_err(|_| format!("bad COUNT {:?}", a.positional[1]))?;
    let mut batch = client.new_batch(BatchOptions::default().parallel(a.has("--parallel")));
    let mut pending = Vec::with_capacity(count);
    for n in 0..count {
        let data = cent::json(&json!({ "n": n, "text": format!("batch message {n}") }))
            .map_err(|e| e.to_string())?;
        pending.push(batch.publish(PublishRequest::new(channel).data(data)));
    }
    let sent = batch.send().await;
    let replies: Vec<Value> = pending
        .iter()
        .map(|p| reply_json("publish", p.result()))
        .collect();
    let result = sent.map(|_| {
        let results = pending
            .iter()
            .filter_map(|p| p.result().ok())
            .map(|r| to_json(&r))
            .collect();
        Value::Array(results)
    });
    Ok(Outcome {
        result,
        replies: Some(replies),
    })
}

/// One command's outcome in a batch: `{"<method>": result}` as Centrifugo
/// replies, or `{"error": ...}`.
fn reply_json<T: serde::Serialize>(method: &str, r: Result<T, Error>) -> Value {
    match r {
        Ok(v) => json!({ method: to_json(&v) }),
        Err(e) => json!({ "error": error_json(&e) }),
    }
}

async fn batch(client: &Client, args: Vec<String>) -> Result<Outcome, String> {
    let a = OpArgs::parse(args, &[("--parallel", 0)])?;
    a.expect(1, false, "COMMANDS")?;
    // Raw values: cent's requests keep payloads as RawValue, which reads
    // only from JSON text.
    let commands: Vec<BTreeMap<String, Box<RawValue>>> = serde_json::from_str(&a.positional[0])
        .map_err(|e| format!("COMMANDS is not a JSON array of objects: {e}"))?;
    let mut batch = client.new_batch(BatchOptions::default().parallel(a.has("--parallel")));
    type Read = Box<dyn Fn() -> Value>;
    let mut reads: Vec<Read> = Vec::with_capacity(commands.len());
    fn req<T: serde::de::DeserializeOwned>(method: &str, raw: &RawValue) -> Result<T, String> {
        serde_json::from_str(raw.get()).map_err(|e| format!("{method} request: {e}"))
    }
    for c in &commands {
        let mut entries = c.iter();
        let (Some((method, raw)), None) = (entries.next(), entries.next()) else {
            return Err("each command is an object with one method".into());
        };
        let m = method.clone();
        let read: Read = match method.as_str() {
            "publish" => {
                let p = batch.publish(req::<PublishRequest>(method, raw)?);
                Box::new(move || reply_json(&m, p.result()))
            }
            "broadcast" => {
                let p = batch.broadcast(req::<BroadcastRequest>(method, raw)?);
                Box::new(move || reply_json(&m, p.result()))
            }
            "history" => {
                let p = batch.history(req::<HistoryRequest>(method, raw)?);
                Box::new(move || reply_json(&m, p.result()))
            }
            "history_remove" => {
                let p = batch.history_remove(req::<HistoryRemoveRequest>(method, raw)?);
                Box::new(move || reply_json(&m, p.result()))
            }
            "presence" => {
                let p = batch.presence(req::<PresenceRequest>(method, raw)?);
                Box::new(move || reply_json(&m, p.result()))
            }
            "presence_stats" => {
                let p = batch.presence_stats(req::<PresenceStatsRequest>(method, raw)?);
                Box::new(move || reply_json(&m, p.result()))
            }
            "channels" => {
                let p = batch.channels(req::<ChannelsRequest>(method, raw)?);
                Box::new(move || reply_json(&m, p.result()))
            }
            "info" => {
                let p = batch.info(req::<InfoRequest>(method, raw)?);
                Box::new(move || reply_json(&m, p.result()))
            }
            other => return Err(format!("batch: unsupported method {other:?}")),
        };
        reads.push(read);
    }
    let sent = batch.send().await;
    let replies = reads.iter().map(|r| r()).collect();
    Ok(Outcome {
        result: sent.map(|r| to_json(&r)),
        replies: Some(replies),
    })
}

/// `cent`'s error as JSON: its kind, what `cent` says about it, and the
/// details of each kind.
fn error_json(e: &Error) -> Value {
    let mut v = json!({
        "message": e.to_string(),
        "api_code": e.api_code(),
        "unauthorized": e.is_unauthorized(),
        "timeout": e.is_timeout(),
        "retryable": e.is_retryable(),
    });
    let (kind, details) = match e {
        Error::Api(a) => (
            "api",
            json!({ "code": a.code, "temporary": a.temporary, "api_message": a.message }),
        ),
        Error::Http(h) => (
            "http",
            json!({
                "status": h.status.as_u16(),
                "body": String::from_utf8_lossy(&h.body),
            }),
        ),
        Error::BatchFailedCommands(b) => (
            "batch_failed",
            json!({
                "total": b.total(),
                "failed": b.failed().iter().map(|c| json!({
                    "index": c.index,
                    "method": c.method,
                    "error": error_json(&c.error),
                })).collect::<Vec<_>>(),
            }),
        ),
        Error::BroadcastFailedChannels(b) => (
            "broadcast_failed",
            json!({
                "result": to_json(b.result()),
                "failed": b.result().errors().map(|(ch, e)| json!({
                    "channel": ch,
                    "error": error_json(e),
                })).collect::<Vec<_>>(),
            }),
        ),
        Error::Decode(_) => ("decode", json!({})),
        Error::InvalidRequest(_) => ("invalid_request", json!({})),
        Error::InvalidConfig(_) => ("invalid_config", json!({})),
        Error::Timeout(_) => ("timeout", json!({})),
        Error::Network(_) => ("network", json!({})),
        _ => ("other", json!({})),
    };
    v["kind"] = json!(kind);
    if let (Value::Object(dst), Value::Object(src)) = (&mut v, details) {
        dst.extend(src);
    }
    v
}
