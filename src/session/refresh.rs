//! `refresh` (new connection token) and `sub_refresh` (new subscription
//! token) for client-side token refresh.

use super::{Fail, Session, ttl_secs};
use crate::proto::client::{
    RefreshRequest, RefreshResult, Reply, SubRefreshRequest, SubRefreshResult,
};
use crate::protocol::{ClientError, Disconnect};

impl Session {
    pub(super) async fn refresh(&mut self, id: u32, req: RefreshRequest) -> Result<(), Fail> {
        if req.token.is_empty() {
            return Err(Disconnect::BAD_REQUEST.into());
        }
        let claims = self
            .check_connect_token(
                &req.token,
                Disconnect::EXPIRED.into(),
                Disconnect::INVALID_TOKEN.into(),
            )
            .await?;
        if claims.user != self.user {
            return Err(Disconnect::INVALID_TOKEN.into());
        }
        let expire_at = self.refreshed_expiry(claims.expire_at)?;
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
        let claims = self
            .check_sub_token(&req.token, &req.channel, Disconnect::INVALID_TOKEN.into())
            .await?;
        let expire_at = self.refreshed_expiry(claims.expire_at)?;
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
