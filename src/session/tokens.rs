//! Token checks shared by the commands that carry tokens: which failure
//! becomes which code differs per command, the rest is the same.

use super::{Fail, Session, now_unix};
use crate::auth::{ConnectClaims, SubscribeClaims, TokenError};
use crate::protocol::{ClientError, Disconnect};

impl Session {
    /// Verifies a connection token; `expired` and `invalid` are the
    /// command's answers to those outcomes.
    pub(super) async fn check_connect_token(
        &self,
        token: &str,
        expired: Fail,
        invalid: Fail,
    ) -> Result<ConnectClaims, Fail> {
        match self.node.verifiers().connect.verify_connect(token).await {
            Ok(c) => Ok(c),
            Err(TokenError::Expired) => Err(expired),
            Err(TokenError::Invalid(reason)) => {
                tracing::debug!(client = %self.shared.id, %reason, "invalid connection token");
                Err(invalid)
            }
        }
    }

    /// Verifies a subscription token for `channel`: expired → 109, invalid →
    /// `invalid`, issued for another channel, user or client → 3500.
    pub(super) async fn check_sub_token(
        &self,
        token: &str,
        channel: &str,
        invalid: Fail,
    ) -> Result<SubscribeClaims, Fail> {
        let claims = match self
            .node
            .verifiers()
            .subscribe()
            .verify_subscribe(token)
            .await
        {
            Ok(c) => c,
            Err(TokenError::Expired) => return Err(ClientError::TokenExpired.into()),
            Err(TokenError::Invalid(reason)) => {
                tracing::debug!(client = %self.shared.id, %reason, "invalid subscription token");
                return Err(invalid);
            }
        };
        if claims.channel != channel
            || claims.user != self.user
            || (!claims.client.is_empty() && claims.client != *self.shared.id)
        {
            return Err(Disconnect::INVALID_TOKEN.into());
        }
        Ok(claims)
    }

    /// The expiry a refreshed token grants: none under `client.insecure`;
    /// one already past → 110.
    pub(super) fn refreshed_expiry(&self, expire_at: Option<i64>) -> Result<Option<i64>, Fail> {
        let expire_at = if self.node.config().client.insecure {
            None
        } else {
            expire_at
        };
        if expire_at.is_some_and(|at| at <= now_unix()) {
            return Err(ClientError::Expired.into());
        }
        Ok(expire_at)
    }
}
