//! `history`: a page of the channel stream, or just its top position
//! (`limit` 0). Limits are capped by `client.history_max_publication_limit`.

use super::permissions::{Who, can_history};
use super::subscribe::engine_error;
use super::{Fail, Session};
use crate::engine::{HistoryFilter, StreamPosition};
use crate::proto::client::{HistoryRequest, HistoryResult, Reply};
use crate::protocol::{ClientError, Disconnect};

/// The effective limit: a positive request is capped, a negative one means
/// "all" (capped); 0 asks for the position only. `cap` 0 is unlimited.
pub(crate) fn capped_limit(requested: i32, cap: usize) -> i32 {
    let cap = i32::try_from(cap).unwrap_or(i32::MAX);
    match requested {
        0 => 0,
        n if n < 0 => {
            if cap > 0 {
                cap
            } else {
                -1
            }
        }
        n if cap > 0 => n.min(cap),
        n => n,
    }
}

impl Session {
    pub(super) async fn history(&mut self, id: u32, req: HistoryRequest) -> Result<(), Fail> {
        if req.channel.is_empty() {
            return Err(Disconnect::BAD_REQUEST.into());
        }
        let opts = self.node.rules().options(&req.channel)?;
        if !opts.has_history() {
            return Err(ClientError::NotAvailable.into());
        }
        let who = Who {
            user: &self.user,
            subscribed: self.shared.is_active(&req.channel),
            insecure: self.node.config().client.insecure,
        };
        if !can_history(who, &opts) {
            return Err(ClientError::PermissionDenied.into());
        }
        let filter = HistoryFilter {
            since: req.since.map(|s| StreamPosition {
                offset: s.offset,
                epoch: s.epoch,
            }),
            limit: capped_limit(
                req.limit,
                self.node.config().client.history_max_publication_limit,
            ),
            reverse: req.reverse,
        };
        let h = self
            .node
            .history(&req.channel, filter, opts.history_meta_ttl)
            .await
            .map_err(engine_error)?;
        let result = HistoryResult {
            publications: h.publications,
            epoch: h.position.epoch,
            offset: h.position.offset,
        };
        self.reply(Reply {
            id,
            history: Some(result),
            ..Default::default()
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::capped_limit;

    #[test]
    fn limits() {
        assert_eq!(capped_limit(0, 300), 0);
        assert_eq!(capped_limit(-1, 300), 300);
        assert_eq!(capped_limit(-1, 0), -1);
        assert_eq!(capped_limit(1000, 300), 300);
        assert_eq!(capped_limit(10, 300), 10);
    }
}
