//! `rpc`: custom server API methods. Centrifugo OSS registers none, so a
//! named method is 104 (not found); an empty one is 107.

use super::Executor;
use crate::api::errors::ApiError;
use crate::proto::api::{RpcRequest, RpcResult};

impl Executor {
    /// Calls a registered API method (there are none).
    pub async fn rpc(&self, req: RpcRequest) -> Result<RpcResult, ApiError> {
        if req.method.is_empty() {
            return Err(ApiError::bad_request());
        }
        tracing::debug!(method = %req.method, "server API: unknown rpc method");
        Err(ApiError::not_found())
    }
}
