//! Placeholder with the agreed interface; replaced by the real module.
#![allow(missing_docs, clippy::all)]
use std::collections::BTreeMap;

use bytes::Bytes;

pub struct TokenVerifier;
impl TokenVerifier {
    pub fn new(_cfg: &crate::config::Token, _skip_signature: bool) -> Result<Self, String> {
        Ok(Self)
    }
    pub fn is_configured(&self) -> bool {
        false
    }
    pub async fn verify_connect(&self, _token: &str) -> Result<ConnectClaims, TokenError> {
        Err(TokenError::Invalid("stub".into()))
    }
    pub async fn verify_subscribe(&self, _token: &str) -> Result<SubscribeClaims, TokenError> {
        Err(TokenError::Invalid("stub".into()))
    }
}
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("invalid token: {0}")]
    Invalid(String),
}
#[derive(Debug, Clone, Default)]
pub struct ConnectClaims {
    pub user: String,
    pub expire_at: Option<i64>,
    pub info: Bytes,
    pub channels: Vec<String>,
    pub subs: BTreeMap<String, SubOptions>,
    pub meta: Option<serde_json::Value>,
    pub payload: serde_json::Value,
}
#[derive(Debug, Clone, Default)]
pub struct SubscribeClaims {
    pub user: String,
    pub channel: String,
    pub client: String,
    pub expire_at: Option<i64>,
    pub info: Bytes,
    pub data: Bytes,
    pub override_: SubOverride,
    pub payload: serde_json::Value,
}
#[derive(Debug, Clone, Default)]
pub struct SubOptions {
    pub info: Bytes,
    pub data: Bytes,
    pub override_: SubOverride,
}
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubOverride {
    pub presence: Option<bool>,
    pub join_leave: Option<bool>,
    pub force_recovery: Option<bool>,
    pub force_positioning: Option<bool>,
    pub force_push_join_leave: Option<bool>,
}
pub fn sign_hs256(_secret: &str, _claims: &serde_json::Value) -> Result<String, String> {
    Err("stub".into())
}
