//! Everything a session does by the clock: stale close, pings and pong
//! deadlines, connection and subscription expiry, presence refresh and the
//! periodic stream-position check.

use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use super::{Session, Status, now_unix};
use crate::engine::{HistoryFilter, StreamPosition};
use crate::protocol::codec::ping_bytes;
use crate::protocol::{Disconnect, Unsubscribe};

/// Deadlines of one session; `None` means not scheduled.
#[derive(Debug)]
pub(super) struct Timers {
    stale_at: Option<Instant>,
    next_ping: Option<Instant>,
    pong_deadline: Option<Instant>,
    ping_outstanding: bool,
    expire_check: Option<Instant>,
    sub_expire_check: Option<Instant>,
    next_presence: Option<Instant>,
    next_position_check: Option<Instant>,
}

impl Timers {
    pub(super) fn new(stale: Duration) -> Self {
        Self {
            stale_at: Some(
                Instant::now()
                    + if stale.is_zero() {
                        Duration::from_secs(15)
                    } else {
                        stale
                    },
            ),
            next_ping: None,
            pong_deadline: None,
            ping_outstanding: false,
            expire_check: None,
            sub_expire_check: None,
            next_presence: None,
            next_position_check: None,
        }
    }

    pub(super) fn next_deadline(&self) -> Instant {
        [
            self.stale_at,
            self.next_ping,
            self.pong_deadline,
            self.expire_check,
            self.sub_expire_check,
            self.next_presence,
            self.next_position_check,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))
    }

    /// A pong arrived. Only an answer to an outstanding ping is valid.
    pub(super) fn pong(&mut self) -> Result<(), Disconnect> {
        if !self.ping_outstanding {
            return Err(Disconnect::BAD_REQUEST);
        }
        self.ping_outstanding = false;
        self.pong_deadline = None;
        Ok(())
    }
}

/// Failed position checks in a row that mean insufficient state
/// (Centrifugo's `maxCheckPositionFailures`).
const MAX_POSITION_FAILURES: u8 = 2;

/// One position check: the failures in a row after it, and whether the
/// client now has insufficient state. Valid means the client is at the
/// stream top of the same epoch (an empty epoch of the client, not yet
/// adopted from a publication, matches any).
fn position_verdict(failures: u8, mine: &StreamPosition, top: &StreamPosition) -> (u8, bool) {
    let valid = mine.offset == top.offset && (mine.epoch.is_empty() || mine.epoch == top.epoch);
    if valid {
        return (0, false);
    }
    let failures = failures.saturating_add(1);
    (failures, failures >= MAX_POSITION_FAILURES)
}

/// Instant at which unix time `at` (seconds) plus `delay` is reached.
fn instant_at(at: i64, delay: Duration) -> Instant {
    let secs = (at - now_unix()).max(0) as u64;
    Instant::now() + Duration::from_secs(secs) + delay
}

impl Session {
    /// Starts the connected-state timers.
    pub(super) fn start_timers(&mut self) {
        let node = self.node.clone();
        let cfg = &node.config().client;
        self.timers.stale_at = None;
        let interval = cfg.ping_interval.get();
        if !interval.is_zero() {
            // The first ping lands in [interval/2, interval) so that pings
            // of clients that connected together spread out.
            let half = interval / 2;
            let jitter = rand::rng().random_range(0..half.as_millis().max(1) as u64);
            self.timers.next_ping = Some(Instant::now() + half + Duration::from_millis(jitter));
        }
        if !cfg.presence_update_interval.is_zero() {
            self.timers.next_presence = Some(Instant::now() + cfg.presence_update_interval.get());
        }
        if !cfg.channel_position_check_delay.is_zero() {
            self.timers.next_position_check =
                Some(Instant::now() + cfg.channel_position_check_delay.get());
        }
        self.schedule_expiry();
        self.schedule_sub_expiry();
    }

    /// Whether pings expect pongs on this connection (never on a
    /// unidirectional one).
    pub(super) fn pong_expected(&self) -> bool {
        let c = &self.node.config().client;
        !self.transport.uni && !c.ping_interval.is_zero() && !c.pong_timeout.is_zero()
    }

    pub(super) fn schedule_expiry(&mut self) {
        // The refresh proxy is asked as soon as the connection expires; a
        // client refreshing itself gets the close delay to do it.
        let delay = if self.proxy_refresh {
            Duration::ZERO
        } else {
            self.node.config().client.expired_close_delay.get()
        };
        self.timers.expire_check = self.expire_at.map(|at| instant_at(at, delay));
    }

    pub(super) fn schedule_sub_expiry(&mut self) {
        let delay = self.node.config().client.expired_sub_close_delay.get();
        // Subscriptions the sub_refresh proxy extends are due at expiry.
        self.timers.sub_expire_check = self
            .subs
            .values()
            .filter_map(|s| {
                let d = if s.proxy_refresh {
                    Duration::ZERO
                } else {
                    delay
                };
                s.expire_at.map(|at| instant_at(at, d))
            })
            .min();
    }

