//! The fan-out scenario: N subscribers, one publisher at R msgs/s.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, watch};

use crate::conn::{Conn, Kind, Msg, decode_reply, payload, seq_ts};
use crate::raw::RawKind;
use crate::stats::{Histogram, SeqTracker, SubStats, cpu_seconds, now_ns, rss_kib};
use crate::{FanoutArgs, SubTransport};

/// How long to wait for late deliveries after the last publication.
const STRAGGLERS: Duration = Duration::from_secs(2);
/// Longest time all subscribers may take to get ready.
const SETUP_LIMIT: Duration = Duration::from_secs(300);

/// Counters every subscriber adds to while running.
#[derive(Debug, Default)]
pub struct Live {
    /// Subscribers ready (connected and subscribed).
    pub ready: AtomicUsize,
    /// Subscribers that failed to set up.
    pub failed: AtomicUsize,
    /// Publications received (all subscribers, duplicates included).
    pub delivered: AtomicU64,
    /// Latest receive time (ns since start) of a publication.
    pub last_rx: AtomicU64,
    /// Delivery latencies in µs, all subscribers. One histogram stays in
    /// cache; one per subscriber (18 KiB each) did not, and recording cost
    /// the tool more than any other line of its own code.
    pub latency: parking_lot::Mutex<Histogram>,
}

/// Per publication: the latency (µs) of its first and of its last
/// delivery over all subscribers. A late first delivery means the whole
/// publication was held up (publisher, server ingress); a late last one
/// with an early first means some subscribers were served late.
#[derive(Debug)]
pub struct Spread {
    first: Vec<AtomicU64>,
    last: Vec<AtomicU64>,
}

