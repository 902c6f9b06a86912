//! JWKS client: fetches JSON Web Key Sets and caches keys per
//! (resolved URL, kid) for one hour (CVE-2026-49998: never by kid alone).
//!
//! Fetch = HTTP GET, 1 s timeout, 2 attempts, no proxy, body capped at 1 MiB.
//! Fetches are single-flight per URL (a tokio mutex), and a URL is fetched at
//! most once per [`REFETCH_INTERVAL`] so tokens with unknown `kid`s cannot turn
//! us into a request amplifier. Accepted keys: RSA, EC (P-256/384/521) and
//! OKP/Ed25519 with `use` absent or `sig`; `oct` keys are never accepted.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use serde_json::Value;

use super::keys::{Alg, Curve, VerifyKey};

const KEY_TTL: Duration = Duration::from_secs(3600);
const FETCH_TIMEOUT: Duration = Duration::from_secs(1);
const FETCH_ATTEMPTS: usize = 2;
/// Minimum gap between two fetches of the same URL.
pub(crate) const REFETCH_INTERVAL: Duration = Duration::from_secs(3);
const MAX_BODY: usize = 1 << 20;
const MAX_KEYS_PER_SET: usize = 100;
const MAX_CACHED_KEYS: usize = 10_000;
const MAX_URL_STATES: usize = 1_000;

/// One key from a JWK Set.
pub(crate) struct Jwk {
    /// The JWK's own `alg`, when it has one.
    alg: Option<String>,
    key: VerifyKey,
}

impl Jwk {
    /// Verifies a token signature, pinning `alg` to the key's `alg`/family.
    pub(crate) fn verify(&self, alg: Alg, message: &[u8], signature: &str) -> Result<(), String> {
        if self.alg.as_deref().is_some_and(|a| a != alg.name()) || !self.key.accepts(alg) {
            return Err("token is signed by another algorithm".into());
        }
        self.key.verify(alg, message, signature)
    }
}

struct Cached {
    jwk: Arc<Jwk>,
    expires: Instant,
}

/// Per-URL fetch gate: holds the time of the last fetch attempt.
#[derive(Default)]
struct UrlState {
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

/// Fetches and caches keys; shared by all verifications of one verifier.
pub(crate) struct JwksClient {
    http: reqwest::Client,
    keys: parking_lot::Mutex<HashMap<(String, String), Cached>>,
    urls: parking_lot::Mutex<HashMap<String, Arc<UrlState>>>,
}

impl JwksClient {
    pub(crate) fn new() -> Result<Self, String> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| format!("cannot build HTTP client: {e}"))?;
        Ok(Self {
            http,
            keys: parking_lot::Mutex::new(HashMap::new()),
            urls: parking_lot::Mutex::new(HashMap::new()),
        })
    }

    fn cached(&self, url: &str, kid: &str) -> Option<Arc<Jwk>> {
        let keys = self.keys.lock();
        let c = keys.get(&(url.to_string(), kid.to_string()))?;
        (c.expires > Instant::now()).then(|| c.jwk.clone())
    }

    fn url_state(&self, url: &str) -> Arc<UrlState> {
        let mut urls = self.urls.lock();
        if urls.len() >= MAX_URL_STATES && !urls.contains_key(url) {
            urls.retain(|_, s| Arc::strong_count(s) > 1);
        }
        urls.entry(url.to_string()).or_default().clone()
    }

    /// The key `kid` published at `url`, from cache or a (rate-limited) fetch.
    pub(crate) async fn get_key(&self, url: &str, kid: &str) -> Result<Arc<Jwk>, String> {
        if let Some(k) = self.cached(url, kid) {
            return Ok(k);
        }
        let state = self.url_state(url);
        let mut last = state.last_fetch.lock().await;
        // Another task may have fetched while we waited.
        if let Some(k) = self.cached(url, kid) {
            return Ok(k);
        }
        if last.is_some_and(|t| t.elapsed() < REFETCH_INTERVAL) {
            return Err("jwks: public key not found".into());
        }
        *last = Some(Instant::now());
        let set = self.fetch(url).await?;
        let expires = Instant::now() + KEY_TTL;
        let mut found = None;
        {
            let mut keys = self.keys.lock();
            if keys.len() + set.len() > MAX_CACHED_KEYS {
                let now = Instant::now();
                keys.retain(|_, c| c.expires > now);
                if keys.len() + set.len() > MAX_CACHED_KEYS {
                    keys.clear();
                }
            }
            for (key_id, jwk) in set {
                let jwk = Arc::new(jwk);
                if key_id == kid {
                    found = Some(jwk.clone());
                }
                keys.insert((url.to_string(), key_id), Cached { jwk, expires });
            }
        }
        found.ok_or_else(|| "jwks: public key not found".into())
    }

    /// GETs and parses a key set, with retries.
    async fn fetch(&self, url: &str) -> Result<Vec<(String, Jwk)>, String> {
        let mut last_err = String::new();
        for _ in 0..FETCH_ATTEMPTS {
            match self.load(url).await {
                Ok(body) => return parse_set(&body),
                Err(e) => last_err = e,
            }
        }
        tracing::warn!(url = %redact(url), error = %last_err, "JWKS fetch failed");
        Err(format!("jwks: fetch failed: {last_err}"))
    }

    async fn load(&self, url: &str) -> Result<Vec<u8>, String> {
        let mut resp = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(format!("unexpected status code {}", resp.status().as_u16()));
        }
        if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
            return Err("response too large".into());
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| e.without_url().to_string())?
        {
            if body.len() + chunk.len() > MAX_BODY {
                return Err("response too large".into());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// URL without userinfo, for logs.
fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => "<invalid url>".into(),
    }
}

