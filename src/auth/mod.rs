//! JWT authentication, compatible with Centrifugo v6 tokens.
//!
//! [`TokenVerifier`] checks connection and subscription tokens against the
//! keys in `client.token` (HMAC with rotation, RSA, ECDSA or a JWKS endpoint),
//! with algorithms pinned to the configured key types, then applies the claim
//! rules (`aud`, `iss`, `exp`, `nbf`, `channel`) and maps claims onto
//! [`ConnectClaims`] / [`SubscribeClaims`]. [`sign_hs256`] serves the
//! `gentoken`/`gensubtoken` CLI helpers. Nothing here logs token text or keys.

mod claims;
mod jwks;
mod jwt;
mod keys;
mod template;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use regex::Regex;

use crate::control::SubscribeOverride;

use claims::{ClaimRules, TokenClaims};
use jwks::JwksClient;
use keys::{Alg, StaticKeys};
use template::UrlTemplate;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TokenError {
    /// `exp` in the past or `nbf` in the future (no leeway).
    #[error("token expired")]
    Expired,
    /// Everything else; the message is for logs only and never contains the token.
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// Verified connection token claims.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnectClaims {
    /// `sub`, or the `user_id_claim` claim (non-string values stringified).
    pub(crate) user: String,
    /// Unix seconds: `expire_at` if present (0 → None), else `exp`, else None.
    pub(crate) expire_at: Option<i64>,
    /// `b64info` decoded (wins), else raw JSON text of `info`; empty if absent.
    pub(crate) info: Bytes,
    pub(crate) channels: Vec<String>,
    /// When non-empty, callers ignore `channels`.
    pub(crate) subs: BTreeMap<String, SubOptions>,
    pub(crate) meta: Option<serde_json::Value>,
}

/// Verified subscription token claims.
#[derive(Debug, Clone, Default)]
pub(crate) struct SubscribeClaims {
    pub(crate) user: String,
    pub(crate) channel: String,
    /// Legacy `client` claim; empty if absent.
    pub(crate) client: String,
    pub(crate) expire_at: Option<i64>,
    pub(crate) info: Bytes,
    /// `b64data` decoded (wins), else raw JSON of `data`.
    pub(crate) data: Bytes,
    pub(crate) override_: SubscribeOverride,
}

/// Options of one `subs` entry in a connection token.
#[derive(Debug, Clone, Default)]
pub(crate) struct SubOptions {
    pub(crate) info: Bytes,
    pub(crate) data: Bytes,
    pub(crate) override_: SubscribeOverride,
}

/// Where signatures are checked.
enum Keys {
    Static(StaticKeys),
    Jwks {
        client: JwksClient,
        url: UrlTemplate,
    },
}

/// Verifies connection and subscription JWTs for one `client.token` section.
pub(crate) struct TokenVerifier {
    keys: Keys,
    rules: ClaimRules,
    skip_signature: bool,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("jwks", &matches!(self.keys, Keys::Jwks { .. }))
            .field("skip_signature", &self.skip_signature)
            .finish_non_exhaustive()
    }
}

