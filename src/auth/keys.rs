//! Verification keys and the pinned algorithm table.
//!
//! A token's `alg` only selects among verifiers built for key types that are
//! actually configured; it never decides how a key is interpreted. HS* needs an
//! HMAC secret, RS* an RSA key, ES* an EC key on the matching curve and EdDSA an
//! Ed25519 key (JWKS only). ES512 is verified with `aws-lc-rs` directly because
//! `jsonwebtoken` has no P-521 support; everything else goes through
//! `jsonwebtoken::crypto::verify`.

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED, ECDSA_P521_SHA512_FIXED, ParsedPublicKey,
    RSA_PKCS1_2048_8192_SHA256,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};

/// The JWS algorithms Rotor knows. Anything else (`none`, PS*, junk) is unsupported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alg {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    ES256,
    ES384,
    ES512,
    EdDSA,
}

impl Alg {
    /// Parses a header `alg`; `None` for unsupported names (case-sensitive, as RFC 7515 says).
    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "HS256" => Self::HS256,
            "HS384" => Self::HS384,
            "HS512" => Self::HS512,
            "RS256" => Self::RS256,
            "RS384" => Self::RS384,
            "RS512" => Self::RS512,
            "ES256" => Self::ES256,
            "ES384" => Self::ES384,
            "ES512" => Self::ES512,
            "EdDSA" => Self::EdDSA,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::HS384 => "HS384",
            Self::HS512 => "HS512",
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::ES512 => "ES512",
            Self::EdDSA => "EdDSA",
        }
    }

    /// The `jsonwebtoken` equivalent, where one exists (ES512 has none).
    fn to_jwt(self) -> Option<Algorithm> {
        Some(match self {
            Self::HS256 => Algorithm::HS256,
            Self::HS384 => Algorithm::HS384,
            Self::HS512 => Algorithm::HS512,
            Self::RS256 => Algorithm::RS256,
            Self::RS384 => Algorithm::RS384,
            Self::RS512 => Algorithm::RS512,
            Self::ES256 => Algorithm::ES256,
            Self::ES384 => Algorithm::ES384,
            Self::EdDSA => Algorithm::EdDSA,
            Self::ES512 => return None,
        })
    }
}

/// NIST curves usable for ECDSA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    /// Size in bytes of one field element (a JWK `x` or `y`).
    pub(crate) fn coord_len(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
            Self::P521 => 66,
        }
    }

    /// Curve of an SEC1 point (uncompressed or compressed), by its length.
    fn of_point(point: &[u8]) -> Option<Self> {
        match point.len() {
            65 | 33 => Some(Self::P256),
            97 | 49 => Some(Self::P384),
            133 | 67 => Some(Self::P521),
            _ => None,
        }
    }

    /// The one ES algorithm this curve verifies.
    fn alg(self) -> Alg {
        match self {
            Self::P256 => Alg::ES256,
            Self::P384 => Alg::ES384,
            Self::P521 => Alg::ES512,
        }
    }

    fn aws_alg(self) -> &'static aws_lc_rs::signature::EcdsaVerificationAlgorithm {
        match self {
            Self::P256 => &ECDSA_P256_SHA256_FIXED,
            Self::P384 => &ECDSA_P384_SHA384_FIXED,
            Self::P521 => &ECDSA_P521_SHA512_FIXED,
        }
    }
}

/// One public (or shared) key, tagged with the family it may verify.
#[derive(Clone)]
pub(crate) enum VerifyKey {
    Hmac(DecodingKey),
    Rsa(DecodingKey),
    /// `point` is the SEC1 public point.
    Ec {
        curve: Curve,
        point: Vec<u8>,
    },
    Ed(DecodingKey),
}

