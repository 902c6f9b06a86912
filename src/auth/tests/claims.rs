//! Claim rules and the mapping of connection/subscription claims.

use serde_json::json;

use super::*;
use crate::auth::TokenError;
use crate::control::SubscribeOverride;

const S: &str = "k";

fn exp() -> i64 {
    now() + 3600
}

#[tokio::test]
async fn audience_exact_string_and_array() {
    let v = verifier(&Token {
        audience: "rotor".into(),
        ..hmac_cfg(S)
    });
    for aud in [json!("rotor"), json!(["x", "rotor"])] {
        let t = hs("HS256", S, json!({"sub": "u", "aud": aud}));
        assert!(v.verify_connect(&t).await.is_ok(), "{aud}");
    }
    for claims in [
        json!({"sub": "u", "aud": "other"}),
        json!({"sub": "u", "aud": ["a", "b"]}),
        json!({"sub": "u"}),
    ] {
        invalid(v.verify_connect(&hs("HS256", S, claims)).await);
    }
    invalid(
        v.verify_connect(&hs("HS256", S, json!({"sub": "u", "aud": 5})))
            .await,
    );
}

#[tokio::test]
async fn issuer_exact() {
    let v = verifier(&Token {
        issuer: "idp".into(),
        ..hmac_cfg(S)
    });
    assert!(
        v.verify_connect(&hs("HS256", S, json!({"iss": "idp"})))
            .await
            .is_ok()
    );
    invalid(
        v.verify_connect(&hs("HS256", S, json!({"iss": "idp2"})))
            .await,
    );
    invalid(v.verify_connect(&hs("HS256", S, json!({}))).await);
    invalid(
        v.verify_subscribe(&hs("HS256", S, json!({"iss": "x", "channel": "c"})))
            .await,
    );
}

#[tokio::test]
async fn issuer_and_audience_regex() {
    let v = verifier(&Token {
        issuer_regex: r"^https://(\w+)\.example\.com$".into(),
        audience_regex: "^app-[0-9]+$".into(),
        ..hmac_cfg(S)
    });
    let ok = json!({"iss": "https://a.example.com", "aud": ["zzz", "app-7"]});
    assert!(v.verify_connect(&hs("HS256", S, ok)).await.is_ok());
    let ok = json!({"iss": "https://b.example.com", "aud": "app-1", "channel": "ch"});
    assert!(v.verify_subscribe(&hs("HS256", S, ok)).await.is_ok());
    let bad_iss = json!({"iss": "https://a.example.org", "aud": "app-7"});
    invalid(v.verify_connect(&hs("HS256", S, bad_iss)).await);
    let bad_aud = json!({"iss": "https://a.example.com", "aud": ["app-x"]});
    invalid(v.verify_connect(&hs("HS256", S, bad_aud)).await);
}

#[tokio::test]
async fn channel_claim_rules() {
    let v = verifier(&hmac_cfg(S));
    let msg = invalid(
        v.verify_connect(&hs("HS256", S, json!({"sub": "u", "channel": "news"})))
            .await,
    );
    assert!(msg.contains("channel"), "{msg}");
    // An empty channel is the same as none (as in Centrifugo).
    assert!(
        v.verify_connect(&hs("HS256", S, json!({"sub": "u", "channel": ""})))
            .await
            .is_ok()
    );
    invalid(
        v.verify_subscribe(&hs("HS256", S, json!({"sub": "u"})))
            .await,
    );
    invalid(
        v.verify_subscribe(&hs("HS256", S, json!({"sub": "u", "channel": ""})))
            .await,
    );
}

