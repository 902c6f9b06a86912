//! Connection scenarios: idle memory and connect rate (with a JWT, or with
//! no token so that Rotor's connect proxy authenticates).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, watch};

use crate::conn::Conn;
use crate::fanout::{Live, serve};
use crate::stats::{Histogram, cpu_seconds, rss_kib};
use crate::{IdleArgs, RateArgs};

/// Longest time opening all connections may take.
const SETUP_LIMIT: Duration = Duration::from_secs(600);

/// Waits until `done()` reaches `n` (bounded by [`SETUP_LIMIT`]).
async fn wait_for(n: usize, done: impl Fn() -> usize) -> Result<(), String> {
    let start = Instant::now();
    while done() < n {
        if start.elapsed() > SETUP_LIMIT {
            return Err(format!("only {} of {n} connections done in time", done()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Holds N connected and subscribed connections; reports server RSS per
/// connection.
pub async fn idle(a: IdleArgs) -> Result<(), String> {
    let kind = a.common.kind();
    let client = a.common.client;
    let n = a.connections;
    let pid = a.common.pid();
    let tokens = crate::tokens(&a.common, n)?;
    let rss0 = pid.as_deref().and_then(rss_kib);
    let live = Arc::new(Live::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let sem = Arc::new(Semaphore::new(a.connect_concurrency.max(1)));
    let first_error = Arc::new(parking_lot::Mutex::new(None::<String>));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for token in tokens {
        let (url, channel) = (a.common.url.clone(), a.common.channel.clone());
        let (live, sem, stop, first_error) = (
            live.clone(),
            sem.clone(),
            stop_rx.clone(),
            first_error.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let permit = sem.acquire_owned().await;
            let conn = async {
                let mut c = Conn::open(&url, kind, &token, client).await?;
                c.subscribe(&channel).await?;
                Ok::<_, String>(c)
            }
            .await;
            drop(permit);
            match conn {
                Ok(c) => {
                    live.ready.fetch_add(1, Ordering::Relaxed);
                    serve(c, stop, None, live, None).await.0.error
                }
                Err(e) => {
                    live.failed.fetch_add(1, Ordering::Relaxed);
                    first_error.lock().get_or_insert(e.clone());
                    Some(e)
                }
            }
        }));
    }
    let counted = live.clone();
    let waited = wait_for(n, || {
        counted.ready.load(Ordering::Relaxed) + counted.failed.load(Ordering::Relaxed)
    })
    .await;
    let open_secs = start.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(a.settle)).await;
    let rss1 = pid.as_deref().and_then(rss_kib);
    let ready = live.ready.load(Ordering::Relaxed);
    let failed = live.failed.load(Ordering::Relaxed);
    // Connections the server dropped while idle.
    let _ = stop_tx.send(true);
    let mut dropped = 0usize;
    for t in tasks {
        if let Ok(Some(_)) = t.await {
            dropped += 1;
        }
    }
    waited?;
    let per_conn = rss0
        .zip(rss1)
        .filter(|_| ready > 0)
        .map(|(b, a)| (a.saturating_sub(b)) as f64 * 1024.0 / ready as f64);
    let mib = |k: Option<u64>| k.map_or("-".into(), |k| format!("{:.1}", k as f64 / 1024.0));
    let kb = per_conn.map_or("-".into(), |b| format!("{:.2}", b / 1000.0));
    println!("== idle: {} ==", a.common.name());
    println!("load average         {} (at end)", crate::stats::loadavg());
    println!("connections          {ready} ready, {failed} failed in {open_secs:.1} s");
    if let Some(e) = first_error.lock().as_ref() {
        println!("first failure        {e}");
    }
    println!("not alive at end     {}", dropped.saturating_sub(failed));
    println!(
        "server RSS MiB       before {} after {} (settled {} s)",
        mib(rss0),
        mib(rss1),
        a.settle
    );
    println!("RSS per connection   {kb} kB");
    println!(
        "ROW | {} | {} | {ready} | {failed} | {} | {} | {kb} |",
        a.common.label,
        a.common.name(),
        mib(rss0),
        mib(rss1)
    );
    Ok(())
}

/// Opens N connections with C in flight; reports connects per second.
pub async fn connect_rate(a: RateArgs) -> Result<(), String> {
    let kind = a.common.kind();
    let client = a.common.client;
    let n = a.connections;
    let pid = a.common.pid();
    if a.no_token && a.common.target != crate::Target::Rotor {
        return Err("--no-token applies to --target rotor only".into());
    }
    let tokens = if a.no_token {
        vec![String::new(); n]
    } else {
        crate::tokens(&a.common, n)?
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let sem = Arc::new(Semaphore::new(a.concurrency.max(1)));
    let done = Arc::new(AtomicUsize::new(0));
    let live = Arc::new(Live::default());
    let cpu0 = pid.as_deref().and_then(cpu_seconds);
    let self_cpu0 = cpu_seconds("self");
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for token in tokens {
        let url = a.common.url.clone();
        let (sem, stop, done, live) = (sem.clone(), stop_rx.clone(), done.clone(), live.clone());
        tasks.push(tokio::spawn(async move {
            let permit = sem.acquire_owned().await;
            let t = Instant::now();
            let conn = Conn::open(&url, kind, &token, client).await;
            let took = t.elapsed();
            drop(permit);
            done.fetch_add(1, Ordering::Relaxed);
            match conn {
                // Held open (answering pings) until the end.
                Ok(c) => {
                    let _ = serve(c, stop, None, live, None).await;
                    Ok(took)
                }
                Err(e) => Err(e),
            }
        }));
    }
    let counted = done.clone();
    let waited = wait_for(n, || counted.load(Ordering::Relaxed)).await;
    let secs = start.elapsed().as_secs_f64();
    let cpu1 = pid.as_deref().and_then(cpu_seconds);
    let self_cpu1 = cpu_seconds("self");
    let _ = stop_tx.send(true);
    let (mut ok, mut failed, mut first_error) = (0u64, 0u64, None);
    let mut hist = Histogram::default();
    for t in tasks {
        match t.await {
            Ok(Ok(took)) => {
                ok += 1;
                hist.record(took.as_micros() as u64);
            }
            Ok(Err(e)) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    waited?;
    let rate = ok as f64 / secs;
    let ms = |us: u64| us as f64 / 1000.0;
    let cpu = cpu0.zip(cpu1).map(|(a, b)| b - a);
    let cpu_s = cpu.map_or("-".into(), |c| format!("{c:.2}"));
    let self_cpu = self_cpu0.zip(self_cpu1).map(|(a, b)| b - a);
    let self_s = self_cpu.map_or("-".into(), |c| format!("{c:.2}"));
    let auth = if a.no_token { ", connect proxy" } else { "" };
    println!("== connect-rate: {}{auth} ==", a.common.name());
    println!("load average         {} (at end)", crate::stats::loadavg());
    println!(
        "connections          {ok} ok, {failed} failed in {secs:.2} s ({} in flight)",
        a.concurrency
    );
    if let Some(e) = first_error {
        println!("first failure        {e}");
    }
    println!("connects/s           {rate:.0}");
    println!(
        "connect latency ms   p50 {:.2}  p99 {:.2}  max {:.2}",
        ms(hist.quantile(0.5)),
        ms(hist.quantile(0.99)),
        ms(hist.max())
    );
    println!("server CPU           {cpu_s} s");
    println!("bench tool CPU       {self_s} s");
    println!(
        "ROW | {} | {} | {ok} | {failed} | {secs:.2} | {rate:.0} | {:.2} | {:.2} | {cpu_s} | {self_s} |",
        a.common.label,
        a.common.name(),
        ms(hist.quantile(0.5)),
        ms(hist.quantile(0.99)),
    );
    Ok(())
}
