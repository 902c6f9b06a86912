//! `rpc` and `send`. Without an RPC proxy only the built-in ping method
//! (`rpc.ping`) answers; `send` has no handler in Centrifugo OSS, which
//! closes the connection with 3508.

use super::{Fail, Session};
use crate::proto::client::{Reply, RpcRequest, RpcResult, SendRequest};
use crate::protocol::{ClientError, Disconnect};

impl Session {
    pub(super) async fn rpc(&mut self, id: u32, req: RpcRequest) -> Result<(), Fail> {
        let ping = &self.node.config().rpc.ping;
        if ping.enabled && req.method == ping.method {
            self.reply(Reply {
                id,
                rpc: Some(RpcResult::default()),
                ..Default::default()
            });
            return Ok(());
        }
        Err(ClientError::NotAvailable.into())
    }

    pub(super) async fn send(&mut self, _req: SendRequest) -> Result<(), Fail> {
        Err(Disconnect::NOT_AVAILABLE.into())
    }
}
