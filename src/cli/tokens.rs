//! `gentoken`, `gensubtoken`, `checktoken`, `checksubtoken`: development
//! helpers that sign HS256 JWTs with the configured secret and verify tokens
//! with the configured verifier.

use std::path::Path;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::{Map, Value};

use super::{TokenArgs, fail, read_config};
use crate::auth::{TokenVerifier, sign_hs256};
use crate::config::{Config, Duration, Token};

/// The verifier settings for connection (`sub = false`) or subscription
/// tokens: `client.subscription_token` when enabled, else `client.token`.
fn token_config(cfg: &Config, sub: bool) -> &Token {
    if sub && cfg.client.subscription_token.enabled {
        &cfg.client.subscription_token.token
    } else {
        &cfg.client.token
    }
}

fn user_text(user: &str, quoted: bool) -> String {
    match (user.is_empty(), quoted) {
        (true, _) => "anonymous user".into(),
        (false, true) => format!("user \"{user}\""),
        (false, false) => format!("user {user}"),
    }
}

/// Claims of a development token: `sub` (omitted when anonymous), `iat`,
/// `exp` when `ttl > 0`, `channel` for subscription tokens, and the custom
/// user ID claim when configured.
pub(super) fn dev_claims(
    token: &Token,
    user: &str,
    channel: Option<&str>,
    ttl: i64,
    now: i64,
) -> Value {
    let mut claims = Map::new();
    if !user.is_empty() {
        claims.insert("sub".into(), Value::from(user));
    }
    if ttl > 0 {
        claims.insert("exp".into(), Value::from(now.saturating_add(ttl)));
    }
    claims.insert("iat".into(), Value::from(now));
    if let Some(ch) = channel {
        claims.insert("channel".into(), Value::from(ch));
    }
    if !token.user_id_claim.is_empty() {
        claims.insert(token.user_id_claim.clone(), Value::from(user));
    }
    Value::Object(claims)
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `gentoken` (`channel = None`) and `gensubtoken`.
pub(super) fn gentoken(args: &TokenArgs, channel: Option<&str>) -> ExitCode {
    let loaded = match read_config(&args.config) {
        Ok(l) => l,
        Err(code) => return code,
    };
    if channel == Some("") {
        return fail("channel is required");
    }
    let token_cfg = token_config(&loaded.config, channel.is_some());
    if token_cfg.hmac_secret_key.is_empty() {
        return fail("error: no HMAC secret key set");
    }
    let claims = dev_claims(token_cfg, &args.user, channel, args.ttl, now_unix());
    let token = match sign_hs256(&token_cfg.hmac_secret_key, &claims) {
        Ok(t) => t,
        Err(e) => return fail(format!("error: {e}")),
    };
    if args.quiet {
        print!("{token}");
        return ExitCode::SUCCESS;
    }
    let exp = if args.ttl >= 0 {
        format!(
            "with expiration TTL {}",
            Duration::from_secs(args.ttl.unsigned_abs())
        )
    } else {
        "without expiration".to_string()
    };
    let user = user_text(&args.user, true);
    match channel {
        None => println!("HMAC SHA-256 JWT for {user} {exp}:\n{token}"),
        Some(ch) => println!("HMAC SHA-256 JWT for {user} and channel \"{ch}\" {exp}:\n{token}"),
    }
    ExitCode::SUCCESS
}

/// Splits a JWT without verifying it: (`alg` header, claims JSON text).
pub(super) fn peek_jwt(token: &str) -> Result<(String, String), String> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err("jwt: token format is not valid".into());
    }
    let decode = |s: &str| {
        URL_SAFE_NO_PAD
            .decode(s)
            .or_else(|_| URL_SAFE.decode(s))
            .map_err(|e| format!("jwt: token format is not valid: {e}"))
    };
    let header: Value = serde_json::from_slice(&decode(parts[0])?)
        .map_err(|e| format!("jwt: invalid header: {e}"))?;
    let claims =
        String::from_utf8(decode(parts[1])?).map_err(|e| format!("jwt: invalid claims: {e}"))?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    Ok((alg, claims))
}

/// `checktoken` (`sub = false`) and `checksubtoken`.
pub(super) fn checktoken(config: &Path, token: Option<&str>, sub: bool) -> ExitCode {
    let loaded = match read_config(config) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let cmd = if sub { "checksubtoken" } else { "checktoken" };
    let Some(token) = token else {
        return fail(format!(
            "error: provide token to check [rotor {cmd} <TOKEN>]"
        ));
    };
    let (alg, claims) = match peek_jwt(token) {
        Ok(p) => p,
        Err(e) => return fail(format!("error: {e}")),
    };
    let cfg = &loaded.config;
    let verifier = match TokenVerifier::new(
        token_config(cfg, sub),
        cfg.client.insecure_skip_token_signature_verify,
    ) {
        Ok(v) => v,
        Err(e) => return fail(format!("error: {e}")),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("error: {e}")),
    };
    let describe = |e: &dyn std::fmt::Display| {
        fail(format!(
            "error: token with algorithm {alg} and claims {claims} has error: {e}"
        ))
    };
    if sub {
        match runtime.block_on(verifier.verify_subscribe(token)) {
            Ok(c) => println!(
                "valid subscription token for {} and channel \"{}\"\npayload: {claims}",
                user_text(&c.user, true),
                c.channel
            ),
            Err(e) => return describe(&e),
        }
    } else {
        match runtime.block_on(verifier.verify_connect(token)) {
            Ok(c) => println!(
                "valid token for {}\npayload: {claims}",
                user_text(&c.user, false)
            ),
            Err(e) => return describe(&e),
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claims_shape() {
        let mut t = Token::default();
        assert_eq!(dev_claims(&t, "", None, 0, 100), json!({"iat": 100}));
        assert_eq!(
            dev_claims(&t, "42", Some("ch"), 10, 100),
            json!({"sub": "42", "exp": 110, "iat": 100, "channel": "ch"})
        );
        t.user_id_claim = "user_id".into();
        assert_eq!(
            dev_claims(&t, "7", None, -1, 5),
            json!({"sub": "7", "iat": 5, "user_id": "7"})
        );
    }

    #[test]
    fn peeks_jwt_parts() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(br#"{"sub":"1"}"#);
        let peeked = peek_jwt(&format!("{header}.{body}.sig"));
        assert_eq!(
            peeked,
            Ok(("HS256".to_string(), r#"{"sub":"1"}"#.to_string()))
        );
        assert!(peek_jwt("a.b").is_err());
        assert!(peek_jwt("!!.!!.x").is_err());
    }
}
