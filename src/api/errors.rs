//! Server API errors: the one table that maps an API error code to its
//! message, its HTTP status and its gRPC status (transport error mode).
//!
//! Codes and messages are Centrifugo's (`spec/server-api.md` §1.5). The
//! executor returns [`ApiError`]; the adapters either embed it in the
//! response (`{"error":{...}}`, default mode) or turn it into a status.

use std::borrow::Cow;
use std::fmt;

use crate::engine::EngineError;

/// One row of the error table.
struct Row {
    code: u32,
    message: &'static str,
    http: u16,
    grpc: tonic::Code,
}

const TABLE: &[Row] = &[
    Row {
        code: ApiError::INTERNAL,
        message: "internal server error",
        http: 500,
        grpc: tonic::Code::Internal,
    },
    Row {
        code: ApiError::UNKNOWN_CHANNEL,
        message: "unknown channel",
        http: 404,
        grpc: tonic::Code::NotFound,
    },
    Row {
        code: ApiError::NOT_FOUND,
        message: "not found",
        http: 404,
        grpc: tonic::Code::NotFound,
    },
    Row {
        code: ApiError::BAD_REQUEST,
        message: "bad request",
        http: 400,
        grpc: tonic::Code::InvalidArgument,
    },
    Row {
        code: ApiError::NOT_AVAILABLE,
        message: "not available",
        http: 400,
        grpc: tonic::Code::InvalidArgument,
    },
    Row {
        code: ApiError::UNRECOVERABLE_POSITION,
        message: "unrecoverable position",
        http: 416,
        grpc: tonic::Code::OutOfRange,
    },
    Row {
        code: ApiError::CONFLICT,
        message: "conflict",
        http: 409,
        grpc: tonic::Code::AlreadyExists,
    },
];

fn row(code: u32) -> Option<&'static Row> {
    TABLE.iter().find(|r| r.code == code)
}

/// An error of a server API method: a code and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// Centrifugo's API error code.
    pub code: u32,
    /// Human-readable message (the table's message for known codes).
    pub(crate) message: Cow<'static, str>,
}

impl ApiError {
    /// Engine or unexpected failure.
    pub(crate) const INTERNAL: u32 = 100;
    /// The channel's namespace is not configured.
    pub(crate) const UNKNOWN_CHANNEL: u32 = 102;
    /// Unknown method.
    pub(crate) const NOT_FOUND: u32 = 104;
    /// Invalid or undecodable request.
    pub(crate) const BAD_REQUEST: u32 = 107;
    /// Feature off for the channel (history, presence, ...).
    pub(crate) const NOT_AVAILABLE: u32 = 108;
    /// History `since` cannot be served.
    pub(crate) const UNRECOVERABLE_POSITION: u32 = 112;
    /// Conflict.
    pub(crate) const CONFLICT: u32 = 113;

    /// The error with `code` and the table's message for it.
    pub fn from_code(code: u32) -> Self {
        let message = row(code).map_or("internal server error", |r| r.message);
        Self {
            code,
            message: Cow::Borrowed(message),
        }
    }

    #[cfg(test)]
    /// An error with a custom message.
    pub(crate) fn custom(code: u32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: Cow::Owned(message.into()),
        }
    }

    /// 100 internal server error.
    pub(crate) fn internal() -> Self {
        Self::from_code(Self::INTERNAL)
    }

    /// 102 unknown channel.
    pub(crate) fn unknown_channel() -> Self {
        Self::from_code(Self::UNKNOWN_CHANNEL)
    }

    /// 104 not found.
    pub(crate) fn not_found() -> Self {
        Self::from_code(Self::NOT_FOUND)
    }

    /// 107 bad request.
    pub(crate) fn bad_request() -> Self {
        Self::from_code(Self::BAD_REQUEST)
    }

    /// 108 not available.
    pub(crate) fn not_available() -> Self {
        Self::from_code(Self::NOT_AVAILABLE)
    }

    /// 112 unrecoverable position.
    pub(crate) fn unrecoverable_position() -> Self {
        Self::from_code(Self::UNRECOVERABLE_POSITION)
    }

    /// HTTP status in transport error mode (500 for codes not in the table).
    pub(crate) fn http_status(&self) -> u16 {
        row(self.code).map_or(500, |r| r.http)
    }

    /// gRPC status code in transport error mode (INTERNAL for codes not in
    /// the table).
    pub(crate) fn grpc_code(&self) -> tonic::Code {
        row(self.code).map_or(tonic::Code::Internal, |r| r.grpc)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ApiError {}

impl From<EngineError> for ApiError {
    /// Engine failures are internal errors, except the ones with an API
    /// meaning (an unrecoverable `since` position).
    fn from(err: EngineError) -> Self {
        match err {
            EngineError::UnrecoverablePosition => Self::unrecoverable_position(),
            EngineError::BadRequest(_) => Self::bad_request(),
            EngineError::NotAvailable => Self::not_available(),
            EngineError::Unavailable(_) => Self::internal(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_rows_map_to_statuses() {
        let e = ApiError::unknown_channel();
        assert_eq!((e.code, e.message.as_ref()), (102, "unknown channel"));
        assert_eq!(e.http_status(), 404);
        assert_eq!(e.grpc_code(), tonic::Code::NotFound);
        assert_eq!(ApiError::unrecoverable_position().http_status(), 416);
        assert_eq!(
            ApiError::from_code(113).grpc_code(),
            tonic::Code::AlreadyExists
        );
    }

    #[test]
    fn unknown_codes_are_internal_in_transport_mode() {
        let e = ApiError::custom(4000, "custom");
        assert_eq!(e.http_status(), 500);
        assert_eq!(e.grpc_code(), tonic::Code::Internal);
        assert_eq!(ApiError::from_code(999).message, "internal server error");
    }
}
