//! Go-style durations (`"25s"`, `"1h30m"`, `"500ms"`), as Centrifugo's config
//! writes them. A bare number is nanoseconds, as Go's decoder reads it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A non-negative duration read from and written as a Go duration string.
/// Negative values (e.g. `"-1s"` for "disabled") read as zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    /// Zero.
    pub(crate) const ZERO: Self = Self(std::time::Duration::ZERO);

    /// Whole seconds.
    pub const fn from_secs(s: u64) -> Self {
        Self(std::time::Duration::from_secs(s))
    }

    /// Milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Self(std::time::Duration::from_millis(ms))
    }

    /// The std value.
    pub(crate) fn get(self) -> std::time::Duration {
        self.0
    }

    /// True for zero.
    pub(crate) fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// Parses Go's duration syntax: an optional sign, then one or more
    /// decimal numbers each followed by a unit (ns, us, µs, ms, s, m, h).
    /// `"0"` alone is allowed. A negative duration yields zero.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let s = text.trim();
        let (negative, mut rest) = match s.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        if rest == "0" {
            return Ok(Self::ZERO);
        }
        if rest.is_empty() {
            return Err(format!("invalid duration {text:?}"));
        }
        let mut total: f64 = 0.0;
        while !rest.is_empty() {
            let num_end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            if num_end == 0 {
                return Err(format!("invalid duration {text:?}"));
            }
            let value: f64 = rest[..num_end]
                .parse()
                .map_err(|_| format!("invalid duration {text:?}"))?;
            rest = &rest[num_end..];
            let unit_end = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let nanos_per_unit = match &rest[..unit_end] {
                "ns" => 1.0,
                "us" | "µs" | "μs" => 1e3,
                "ms" => 1e6,
                "s" => 1e9,
                "m" => 60e9,
                "h" => 3600e9,
                "" => return Err(format!("missing unit in duration {text:?}")),
                u => return Err(format!("unknown unit {u:?} in duration {text:?}")),
            };
            rest = &rest[unit_end..];
            total += value * nanos_per_unit;
        }
        if negative || total <= 0.0 {
            return Ok(Self::ZERO);
        }
        if total > u64::MAX as f64 {
            return Err(format!("duration {text:?} out of range"));
        }
        Ok(Self(std::time::Duration::from_nanos(total.round() as u64)))
    }
}

impl From<std::time::Duration> for Duration {
    fn from(d: std::time::Duration) -> Self {
        Self(d)
    }
}

impl fmt::Display for Duration {
    /// Formats like Go's `time.Duration.String()`: `25s`, `1m0s`, `720h0m0s`,
    /// `500ms`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        if nanos == 0 {
            return f.write_str("0s");
        }
        if nanos < 1_000_000_000 {
            let (value, unit) = if nanos < 1_000 {
                (nanos as f64, "ns")
            } else if nanos < 1_000_000 {
                (nanos as f64 / 1e3, "µs")
            } else {
                (nanos as f64 / 1e6, "ms")
            };
            return write!(f, "{}{}", trim_float(value), unit);
        }
        let total_secs = self.0.as_secs();
        let frac = self.0.subsec_nanos();
        let hours = total_secs / 3600;
        let minutes = (total_secs % 3600) / 60;
        let secs = total_secs % 60;
        let secs_text = if frac == 0 {
            secs.to_string()
        } else {
            trim_float(secs as f64 + f64::from(frac) / 1e9)
        };
        if hours > 0 {
            write!(f, "{hours}h{minutes}m{secs_text}s")
        } else if minutes > 0 {
            write!(f, "{minutes}m{secs_text}s")
        } else {
            write!(f, "{secs_text}s")
        }
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.9}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Int(i64),
            Float(f64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(t) => Self::parse(&t).map_err(serde::de::Error::custom),
            Raw::Int(n) => Ok(Self(std::time::Duration::from_nanos(n.max(0) as u64))),
            Raw::Float(n) => Ok(Self(std::time::Duration::from_nanos(n.max(0.0) as u64))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_syntax() {
        assert_eq!(Duration::parse("25s"), Ok(Duration::from_secs(25)));
        assert_eq!(Duration::parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(Duration::parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(Duration::parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(Duration::parse("0"), Ok(Duration::ZERO));
        assert_eq!(Duration::parse("-1s"), Ok(Duration::ZERO));
        assert!(Duration::parse("10").is_err());
        assert!(Duration::parse("abc").is_err());
        assert!(Duration::parse("").is_err());
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(Duration::from_secs(25).to_string(), "25s");
        assert_eq!(Duration::from_secs(60).to_string(), "1m0s");
        assert_eq!(Duration::from_secs(720 * 3600).to_string(), "720h0m0s");
        assert_eq!(Duration::from_millis(500).to_string(), "500ms");
        assert_eq!(Duration::from_millis(1500).to_string(), "1.5s");
        assert_eq!(Duration::ZERO.to_string(), "0s");
    }
}
