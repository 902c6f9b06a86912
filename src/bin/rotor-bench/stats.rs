//! Latency histogram, per-subscriber counters and /proc readings.

use std::sync::OnceLock;
use std::time::Instant;

/// Sub-buckets per power of two (precision about 1.5 %).
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
/// Values are clamped below 2^40 µs.
const MAX_VALUE: u64 = (1 << 40) - 1;
const BUCKETS: usize = (2 * SUB + (40 - SUB_BITS as u64) * SUB) as usize;

/// The instant every timestamp is measured from.
pub fn start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

/// Nanoseconds since [`start`].
pub fn now_ns() -> u64 {
    start().elapsed().as_nanos() as u64
}

/// A log-linear histogram of microsecond values. Buckets are allocated on
/// first use: idle connections never record.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

fn index(v: u64) -> usize {
    let v = v.min(MAX_VALUE);
    if v < 2 * SUB {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros();
    let shift = msb - SUB_BITS;
    (2 * SUB + (u64::from(shift) - 1) * SUB + ((v >> shift) - SUB)) as usize
}

/// Middle of bucket `i`.
fn value(i: usize) -> u64 {
    let i = i as u64;
    if i < 2 * SUB {
        return i;
    }
    let j = i - 2 * SUB;
    let shift = j / SUB + 1;
    ((j % SUB + SUB) << shift) + (1 << shift) / 2
}

impl Histogram {
    /// Records one value (µs).
    pub fn record(&mut self, v: u64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        self.counts[index(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    /// Adds another histogram.
    pub fn merge(&mut self, other: &Histogram) {
        if other.counts.is_empty() {
            return;
        }
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// Number of values.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Largest value recorded.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0..=1).
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return value(i).min(self.max);
            }
        }
        self.max
    }
}

/// What one subscriber saw.
#[derive(Debug, Default)]
pub struct SubStats {
    /// Distinct publications received.
    pub unique: u64,
    /// Publications received again.
    pub duplicates: u64,
    /// Times a sequence number skipped ahead of the next expected one.
    pub gaps: u64,
    /// Frames that carried at least one publication.
    pub frames: u64,
    /// Publications in those frames (duplicates included).
    pub messages: u64,
    /// The connection failed or was closed by the server.
    pub error: Option<String>,
}

/// Tracks sequence numbers of one subscriber.
#[derive(Debug)]
pub struct SeqTracker {
    seen: Vec<u64>,
    next: u64,
}

impl SeqTracker {
    /// For sequence numbers below `n`.
    pub fn new(n: u64) -> Self {
        Self {
            seen: vec![0; (n as usize).div_ceil(64).max(1)],
            next: 0,
        }
    }

    /// Records `seq`; updates the counters of `s`.
    pub fn record(&mut self, seq: u64, s: &mut SubStats) {
        let (w, b) = ((seq / 64) as usize, seq % 64);
        let Some(word) = self.seen.get_mut(w) else {
            s.duplicates += 1;
            return;
        };
        if *word & (1 << b) != 0 {
            s.duplicates += 1;
            return;
        }
        *word |= 1 << b;
        s.unique += 1;
        if seq > self.next {
            s.gaps += 1;
        }
        self.next = self.next.max(seq + 1);
    }
}

/// Clock ticks per second of /proc/PID/stat.
fn clk_tck() -> f64 {
    static TCK: OnceLock<f64> = OnceLock::new();
    *TCK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// User + system CPU seconds of a process (`"self"` for this one).
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat; `after` starts at field 3.
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / clk_tck())
}

/// Resident set size in KiB.
pub fn rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The 1/5/15-minute load averages (other work on the machine skews
/// results; printed with each run).
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_round_trip_within_two_percent() {
        for v in [0u64, 1, 127, 128, 1000, 12_345, 1_000_000, 987_654_321] {
            let back = value(index(v));
            let err = back.abs_diff(v) as f64 / v.max(1) as f64;
            assert!(err < 0.02, "{v} -> {back}");
        }
        assert!(index(MAX_VALUE) < BUCKETS);
    }

    #[test]
    fn quantiles_and_sequence_tracking() {
        let mut h = Histogram::default();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), 50);
        assert_eq!(h.quantile(0.99), 99);
        let mut s = SubStats::default();
        let mut t = SeqTracker::new(10);
        for seq in [0, 1, 3, 3, 2] {
            t.record(seq, &mut s);
        }
        assert_eq!((s.unique, s.duplicates, s.gaps), (4, 1, 1));
    }
}