#[tokio::test]
async fn user_id_claim() {
    let v = verifier(&Token {
        user_id_claim: "user_id".into(),
        ..hmac_cfg(S)
    });
    let cases = [
        (json!({"sub": "ignored", "user_id": "alice"}), "alice"),
        (json!({"user_id": 42}), "42"),
        (json!({"user_id": 1.5}), "1.5"),
        (json!({"user_id": true}), "true"),
        (json!({"sub": "x"}), ""),
    ];
    for (claims, want) in cases {
        let c = v
            .verify_connect(&hs("HS256", S, claims.clone()))
            .await
            .expect("ok");
        assert_eq!(c.user, want, "{claims}");
    }
    let mut sub = json!({"user_id": "bob", "channel": "c"});
    let s = v
        .verify_subscribe(&hs("HS256", S, sub.take()))
        .await
        .expect("sub");
    assert_eq!(s.user, "bob");
    let plain = verifier(&hmac_cfg(S));
    assert_eq!(
        plain
            .verify_connect(&hs("HS256", S, json!({})))
            .await
            .expect("anon")
            .user,
        ""
    );
}

#[tokio::test]
async fn expire_at_rules() {
    let v = verifier(&hmac_cfg(S));
    let e = exp();
    let cases = [
        (json!({"exp": e}), Some(e)),
        (json!({"exp": e, "expire_at": e + 100}), Some(e + 100)),
        (json!({"exp": e, "expire_at": 0}), None),
        (json!({"expire_at": e + 5}), Some(e + 5)),
        (json!({}), None),
        (json!({"exp": e as f64 + 0.5}), Some(e)),
        (json!({"exp": e.to_string()}), Some(e)),
    ];
    for (claims, want) in cases {
        let c = v
            .verify_connect(&hs("HS256", S, claims.clone()))
            .await
            .expect("ok");
        assert_eq!(c.expire_at, want, "{claims}");
        let mut sc = claims.clone();
        sc["channel"] = json!("c");
        let s = v.verify_subscribe(&hs("HS256", S, sc)).await.expect("ok");
        assert_eq!(s.expire_at, want, "{claims}");
    }
    // `expire_at` does not rescue an expired `exp`.
    let t = hs("HS256", S, json!({"exp": now() - 1, "expire_at": e}));
    assert_eq!(v.verify_connect(&t).await.err(), Some(TokenError::Expired));
    invalid(
        v.verify_connect(&hs("HS256", S, json!({"expire_at": 1.5})))
            .await,
    );
    invalid(
        v.verify_connect(&hs("HS256", S, json!({"exp": "soon"})))
            .await,
    );
    // Centrifugo reads NumericDate through Go's json.Number: a string must
    // be exactly a number literal, and whole seconds beyond int64 become
    // the earliest time (expired `exp`, passed `nbf`), never a ttl of
    // 4294967295.
    for bad in [
        json!(format!(" {e}")),
        json!(format!("+{e}")),
        json!(true),
        json!([e]),
    ] {
        invalid(v.verify_connect(&hs("HS256", S, json!({"exp": bad}))).await);
    }
    for huge in [json!(1e30), json!("1e30"), json!(-1e30)] {
        assert_eq!(
            v.verify_connect(&hs("HS256", S, json!({"exp": huge.clone()})))
                .await
                .err(),
            Some(TokenError::Expired),
            "exp {huge}"
        );
        let c = v
            .verify_connect(&hs("HS256", S, json!({"exp": e, "nbf": huge.clone()})))
            .await
            .expect("nbf long past");
        assert_eq!(c.expire_at, Some(e));
    }
    let c = v
        .verify_connect(&hs("HS256", S, json!({"exp": format!("{e}.25")})))
        .await
        .expect("numeric string with a fraction");
    assert_eq!(c.expire_at, Some(e));
}