impl VerifyKey {
    /// RSA key from a PEM (`PUBLIC KEY` or `RSA PUBLIC KEY`); at least 2048 bits.
    pub(crate) fn rsa_from_pem(pem: &str) -> Result<Self, String> {
        let key = DecodingKey::from_rsa_pem(pem.trim().as_bytes())
            .map_err(|e| format!("invalid PEM: {e}"))?;
        let der = key
            .try_get_as_bytes()
            .map_err(|e| format!("invalid PEM: {e}"))?;
        ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der)
            .map_err(|e| format!("unusable RSA public key (must be 2048..8192 bits): {e}"))?;
        Ok(Self::Rsa(key))
    }

    /// EC key from a `PUBLIC KEY` PEM on P-256, P-384 or P-521.
    pub(crate) fn ec_from_pem(pem: &str) -> Result<Self, String> {
        let key = DecodingKey::from_ec_pem(pem.trim().as_bytes())
            .map_err(|e| format!("invalid PEM: {e}"))?;
        let point = key
            .try_get_as_bytes()
            .map_err(|e| format!("invalid PEM: {e}"))?;
        Self::ec_from_point(point.to_vec())
    }

    /// EC key from a SEC1 point; the curve is read from the point size.
    pub(crate) fn ec_from_point(point: Vec<u8>) -> Result<Self, String> {
        let curve =
            Curve::of_point(&point).ok_or("unsupported EC curve (need P-256, P-384 or P-521)")?;
        ParsedPublicKey::new(curve.aws_alg(), &point)
            .map_err(|e| format!("invalid EC public key: {e}"))?;
        Ok(Self::Ec { curve, point })
    }

    /// Whether `alg` belongs to this key's family (and curve, for EC).
    pub(crate) fn accepts(&self, alg: Alg) -> bool {
        match self {
            Self::Hmac(_) => matches!(alg, Alg::HS256 | Alg::HS384 | Alg::HS512),
            Self::Rsa(_) => matches!(alg, Alg::RS256 | Alg::RS384 | Alg::RS512),
            Self::Ec { curve, .. } => curve.alg() == alg,
            Self::Ed(_) => alg == Alg::EdDSA,
        }
    }

    /// Verifies `signature_b64` (the third JWT segment) over `message`.
    pub(crate) fn verify(
        &self,
        alg: Alg,
        message: &[u8],
        signature_b64: &str,
    ) -> Result<(), String> {
        if !self.accepts(alg) {
            return Err(format!("key cannot verify {}", alg.name()));
        }
        let ok = match (self, alg.to_jwt()) {
            (Self::Ec { curve, point }, None) => {
                let sig = URL_SAFE_NO_PAD
                    .decode(signature_b64)
                    .map_err(|_| "malformed signature encoding")?;
                ParsedPublicKey::new(curve.aws_alg(), point)
                    .map_err(|e| format!("invalid EC public key: {e}"))?
                    .verify_sig(message, &sig)
                    .is_ok()
            }
            (Self::Ec { point, .. }, Some(jwt_alg)) => {
                let key = DecodingKey::from_ec_der(point);
                jsonwebtoken::crypto::verify(signature_b64, message, &key, jwt_alg)
                    .map_err(|e| format!("signature check failed: {e}"))?
            }
            (Self::Hmac(key) | Self::Rsa(key) | Self::Ed(key), Some(jwt_alg)) => {
                jsonwebtoken::crypto::verify(signature_b64, message, key, jwt_alg)
                    .map_err(|e| format!("signature check failed: {e}"))?
            }
            (_, None) => false,
        };
        if ok {
            Ok(())
        } else {
            Err("invalid signature".into())
        }
    }
}

/// Keys from `client.token.*` (everything except JWKS).
#[derive(Default)]
pub(crate) struct StaticKeys {
    hmac: Option<VerifyKey>,
    hmac_previous: Option<(VerifyKey, i64)>,
    rsa: Option<VerifyKey>,
    ec: Option<VerifyKey>,
}

impl StaticKeys {
    /// Builds the verifier set; errors name the config key.
    pub(crate) fn from_config(cfg: &crate::config::Token) -> Result<Self, String> {
        let mut keys = Self::default();
        if !cfg.hmac_secret_key.is_empty() {
            keys.hmac = Some(VerifyKey::Hmac(DecodingKey::from_secret(
                cfg.hmac_secret_key.as_bytes(),
            )));
            if !cfg.hmac_previous_secret_key.is_empty() {
                let prev = VerifyKey::Hmac(DecodingKey::from_secret(
                    cfg.hmac_previous_secret_key.as_bytes(),
                ));
                keys.hmac_previous = Some((prev, cfg.hmac_previous_secret_key_valid_until));
            }
        } else if !cfg.hmac_previous_secret_key.is_empty() {
            tracing::warn!(
                "client.token.hmac_previous_secret_key is ignored: hmac_secret_key is not set"
            );
        }
        if !cfg.rsa_public_key.trim().is_empty() {
            keys.rsa = Some(
                VerifyKey::rsa_from_pem(&cfg.rsa_public_key)
                    .map_err(|e| format!("client.token.rsa_public_key: {e}"))?,
            );
        }
        if !cfg.ecdsa_public_key.trim().is_empty() {
            keys.ec = Some(
                VerifyKey::ec_from_pem(&cfg.ecdsa_public_key)
                    .map_err(|e| format!("client.token.ecdsa_public_key: {e}"))?,
            );
        }
        Ok(keys)
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.hmac.is_none() && self.rsa.is_none() && self.ec.is_none()
    }

    /// Names of the algorithms that can succeed, for the startup log.
    pub(crate) fn enabled_algs(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.hmac.is_some() {
            out.extend(["HS256", "HS384", "HS512"]);
        }
        if self.rsa.is_some() {
            out.extend(["RS256", "RS384", "RS512"]);
        }
        if let Some(VerifyKey::Ec { curve, .. }) = &self.ec {
            out.push(curve.alg().name());
        }
        out
    }

    /// Verifies with the key configured for `alg`'s family, or fails as disabled.
    pub(crate) fn verify(
        &self,
        alg: Alg,
        message: &[u8],
        signature_b64: &str,
        now: i64,
    ) -> Result<(), String> {
        let key = match alg {
            Alg::HS256 | Alg::HS384 | Alg::HS512 => self.hmac.as_ref(),
            Alg::RS256 | Alg::RS384 | Alg::RS512 => self.rsa.as_ref(),
            Alg::ES256 | Alg::ES384 | Alg::ES512 => self.ec.as_ref(),
            Alg::EdDSA => None,
        };
        let Some(key) = key else {
            return Err(format!("disabled JWT algorithm: {}", alg.name()));
        };
        let first = key.verify(alg, message, signature_b64);
        if first.is_err()
            && let (VerifyKey::Hmac(_), Some((prev, valid_until))) = (key, &self.hmac_previous)
            && (*valid_until == 0 || now <= *valid_until)
        {
            return prev.verify(alg, message, signature_b64);
        }
        first
    }
}
