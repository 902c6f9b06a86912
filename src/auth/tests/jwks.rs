//! JWKS verification against a local HTTP server: kid lookup, alg pinning,
//! caching per (URL, kid), rate-limited refetch and template safety.

use serde_json::json;

use super::*;
use crate::auth::TokenVerifier;

fn claims() -> Value {
    json!({"sub": "u1", "exp": now() + 3600})
}

fn jwks_cfg(url: String) -> Token {
    Token {
        jwks_public_endpoint: url,
        ..Token::default()
    }
}

#[tokio::test]
async fn rsa_ec_and_okp_keys_verify_by_kid() {
    let rsa = Rsa::shared();
    let ec = Ec::generate("ES256");
    let p521 = Ec::generate("ES512");
    let ed = Ed::generate();
    let doc = json!({"keys": [
        {"kty": "oct", "kid": "sym", "k": b64u(b"secret")},
        {"kty": "RSA", "use": "enc", "kid": "enc", "n": "AQAB", "e": "AQAB"},
        rsa.jwk("r1", Some("RS256")),
        rsa.jwk("r-noalg", None),
        ec.jwk("e1", None),
        p521.jwk("e5", Some("ES512")),
        ed.jwk("d1"),
    ]});
    let srv = JwksServer::start(vec![("/jwks", doc)]).await;
    let v = verifier(&jwks_cfg(format!("{}/jwks", srv.base)));

    let c = v
        .verify_connect(&rsa.sign("RS256", json!({"kid": "r1"}), claims()))
        .await
        .expect("rs256");
    assert_eq!(c.user, "u1");
    assert!(
        v.verify_connect(&rsa.sign("RS512", json!({"kid": "r-noalg"}), claims()))
            .await
            .is_ok()
    );
    assert!(
        v.verify_connect(&ec.sign_as("ES256", json!({"kid": "e1"}), claims()))
            .await
            .is_ok()
    );
    assert!(
        v.verify_connect(&p521.sign_as("ES512", json!({"kid": "e5"}), claims()))
            .await
            .is_ok()
    );
    assert!(
        v.verify_subscribe(&ed.sign("d1", json!({"sub": "u", "channel": "c"})))
            .await
            .is_ok()
    );
    assert_eq!(srv.hits("/jwks"), 1, "one fetch, then cache");

    // JWK alg pins the token alg; a JWK without alg pins the family (and curve).
    invalid(
        v.verify_connect(&rsa.sign("RS384", json!({"kid": "r1"}), claims()))
            .await,
    );
    invalid(
        v.verify_connect(&ec.sign_as("ES384", json!({"kid": "e1"}), claims()))
            .await,
    );
    invalid(
        v.verify_connect(&rsa.sign("RS256", json!({"kid": "e1"}), claims()))
            .await,
    );
    let hs_on_rsa = token(json!({"alg": "HS256", "kid": "r1"}), claims(), |m| {
        let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, rsa.public_pem.as_bytes());
        aws_lc_rs::hmac::sign(&k, m).as_ref().to_vec()
    });
    invalid(v.verify_connect(&hs_on_rsa).await);
    // `oct` keys are never loaded, so HMAC tokens cannot use them.
    let hs_on_oct = token(json!({"alg": "HS256", "kid": "sym"}), claims(), |m| {
        let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, b"secret");
        aws_lc_rs::hmac::sign(&k, m).as_ref().to_vec()
    });
    invalid(v.verify_connect(&hs_on_oct).await);
    // Right kid, wrong key.
    let stranger = Ec::generate("ES256");
    invalid(
        v.verify_connect(&stranger.sign_as("ES256", json!({"kid": "e1"}), claims()))
            .await,
    );
    // Expiry is still checked after a valid JWKS signature.
    let t = ec.sign_as("ES256", json!({"kid": "e1"}), json!({"exp": now() - 1}));
    assert_eq!(
        v.verify_connect(&t).await.err(),
        Some(crate::auth::TokenError::Expired)
    );
}

#[tokio::test]
async fn kid_is_required() {
    let ec = Ec::generate("ES256");
    let srv = JwksServer::start(vec![("/jwks", json!({"keys": [ec.jwk("e1", None)]}))]).await;
    let v = verifier(&jwks_cfg(format!("{}/jwks", srv.base)));
    let msg = invalid(v.verify_connect(&ec.sign(claims())).await);
    assert!(msg.contains("kid"), "{msg}");
    assert_eq!(srv.total_hits(), 0);
}

