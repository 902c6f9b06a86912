//! Static-key verification: algorithm pinning, signatures, expiry, HMAC rotation.

use serde_json::json;

use super::*;
use crate::auth::{TokenError, TokenVerifier, sign_hs256};

const SECRET: &str = "secret-key";

fn valid_claims() -> Value {
    json!({"sub": "u1", "exp": now() + 3600})
}

#[tokio::test]
async fn hmac_algorithms_verify() {
    let v = verifier(&hmac_cfg(SECRET));
    for alg in ["HS256", "HS384", "HS512"] {
        let c = v
            .verify_connect(&hs(alg, SECRET, valid_claims()))
            .await
            .expect(alg);
        assert_eq!(c.user, "u1", "{alg}");
    }
}

#[tokio::test]
async fn expired_and_not_before_are_expired() {
    let v = verifier(&hmac_cfg(SECRET));
    let t = hs("HS256", SECRET, json!({"sub": "u1", "exp": now() - 1}));
    assert_eq!(v.verify_connect(&t).await.err(), Some(TokenError::Expired));
    let t = hs("HS256", SECRET, json!({"sub": "u1", "exp": now()}));
    assert_eq!(
        v.verify_connect(&t).await.err(),
        Some(TokenError::Expired),
        "no leeway at exp"
    );
    let t = hs("HS256", SECRET, json!({"sub": "u1", "nbf": now() + 60}));
    assert_eq!(v.verify_connect(&t).await.err(), Some(TokenError::Expired));
    let t = hs(
        "HS256",
        SECRET,
        json!({"sub": "u1", "channel": "c", "nbf": now() + 60}),
    );
    assert_eq!(
        v.verify_subscribe(&t).await.err(),
        Some(TokenError::Expired)
    );
    let t = hs(
        "HS256",
        SECRET,
        json!({"sub": "u1", "nbf": now() - 1, "exp": now() + 60}),
    );
    assert!(v.verify_connect(&t).await.is_ok());
}

#[tokio::test]
async fn expired_token_with_bad_signature_is_invalid() {
    let v = verifier(&hmac_cfg(SECRET));
    let t = hs("HS256", "other", json!({"sub": "u1", "exp": now() - 10}));
    invalid(v.verify_connect(&t).await);
}

#[tokio::test]
async fn bad_signature_is_invalid() {
    let v = verifier(&hmac_cfg(SECRET));
    invalid(
        v.verify_connect(&hs("HS256", "wrong", valid_claims()))
            .await,
    );
    let t = hs("HS256", SECRET, valid_claims());
    let sig_start = t.rfind('.').expect("dot") + 1;
    let mut bytes = t.into_bytes();
    let c = &mut bytes[sig_start + 5];
    *c = if *c == b'A' { b'B' } else { b'A' };
    let t = String::from_utf8(bytes).expect("ascii");
    invalid(v.verify_connect(&t).await);
}

#[tokio::test]
async fn garbage_tokens_are_invalid() {
    let v = verifier(&hmac_cfg(SECRET));
    for t in [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "!!.??.**",
        "e30.e30.",
        "W10.e30.AA",
    ] {
        invalid(v.verify_connect(t).await);
    }
    let not_object = token(json!({"alg": "HS256"}), json!([1, 2]), |_| vec![]);
    invalid(v.verify_connect(&not_object).await);
}

#[tokio::test]
async fn alg_none_ps256_and_unknown_are_invalid() {
    let v = verifier(&hmac_cfg(SECRET));
    for alg in ["none", "None", "PS256", "HS1024", "hs256"] {
        let t = token(json!({"alg": alg}), valid_claims(), |_| vec![]);
        invalid(v.verify_connect(&t).await);
    }
    let no_alg = token(json!({"typ": "JWT"}), valid_claims(), |_| vec![]);
    invalid(v.verify_connect(&no_alg).await);
    let crit = token(
        json!({"alg": "HS256", "crit": ["x"], "x": 1}),
        valid_claims(),
        |_| vec![],
    );
    invalid(v.verify_connect(&crit).await);
}

#[tokio::test]
async fn hs256_forged_with_rsa_public_key_is_invalid() {
    let rsa = Rsa::shared();
    let cfg = Token {
        rsa_public_key: rsa.public_pem.clone(),
        ..Token::default()
    };
    let v = verifier(&cfg);
    let forged = hs("HS256", &rsa.public_pem, valid_claims());
    let msg = invalid(v.verify_connect(&forged).await);
    assert!(msg.contains("disabled"), "{msg}");
}

