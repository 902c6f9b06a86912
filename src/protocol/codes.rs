//! Stable protocol codes: command errors, disconnects and unsubscribes.
//!
//! These numbers are part of the wire contract with every Centrifugo SDK: an
//! SDK decides whether to retry, reconnect or give up from the code alone.
//! They are values here, never ad-hoc integers at call sites.

use std::borrow::Cow;
use std::fmt;

/// Errors carried in a command reply; the connection stays open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// 100: server-side failure; the SDK retries.
    Internal,
    /// 101.
    Unauthorized,
    /// 102: the channel's namespace is not configured.
    UnknownChannel,
    /// 103.
    PermissionDenied,
    /// 104: RPC method unknown.
    MethodNotFound,
    /// 105: one subscription per channel per connection.
    AlreadySubscribed,
    /// 106: e.g. the channel limit.
    LimitExceeded,
    /// 107: malformed or invalid request; do not retry.
    BadRequest,
    /// 108: the feature is off (history, presence, RPC…).
    NotAvailable,
    /// 109: the SDK refreshes its token and retries.
    TokenExpired,
    /// 110: connection or subscription expired (no token involved).
    Expired,
    /// 111: rate limited; temporary.
    TooManyRequests,
    /// 112: the requested stream position cannot be served.
    UnrecoverablePosition,
    /// An application-defined error (codes 400–1999, e.g. from a proxy).
    Custom {
        code: u32,
        message: String,
        temporary: bool,
    },
}

impl ClientError {
    /// Numeric code sent to the client.
    pub(crate) fn code(&self) -> u32 {
        match self {
            Self::Internal => 100,
            Self::Unauthorized => 101,
            Self::UnknownChannel => 102,
            Self::PermissionDenied => 103,
            Self::MethodNotFound => 104,
            Self::AlreadySubscribed => 105,
            Self::LimitExceeded => 106,
            Self::BadRequest => 107,
            Self::NotAvailable => 108,
            Self::TokenExpired => 109,
            Self::Expired => 110,
            Self::TooManyRequests => 111,
            Self::UnrecoverablePosition => 112,
            Self::Custom { code, .. } => *code,
        }
    }

    /// Human text sent with the code.
    pub(crate) fn message(&self) -> &str {
        match self {
            Self::Internal => "internal server error",
            Self::Unauthorized => "unauthorized",
            Self::UnknownChannel => "unknown channel",
            Self::PermissionDenied => "permission denied",
            Self::MethodNotFound => "method not found",
            Self::AlreadySubscribed => "already subscribed",
            Self::LimitExceeded => "limit exceeded",
            Self::BadRequest => "bad request",
            Self::NotAvailable => "not available",
            Self::TokenExpired => "token expired",
            Self::Expired => "expired",
            Self::TooManyRequests => "too many requests",
            Self::UnrecoverablePosition => "unrecoverable position",
            Self::Custom { message, .. } => message,
        }
    }

    /// Whether the SDK may retry the same command.
    pub(crate) fn temporary(&self) -> bool {
        match self {
            Self::Internal | Self::TooManyRequests => true,
            Self::Custom { temporary, .. } => *temporary,
            _ => false,
        }
    }

    /// The wire form.
    pub(crate) fn to_proto(&self) -> crate::proto::client::Error {
        crate::proto::client::Error {
            code: self.code(),
            message: self.message().to_string(),
            temporary: self.temporary(),
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message(), self.code())
    }
}

impl std::error::Error for ClientError {}

/// A reason to close a connection, sent as the WebSocket close code and
/// reason (or as a Disconnect push on other transports).
///
/// Codes below 3500 (and 4000–4499) tell the SDK to reconnect; 3500–3999
/// and 4500–4999 are terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Disconnect {
    /// Close code.
    pub(crate) code: u32,
    /// Plain-text reason; must stay short to fit a WebSocket close frame
    /// (see [`Disconnect::custom`]).
    pub(crate) reason: Cow<'static, str>,
}