    /// Runs whatever is due.
    pub(crate) async fn on_timer(&mut self) -> Result<(), Disconnect> {
        let now = Instant::now();
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        if self.status != Status::Connected {
            if due(self.timers.stale_at) {
                return Err(Disconnect::STALE);
            }
            return Ok(());
        }
        if due(self.timers.pong_deadline) {
            return Err(Disconnect::NO_PONG);
        }
        if due(self.timers.next_ping) {
            self.send_ping(now);
        }
        if due(self.timers.expire_check) {
            if self.expire_at.is_some_and(|at| at <= now_unix()) {
                if !self.proxy_refresh {
                    return Err(Disconnect::EXPIRED);
                }
                self.proxy_refresh_connection().await?;
            }
            self.schedule_expiry();
        }
        if due(self.timers.sub_expire_check) {
            self.refresh_subscriptions().await?;
            self.expire_subscriptions()?;
        }
        if due(self.timers.next_presence) {
            self.refresh_presence().await;
            let every = self.node.config().client.presence_update_interval.get();
            self.timers.next_presence = Some(Instant::now() + every);
        }
        if due(self.timers.next_position_check) {
            self.check_positions().await;
            let every = self.node.config().client.channel_position_check_delay.get();
            self.timers.next_position_check = Some(Instant::now() + every);
        }
        Ok(())
    }

    fn send_ping(&mut self, now: Instant) {
        let cfg = &self.node.config().client;
        self.shared.send(ping_bytes(self.transport.encoding));
        if self.pong_expected() {
            self.timers.ping_outstanding = true;
            self.timers.pong_deadline = Some(now + cfg.pong_timeout.get());
        }
        self.timers.next_ping = Some(now + cfg.ping_interval.get());
    }

    fn expire_subscriptions(&mut self) -> Result<(), Disconnect> {
        let now = now_unix();
        let expired: Vec<(String, bool)> = self
            .subs
            .iter()
            .filter(|(_, s)| s.expire_at.is_some_and(|at| at <= now))
            .map(|(ch, s)| (ch.clone(), s.server_side))
            .collect();
        for (ch, server_side) in expired {
            if server_side {
                return Err(Disconnect::SUB_EXPIRED);
            }
            // The SDK resubscribes with a fresh token on 2501.
            self.shared.unsubscribe_push(&ch, Unsubscribe::EXPIRED);
        }
        self.schedule_sub_expiry();
        Ok(())
    }

    async fn refresh_presence(&mut self) {
        let channels: Vec<(String, bytes::Bytes)> = self
            .subs
            .iter()
            .filter(|(_, s)| s.presence)
            .map(|(c, s)| (c.clone(), s.chan_info.clone()))
            .collect();
        for (ch, chan_info) in channels {
            let info = self.client_info(&chan_info);
            if let Err(e) = self.node.add_presence(&ch, &self.shared.id, &info).await {
                tracing::debug!(channel = %ch, error = %e, "presence refresh failed");
            }
        }
    }

    /// Compares each positioned subscription with the stream top. As in
    /// Centrifugo, a position must be wrong [`MAX_POSITION_FAILURES`]
    /// checks in a row before the client has insufficient state: a
    /// publication still in flight to this node makes one check fail
    /// without anything being lost.
    async fn check_positions(&mut self) {
        let channels: Vec<(String, Duration)> = self
            .subs
            .iter()
            .filter(|(_, s)| s.opts.has_history())
            .map(|(c, s)| (c.clone(), s.opts.history_meta_ttl))
            .collect();
        for (ch, meta_ttl) in channels {
            // Read before the top, so that in-flight publications leave the
            // client behind (never ahead of) what it is compared with.
            let Some(mine) = self.shared.position(&ch) else {
                continue;
            };
            let filter = HistoryFilter {
                since: None,
                limit: 0,
                reverse: false,
            };
            let Ok(top) = self.node.history(&ch, filter, meta_ttl).await else {
                continue; // Engine trouble is not the client's fault.
            };
            let Some(sub) = self.subs.get_mut(&ch) else {
                continue;
            };
            let (failures, insufficient) =
                position_verdict(sub.position_failures, &mine, &top.position);
            sub.position_failures = failures;
            if insufficient {
                self.shared.mark_insufficient(&ch);
            }
        }
        self.on_signal().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(offset: u64, epoch: &str) -> StreamPosition {
        StreamPosition {
            offset,
            epoch: epoch.into(),
        }
    }

    #[test]
    fn a_wrong_position_counts_only_twice_in_a_row() {
        // At the top: fine, and the count starts over.
        assert_eq!(position_verdict(1, &at(5, "e"), &at(5, "e")), (0, false));
        // Behind once (a publication in flight): tolerated.
        assert_eq!(position_verdict(0, &at(5, "e"), &at(6, "e")), (1, false));
        // Behind again: insufficient state.
        assert_eq!(position_verdict(1, &at(5, "e"), &at(6, "e")), (2, true));
        // Another epoch (the stream was lost) and ahead of the top count too.
        assert_eq!(position_verdict(1, &at(5, "e"), &at(0, "f")), (2, true));
        assert_eq!(position_verdict(0, &at(7, "e"), &at(5, "e")), (1, false));
        // An epoch not yet known matches any.
        assert_eq!(position_verdict(1, &at(5, ""), &at(5, "f")), (0, false));
    }
}
