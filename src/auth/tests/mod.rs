//! Test helpers for the auth module: real keys generated with `aws-lc-rs`,
//! a token builder, and a tiny HTTP/1.1 server for JWKS documents.

mod claims;
mod jwks;
mod static_keys;
mod template;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING,
    ECDSA_P521_SHA512_FIXED_SIGNING, EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair, KeyPair,
    RSA_PKCS1_SHA256, RSA_PKCS1_SHA384, RSA_PKCS1_SHA512, RsaKeyPair, RsaPublicKeyComponents,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::Token;

pub(super) fn b64u(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

pub(super) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// Wraps DER in a PEM block.
pub(super) fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// Builds a compact JWS from a header, claims and a signing function.
pub(super) fn token(header: Value, claims: Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let h = b64u(header.to_string().as_bytes());
    let c = b64u(claims.to_string().as_bytes());
    let input = format!("{h}.{c}");
    let sig = sign(input.as_bytes());
    format!("{input}.{}", b64u(&sig))
}

/// HS256/384/512 token.
pub(super) fn hs(alg: &str, secret: &str, claims: Value) -> String {
    let algorithm = match alg {
        "HS256" => aws_lc_rs::hmac::HMAC_SHA256,
        "HS384" => aws_lc_rs::hmac::HMAC_SHA384,
        _ => aws_lc_rs::hmac::HMAC_SHA512,
    };
    let key = aws_lc_rs::hmac::Key::new(algorithm, secret.as_bytes());
    token(json!({"typ": "JWT", "alg": alg}), claims, |m| {
        aws_lc_rs::hmac::sign(&key, m).as_ref().to_vec()
    })
}

pub(super) struct Rsa {
    pair: RsaKeyPair,
    pub(super) public_pem: String,
}

impl Rsa {
    pub(super) fn generate() -> Self {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("rsa keygen");
        let der = pair.public_key().as_der().expect("rsa der");
        let public_pem = pem("PUBLIC KEY", der.as_ref());
        Self { pair, public_pem }
    }

    /// The shared test key (generation is slow-ish).
    pub(super) fn shared() -> &'static Self {
        static KEY: OnceLock<Rsa> = OnceLock::new();
        KEY.get_or_init(Self::generate)
    }

    pub(super) fn sign(&self, alg: &str, header_extra: Value, claims: Value) -> String {
        let enc: &'static dyn aws_lc_rs::signature::RsaEncoding = match alg {
            "RS384" => &RSA_PKCS1_SHA384,
            "RS512" => &RSA_PKCS1_SHA512,
            _ => &RSA_PKCS1_SHA256,
        };
        let header = merge(json!({"typ": "JWT", "alg": alg}), header_extra);
        token(header, claims, |m| {
            let mut sig = vec![0u8; self.pair.public_modulus_len()];
            self.pair
                .sign(enc, &SystemRandom::new(), m, &mut sig)
                .expect("rsa sign");
            sig
        })
    }

    /// JWK members `n`, `e`.
    pub(super) fn jwk(&self, kid: &str, alg: Option<&str>) -> Value {
        let comps = RsaPublicKeyComponents::<Vec<u8>>::from(self.pair.public_key());
        let mut v = json!({"kty": "RSA", "use": "sig", "kid": kid, "n": b64u(&comps.n), "e": b64u(&comps.e)});
        if let Some(a) = alg {
            v["alg"] = json!(a);
        }
        v
    }
}

pub(super) struct Ec {
    pair: EcdsaKeyPair,
    pub(super) public_pem: String,
    pub(super) alg: &'static str,
    crv: &'static str,
}