impl Spread {
    fn new(n: u64) -> Self {
        let n = usize::try_from(n).unwrap_or(0);
        Self {
            first: (0..n).map(|_| AtomicU64::new(u64::MAX)).collect(),
            last: (0..n).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn see(&self, seq: u64, latency_us: u64) {
        let i = usize::try_from(seq).unwrap_or(usize::MAX);
        if let (Some(f), Some(l)) = (self.first.get(i), self.last.get(i)) {
            f.fetch_min(latency_us, Ordering::Relaxed);
            l.fetch_max(latency_us, Ordering::Relaxed);
        }
    }

    /// Histograms of first and last delivery latencies.
    fn histograms(&self) -> (Histogram, Histogram) {
        let (mut first, mut last) = (Histogram::default(), Histogram::default());
        for (f, l) in self.first.iter().zip(&self.last) {
            let f = f.load(Ordering::Relaxed);
            if f != u64::MAX {
                first.record(f);
                last.record(l.load(Ordering::Relaxed));
            }
        }
        (first, last)
    }
}

/// Reads frames until `stop`; answers pings; records publications when
/// `tracker` is given.
pub async fn serve(
    mut c: Conn,
    mut stop: watch::Receiver<bool>,
    mut tracker: Option<SeqTracker>,
    live: Arc<Live>,
    spread: Option<Arc<Spread>>,
) -> (SubStats, Option<u64>) {
    let mut s = SubStats::default();
    // One waiter for the whole run, not one registered per frame.
    let mut stopped = std::pin::pin!(stop.changed());
    loop {
        let frame = tokio::select! {
            biased;
            _ = &mut stopped => break,
            f = c.next_frame() => f,
        };
        let frame = match frame {
            Some(Ok(f)) => f,
            Some(Err(e)) => {
                s.error = Some(e);
                break;
            }
            None => {
                s.error = Some("connection ended".into());
                break;
            }
        };
        let now = now_ns();
        let (mut pings, mut pubs) = (0, 0u64);
        {
            let mut hist = tracker.as_ref().map(|_| live.latency.lock());
            c.messages(&frame, |m| {
                let body = match m {
                    Msg::Ping => {
                        pings += 1;
                        return;
                    }
                    Msg::Payload(b) | Msg::Other(b) => b,
                    Msg::Err(e) => {
                        s.error = Some(String::from_utf8_lossy(e).into_owned());
                        return;
                    }
                    Msg::Pong => return,
                };
                if let Some(t) = tracker.as_mut()
                    && let Some((seq, ts)) = seq_ts(body)
                {
                    pubs += 1;
                    let latency = now.saturating_sub(ts) / 1000;
                    if let Some(h) = hist.as_mut() {
                        h.record(latency);
                    }
                    if let Some(sp) = &spread {
                        sp.see(seq, latency);
                    }
                    t.record(seq, &mut s);
                }
            });
        }
        if pubs > 0 {
            s.frames += 1;
            s.messages += pubs;
            live.delivered.fetch_add(pubs, Ordering::Relaxed);
            live.last_rx.fetch_max(now, Ordering::Relaxed);
        }
        if pings > 0
            && let Err(e) = c.pong(pings).await
        {
            s.error = Some(e);
            break;
        }
    }
    (s, c.wire_bytes())
}

/// What the publisher did.
#[derive(Debug, Default)]
struct Published {
    sent: u64,
    replies_ok: u64,
    reply_errors: u64,
    first_error: Option<String>,
    /// ns since start of the first and last publication.
    first_ns: u64,
    last_ns: u64,
}

fn due(t0: Instant, i: u64, rate: u64) -> Instant {
    t0 + Duration::from_nanos((u128::from(i) * 1_000_000_000 / u128::from(rate)) as u64)
}

/// Publishes `rate` msgs/s for `duration` s on a tick schedule: message i
/// is due at t0 + i/rate; whatever is due when the timer fires goes out,
/// so timer granularity never accumulates into drift. Each payload carries
/// its actual send time.
async fn publish(c: &mut Conn, a: &FanoutArgs) -> Result<Published, String> {
    let channel = a.common.channel.clone();
    let total = a.rate * a.duration;
    let mut p = Published::default();
    let t0 = Instant::now() + Duration::from_millis(20);
    let handle = |c: &mut Conn, frame: &[u8], p: &mut Published, pongs: &mut u64| {
        let kind = c.kind;
        let mut pings = 0;
        c.messages(frame, |m| match m {
            Msg::Ping => pings += 1,
            Msg::Pong => *pongs += 1,
            Msg::Err(e) => {
                p.reply_errors += 1;
                p.first_error
                    .get_or_insert_with(|| String::from_utf8_lossy(e).into_owned());
            }
            Msg::Other(b) => {
                if let Some(r) = decode_reply(kind, b)
                    && r.id > 0
                {
                    match r.error {
                        Some(e) => {
                            p.reply_errors += 1;
                            p.first_error
                                .get_or_insert_with(|| format!("{} {}", e.code, e.message));
                        }
                        None => p.replies_ok += 1,
                    }
                }
            }
            Msg::Payload(_) => {}
        });
        pings
    };
    let mut pongs = 0;
    while p.sent < total {
        let next = due(t0, p.sent, a.rate);
        tokio::select! {
            biased;
            _ = tokio::time::sleep_until(next.into()) => {
                let now = Instant::now();
                while p.sent < total && due(t0, p.sent, a.rate) <= now {
                    let ts = now_ns();
                    if p.sent == 0 {
                        p.first_ns = ts;
                    }
                    p.last_ns = ts;
                    let bytes = c.publish_bytes(&channel, &payload(p.sent, ts, a.payload));
                    c.feed_raw(bytes).await?;
                    p.sent += 1;
                }
                c.flush().await?;
            }
            f = c.next_frame() => {
                let frame = f.ok_or("publisher connection ended")??;
                let pings = handle(c, &frame, &mut p, &mut pongs);
                if pings > 0 {
                    c.pong(pings).await?;
                }
            }
        }
    }
    // Wait until the server has taken every publication: all publish
    // replies (Rotor) or the PONG after the last PUB (NATS).
    if c.kind == Kind::Nats {
        c.send_raw(b"PING\r\n".to_vec()).await?;
    }
    let kind = c.kind;
    let done = |p: &Published, pongs: u64| match kind {
        Kind::Nats => pongs > 0,
        _ => p.replies_ok + p.reply_errors >= p.sent,
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while !done(&p, pongs) {
            let Some(Ok(frame)) = c.next_frame().await else {
                break;
            };
            let pings = handle(c, &frame, &mut p, &mut pongs);
            if pings > 0 && c.pong(pings).await.is_err() {
                break;
            }
        }
    })
    .await;
    if kind != Kind::Nats {
        // Replies not received count as errors.
        let missing = p.sent.saturating_sub(p.replies_ok + p.reply_errors);
        if missing > 0 {
            p.first_error
                .get_or_insert_with(|| format!("{missing} publish replies missing"));
        }
    }
    Ok(p)
}

/// Runs the scenario and prints the results.
pub async fn run(a: FanoutArgs) -> Result<(), String> {
    let kind = a.common.kind();
    let client = a.common.client;
    let n = a.subscribers;
    let total = a.rate * a.duration;
    if a.rate == 0 || a.duration == 0 || n == 0 {
        return Err("--rate, --duration and --subscribers must be positive".into());
    }
    let transport = a.common.sub_transport;
    let raw = match transport {
        SubTransport::Ws => None,
        SubTransport::RawWs => Some(RawKind::WsDeflate),
        SubTransport::UniSse => Some(RawKind::UniSse),
        SubTransport::HttpStream => Some(RawKind::HttpStream),
    };
    let server_side = raw
        .is_some_and(RawKind::server_side_only)
        .then_some(a.common.channel.as_str());
    let tokens = crate::tokens_for(&a.common, n, server_side)?;
    let pub_token = crate::tokens(&a.common, 1)?.pop().unwrap_or_default();
    let wire = Arc::new(AtomicU64::new(0));
    let live = Arc::new(Live::default());
    let spread = Arc::new(Spread::new(total));
    let (stop_tx, stop_rx) = watch::channel(false);
    let sem = Arc::new(Semaphore::new(a.connect_concurrency.max(1)));
    let setup_start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for token in tokens {
        let (url, channel) = (a.common.url.clone(), a.common.channel.clone());
        let (live, sem, stop) = (live.clone(), sem.clone(), stop_rx.clone());
        let wire = wire.clone();
        let spread = spread.clone();
        tasks.push(tokio::spawn(async move {
            let permit = sem.acquire_owned().await;
            let conn = async {
                let mut c = match raw {
                    None => Conn::open(&url, kind, &token, client).await?,
                    Some(r) => Conn::open_raw(&url, r, &token).await?,
                };
                c.subscribe(&channel).await?;
                Ok::<_, String>(c)
            }
            .await;
            drop(permit);
            match conn {
                Ok(c) => {
                    live.ready.fetch_add(1, Ordering::Relaxed);
                    let (stats, bytes) =
                        serve(c, stop, Some(SeqTracker::new(total)), live, Some(spread)).await;
                    wire.fetch_add(bytes.unwrap_or(0), Ordering::Relaxed);
                    stats
                }
                Err(e) => {
                    live.failed.fetch_add(1, Ordering::Relaxed);
                    SubStats {
                        error: Some(e),
                        ..Default::default()
                    }
                }
            }
        }));
    }
    while live.ready.load(Ordering::Relaxed) + live.failed.load(Ordering::Relaxed) < n {
        if setup_start.elapsed() > SETUP_LIMIT {
            let _ = stop_tx.send(true);
            return Err("subscribers not ready in time".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let setup_secs = setup_start.elapsed().as_secs_f64();
    let ready = live.ready.load(Ordering::Relaxed);
    let failed = live.failed.load(Ordering::Relaxed);
    let pub_url = a.publish_url.as_deref().unwrap_or(&a.common.url);
    if !(pub_url.starts_with("ws://127.0.0.1:") || pub_url.starts_with("ws://localhost:")) {
        return Err("--publish-url: loopback ws:// URLs only".into());
    }
    let mut publisher = Conn::open(pub_url, kind, &pub_token, a.common.client).await?;
    // Let the server settle after the connection burst.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let pid = a.common.pid();
    let cpu0 = pid.as_deref().and_then(cpu_seconds);
    let rss0 = pid.as_deref().and_then(rss_kib);
    let self_cpu0 = cpu_seconds("self");
    let run_start = Instant::now();

    let published = publish(&mut publisher, &a).await?;
    let expected = published.sent * ready as u64;
    let wait_start = Instant::now();
    while live.delivered.load(Ordering::Relaxed) < expected && wait_start.elapsed() < STRAGGLERS {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let run_secs = run_start.elapsed().as_secs_f64();
    let cpu1 = pid.as_deref().and_then(cpu_seconds);
    let rss1 = pid.as_deref().and_then(rss_kib);
    let self_cpu1 = cpu_seconds("self");

    let _ = stop_tx.send(true);
    let mut total_stats = SubStats::default();
    let hist = live.latency.lock().clone();
    let mut errors: Vec<String> = Vec::new();
    for t in tasks {
        let Ok(s) = t.await else { continue };
        total_stats.unique += s.unique;
        total_stats.duplicates += s.duplicates;
        total_stats.gaps += s.gaps;
        total_stats.frames += s.frames;
        total_stats.messages += s.messages;
        if let Some(e) = s.error {
            errors.push(e);
        }
    }
    drop(publisher);

    let delivered = total_stats.unique;
    let last_rx = live.last_rx.load(Ordering::Relaxed);
    let span = last_rx.saturating_sub(published.first_ns).max(1) as f64 / 1e9;
    let loss = if expected > 0 {
        100.0 * expected.saturating_sub(delivered) as f64 / expected as f64
    } else {
        0.0
    };
    let ms = |us: u64| us as f64 / 1000.0;
    let per_frame = if total_stats.frames > 0 {
        total_stats.messages as f64 / total_stats.frames as f64
    } else {
        0.0
    };
    let cpu = cpu0.zip(cpu1).map(|(a, b)| b - a);
    let self_cpu = self_cpu0.zip(self_cpu1).map(|(a, b)| b - a);
    let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or("-".to_string(), f);
    let mib = |k: Option<u64>| k.map_or("-".into(), |k| format!("{:.1}", k as f64 / 1024.0));

    println!("== fanout: {} ==", a.common.name());
    println!("load average         {} (at end)", crate::stats::loadavg());
    println!(
        "subscribers          {ready} ready, {failed} failed (setup {setup_secs:.1} s, {} at once)",
        a.connect_concurrency
    );
    println!(
        "publishing           {} msgs/s for {} s, payload {} B",
        a.rate, a.duration, a.payload
    );
    println!(
        "published            {} (publish span {:.2} s, replies ok {}, errors {})",
        published.sent,
        published.last_ns.saturating_sub(published.first_ns) as f64 / 1e9,
        published.replies_ok,
        published.reply_errors
    );
    if let Some(e) = &published.first_error {
        println!("publish error        {e}");
    }
    println!("expected deliveries  {expected}");
    println!(
        "delivered            {delivered} (duplicates {}, gaps {})",
        total_stats.duplicates, total_stats.gaps
    );
    println!(
        "delivered/s          {:.0} (over {span:.2} s, first publish to last delivery)",
        delivered as f64 / span
    );
    println!("loss                 {loss:.3} %");
    println!(
        "latency ms           p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}  ({} samples)",
        ms(hist.quantile(0.5)),
        ms(hist.quantile(0.9)),
        ms(hist.quantile(0.99)),
        ms(hist.max()),
        hist.count()
    );
    let (first, last) = spread.histograms();
    for (name, h) in [("first delivery", first), ("last delivery", last)] {
        println!(
            "{name:<20} p50 {:.2}  p99 {:.2}  max {:.2}  (ms, per publication)",
            ms(h.quantile(0.5)),
            ms(h.quantile(0.99)),
            ms(h.max())
        );
    }
    println!(
        "msgs per WS frame    {per_frame:.2} ({} frames)",
        total_stats.frames
    );
    let wire = wire.load(Ordering::Relaxed);
    if raw.is_some() && delivered > 0 {
        println!(
            "wire bytes           {wire} ({:.1} per delivery, subscribers' sockets, {transport:?})",
            wire as f64 / delivered as f64
        );
    }
    println!(
        "server CPU           {} s over {run_secs:.1} s ({})",
        opt(cpu, &|c| format!("{c:.2}")),
        opt(cpu, &|c| format!(
            "{:.0} % of one core",
            100.0 * c / run_secs
        ))
    );
    println!(
        "server RSS MiB       before {} after {}",
        mib(rss0),
        mib(rss1)
    );
    println!(
        "bench tool CPU       {} s ({})",
        opt(self_cpu, &|c| format!("{c:.2}")),
        opt(self_cpu, &|c| format!(
            "{:.0} % of one core",
            100.0 * c / run_secs
        ))
    );
    if !errors.is_empty() {
        println!(
            "subscriber errors    {} (first: {})",
            errors.len(),
            errors[0]
        );
    }
    println!(
        "ROW | {} | {} | {} | {} | {} | {} | {} | {:.0} | {:.3} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} → {} | {} |",
        a.common.label,
        a.common.name(),
        ready,
        a.rate,
        published.sent,
        expected,
        delivered,
        delivered as f64 / span,
        loss,
        ms(hist.quantile(0.5)),
        ms(hist.quantile(0.9)),
        ms(hist.quantile(0.99)),
        ms(hist.max()),
        per_frame,
        opt(cpu, &|c| format!("{c:.2}")),
        mib(rss0),
        mib(rss1),
        opt(self_cpu, &|c| format!("{c:.2}")),
    );
    Ok(())
}
