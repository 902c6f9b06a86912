//! Talking to the ACME CA (RFC 8555, through `instant-acme`): the account
//! (its key cached as `acme_account+key`, the `email` as its contact) and
//! one order per certificate, proved by TLS-ALPN-01 or HTTP-01 and
//! finalized with a CSR for a fresh ECDSA P-256 key.
//!
//! Challenge types are tried in turn, each with a new order, as Go's
//! autocert does: with `http` on, HTTP-01 first and TLS-ALPN-01 after it
//! (Go starts with TLS-ALPN-01; HTTP-01 first spares a failed validation
//! where only port 80 reaches Rotor, the usual reason to turn `http` on);
//! otherwise TLS-ALPN-01 only.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, BodyWrapper, BytesResponse, ChallengeType,
    HttpClient, Identifier, Key, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use super::Store;
use super::cache::ACCOUNT_KEY;
use super::challenge::{alpn_certificate, http_token_entry};

/// Longest wait for the CA to validate a challenge, then to issue.
const ORDER_PATIENCE: Duration = Duration::from_secs(90);
/// Longest any one HTTP request to the CA may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The HTTP client of the ACME CA: the system's roots, plus `acme_ca_pem`.
pub(crate) fn http_client(ca_pem: &str) -> Result<reqwest::Client, String> {
    const KEY: &str = "http_server.tls_autocert.acme_ca_pem";
    let mut builder = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(REQUEST_TIMEOUT);
    if !ca_pem.is_empty() {
        let pem = crate::config::pem::load(ca_pem).map_err(|e| format!("{KEY}: {e}"))?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| format!("{KEY}: {e}"))?;
        if certs.is_empty() {
            return Err(format!("{KEY}: no certificate found"));
        }
        builder = builder.tls_certs_merge(certs);
    }
    builder
        .build()
        .map_err(|e| format!("http_server.tls_autocert: cannot build the ACME HTTP client: {e}"))
}

/// `instant-acme`'s requests, sent with Rotor's reqwest client.
struct Http(reqwest::Client);

impl HttpClient for Http {
    fn request(
        &self,
        req: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let client = self.0.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let body = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(never) => match never {},
            };
            let other = |e: reqwest::Error| instant_acme::Error::Other(Box::new(e));
            let rsp = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await
                .map_err(other)?;
            let (status, headers) = (rsp.status(), rsp.headers().clone());
            let bytes = rsp.bytes().await.map_err(other)?;
            let mut out = http::Response::new(Full::new(bytes));
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            Ok(BytesResponse::from(out))
        })
    }
}

impl Store {
    /// The ACME account: the cached key's (registered again if the CA does
    /// not know it), or a new one whose key is cached.
    pub(super) async fn account(&self) -> Result<Account, String> {
        let mut slot = self.account.lock().await;
        if let Some(account) = slot.as_ref() {
            return Ok(account.clone());
        }
        let account = self.load_or_create_account().await?;
        *slot = Some(account.clone());
        Ok(account)
    }

    async fn load_or_create_account(&self) -> Result<Account, String> {
        let url = self.settings.directory_url.clone();
        let builder = || Account::builder_with_http(Box::new(Http(self.http.clone())));
        let cached = match &self.cache {
            Some(cache) => cache.get(ACCOUNT_KEY).await?,
            None => None,
        };
        let contact =
            (!self.settings.email.is_empty()).then(|| format!("mailto:{}", self.settings.email));
        let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
        if let Some(pem) = cached {
            let pkcs8 = account_key(&pem)?;
            let key = || {
                Key::from_pkcs8_der(pkcs8.clone_key())
                    .map(|k| (k, PrivateKeyDer::Pkcs8(pkcs8.clone_key())))
                    .map_err(|e| format!("{ACCOUNT_KEY}: {e}"))
            };
            return match builder().from_key(key()?, url.clone()).await {
                Ok((account, _)) => Ok(account),
                Err(instant_acme::Error::Api(p))
                    if p.r#type.as_deref()
                        == Some("urn:ietf:params:acme:error:accountDoesNotExist") =>
                {
                    let (account, _) = builder()
                        .create_from_key(key()?, url)
                        .await
                        .map_err(|e| format!("account registration: {e}"))?;
                    if !contacts.is_empty() {
                        account
                            .update_contacts(&contacts)
                            .await
                            .map_err(|e| format!("account contact: {e}"))?;
                    }
                    Ok(account)
                }
                Err(e) => Err(format!("account: {e}")),
            };
        }
        let new = NewAccount {
            contact: &contacts,
            terms_of_service_agreed: true,
            only_return_existing: false,
        };
        let (account, credentials) = builder()
            .create(&new, url, None)
            .await
            .map_err(|e| format!("account registration: {e}"))?;
        if let Some(cache) = &self.cache {
            cache
                .put(ACCOUNT_KEY, pkcs8_pem(&credentials).as_bytes())
                .await?;
        }
        Ok(account)
    }