fn compile_regex(key: &str, pattern: &str) -> Result<Option<Regex>, String> {
    if pattern.is_empty() {
        return Ok(None);
    }
    Regex::new(pattern)
        .map(Some)
        .map_err(|e| format!("client.token.{key}: invalid regex: {e}"))
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

impl TokenVerifier {
    /// `skip_signature` = `client.insecure_skip_token_signature_verify` (claims still checked).
    /// Errors name the config key, e.g. `client.token.rsa_public_key: invalid PEM: …`.
    pub(crate) fn new(cfg: &crate::config::Token, skip_signature: bool) -> Result<Self, String> {
        if !cfg.audience.is_empty() && !cfg.audience_regex.is_empty() {
            return Err("client.token.audience: can not be used together with \
                        client.token.audience_regex"
                .into());
        }
        if !cfg.issuer.is_empty() && !cfg.issuer_regex.is_empty() {
            return Err(
                "client.token.issuer: can not be used together with client.token.issuer_regex"
                    .into(),
            );
        }
        if skip_signature {
            tracing::warn!(
                "client.insecure_skip_token_signature_verify is on: token signatures are NOT checked"
            );
        }
        let claim = &cfg.user_id_claim;
        if !claim.is_empty() && !claim.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_') {
            return Err("client.token.user_id_claim: must match ^[a-zA-Z_]+$".into());
        }
        let rules = ClaimRules {
            audience: cfg.audience.clone(),
            audience_re: compile_regex("audience_regex", &cfg.audience_regex)?,
            issuer: cfg.issuer.clone(),
            issuer_re: compile_regex("issuer_regex", &cfg.issuer_regex)?,
            user_id_claim: cfg.user_id_claim.clone(),
        };
        let keys = if cfg.jwks_public_endpoint.is_empty() {
            let keys = StaticKeys::from_config(cfg)?;
            let algs = keys.enabled_algs();
            if !algs.is_empty() {
                tracing::info!(algorithms = %algs.join(", "), "enabled JWT verifiers");
            }
            keys
        } else {
            let insecure = cfg.insecure_skip_jwks_endpoint_safety_check;
            let url = UrlTemplate::new(
                &cfg.jwks_public_endpoint,
                &cfg.issuer_regex,
                &cfg.audience_regex,
                insecure,
            )?;
            if insecure && !url.is_static() {
                tracing::warn!(
                    "client.token.insecure_skip_jwks_endpoint_safety_check is on: JWKS URL \
                     template values come from unverified token claims"
                );
            }
            let client =
                JwksClient::new().map_err(|e| format!("client.token.jwks_public_endpoint: {e}"))?;
            return Ok(Self {
                keys: Keys::Jwks { client, url },
                rules,
                skip_signature,
            });
        };
        Ok(Self {
            keys: Keys::Static(keys),
            rules,
            skip_signature,
        })
    }

    #[cfg(test)]
    /// True when at least one key (hmac, rsa, ecdsa or jwks) is configured, or skip_signature.
    pub(crate) fn is_configured(&self) -> bool {
        self.skip_signature
            || match &self.keys {
                Keys::Static(k) => !k.is_empty(),
                Keys::Jwks { .. } => true,
            }
    }

    /// Verifies a connection token.
    pub(crate) async fn verify_connect(&self, token: &str) -> Result<ConnectClaims, TokenError> {
        let parsed = jwt::parse(token).map_err(TokenError::Invalid)?;
        let c = claims::decode(&parsed.payload_text)?;
        self.check(&parsed, &c).await?;
        if c.channel.as_deref().is_some_and(|ch| !ch.is_empty()) {
            return Err(TokenError::Invalid(
                "connection token can not contain channel claim".into(),
            ));
        }
        claims::check_times(&c, now_secs())?;
        Ok(ConnectClaims {
            user: claims::user_id(&c, &parsed.payload, &self.rules.user_id_claim),
            expire_at: claims::expire_at(&c),
            info: claims::bytes_claim(c.info, c.b64info.as_deref(), "b64info")?,
            channels: c.channels.clone().unwrap_or_default(),
            subs: claims::subs(&c)?,
            meta: c.meta.clone().filter(|m| !m.is_null()),
        })
    }

    /// Verifies a subscription token.
    pub(crate) async fn verify_subscribe(
        &self,
        token: &str,
    ) -> Result<SubscribeClaims, TokenError> {
        let parsed = jwt::parse(token).map_err(TokenError::Invalid)?;
        let c = claims::decode(&parsed.payload_text)?;
        self.check(&parsed, &c).await?;
        claims::check_times(&c, now_secs())?;
        let channel = c.channel.clone().unwrap_or_default();
        if channel.is_empty() {
            return Err(TokenError::Invalid(
                "channel claim is required for subscription token".into(),
            ));
        }
        Ok(SubscribeClaims {
            user: claims::user_id(&c, &parsed.payload, &self.rules.user_id_claim),
            channel,
            client: c.client.clone().unwrap_or_default(),
            expire_at: claims::expire_at(&c),
            info: claims::bytes_claim(c.info, c.b64info.as_deref(), "b64info")?,
            data: claims::bytes_claim(c.data, c.b64data.as_deref(), "b64data")?,
            override_: c
                .override_
                .as_ref()
                .map(|o| o.to_override())
                .unwrap_or_default(),
        })
    }

    /// `aud`/`iss` rules, then the signature (unless skipped).
    async fn check(&self, t: &jwt::ParsedToken<'_>, c: &TokenClaims<'_>) -> Result<(), TokenError> {
        let vars = self.rules.check(c)?;
        if self.skip_signature {
            return Ok(());
        }
        self.check_signature(t, &vars)
            .await
            .map_err(TokenError::Invalid)
    }

    async fn check_signature(
        &self,
        t: &jwt::ParsedToken<'_>,
        vars: &HashMap<String, String>,
    ) -> Result<(), String> {
        let alg = Alg::parse(&t.alg).ok_or("unsupported JWT algorithm")?;
        let message = t.signing_input.as_bytes();
        match &self.keys {
            Keys::Static(keys) => keys.verify(alg, message, t.signature, now_secs() as i64),
            Keys::Jwks { client, url } => {
                let kid = t
                    .kid
                    .as_deref()
                    .filter(|k| !k.is_empty())
                    .ok_or("jwks: kid is not provided")?;
                let url = url.resolve(vars)?;
                let key = client.get_key(&url, kid).await?;
                key.verify(alg, message, t.signature)
            }
        }
    }
}

/// For `gentoken`/`gensubtoken`: an HS256 JWT carrying `claims` (a JSON object).
pub(crate) fn sign_hs256(secret: &str, claims: &serde_json::Value) -> Result<String, String> {
    if secret.is_empty() {
        return Err("HMAC secret key is not configured".into());
    }
    if !claims.is_object() {
        return Err("claims must be a JSON object".into());
    }
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    jsonwebtoken::encode(&header, claims, &key).map_err(|e| format!("cannot sign token: {e}"))
}

/// Token verifiers, swapped together on reload.
pub(crate) struct Verifiers {
    /// Connection tokens.
    pub(crate) connect: TokenVerifier,
    /// Subscription tokens (the connection verifier unless a separate one is
    /// enabled).
    pub(crate) subscribe: Option<TokenVerifier>,
}

impl std::fmt::Debug for Verifiers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifiers").finish_non_exhaustive()
    }
}

impl Verifiers {
    /// The verifiers `cfg` configures (`client.token`,
    /// `client.subscription_token`).
    pub(crate) fn new(cfg: &crate::config::Config) -> Result<Self, String> {
        let skip = cfg.client.insecure_skip_token_signature_verify;
        let connect = TokenVerifier::new(&cfg.client.token, skip)?;
        let subscribe = if cfg.client.subscription_token.enabled {
            Some(TokenVerifier::new(
                &cfg.client.subscription_token.token,
                skip,
            )?)
        } else {
            None
        };
        Ok(Self { connect, subscribe })
    }

    /// The verifier for subscription tokens.
    pub(crate) fn subscribe(&self) -> &TokenVerifier {
        self.subscribe.as_ref().unwrap_or(&self.connect)
    }
}