#[tokio::test]
async fn rs256_on_hmac_only_config_is_invalid() {
    let v = verifier(&hmac_cfg(SECRET));
    let t = Rsa::shared().sign("RS256", json!({}), valid_claims());
    invalid(v.verify_connect(&t).await);
}

#[tokio::test]
async fn rsa_algorithms_verify() {
    let rsa = Rsa::shared();
    let cfg = Token {
        rsa_public_key: rsa.public_pem.clone(),
        ..Token::default()
    };
    let v = verifier(&cfg);
    for alg in ["RS256", "RS384", "RS512"] {
        let c = v
            .verify_connect(&rsa.sign(alg, json!({}), valid_claims()))
            .await
            .expect(alg);
        assert_eq!(c.user, "u1");
    }
    let other = Rsa::generate();
    invalid(
        v.verify_connect(&other.sign("RS256", json!({}), valid_claims()))
            .await,
    );
}

#[tokio::test]
async fn ecdsa_algorithms_verify_on_matching_curve_only() {
    for alg in ["ES256", "ES384", "ES512"] {
        let ec = Ec::generate(alg);
        let cfg = Token {
            ecdsa_public_key: ec.public_pem.clone(),
            ..Token::default()
        };
        let v = verifier(&cfg);
        let c = v.verify_connect(&ec.sign(valid_claims())).await.expect(alg);
        assert_eq!(c.user, "u1", "{alg}");
        for other in ["ES256", "ES384", "ES512"]
            .into_iter()
            .filter(|a| *a != alg)
        {
            let t = ec.sign_as(other, json!({}), valid_claims());
            invalid(v.verify_connect(&t).await);
        }
        // Another key on the same curve fails.
        let stranger = Ec::generate(alg);
        invalid(v.verify_connect(&stranger.sign(valid_claims())).await);
        // ES keys never verify HS tokens.
        invalid(
            v.verify_connect(&hs("HS256", &ec.public_pem, valid_claims()))
                .await,
        );
    }
}

#[tokio::test]
async fn es384_token_against_p256_key_is_invalid() {
    let p256 = Ec::generate("ES256");
    let p384 = Ec::generate("ES384");
    let cfg = Token {
        ecdsa_public_key: p256.public_pem.clone(),
        ..Token::default()
    };
    let v = verifier(&cfg);
    invalid(v.verify_connect(&p384.sign(valid_claims())).await);
}

#[tokio::test]
async fn eddsa_is_disabled_without_jwks() {
    let v = verifier(&hmac_cfg(SECRET));
    let t = Ed::generate().sign("k", valid_claims());
    invalid(v.verify_connect(&t).await);
}

#[tokio::test]
async fn all_static_keys_together() {
    let rsa = Rsa::shared();
    let ec = Ec::generate("ES256");
    let cfg = Token {
        hmac_secret_key: SECRET.into(),
        rsa_public_key: rsa.public_pem.clone(),
        ecdsa_public_key: ec.public_pem.clone(),
        ..Token::default()
    };
    let v = verifier(&cfg);
    assert!(
        v.verify_connect(&hs("HS512", SECRET, valid_claims()))
            .await
            .is_ok()
    );
    assert!(
        v.verify_connect(&rsa.sign("RS256", json!({}), valid_claims()))
            .await
            .is_ok()
    );
    assert!(v.verify_connect(&ec.sign(valid_claims())).await.is_ok());
}

#[tokio::test]
async fn previous_hmac_key_respects_valid_until() {
    let mut cfg = hmac_cfg("new-key");
    cfg.hmac_previous_secret_key = "old-key".into();
    let old = hs("HS256", "old-key", valid_claims());

    cfg.hmac_previous_secret_key_valid_until = now() + 3600;
    assert!(
        verifier(&cfg).verify_connect(&old).await.is_ok(),
        "future valid_until"
    );

    cfg.hmac_previous_secret_key_valid_until = 0;
    assert!(
        verifier(&cfg).verify_connect(&old).await.is_ok(),
        "0 = unlimited"
    );

    cfg.hmac_previous_secret_key_valid_until = now() - 10;
    let v = verifier(&cfg);
    invalid(v.verify_connect(&old).await);
    assert!(
        v.verify_connect(&hs("HS256", "new-key", valid_claims()))
            .await
            .is_ok()
    );
    invalid(
        v.verify_connect(&hs("HS256", "third", valid_claims()))
            .await,
    );
}