impl Disconnect {
    /// Plain drop; never sent on the wire.
    pub(crate) const CONNECTION_CLOSED: Self = Self::new(3000, "connection closed");
    /// Server going down; reconnect elsewhere.
    pub(crate) const SHUTDOWN: Self = Self::new(3001, "shutdown");
    /// Unexpected server failure.
    pub(crate) const SERVER_ERROR: Self = Self::new(3004, "internal server error");
    /// Connection credentials expired and were not refreshed.
    pub(crate) const EXPIRED: Self = Self::new(3005, "connection expired");
    /// A server-side subscription expired.
    pub(crate) const SUB_EXPIRED: Self = Self::new(3006, "subscription expired");
    /// The outbound queue overflowed.
    pub(crate) const SLOW: Self = Self::new(3008, "slow");
    /// Writing to the socket failed or timed out.
    pub(crate) const WRITE_ERROR: Self = Self::new(3009, "write error");
    /// A gap was detected in a positioned stream.
    pub(crate) const INSUFFICIENT_STATE: Self = Self::new(3010, "insufficient state");
    /// No pong within the pong timeout.
    pub(crate) const NO_PONG: Self = Self::new(3012, "no pong");
    /// Rate limited.
    pub(crate) const TOO_MANY_REQUESTS: Self = Self::new(3013, "too many requests");
    /// Invalid connection or subscription token.
    pub(crate) const INVALID_TOKEN: Self = Self::new(3500, "invalid token");
    /// Protocol violation.
    pub(crate) const BAD_REQUEST: Self = Self::new(3501, "bad request");
    /// No connect command within the stale delay.
    pub(crate) const STALE: Self = Self::new(3502, "stale");
    /// Too many connections for this user.
    pub(crate) const CONNECTION_LIMIT: Self = Self::new(3504, "connection limit");
    /// Too many server-side channels.
    pub(crate) const CHANNEL_LIMIT: Self = Self::new(3505, "channel limit");
    /// Data the connection's encoding cannot carry (binary to JSON).
    pub(crate) const INAPPROPRIATE_PROTOCOL: Self = Self::new(3506, "inappropriate protocol");
    /// Permission denied at connect.
    pub(crate) const PERMISSION_DENIED: Self = Self::new(3507, "permission denied");
    /// Feature not available (e.g. `send` without a handler).
    pub(crate) const NOT_AVAILABLE: Self = Self::new(3508, "not available");

    /// A disconnect with the given code and reason.
    pub(crate) const fn new(code: u32, reason: &'static str) -> Self {
        Self {
            code,
            reason: Cow::Borrowed(reason),
        }
    }

    /// A disconnect with a reason chosen at run time (e.g. by the server
    /// API). The reason is cut to [`Disconnect::MAX_REASON`] bytes at a
    /// character boundary so that it fits a WebSocket close frame.
    pub(crate) fn custom(code: u32, reason: &str) -> Self {
        let mut end = reason.len().min(Self::MAX_REASON);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        Self {
            code,
            reason: Cow::Owned(reason[..end].to_string()),
        }
    }

    /// Longest reason a WebSocket close frame carries (125 bytes of payload
    /// minus the 2-byte code).
    pub(crate) const MAX_REASON: usize = 123;

    #[cfg(test)]
    /// Whether the SDK will reconnect after this code.
    pub(crate) fn reconnect(&self) -> bool {
        matches!(self.code, 0..=3499 | 4000..=4499 | 5000..)
    }

    /// The Disconnect push form, for non-WebSocket transports.
    pub(crate) fn to_proto(&self) -> crate::proto::client::Disconnect {
        crate::proto::client::Disconnect {
            code: self.code,
            reason: self.reason.to_string(),
            reconnect: false,
        }
    }
}

impl fmt::Display for Disconnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason, self.code)
    }
}

/// Codes of the Unsubscribe push. Below 2500 the SDK stays unsubscribed; from
/// 2500 it resubscribes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unsubscribe {
    /// Push code.
    pub(crate) code: u32,
    /// Reason text.
    pub(crate) reason: &'static str,
}

impl Unsubscribe {
    /// Server unsubscribed the client (server API).
    pub(crate) const SERVER: Self = Self {
        code: 2000,
        reason: "server unsubscribe",
    };
    /// A gap was detected: resubscribe with recovery.
    pub(crate) const INSUFFICIENT_STATE: Self = Self {
        code: 2500,
        reason: "insufficient state",
    };
    /// Subscription token expired: resubscribe with a fresh token.
    pub(crate) const EXPIRED: Self = Self {
        code: 2501,
        reason: "subscription expired",
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_ranges_follow_sdk_rules() {
        assert!(Disconnect::SHUTDOWN.reconnect());
        assert!(Disconnect::SLOW.reconnect());
        assert!(!Disconnect::BAD_REQUEST.reconnect());
        assert!(Disconnect::new(4000, "app").reconnect());
        assert!(!Disconnect::new(4500, "app").reconnect());
    }

    #[test]
    fn custom_reason_fits_a_close_frame() {
        let d = Disconnect::custom(4000, "bye");
        assert_eq!((d.code, &*d.reason), (4000, "bye"));
        let long = "é".repeat(100);
        let d = Disconnect::custom(4000, &long);
        assert!(d.reason.len() <= Disconnect::MAX_REASON);
        assert_eq!(d.reason.len(), 122, "cut at a character boundary");
    }

    #[test]
    fn temporary_flags() {
        assert!(ClientError::Internal.temporary());
        assert!(!ClientError::PermissionDenied.temporary());
        assert_eq!(ClientError::UnrecoverablePosition.code(), 112);
    }
}