#[tokio::test]
async fn unknown_kid_is_invalid_and_refetch_is_rate_limited() {
    let ec = Ec::generate("ES256");
    let srv = JwksServer::start(vec![("/jwks", json!({"keys": [ec.jwk("e1", None)]}))]).await;
    let v = verifier(&jwks_cfg(format!("{}/jwks", srv.base)));
    let unknown = ec.sign_as("ES256", json!({"kid": "nope"}), claims());
    invalid(v.verify_connect(&unknown).await);
    assert_eq!(srv.hits("/jwks"), 1);
    for _ in 0..5 {
        invalid(v.verify_connect(&unknown).await);
    }
    assert_eq!(srv.hits("/jwks"), 1, "no refetch within the interval");
    // Keys from that fetch are cached and usable.
    assert!(
        v.verify_connect(&ec.sign_as("ES256", json!({"kid": "e1"}), claims()))
            .await
            .is_ok()
    );
    assert_eq!(srv.hits("/jwks"), 1);
}

#[tokio::test]
async fn fetch_failures_are_invalid() {
    let ec = Ec::generate("ES256");
    let srv = JwksServer::start(vec![("/empty", json!({"keys": []})), ("/junk", json!([1]))]).await;
    for path in ["/missing", "/empty", "/junk"] {
        let v = verifier(&jwks_cfg(format!("{}{path}", srv.base)));
        invalid(
            v.verify_connect(&ec.sign_as("ES256", json!({"kid": "e1"}), claims()))
                .await,
        );
    }
    assert_eq!(srv.hits("/missing"), 2, "two attempts on HTTP errors");
}

#[tokio::test]
async fn concurrent_verifications_fetch_once() {
    let ec = Ec::generate("ES256");
    let srv = JwksServer::start(vec![("/jwks", json!({"keys": [ec.jwk("e1", None)]}))]).await;
    let v = std::sync::Arc::new(verifier(&jwks_cfg(format!("{}/jwks", srv.base))));
    let t = ec.sign_as("ES256", json!({"kid": "e1"}), claims());
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (v, t) = (v.clone(), t.clone());
            tokio::spawn(async move { v.verify_connect(&t).await.is_ok() })
        })
        .collect();
    for task in tasks {
        assert!(task.await.expect("join"));
    }
    assert_eq!(srv.hits("/jwks"), 1);
}

/// CVE-2026-49998: the cache is keyed by (resolved URL, kid).
#[tokio::test]
async fn cache_is_scoped_by_url_and_kid() {
    let tenant_a = Ec::generate("ES256");
    let tenant_b = Ec::generate("ES256");
    let srv = JwksServer::start(vec![
        (
            "/tenant-a/jwks.json",
            json!({"keys": [tenant_a.jwk("shared", None)]}),
        ),
        (
            "/tenant-b/jwks.json",
            json!({"keys": [tenant_b.jwk("shared", None)]}),
        ),
    ])
    .await;
    let cfg = Token {
        jwks_public_endpoint: format!("{}/{{{{tenant}}}}/jwks.json", srv.base),
        issuer_regex: "^(?P<tenant>tenant-a|tenant-b)$".into(),
        ..Token::default()
    };
    let v = verifier(&cfg);
    let sign = |key: &Ec, iss: &str, sub: &str| {
        key.sign_as(
            "ES256",
            json!({"kid": "shared"}),
            json!({"sub": sub, "iss": iss}),
        )
    };

    let c = v
        .verify_connect(&sign(&tenant_a, "tenant-a", "alice"))
        .await
        .expect("tenant a");
    assert_eq!(c.user, "alice");
    assert_eq!(
        (
            srv.hits("/tenant-a/jwks.json"),
            srv.hits("/tenant-b/jwks.json")
        ),
        (1, 0)
    );

    // Forged: claims tenant B, signed with tenant A's key (same kid).
    invalid(
        v.verify_connect(&sign(&tenant_a, "tenant-b", "victim"))
            .await,
    );
    assert_eq!(
        srv.hits("/tenant-b/jwks.json"),
        1,
        "tenant B's own JWKS was consulted"
    );

    assert!(
        v.verify_connect(&sign(&tenant_b, "tenant-b", "bob"))
            .await
            .is_ok()
    );
    assert!(
        v.verify_connect(&sign(&tenant_a, "tenant-a", "alice"))
            .await
            .is_ok()
    );
    invalid(v.verify_connect(&sign(&tenant_b, "tenant-a", "x")).await);
    assert_eq!(
        (
            srv.hits("/tenant-a/jwks.json"),
            srv.hits("/tenant-b/jwks.json")
        ),
        (1, 1)
    );

    // CVE-2026-32301: an issuer outside the allow-list never reaches the network.
    invalid(
        v.verify_connect(&sign(&tenant_a, "169.254.169.254", "x"))
            .await,
    );
    invalid(
        v.verify_connect(&sign(&tenant_a, "tenant-a/../tenant-b", "x"))
            .await,
    );
    assert_eq!(srv.total_hits(), 2);
}