#[tokio::test]
async fn skip_signature_still_checks_claims() {
    let v = TokenVerifier::new(&Token::default(), true).expect("cfg");
    assert!(v.is_configured());
    let c = v
        .verify_connect(&hs("HS256", "anything", valid_claims()))
        .await
        .expect("skip");
    assert_eq!(c.user, "u1");
    let t = token(json!({"alg": "none"}), valid_claims(), |_| vec![]);
    assert!(v.verify_connect(&t).await.is_ok());
    let t = hs("HS256", "x", json!({"sub": "u1", "exp": now() - 5}));
    assert_eq!(v.verify_connect(&t).await.err(), Some(TokenError::Expired));
    let t = hs("HS256", "x", json!({"sub": "u1", "channel": "c"}));
    invalid(v.verify_connect(&t).await);
}

#[test]
fn new_rejects_bad_config_naming_the_key() {
    let bad_pem = Token {
        rsa_public_key: "not a pem".into(),
        ..Token::default()
    };
    let e = TokenVerifier::new(&bad_pem, false).expect_err("bad rsa");
    assert!(
        e.starts_with("client.token.rsa_public_key: invalid PEM"),
        "{e}"
    );

    let ec_as_rsa = Token {
        rsa_public_key: Ec::generate("ES256").public_pem,
        ..Token::default()
    };
    let e = TokenVerifier::new(&ec_as_rsa, false).expect_err("ec pem as rsa");
    assert!(e.starts_with("client.token.rsa_public_key:"), "{e}");

    let rsa_as_ec = Token {
        ecdsa_public_key: Rsa::shared().public_pem.clone(),
        ..Token::default()
    };
    let e = TokenVerifier::new(&rsa_as_ec, false).expect_err("rsa pem as ec");
    assert!(e.starts_with("client.token.ecdsa_public_key:"), "{e}");

    let both = Token {
        audience: "a".into(),
        audience_regex: "a".into(),
        ..hmac_cfg("s")
    };
    assert!(
        TokenVerifier::new(&both, false)
            .expect_err("aud")
            .contains("audience")
    );
    let both = Token {
        issuer: "a".into(),
        issuer_regex: "a".into(),
        ..hmac_cfg("s")
    };
    assert!(
        TokenVerifier::new(&both, false)
            .expect_err("iss")
            .contains("issuer")
    );
    let bad_re = Token {
        issuer_regex: "(".into(),
        ..hmac_cfg("s")
    };
    assert!(
        TokenVerifier::new(&bad_re, false)
            .expect_err("re")
            .starts_with("client.token.issuer_regex")
    );
    let bad_claim = Token {
        user_id_claim: "a.b".into(),
        ..hmac_cfg("s")
    };
    assert!(
        TokenVerifier::new(&bad_claim, false)
            .expect_err("claim")
            .contains("user_id_claim")
    );
    let bad_url = Token {
        jwks_public_endpoint: "ftp://x/jwks".into(),
        ..Token::default()
    };
    assert!(
        TokenVerifier::new(&bad_url, false)
            .expect_err("url")
            .contains("jwks_public_endpoint")
    );
}

#[test]
fn is_configured_reflects_keys() {
    assert!(
        !TokenVerifier::new(&Token::default(), false)
            .expect("empty")
            .is_configured()
    );
    assert!(verifier(&hmac_cfg("s")).is_configured());
    let ec = Token {
        ecdsa_public_key: Ec::generate("ES512").public_pem,
        ..Token::default()
    };
    assert!(verifier(&ec).is_configured());
    let jwks = Token {
        jwks_public_endpoint: "https://idp.example/jwks".into(),
        ..Token::default()
    };
    assert!(verifier(&jwks).is_configured());
}

#[tokio::test]
async fn sign_hs256_round_trips() {
    let claims = json!({"sub": "42", "exp": now() + 60, "info": {"a": 1}});
    let t = sign_hs256(SECRET, &claims).expect("sign");
    let c = verifier(&hmac_cfg(SECRET))
        .verify_connect(&t)
        .await
        .expect("verify");
    assert_eq!(c.user, "42");
    assert!(sign_hs256("", &claims).is_err());
    assert!(sign_hs256(SECRET, &json!("x")).is_err());
}
