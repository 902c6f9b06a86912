//! One host's certificate as Rotor serves it: the chain and key rustls
//! takes, the validity window that decides when it is renewed, and the PEM
//! layout it is cached in (Go's autocert layout: the private key, then the
//! chain, leaf first — so a Centrifugo `cache_dir` can be reused as is).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::sign::CertifiedKey;

/// A certificate is renewed this long before it expires, or after two
/// thirds of its lifetime when that is shorter (short-lived certificates).
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

/// A usable certificate for one host.
#[derive(Debug)]
pub(crate) struct Issued {
    pub(crate) key: Arc<CertifiedKey>,
    pub(crate) not_before: SystemTime,
    pub(crate) not_after: SystemTime,
}

impl Issued {
    /// Reads `pem` (a private key and a chain, leaf first) and checks that
    /// the leaf is for `host`, matches the key and is valid at `now`.
    pub(crate) fn from_pem(pem: &[u8], host: &str, now: SystemTime) -> Result<Self, String> {
        let chain = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("certificate chain: {e}"))?;
        let leaf = chain.first().ok_or("no certificate")?.clone();
        let key = PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("private key: {e}"))?;
        let (not_before, not_after) = validity(&leaf).ok_or("unreadable validity dates")?;
        if now < not_before || now >= not_after {
            return Err("not valid now (expired or not yet valid)".into());
        }
        let name = ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
        webpki::EndEntityCert::try_from(&leaf)
            .map_err(|e| format!("certificate: {e:?}"))?
            .verify_is_valid_for_subject_name(&name)
            .map_err(|_| format!("the certificate is not for {host}"))?;
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let key = CertifiedKey::from_der(chain, key, &provider).map_err(|e| e.to_string())?;
        Ok(Self {
            key: Arc::new(key),
            not_before,
            not_after,
        })
    }

    /// When to renew: [`RENEW_BEFORE`] ahead of expiry, or at two thirds of
    /// the lifetime for certificates shorter than three times that.
    pub(crate) fn renew_at(&self) -> SystemTime {
        let lifetime = self
            .not_after
            .duration_since(self.not_before)
            .unwrap_or_default();
        self.not_after - RENEW_BEFORE.min(lifetime / 3)
    }

    /// Whole days until expiry (for logs).
    pub(crate) fn days_left(&self, now: SystemTime) -> u64 {
        self.not_after
            .duration_since(now)
            .map(|d| d.as_secs() / 86_400)
            .unwrap_or(0)
    }
}

/// The `notBefore` and `notAfter` of an X.509 certificate (DER): the fifth
/// element of `tbsCertificate`, after the optional version, the serial,
/// the signature algorithm and the issuer.
pub(crate) fn validity(cert: &[u8]) -> Option<(SystemTime, SystemTime)> {
    let (tag, certificate, _) = tlv(cert)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, tbs, _) = tlv(certificate)?;
    if tag != 0x30 {
        return None;
    }
    let mut rest = tbs;
    let (tag, _, after) = tlv(rest)?;
    if tag == 0xa0 {
        rest = after; // [0] version
    }
    for _ in 0..3 {
        let (_, _, after) = tlv(rest)?; // serial, signature, issuer
        rest = after;
    }
    let (tag, validity, _) = tlv(rest)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, first, after) = tlv(validity)?;
    let not_before = time(tag, first)?;
    let (tag, second, _) = tlv(after)?;
    Some((not_before, time(tag, second)?))
}