#[tokio::test]
async fn audience_regex_fills_templates() {
    let key = Ec::generate("ES384");
    let srv = JwksServer::start(vec![(
        "/eu/keys",
        json!({"keys": [key.jwk("k", Some("ES384"))]}),
    )])
    .await;
    let cfg = Token {
        jwks_public_endpoint: format!("{}/{{{{region}}}}/keys", srv.base),
        audience_regex: r"^api\.(?P<region>eu|us)$".into(),
        ..Token::default()
    };
    let v = verifier(&cfg);
    let t = key.sign_as(
        "ES384",
        json!({"kid": "k"}),
        json!({"aud": ["x", "api.eu"], "sub": "u"}),
    );
    assert!(v.verify_connect(&t).await.is_ok());
    let t = key.sign_as(
        "ES384",
        json!({"kid": "k"}),
        json!({"aud": "api.us", "sub": "u"}),
    );
    invalid(v.verify_connect(&t).await);
    assert_eq!(srv.hits("/us/keys"), 2);
}

#[test]
fn unsafe_templates_are_refused_at_new() {
    let base = |iss_re: &str| Token {
        jwks_public_endpoint: "https://idp.example/{{tenant}}/jwks".into(),
        issuer_regex: iss_re.into(),
        ..Token::default()
    };
    for re in [
        "^(?P<tenant>[a-z]+)$",
        "^(?P<tenant>.+)$",
        r"^(?P<tenant>\w+)$",
        "^(?P<tenant>a|b*)$",
        "^(?P<tenant>a/b|c)$",
        "^(?P<tenant>a|..)$",
        "^(?P<other>a|b)$",
        "",
    ] {
        let e = TokenVerifier::new(&base(re), false).expect_err(re);
        assert!(e.starts_with("client.token."), "{re}: {e}");
    }
    for re in [
        "^(?P<tenant>a|b|c)$",
        r"^https://(?P<tenant>t1|t2)\.example\.com/$",
        "(?<tenant>(?:x|y)-z)",
    ] {
        TokenVerifier::new(&base(re), false).expect(re);
    }
    let mut insecure = base("^(?P<tenant>[a-z]+)$");
    insecure.insecure_skip_jwks_endpoint_safety_check = true;
    TokenVerifier::new(&insecure, false).expect("insecure flag lifts the check");
}

#[tokio::test]
async fn insecure_templates_still_reject_url_syntax_in_values() {
    let key = Ec::generate("ES256");
    let srv = JwksServer::start(vec![("/t/ok", json!({"keys": [key.jwk("k", None)]}))]).await;
    let cfg = Token {
        jwks_public_endpoint: format!("{}/t/{{{{tenant}}}}", srv.base),
        issuer_regex: "^(?P<tenant>.*)$".into(),
        insecure_skip_jwks_endpoint_safety_check: true,
        ..Token::default()
    };
    let v = verifier(&cfg);
    let sign = |iss: &str| key.sign_as("ES256", json!({"kid": "k"}), json!({"iss": iss}));
    assert!(v.verify_connect(&sign("ok")).await.is_ok());
    for iss in ["../x", "a/b", "a@b", "a?b", "a#b", "%2e%2e", "", ".."] {
        invalid(v.verify_connect(&sign(iss)).await);
    }
    assert_eq!(srv.total_hits(), 1);
}
