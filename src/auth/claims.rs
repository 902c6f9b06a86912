//! Claim decoding and claim rules: `aud`/`iss` (exact or regex, which also
//! yield JWKS template values), `exp`/`nbf` (no leeway), and the mapping of
//! Centrifugo's connection/subscription claims onto Rotor's claim structs.

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use regex::Regex;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_json::value::RawValue;

use super::{SubOptions, TokenError};
use crate::control::SubscribeOverride;

/// Claims Rotor reads; everything else stays in the raw payload.
#[derive(Deserialize, Default)]
pub(crate) struct TokenClaims<'a> {
    #[serde(default)]
    pub(crate) sub: Option<String>,
    #[serde(default)]
    pub(crate) iss: Option<String>,
    #[serde(default, deserialize_with = "de_audience")]
    pub(crate) aud: Option<Vec<String>>,
    #[serde(default, deserialize_with = "de_numeric_date")]
    pub(crate) exp: Option<f64>,
    #[serde(default, deserialize_with = "de_numeric_date")]
    pub(crate) nbf: Option<f64>,
    #[serde(default)]
    pub(crate) expire_at: Option<i64>,
    #[serde(default, borrow)]
    pub(crate) info: Option<&'a RawValue>,
    #[serde(default)]
    pub(crate) b64info: Option<String>,
    #[serde(default, borrow)]
    pub(crate) data: Option<&'a RawValue>,
    #[serde(default)]
    pub(crate) b64data: Option<String>,
    #[serde(default)]
    pub(crate) channels: Option<Vec<String>>,
    #[serde(default, borrow)]
    pub(crate) subs: Option<BTreeMap<String, RawSubOptions<'a>>>,
    #[serde(default)]
    pub(crate) meta: Option<Value>,
    #[serde(default)]
    pub(crate) channel: Option<String>,
    #[serde(default)]
    pub(crate) client: Option<String>,
    #[serde(default, rename = "override")]
    pub(crate) override_: Option<RawOverride>,
}

/// One `subs` entry of a connection token.
#[derive(Deserialize, Default)]
pub(crate) struct RawSubOptions<'a> {
    #[serde(default, borrow)]
    info: Option<&'a RawValue>,
    #[serde(default)]
    b64info: Option<String>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
    #[serde(default)]
    b64data: Option<String>,
    #[serde(default, rename = "override")]
    override_: Option<RawOverride>,
}

/// A token's `override` object: `{"presence":{"value":true},…}`.
#[derive(Deserialize, Default)]
pub(crate) struct RawOverride {
    #[serde(default)]
    presence: Option<BoolValue>,
    #[serde(default)]
    join_leave: Option<BoolValue>,
    #[serde(default)]
    force_recovery: Option<BoolValue>,
    #[serde(default)]
    force_positioning: Option<BoolValue>,
    #[serde(default)]
    force_push_join_leave: Option<BoolValue>,
}

#[derive(Deserialize)]
struct BoolValue {
    #[serde(default)]
    value: bool,
}

impl RawOverride {
    pub(crate) fn to_override(&self) -> SubscribeOverride {
        let v = |b: &Option<BoolValue>| b.as_ref().map(|b| b.value);
        SubscribeOverride {
            presence: v(&self.presence),
            join_leave: v(&self.join_leave),
            force_recovery: v(&self.force_recovery),
            force_positioning: v(&self.force_positioning),
            force_push_join_leave: v(&self.force_push_join_leave),
        }
    }
}

/// `aud`: a string or an array of strings.
fn de_audience<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(vec![s])),
        Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(serde::de::Error::custom("aud items must be strings")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        _ => Err(serde::de::Error::custom("aud must be a string or an array")),
    }
}

