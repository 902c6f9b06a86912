//! `rpc` and `send`. The built-in ping method (`rpc.ping`) answers first;
//! other methods go to the rpc proxy of their namespace (`proxy.rs`).
//! `send` has no handler in Centrifugo OSS, which closes the connection
//! with 3508.

use super::{Fail, Session};
use crate::proto::client::{Reply, RpcRequest, RpcResult, SendRequest};
use crate::protocol::Disconnect;

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
        self.proxy_rpc(id, req).await
    }

    pub(super) async fn send(&mut self, _req: SendRequest) -> Result<(), Fail> {
        Err(Disconnect::NOT_AVAILABLE.into())
    }
}