    /// Gets a certificate for `host`: a PEM key and chain (the cache
    /// layout), trying each challenge type in turn.
    pub(super) async fn order(&self, host: &str) -> Result<String, String> {
        let account = self.account().await?;
        let types = if self.settings.http {
            vec![ChallengeType::Http01, ChallengeType::TlsAlpn01]
        } else {
            vec![ChallengeType::TlsAlpn01]
        };
        let mut failures = Vec::new();
        for kind in types {
            match self.order_with(&account, host, kind.clone()).await {
                Ok(pem) => return Ok(pem),
                Err(Failure::Challenge(e)) => failures.push(format!("{}: {e}", name(&kind))),
                Err(Failure::Other(e)) => return Err(e),
            }
        }
        Err(failures.join("; "))
    }

    async fn order_with(
        &self,
        account: &Account,
        host: &str,
        kind: ChallengeType,
    ) -> Result<String, Failure> {
        let ids = [Identifier::Dns(host.to_string())];
        let mut order = account
            .new_order(&NewOrder::new(&ids))
            .await
            .map_err(|e| Failure::Other(format!("new order: {e}")))?;
        let mut served = Served {
            store: self,
            tokens: Vec::new(),
            alpn_host: None,
        };
        let proved = self.prove(&mut order, host, &kind, &mut served).await;
        served.clear().await;
        proved?;
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| Failure::Other(e.to_string()))?;
        let mut params = rcgen::CertificateParams::new(vec![host.to_string()])
            .map_err(|e| Failure::Other(e.to_string()))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        let csr = params
            .serialize_request(&key)
            .map_err(|e| Failure::Other(e.to_string()))?;
        order
            .finalize_csr(csr.der())
            .await
            .map_err(|e| Failure::Other(format!("finalize: {e}")))?;
        let chain = order
            .poll_certificate(&RetryPolicy::new().timeout(ORDER_PATIENCE))
            .await
            .map_err(|e| Failure::Other(format!("certificate: {e}")))?;
        Ok(format!("{}{chain}", key.serialize_pem()))
    }
}

impl Store {
    /// Puts up a `kind` response for every pending authorization of
    /// `order`, tells the CA, and waits until the order is ready.
    async fn prove(
        &self,
        order: &mut instant_acme::Order,
        host: &str,
        kind: &ChallengeType,
        served: &mut Served<'_>,
    ) -> Result<(), Failure> {
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz.map_err(|e| Failure::Other(format!("authorization: {e}")))?;
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => {
                    return Err(Failure::Other(format!("authorization is {other:?}")));
                }
            }
            let mut challenge = authz
                .challenge(kind.clone())
                .ok_or_else(|| Failure::Challenge("not offered by the CA".into()))?;
            let key_auth = challenge.key_authorization();
            if *kind == ChallengeType::Http01 {
                served.http(&challenge.token, key_auth.as_str()).await;
            } else {
                let cert =
                    alpn_certificate(host, key_auth.digest().as_ref()).map_err(Failure::Other)?;
                served.alpn(host, cert);
            }
            challenge
                .set_ready()
                .await
                .map_err(|e| Failure::Challenge(e.to_string()))?;
        }
        let retry = RetryPolicy::new().timeout(ORDER_PATIENCE);
        let status = order
            .poll_ready(&retry)
            .await
            .map_err(|e| Failure::Challenge(e.to_string()))?;
        if status == OrderStatus::Ready {
            return Ok(());
        }
        let mut why = Vec::new();
        let mut authorizations = order.authorizations();
        while let Some(Ok(mut authz)) = authorizations.next().await {
            if let Ok(state) = authz.refresh().await {
                why.extend(
                    state
                        .challenges
                        .iter()
                        .filter_map(|c| c.error.as_ref().map(|p| p.to_string())),
                );
            }
        }
        Err(Failure::Challenge(if why.is_empty() {
            format!("the order is {status:?}")
        } else {
            why.join("; ")
        }))
    }
}