/// NumericDate, read as Centrifugo reads it (Go's `encoding/json` into a
/// `json.Number`, then `time.Unix(int64(sec), …)`): a JSON number, or a
/// string holding exactly a JSON number literal (no spaces, no `+`, no
/// `.5`); anything else makes the token invalid. A value whose whole
/// seconds do not fit an int64 (`1e30`) is the earliest possible time, as
/// Go's float-to-int conversion gives on x86-64: such an `exp` has
/// expired, such an `nbf` has passed.
fn de_numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let n = match Value::deserialize(d)? {
        Value::Null => return Ok(None),
        Value::Number(n) => n.as_f64(),
        Value::String(s) if is_json_number(&s) => s.parse::<f64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if n.is_finite() => Ok(Some(clamp_to_int64_seconds(n))),
        _ => Err(serde::de::Error::custom("invalid numeric date")),
    }
}

/// `n` if its whole seconds fit an int64, else the smallest int64.
fn clamp_to_int64_seconds(n: f64) -> f64 {
    // 2^63: the first whole number of seconds an int64 cannot hold.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if n.trunc() >= LIMIT || n.trunc() < -LIMIT {
        i64::MIN as f64
    } else {
        n
    }
}

/// Whether `s` is a JSON number literal:
/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn is_json_number(s: &str) -> bool {
    fn digits(b: &[u8]) -> usize {
        b.iter().take_while(|c| c.is_ascii_digit()).count()
    }
    let mut b = s.as_bytes();
    if let [b'-', rest @ ..] = b {
        b = rest;
    }
    match b {
        [b'0', rest @ ..] => b = rest,
        [b'1'..=b'9', ..] => b = &b[digits(b)..],
        _ => return false,
    }
    if let [b'.', rest @ ..] = b {
        let n = digits(rest);
        if n == 0 {
            return false;
        }
        b = &rest[n..];
    }
    if let [b'e' | b'E', rest @ ..] = b {
        let rest = match rest {
            [b'+' | b'-', r @ ..] => r,
            r => r,
        };
        let n = digits(rest);
        if n == 0 {
            return false;
        }
        b = &rest[n..];
    }
    b.is_empty()
}

/// Decodes the claims Rotor understands; wrong types make the token invalid.
pub(crate) fn decode(payload_text: &str) -> Result<TokenClaims<'_>, TokenError> {
    serde_json::from_str(payload_text)
        .map_err(|e| TokenError::Invalid(format!("malformed claims: {e}")))
}

/// `exp` must be in the future and `nbf` in the past, with no leeway.
pub(crate) fn check_times(c: &TokenClaims<'_>, now: f64) -> Result<(), TokenError> {
    if c.exp.is_some_and(|exp| now >= exp) || c.nbf.is_some_and(|nbf| nbf >= now) {
        return Err(TokenError::Expired);
    }
    Ok(())
}

/// Effective expiry: `expire_at` if present (≤ 0 → never), else `exp`.
pub(crate) fn expire_at(c: &TokenClaims<'_>) -> Option<i64> {
    match c.expire_at {
        Some(v) => (v > 0).then_some(v),
        None => c.exp.map(|e| e.floor() as i64),
    }
}

/// `b64` wins when non-empty, else the raw JSON text, else empty.
pub(crate) fn bytes_claim(
    raw: Option<&RawValue>,
    b64: Option<&str>,
    name: &str,
) -> Result<Bytes, TokenError> {
    if let Some(b) = b64.filter(|b| !b.is_empty()) {
        return STANDARD
            .decode(b)
            .map(Bytes::from)
            .map_err(|_| TokenError::Invalid(format!("malformed base64 in {name}")));
    }
    Ok(raw
        .filter(|r| r.get() != "null")
        .map(|r| Bytes::copy_from_slice(r.get().as_bytes()))
        .unwrap_or_default())
}

