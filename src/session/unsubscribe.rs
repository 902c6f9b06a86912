//! `unsubscribe`: drop a client-side subscription. Unknown channels succeed.

use super::{Fail, Session};
use crate::proto::client::{Reply, UnsubscribeRequest, UnsubscribeResult};
use crate::protocol::Disconnect;

impl Session {
    pub(super) async fn unsubscribe(
        &mut self,
        id: u32,
        req: UnsubscribeRequest,
    ) -> Result<(), Fail> {
        if req.channel.is_empty() {
            return Err(Disconnect::BAD_REQUEST.into());
        }
        // Removing the delivery state first guarantees no publication of the
        // channel follows the reply.
        if self.shared.remove_subscription(&req.channel) {
            self.finish_unsubscribe(&req.channel).await;
        }
        self.reply(Reply {
            id,
            unsubscribe: Some(UnsubscribeResult {}),
            ..Default::default()
        });
        Ok(())
    }
}