/// Why one order failed: its challenge (the next type may do), or
/// anything else (the next type would fail the same way).
enum Failure {
    Challenge(String),
    Other(String),
}

fn name(kind: &ChallengeType) -> &'static str {
    match kind {
        ChallengeType::Http01 => "http-01",
        ChallengeType::TlsAlpn01 => "tls-alpn-01",
        _ => "challenge",
    }
}

/// The challenge responses one order put up, taken down when it is done
/// (or dropped half way).
struct Served<'a> {
    store: &'a Store,
    tokens: Vec<String>,
    alpn_host: Option<String>,
}

impl Served<'_> {
    async fn http(&mut self, token: &str, key_authorization: &str) {
        self.store.challenges.put_http(token, key_authorization);
        self.tokens.push(token.to_string());
        if let Some(cache) = &self.store.cache
            && let Err(e) = cache
                .put(&http_token_entry(token), key_authorization.as_bytes())
                .await
        {
            tracing::warn!(error = %e, "ACME: HTTP-01 token not shared through cache_dir");
        }
    }

    fn alpn(&mut self, host: &str, cert: std::sync::Arc<rustls::sign::CertifiedKey>) {
        self.store.challenges.put_alpn(host, cert);
        self.alpn_host = Some(host.to_string());
    }

    async fn clear(&mut self) {
        let tokens = std::mem::take(&mut self.tokens);
        for token in &tokens {
            self.store.challenges.remove_http(token);
            if let Some(cache) = &self.store.cache {
                cache.delete(&http_token_entry(token)).await;
            }
        }
        if let Some(host) = self.alpn_host.take() {
            self.store.challenges.remove_alpn(&host);
        }
    }
}

impl Drop for Served<'_> {
    fn drop(&mut self) {
        for token in &self.tokens {
            self.store.challenges.remove_http(token);
        }
        if let Some(host) = &self.alpn_host {
            self.store.challenges.remove_alpn(host);
        }
    }
}

/// The PKCS#8 account key in a cached PEM file: PKCS#8 as Rotor writes
/// it, or SEC1 (`EC PRIVATE KEY`) as Go's autocert does.
fn account_key(pem: &[u8]) -> Result<PrivatePkcs8KeyDer<'static>, String> {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    let bad = |e: &dyn std::fmt::Display| format!("{ACCOUNT_KEY} in cache_dir: {e}");
    match PrivateKeyDer::from_pem_slice(pem).map_err(|e| bad(&e))? {
        PrivateKeyDer::Pkcs8(k) => Ok(k),
        PrivateKeyDer::Sec1(k) => {
            let pair = EcdsaKeyPair::from_private_key_der(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                k.secret_sec1_der(),
            )
            .map_err(|e| bad(&e))?;
            let doc = pair.to_pkcs8v1().map_err(|e| bad(&e))?;
            Ok(PrivatePkcs8KeyDer::from(doc.as_ref().to_vec()))
        }
        _ => Err(bad(&"not an ECDSA key")),
    }
}

fn pkcs8_pem(credentials: &AccountCredentials) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD
        .encode(credentials.private_key().secret_pkcs8_der());
    let mut out = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END PRIVATE KEY-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_keys_in_both_layouts() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let pkcs8 = account_key(key.serialize_pem().as_bytes()).expect("pkcs8");
        assert_eq!(pkcs8.secret_pkcs8_der(), key.serialize_der().as_slice());
        Key::from_pkcs8_der(pkcs8).expect("usable");
        assert!(account_key(b"junk").is_err());
        // Go's autocert: SEC1.
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        use base64::Engine as _;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key.serialize_der())
            .expect("pair");
        let sec1: aws_lc_rs::encoding::EcPrivateKeyRfc5915Der<'_> =
            aws_lc_rs::encoding::AsDer::as_der(&pair.private_key()).expect("sec1");
        let b64 = base64::engine::general_purpose::STANDARD.encode(sec1.as_ref());
        let pem = format!("-----BEGIN EC PRIVATE KEY-----\n{b64}\n-----END EC PRIVATE KEY-----\n");
        let pkcs8 = account_key(pem.as_bytes()).expect("sec1 read");
        Key::from_pkcs8_der(pkcs8).expect("usable");
    }
}