#[tokio::test]
async fn info_and_b64info() {
    let v = verifier(&hmac_cfg(S));
    let t = hs("HS256", S, json!({"sub": "u", "info": {"name": "Alice"}}));
    assert_eq!(
        &v.verify_connect(&t).await.expect("info").info[..],
        br#"{"name":"Alice"}"#
    );
    // Raw text is kept exactly as in the token.
    let raw = r#"{"sub":"u","info": { "b" : [1, 2] }}"#;
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, S.as_bytes());
    let input = format!("{}.{}", b64u(br#"{"alg":"HS256"}"#), b64u(raw.as_bytes()));
    let sig = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    let t = format!("{input}.{}", b64u(sig.as_ref()));
    assert_eq!(
        &v.verify_connect(&t).await.expect("raw").info[..],
        br#"{ "b" : [1, 2] }"#
    );

    let t = hs("HS256", S, json!({"info": {"x": 1}, "b64info": "AAEC"}));
    assert_eq!(
        &v.verify_connect(&t).await.expect("b64").info[..],
        &[0u8, 1, 2]
    );
    let t = hs("HS256", S, json!({}));
    assert!(v.verify_connect(&t).await.expect("none").info.is_empty());
    invalid(
        v.verify_connect(&hs("HS256", S, json!({"b64info": "@@@"})))
            .await,
    );
}

#[tokio::test]
async fn connect_channels_subs_and_meta() {
    let v = verifier(&hmac_cfg(S));
    let claims = json!({
        "sub": "u",
        "channels": ["a", "b"],
        "subs": {
            "news": {"info": {"k": 1}, "data": [1], "override": {
                "presence": {"value": true}, "join_leave": {"value": false},
                "force_recovery": {}, "force_push_join_leave": null}},
            "bin": {"b64info": "AQ==", "b64data": "Ag=="}
        },
        "meta": {"role": "admin"},
        "jti": "id-1"
    });
    let c = v
        .verify_connect(&hs("HS256", S, claims.clone()))
        .await
        .expect("ok");
    assert_eq!(c.channels, vec!["a".to_string(), "b".to_string()]);
    assert_eq!(c.subs.len(), 2);
    let news = &c.subs["news"];
    assert_eq!(&news.info[..], br#"{"k":1}"#);
    assert_eq!(&news.data[..], b"[1]");
    assert_eq!(
        news.override_,
        SubscribeOverride {
            presence: Some(true),
            join_leave: Some(false),
            force_recovery: Some(false),
            ..SubscribeOverride::default()
        }
    );
    assert_eq!(&c.subs["bin"].info[..], &[1u8]);
    assert_eq!(&c.subs["bin"].data[..], &[2u8]);
    assert_eq!(c.subs["bin"].override_, SubscribeOverride::default());
    assert_eq!(c.meta, Some(json!({"role": "admin"})));
    invalid(
        v.verify_connect(&hs("HS256", S, json!({"channels": [1]})))
            .await,
    );
    invalid(
        v.verify_connect(&hs("HS256", S, json!({"subs": {"x": {"b64data": "%"}}})))
            .await,
    );
    assert_eq!(
        v.verify_connect(&hs("HS256", S, json!({"meta": null})))
            .await
            .expect("null")
            .meta,
        None
    );
}

#[tokio::test]
async fn subscribe_claims() {
    let v = verifier(&hmac_cfg(S));
    let claims = json!({
        "sub": "u1", "channel": "$private", "client": "c-1", "exp": exp(),
        "info": "hi", "b64data": "AQI=", "data": {"ignored": true},
        "override": {"force_positioning": {"value": true}, "presence": {"value": false}}
    });
    let s = v
        .verify_subscribe(&hs("HS256", S, claims.clone()))
        .await
        .expect("sub");
    assert_eq!(s.user, "u1");
    assert_eq!(s.channel, "$private");
    assert_eq!(s.client, "c-1");
    assert_eq!(&s.info[..], br#""hi""#);
    assert_eq!(&s.data[..], &[1u8, 2]);
    assert_eq!(s.override_.force_positioning, Some(true));
    assert_eq!(s.override_.presence, Some(false));
    assert_eq!(s.override_.join_leave, None);

    let s = v
        .verify_subscribe(&hs(
            "HS256",
            S,
            json!({"sub": "u", "channel": "c", "data": {"a": 1}}),
        ))
        .await
        .expect("data");
    assert_eq!(&s.data[..], br#"{"a":1}"#);
    assert_eq!(s.client, "");
    assert_eq!(s.override_, SubscribeOverride::default());
}
