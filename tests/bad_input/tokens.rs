//! Connection and subscription tokens.

use crate::support::{
    TestServer, assert_healthy, assert_serves, base_config, keys, now, sign, sign_rs256, token,
    token_with,
};
use base64::Engine as _;
use rotor::proto::client::{Command, SubscribeRequest};

use super::*;

// ---------------------------------------------------------------------------
// Connection tokens.

fn b64(v: &serde_json::Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

/// Sends `connect` with `token` on a fresh client and expects close `code`.
async fn token_closes(srv: &TestServer, pb: bool, token: &str, code: u16) {
    let mut c = srv.client(pb).await;
    c.send(vec![connect_cmd(1, token)]).await;
    expect_close(&mut c, code, &format!("token {token:?}")).await;
}

#[tokio::test]
async fn alg_none_token_is_3500() {
    let srv = TestServer::start(base_config()).await;
    let claims = serde_json::json!({"sub": "u", "exp": now() + 600});
    let body = b64(&claims);
    for header in [
        serde_json::json!({"alg": "none", "typ": "JWT"}),
        serde_json::json!({"alg": "None"}),
        serde_json::json!({"alg": "NONE", "typ": "JWT"}),
    ] {
        let unsigned = format!("{}.{}.", b64(&header), body);
        both(async |pb| token_closes(&srv, pb, &unsigned, 3500).await).await;
        // alg none with a (valid HS256) signature attached.
        let hs = token_with(claims.clone());
        let sig = hs.rsplit('.').next().expect("sig");
        let with_sig = format!("{}.{}.{}", b64(&header), body, sig);
        token_closes(&srv, false, &with_sig, 3500).await;
    }
    assert_healthy(&srv).await;
    srv.stop().await;
}

fn rsa_only_config() -> rotor::config::Config {
    let mut cfg = base_config();
    cfg.client.token.hmac_secret_key = String::new();
    cfg.client.token.rsa_public_key = keys::RSA_PUBLIC_PEM.into();
    cfg
}

#[tokio::test]
async fn hs256_forged_with_rsa_public_key_is_3500() {
    let srv = TestServer::start(rsa_only_config()).await;
    let claims = serde_json::json!({"sub": "u", "exp": now() + 600});
    // The classic key-confusion attack: the public PEM as HMAC secret.
    let forged = sign(keys::RSA_PUBLIC_PEM, claims.clone());
    both(async |pb| token_closes(&srv, pb, &forged, 3500).await).await;
    let forged_trimmed = sign(keys::RSA_PUBLIC_PEM.trim(), claims.clone());
    token_closes(&srv, false, &forged_trimmed, 3500).await;
    // The genuine RS256 token works on this server.
    assert_serves(&srv, &sign_rs256(claims)).await;
    srv.stop().await;
}

#[tokio::test]
async fn rs256_token_on_hmac_only_config_is_3500() {
    let srv = TestServer::start(base_config()).await;
    let rs = sign_rs256(serde_json::json!({"sub": "u", "exp": now() + 600}));
    both(async |pb| token_closes(&srv, pb, &rs, 3500).await).await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn bad_signature_is_3500() {
    let srv = TestServer::start(base_config()).await;
    let claims = serde_json::json!({"sub": "u", "exp": now() + 600});
    let wrong_key = sign("not-the-secret", claims.clone());
    both(async |pb| token_closes(&srv, pb, &wrong_key, 3500).await).await;
    // A genuine token with its payload swapped.
    let good = token_with(claims);
    let mut parts: Vec<&str> = good.split('.').collect();
    let evil = b64(&serde_json::json!({"sub": "admin", "exp": now() + 600}));
    parts[1] = &evil;
    token_closes(&srv, false, &parts.join("."), 3500).await;
    // A truncated signature.
    token_closes(&srv, false, &good[..good.len() - 4], 3500).await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn wrong_audience_or_issuer_is_3500() {
    let mut cfg = base_config();
    cfg.client.token.audience = "rotor-tests".into();
    cfg.client.token.issuer = "https://issuer.example".into();
    let srv = TestServer::start(cfg).await;
    let exp = now() + 600;
    let ok = token_with(
        serde_json::json!({"sub": "u", "exp": exp, "aud": "rotor-tests", "iss": "https://issuer.example"}),
    );
    for bad in [
        serde_json::json!({"sub": "u", "exp": exp, "aud": "other", "iss": "https://issuer.example"}),
        serde_json::json!({"sub": "u", "exp": exp, "iss": "https://issuer.example"}),
        serde_json::json!({"sub": "u", "exp": exp, "aud": "rotor-tests", "iss": "https://evil.example"}),
        serde_json::json!({"sub": "u", "exp": exp, "aud": "rotor-tests"}),
        serde_json::json!({"sub": "u", "exp": exp, "aud": ["other", "more"], "iss": "https://issuer.example"}),
    ] {
        let t = token_with(bad);
        both(async |pb| token_closes(&srv, pb, &t, 3500).await).await;
    }
    assert_serves(&srv, &ok).await;
    srv.stop().await;
}

#[tokio::test]
async fn connect_token_with_channel_claim_is_3500() {
    let srv = TestServer::start(base_config()).await;
    // A subscription token used as a connection token.
    let t = token_with(serde_json::json!({"sub": "u", "exp": now() + 600, "channel": "news"}));
    both(async |pb| token_closes(&srv, pb, &t, 3500).await).await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

/// Sends `connect` with `token`, expects error reply `code`, then checks
/// that the connection is unusable, as in Centrifugo (centrifuge's
/// `handleCommandDispatchError` marks a client whose connect failed
/// unusable): the next command, even a connect with a good token, closes
/// it with 3501.
async fn connect_fails_then_unusable(srv: &TestServer, pb: bool, token: &str, code_: u32) {
    let mut c = srv.client(pb).await;
    let r = c.connect(token).await;
    assert_eq!(code(&r), code_, "{r:?}");
    c.send(vec![connect_cmd(2, &crate::support::token("u", 600))])
        .await;
    expect_close(&mut c, 3501, "command after a failed connect").await;
}

#[tokio::test]
async fn expired_token_is_109_and_connection_unusable() {
    let srv = TestServer::start(base_config()).await;
    both(async |pb| connect_fails_then_unusable(&srv, pb, &token("u", -10), 109).await).await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn future_nbf_is_109_and_connection_unusable() {
    let srv = TestServer::start(base_config()).await;
    let t = token_with(serde_json::json!({"sub": "u", "exp": now() + 600, "nbf": now() + 300}));
    both(async |pb| connect_fails_then_unusable(&srv, pb, &t, 109).await).await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

/// `exp` as Centrifugo reads it (Go's json.Number, then int64 seconds): a
/// numeric string is a date, a non-numeric one makes the token invalid,
/// and seconds beyond int64 (1e30) are the earliest time, so the token has
/// expired (109) — never a connect reply with ttl 4294967295.
#[tokio::test]
async fn exp_beyond_int64_is_expired_and_non_numeric_exp_is_invalid() {
    let srv = TestServer::start(base_config()).await;
    for exp in [serde_json::json!(1e30), serde_json::json!("1e30")] {
        let t = token_with(serde_json::json!({"sub": "u", "exp": exp}));
        both(async |pb| connect_fails_then_unusable(&srv, pb, &t, 109).await).await;
    }
    for exp in [serde_json::json!("soon"), serde_json::json!(" 1")] {
        let t = token_with(serde_json::json!({"sub": "u", "exp": exp}));
        both(async |pb| token_closes(&srv, pb, &t, 3500).await).await;
    }
    let exp = now() + 600;
    let t = token_with(serde_json::json!({"sub": "u", "exp": exp.to_string()}));
    let mut c = srv.client(false).await;
    let r = c.connect(&t).await;
    let res = r.connect.expect("numeric string exp connects");
    assert!(res.expires && res.ttl > 0 && res.ttl <= 600, "{res:?}");
    assert_healthy(&srv).await;
    srv.stop().await;
}

/// A `channels` claim naming an unknown namespace: Centrifugo's token
/// verifier returns ErrorUnknownChannel, which the connect handler passes
/// on as the connect error reply 102; the connection is then unusable.
#[tokio::test]
async fn channels_claim_with_unknown_namespace_is_102() {
    let srv = TestServer::start(base_config()).await;
    let t = token_with(
        serde_json::json!({"sub": "u", "exp": now() + 600, "channels": ["chat:ok", "nope:x"]}),
    );
    both(async |pb| connect_fails_then_unusable(&srv, pb, &t, 102).await).await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn garbage_token_is_3500() {
    let srv = TestServer::start(base_config()).await;
    for t in [
        "garbage",
        "a.b.c",
        "a.b",
        "....",
        "eyJhbGciOiJIUzI1NiJ9.%%%.xx",
        "\u{0}\u{1}",
    ] {
        both(async |pb| token_closes(&srv, pb, t, 3500).await).await;
    }
    let long = "x".repeat(60_000);
    token_closes(&srv, false, &long, 3500).await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn no_token_with_anonymous_disallowed_is_3501() {
    let srv = TestServer::start(base_config()).await;
    both(async |pb| token_closes(&srv, pb, "", 3501).await).await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn empty_sub_with_anonymous_tokens_disallowed_is_3507() {
    let mut cfg = base_config();
    cfg.client.disallow_anonymous_connection_tokens = true;
    let srv = TestServer::start(cfg).await;
    let t = token_with(serde_json::json!({"sub": "", "exp": now() + 600}));
    let no_sub = token_with(serde_json::json!({"exp": now() + 600}));
    both(async |pb| {
        token_closes(&srv, pb, &t, 3507).await;
        token_closes(&srv, pb, &no_sub, 3507).await;
    })
    .await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

// ---------------------------------------------------------------------------
// Subscription tokens.

#[tokio::test]
async fn bad_subscription_tokens() {
    let srv = TestServer::start(base_config()).await;
    let sub_with = |token: String, channel: &str| SubscribeRequest {
        channel: channel.into(),
        token,
        ..Default::default()
    };
    both(async |pb| {
        let mut c = srv.connected(pb, "u1").await;
        // Expired → 109, badly signed → 103; the connection stays.
        let expired =
            token_with(serde_json::json!({"sub": "u1", "channel": "$secret:a", "exp": now() - 5}));
        assert_eq!(
            code(&c.subscribe_with(sub_with(expired, "$secret:a")).await),
            109
        );
        let forged = sign(
            "wrong",
            serde_json::json!({"sub": "u1", "channel": "$secret:a"}),
        );
        assert_eq!(
            code(&c.subscribe_with(sub_with(forged, "$secret:a")).await),
            103
        );
        let good = token_with(serde_json::json!({"sub": "u1", "channel": "$secret:a"}));
        c.subscribe_with(sub_with(good, "$secret:a"))
            .await
            .subscribe
            .expect("subscribed");
        // Token for another channel → 3500.
        let other_ch = token_with(serde_json::json!({"sub": "u1", "channel": "$secret:b"}));
        c.send(vec![Command {
            id: 77,
            subscribe: Some(sub_with(other_ch, "$secret:c")),
            ..Default::default()
        }])
        .await;
        expect_close(&mut c, 3500, "subscription token for another channel").await;
        // Token for another user → 3500.
        let mut c = srv.connected(pb, "u1").await;
        let other_user = token_with(serde_json::json!({"sub": "u2", "channel": "$secret:d"}));
        c.send(vec![Command {
            id: 78,
            subscribe: Some(sub_with(other_user, "$secret:d")),
            ..Default::default()
        }])
        .await;
        expect_close(&mut c, 3500, "subscription token for another user").await;
    })
    .await;
    assert_healthy(&srv).await;
    srv.stop().await;
}
