//! `refresh` (new connection token) and `sub_refresh` (new subscription
//! token) for client-side token refresh.

use super::{Fail, Session, now_unix, ttl_secs};
use crate::auth::TokenError;
use crate::proto::client::{
    RefreshRequest, RefreshResult, Reply, SubRefreshRequest, SubRefreshResult,
};
use crate::protocol::{ClientError, Disconnect};

impl Session {
    pub(super) async fn refresh(&mut self, id: u32, req: RefreshRequest) -> Result<(), Fail> {
        if req.token.is_empty() {
            return Err(Disconnect::BAD_REQUEST.into());
        }
        let claims = match self
            .node
            .verifiers()
            .connect
            .verify_connect(&req.token)
            .await
        {
            Ok(c) => c,
            Err(TokenError::Expired) => return Err(Disconnect::EXPIRED.into()),
            Err(TokenError::Invalid(reason)) => {
                tracing::debug!(client = %self.shared.id, %reason, "invalid refresh token");
                return Err(Disconnect::INVALID_TOKEN.into());
            }
        };
        if claims.user != self.user {
            return Err(Disconnect::INVALID_TOKEN.into());
        }
        let expire_at = if self.node.config().client.insecure {
            None
        } else {
            claims.expire_at
        };
        if expire_at.is_some_and(|at| at <= now_unix()) {
            return Err(ClientError::Expired.into());
        }
        self.expire_at = expire_at;
        if !claims.info.is_empty() {
            self.conn_info = claims.info;
        }
        self.schedule_expiry();
        let result = RefreshResult {
            expires: expire_at.is_some(),
            ttl: expire_at.map_or(0, ttl_secs),
            ..Default::default()
        };
        self.reply(Reply {
            id,
            refresh: Some(result),
            ..Default::default()
        });
        Ok(())
    }

    pub(super) async fn sub_refresh(
        &mut self,
        id: u32,
        req: SubRefreshRequest,
    ) -> Result<(), Fail> {
        if req.channel.is_empty() {
            return Err(Disconnect::BAD_REQUEST.into());
        }
        if req.r#type != 0 {
            return Err(ClientError::NotAvailable.into());
        }
        if !self.subs.contains_key(&req.channel) {
            return Err(ClientError::PermissionDenied.into());
        }
        if req.token.is_empty() {
            return Err(ClientError::BadRequest.into());
        }
        let claims = match self
            .node
            .verifiers()
            .subscribe()
            .verify_subscribe(&req.token)
            .await
        {
            Ok(c) => c,
            Err(TokenError::Expired) => return Err(ClientError::TokenExpired.into()),
            Err(TokenError::Invalid(reason)) => {
                tracing::debug!(client = %self.shared.id, %reason, "invalid subscription refresh token");
                return Err(Disconnect::INVALID_TOKEN.into());
            }
        };
        if claims.channel != req.channel
            || claims.user != self.user
            || (!claims.client.is_empty() && claims.client != *self.shared.id)
        {
            return Err(Disconnect::INVALID_TOKEN.into());
        }
        let expire_at = if self.node.config().client.insecure {
            None
        } else {
            claims.expire_at
        };
        if expire_at.is_some_and(|at| at <= now_unix()) {
            return Err(ClientError::Expired.into());
        }
        if let Some(sub) = self.subs.get_mut(&req.channel) {
            sub.expire_at = expire_at;
        }
        self.schedule_sub_expiry();
        let result = SubRefreshResult {
            expires: expire_at.is_some(),
            ttl: expire_at.map_or(0, ttl_secs),
            ..Default::default()
        };
        self.reply(Reply {
            id,
            sub_refresh: Some(result),
            ..Default::default()
        });
        Ok(())
    }
}