/// Parses a JWK Set; unusable keys are skipped, a set with none is an error.
pub(crate) fn parse_set(body: &[u8]) -> Result<Vec<(String, Jwk)>, String> {
    let doc: Value =
        serde_json::from_slice(body).map_err(|e| format!("jwks: unmarshal error: {e}"))?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("jwks: no keys array")?;
    let out: Vec<(String, Jwk)> = keys
        .iter()
        .filter_map(|k| match parse_jwk(k) {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(error = %e, "skipping unusable JWK");
                None
            }
        })
        .take(MAX_KEYS_PER_SET)
        .collect();
    if out.is_empty() {
        return Err("jwks: public key not found".into());
    }
    Ok(out)
}

fn str_field<'a>(k: &'a Value, name: &str) -> Option<&'a str> {
    k.get(name).and_then(Value::as_str)
}

fn b64_field(k: &Value, name: &str) -> Result<Vec<u8>, String> {
    let s = str_field(k, name).ok_or_else(|| format!("missing {name}"))?;
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| format!("bad base64 in {name}"))
}

/// `Ok(None)` for keys that are valid but not for signatures.
fn parse_jwk(k: &Value) -> Result<Option<(String, Jwk)>, String> {
    if str_field(k, "use").is_some_and(|u| u != "sig") {
        return Ok(None);
    }
    let Some(kid) = str_field(k, "kid") else {
        return Ok(None);
    };
    let key = match str_field(k, "kty") {
        Some("RSA") => {
            let n = b64_field(k, "n")?;
            let e = b64_field(k, "e")?;
            VerifyKey::Rsa(DecodingKey::from_rsa_raw_components(&n, &e))
        }
        Some("EC") => {
            let curve = match str_field(k, "crv") {
                Some("P-256") => Curve::P256,
                Some("P-384") => Curve::P384,
                Some("P-521") => Curve::P521,
                _ => return Err("unsupported EC curve".into()),
            };
            let x = b64_field(k, "x")?;
            let y = b64_field(k, "y")?;
            if x.len() != curve.coord_len() || y.len() != curve.coord_len() {
                return Err("EC coordinates do not match the curve".into());
            }
            let mut point = Vec::with_capacity(1 + x.len() + y.len());
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            VerifyKey::ec_from_point(point)?
        }
        Some("OKP") => {
            if str_field(k, "crv") != Some("Ed25519") {
                return Err("unsupported OKP curve".into());
            }
            let x = b64_field(k, "x")?;
            if x.len() != 32 {
                return Err("bad Ed25519 key length".into());
            }
            VerifyKey::Ed(DecodingKey::from_ed_der(&x))
        }
        _ => return Ok(None),
    };
    let alg = str_field(k, "alg").map(str::to_string);
    Ok(Some((kid.to_string(), Jwk { alg, key })))
}