/// One DER element: its tag, its content and what follows it.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// A UTCTime (`YYMMDDHHMMSSZ`, tag 0x17) or GeneralizedTime
/// (`YYYYMMDDHHMMSSZ`, tag 0x18), as RFC 5280 requires them.
fn time(tag: u8, text: &[u8]) -> Option<SystemTime> {
    let text = std::str::from_utf8(text).ok()?;
    let digits = text.strip_suffix('Z')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |s: &str| s.parse::<i64>().ok();
    let (year, rest) = match (tag, digits.len()) {
        (0x17, 12) => {
            let yy = num(&digits[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &digits[2..])
        }
        (0x18, 14) => (num(&digits[..4])?, &digits[4..]),
        _ => return None,
    };
    let [month, day, hour, minute, second] =
        [0, 2, 4, 6, 8].map(|i| num(&rest[i..i + 2]).unwrap_or(-1));
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if !(0..=60).contains(&second) {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(host: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let mut params = rcgen::CertificateParams::new(vec![host.to_string()]).expect("params");
        params.not_before = rcgen::date_time_ymd(2024, 2, 29);
        params.not_after = rcgen::date_time_ymd(2099, 12, 31);
        let cert = params.self_signed(&key).expect("cert");
        (key.serialize_pem(), cert.pem())
    }

    #[test]
    fn reads_validity_dates() {
        let (_, cert) = self_signed("a.example");
        let der = CertificateDer::from_pem_slice(cert.as_bytes()).expect("der");
        let (from, to) = validity(&der).expect("validity");
        let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).expect("after").as_secs();
        assert_eq!(secs(from), 1_709_164_800); // 2024-02-29T00:00:00Z
        assert_eq!(secs(to), 4_102_358_400); // 2099-12-31T00:00:00Z
        assert_eq!(time(0x17, b"491231235959Z").map(secs), Some(2_524_607_999));
        // 1950 is before the epoch: not a date a usable certificate has.
        assert!(time(0x17, b"500101000000Z").is_none());
        for bad in [
            &b""[..],
            b"\x30",
            b"\x30\x85\x01\x01\x01\x01\x01",
            b"\x30\x02\x30",
        ] {
            assert!(validity(bad).is_none());
        }
        assert!(time(0x17, b"241301000000Z").is_none());
        assert!(time(0x18, b"20241301000000").is_none());
    }

    #[test]
    fn cached_pem_is_checked() {
        let (key, cert) = self_signed("a.example");
        let pem = format!("{key}{cert}");
        let now = SystemTime::now();
        let issued = Issued::from_pem(pem.as_bytes(), "a.example", now).expect("usable");
        assert!(issued.renew_at() < issued.not_after);
        assert!(Issued::from_pem(pem.as_bytes(), "b.example", now).is_err());
        let (other_key, _) = self_signed("a.example");
        let mismatched = format!("{other_key}{cert}");
        assert!(Issued::from_pem(mismatched.as_bytes(), "a.example", now).is_err());
        let later = UNIX_EPOCH + Duration::from_secs(4_102_358_400);
        assert!(Issued::from_pem(pem.as_bytes(), "a.example", later).is_err());
        assert!(Issued::from_pem(b"junk", "a.example", now).is_err());
    }

    /// Go's autocert writes the key as SEC1 (`EC PRIVATE KEY`).
    #[test]
    fn go_cache_files_are_read() {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        use base64::Engine as _;
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let cert = rcgen::CertificateParams::new(vec!["a.example".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key.serialize_der())
            .expect("pair");
        let sec1: aws_lc_rs::encoding::EcPrivateKeyRfc5915Der<'_> =
            aws_lc_rs::encoding::AsDer::as_der(&pair.private_key()).expect("sec1");
        let b64 = base64::engine::general_purpose::STANDARD.encode(sec1.as_ref());
        let pem = format!(
            "-----BEGIN EC PRIVATE KEY-----\n{b64}\n-----END EC PRIVATE KEY-----\n{}",
            cert.pem()
        );
        Issued::from_pem(pem.as_bytes(), "a.example", SystemTime::now()).expect("usable");
    }

    #[test]
    fn renews_at_two_thirds_of_short_lives() {
        let key = Arc::new(CertifiedKey::new(vec![], Arc::new(NoKey)));
        let day = Duration::from_secs(86_400);
        let start = UNIX_EPOCH + day * 1000;
        let issued = |days: u32| Issued {
            key: key.clone(),
            not_before: start,
            not_after: start + day * days,
        };
        assert_eq!(issued(90).renew_at(), start + day * 60);
        assert_eq!(issued(6).renew_at(), start + day * 4);
    }

    #[derive(Debug)]
    struct NoKey;
    impl rustls::sign::SigningKey for NoKey {
        fn choose_scheme(
            &self,
            _: &[rustls::SignatureScheme],
        ) -> Option<Box<dyn rustls::sign::Signer>> {
            None
        }
        fn algorithm(&self) -> rustls::SignatureAlgorithm {
            rustls::SignatureAlgorithm::ECDSA
        }
    }
}