/// Converts the `subs` claim.
pub(crate) fn subs(c: &TokenClaims<'_>) -> Result<BTreeMap<String, SubOptions>, TokenError> {
    let mut out = BTreeMap::new();
    for (ch, v) in c.subs.iter().flatten() {
        let opts = SubOptions {
            info: bytes_claim(v.info, v.b64info.as_deref(), "subs b64info")?,
            data: bytes_claim(v.data, v.b64data.as_deref(), "subs b64data")?,
            override_: v
                .override_
                .as_ref()
                .map(RawOverride::to_override)
                .unwrap_or_default(),
        };
        out.insert(ch.clone(), opts);
    }
    Ok(out)
}

/// The user ID: `sub`, or the configured claim stringified the way gjson does.
pub(crate) fn user_id(
    c: &TokenClaims<'_>,
    payload: &serde_json::Map<String, Value>,
    claim: &str,
) -> String {
    if claim.is_empty() {
        return c.sub.clone().unwrap_or_default();
    }
    match payload.get(claim) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => f.to_string(),
            _ => n.to_string(),
        },
        Some(other) => other.to_string(),
    }
}

/// Audience/issuer rules from `client.token`.
pub(crate) struct ClaimRules {
    pub(crate) audience: String,
    pub(crate) audience_re: Option<Regex>,
    pub(crate) issuer: String,
    pub(crate) issuer_re: Option<Regex>,
    pub(crate) user_id_claim: String,
}

impl ClaimRules {
    /// Checks `aud`/`iss`; returns named-group values for JWKS templates.
    pub(crate) fn check(&self, c: &TokenClaims<'_>) -> Result<HashMap<String, String>, TokenError> {
        let auds: &[String] = c.aud.as_deref().unwrap_or_default();
        let iss = c.iss.as_deref().unwrap_or_default();
        if !self.audience.is_empty() && !auds.contains(&self.audience) {
            return Err(TokenError::Invalid("invalid audience".into()));
        }
        if !self.issuer.is_empty() && iss != self.issuer {
            return Err(TokenError::Invalid("invalid issuer".into()));
        }
        let mut vars = HashMap::new();
        if let Some(re) = &self.issuer_re {
            let caps = re
                .captures(iss)
                .ok_or_else(|| TokenError::Invalid("issuer not matched".into()))?;
            collect_groups(re, &caps, &mut vars);
        }
        if let Some(re) = &self.audience_re {
            let caps = auds
                .iter()
                .find_map(|a| re.captures(a))
                .ok_or_else(|| TokenError::Invalid("audience not matched".into()))?;
            collect_groups(re, &caps, &mut vars);
        }
        Ok(vars)
    }
}

fn collect_groups(re: &Regex, caps: &regex::Captures<'_>, vars: &mut HashMap<String, String>) {
    for name in re.capture_names().flatten() {
        let value = caps.name(name).map(|m| m.as_str()).unwrap_or_default();
        vars.insert(name.to_string(), value.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_number_literals_as_go_accepts_them() {
        for ok in [
            "0",
            "-0",
            "17",
            "1700000000",
            "1.5",
            "-2.25",
            "1e30",
            "1E+3",
            "2e-1",
            "0.0",
        ] {
            assert!(is_json_number(ok), "{ok}");
        }
        for bad in [
            "", " 1", "1 ", "+1", ".5", "5.", "01", "1e", "1e+", "--1", "0x10", "1_000", "inf",
            "NaN", "soon",
        ] {
            assert!(!is_json_number(bad), "{bad}");
        }
    }

    #[test]
    fn seconds_beyond_int64_are_the_earliest_time() {
        assert_eq!(clamp_to_int64_seconds(1e30), i64::MIN as f64);
        assert_eq!(clamp_to_int64_seconds(-1e30), i64::MIN as f64);
        assert_eq!(clamp_to_int64_seconds(9.3e18), i64::MIN as f64);
        assert_eq!(clamp_to_int64_seconds(1_700_000_000.5), 1_700_000_000.5);
        assert_eq!(clamp_to_int64_seconds(-9.2e18), -9.2e18);
    }
}