impl Ec {
    pub(super) fn generate(alg: &'static str) -> Self {
        let (signing, crv): (&'static EcdsaSigningAlgorithm, _) = match alg {
            "ES256" => (&ECDSA_P256_SHA256_FIXED_SIGNING, "P-256"),
            "ES384" => (&ECDSA_P384_SHA384_FIXED_SIGNING, "P-384"),
            _ => (&ECDSA_P521_SHA512_FIXED_SIGNING, "P-521"),
        };
        let pair = EcdsaKeyPair::generate(signing).expect("ec keygen");
        let der = pair.public_key().as_der().expect("ec der");
        let public_pem = pem("PUBLIC KEY", der.as_ref());
        Self {
            pair,
            public_pem,
            alg,
            crv,
        }
    }

    /// Signs with this key, labelling the header with `alg` (which may lie).
    pub(super) fn sign_as(&self, alg: &str, header_extra: Value, claims: Value) -> String {
        let header = merge(json!({"typ": "JWT", "alg": alg}), header_extra);
        token(header, claims, |m| {
            self.pair
                .sign(&SystemRandom::new(), m)
                .expect("ec sign")
                .as_ref()
                .to_vec()
        })
    }

    pub(super) fn sign(&self, claims: Value) -> String {
        self.sign_as(self.alg, json!({}), claims)
    }

    pub(super) fn jwk(&self, kid: &str, alg: Option<&str>) -> Value {
        let point = self.pair.public_key().as_ref();
        let n = (point.len() - 1) / 2;
        let mut v = json!({"kty": "EC", "crv": self.crv, "kid": kid,
            "x": b64u(&point[1..1 + n]), "y": b64u(&point[1 + n..])});
        if let Some(a) = alg {
            v["alg"] = json!(a);
        }
        v
    }
}

pub(super) struct Ed {
    pair: Ed25519KeyPair,
}

impl Ed {
    pub(super) fn generate() -> Self {
        Self {
            pair: Ed25519KeyPair::generate().expect("ed keygen"),
        }
    }

    pub(super) fn sign(&self, kid: &str, claims: Value) -> String {
        token(json!({"alg": "EdDSA", "kid": kid}), claims, |m| {
            self.pair.sign(m).as_ref().to_vec()
        })
    }

    pub(super) fn jwk(&self, kid: &str) -> Value {
        json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64u(self.pair.public_key().as_ref())})
    }
}

fn merge(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
}

pub(super) fn hmac_cfg(secret: &str) -> Token {
    Token {
        hmac_secret_key: secret.into(),
        ..Token::default()
    }
}

pub(super) fn verifier(cfg: &Token) -> super::TokenVerifier {
    super::TokenVerifier::new(cfg, false).expect("verifier config")
}

pub(super) fn invalid<T: std::fmt::Debug>(r: Result<T, super::TokenError>) -> String {
    match r {
        Err(super::TokenError::Invalid(m)) => m,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// A JWKS server: fixed bodies per path, counting requests per path.
pub(super) struct JwksServer {
    pub(super) base: String,
    hits: Arc<parking_lot::Mutex<HashMap<String, usize>>>,
}

impl JwksServer {
    pub(super) async fn start(docs: Vec<(&str, Value)>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let docs: Arc<HashMap<String, String>> = Arc::new(
            docs.into_iter()
                .map(|(p, v)| (p.to_string(), v.to_string()))
                .collect(),
        );
        let hits = Arc::new(parking_lot::Mutex::new(HashMap::new()));
        let hits2 = hits.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let docs = docs.clone();
                let hits = hits2.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let req = String::from_utf8_lossy(&buf);
                    let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
                    *hits.lock().entry(path.clone()).or_insert(0) += 1;
                    let resp = match docs.get(&path) {
                        Some(body) => format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        ),
                        None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\
                                 Connection: close\r\n\r\n"
                            .to_string(),
                    };
                    let _ = sock.write_all(resp.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Self { base, hits }
    }

    pub(super) fn hits(&self, path: &str) -> usize {
        self.hits.lock().get(path).copied().unwrap_or(0)
    }

    pub(super) fn total_hits(&self) -> usize {
        self.hits.lock().values().sum()
    }
}
