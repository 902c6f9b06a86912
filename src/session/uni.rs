//! Unidirectional mode: the connect of uni WebSocket, uni SSE, uni
//! HTTP-streaming and uni gRPC connections.
//!
//! The client sends one bare ConnectRequest and nothing after it. The
//! connect runs the bidirectional path ([`Session::connect`]) with three
//! differences, as in Centrifugo:
//! * the result goes out as a Connect push (with the session id) instead of
//!   a reply, and pings expect no pong;
//! * with a connection token, the channels named in `ConnectRequest.subs`
//!   become server-side subscriptions when the client could subscribe to
//!   them itself (public and allowed for clients, or user-limited naming the
//!   user; never private or proxied ones);
//! * a connect error becomes a disconnect: 109/110 → 3005, 111 → 3013,
//!   103 → 3507, anything else 3004, unless
//!   `client.connect_code_to_unidirectional_disconnect` maps the code.

use std::collections::BTreeMap;

use super::permissions::{Who, can_subscribe};
use super::{Fail, Session, Status};
use crate::auth::SubOptions;
use crate::config::CodeToDisconnect;
use crate::proto::client::{Connect, ConnectRequest, ConnectResult, Push};
use crate::protocol::{ClientError, Disconnect};

impl Session {
    /// Connects a unidirectional client with its ConnectRequest. On success
    /// the Connect push is queued first, before any publication. On failure
    /// the returned disconnect ends the connection: the caller closes the
    /// queue with it (or answers with an HTTP status, see
    /// [`Session::connect_uni_raw`]).
    pub(crate) async fn connect_uni(&mut self, req: ConnectRequest) -> Result<(), Disconnect> {
        match self.connect_uni_raw(req).await {
            Ok(()) => Ok(()),
            Err(Fail::Disconnect(d)) => Err(d),
            Err(Fail::Error(e)) => Err(error_to_disconnect(
                &self
                    .node
                    .config()
                    .client
                    .connect_code_to_unidirectional_disconnect,
                &e,
            )),
        }
    }

    /// Like [`Session::connect_uni`] but returns a connect error as it is,
    /// for transports that map error codes to HTTP responses
    /// (`connect_code_to_http_response`).
    pub(crate) async fn connect_uni_raw(&mut self, req: ConnectRequest) -> Result<(), Fail> {
        if !self.transport.uni || self.status != Status::Connecting {
            return Err(Disconnect::BAD_REQUEST.into());
        }
        self.connect(0, req).await
    }

    /// Adds the channels the client asked for in `ConnectRequest.subs` that
    /// it may subscribe to on its own; others are ignored. A channel in an
    /// unknown namespace is a bad request (3501).
    pub(super) fn add_requested_channels(
        &self,
        req: &ConnectRequest,
        user: &str,
        subs: &mut BTreeMap<String, SubOptions>,
    ) -> Result<(), Fail> {
        let rules = self.node.rules();
        let who = Who {
            user,
            subscribed: false,
            insecure: false,
        };
        for channel in req.subs.keys() {
            if subs.contains_key(channel) {
                continue;
            }
            let Ok(opts) = rules.options(channel) else {
                tracing::info!(%channel, "uni connect: unknown channel");
                return Err(Disconnect::BAD_REQUEST.into());
            };
            let o = &opts.opts;
            let allowed = !rules.is_private(channel)
                && !o.subscribe_proxy_enabled
                && !o.subscribe_stream_proxy_enabled
                && rules.validate_client_channel(channel, &opts).is_ok()
                && if o.allow_user_limited_channels && rules.is_user_limited(channel) {
                    rules.user_allowed(channel, user)
                } else {
                    can_subscribe(who, &opts)
                };
            if allowed {
                subs.insert(channel.clone(), SubOptions::default());
            } else {
                tracing::debug!(%channel, user, "uni connect: channel not allowed, ignored");
            }
        }
        Ok(())
    }
}

/// The Connect push carrying a connect result.
pub(super) fn connect_push(r: ConnectResult) -> Push {
    Push {
        connect: Some(Connect {
            client: r.client,
            version: r.version,
            data: r.data,
            subs: r.subs,
            expires: r.expires,
            ttl: r.ttl,
            ping: r.ping,
            pong: r.pong,
            session: r.session,
            node: r.node,
            time: r.time,
        }),
        ..Default::default()
    }
}

/// The disconnect a unidirectional client gets for a connect error.
pub(crate) fn error_to_disconnect(c: &CodeToDisconnect, e: &ClientError) -> Disconnect {
    let code = e.code();
    if c.enabled
        && let Some(t) = c
            .transforms
            .iter()
            .find(|t| t.code == code && t.to.code > 0)
    {
        return Disconnect::custom(t.to.code, &t.to.reason);
    }
    match e {
        ClientError::Expired | ClientError::TokenExpired => Disconnect::EXPIRED,
        ClientError::TooManyRequests => Disconnect::TOO_MANY_REQUESTS,
        ClientError::PermissionDenied => Disconnect::PERMISSION_DENIED,
        _ => Disconnect::SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_mapping() {
        let none = CodeToDisconnect::default();
        assert_eq!(
            error_to_disconnect(&none, &ClientError::TokenExpired),
            Disconnect::EXPIRED
        );
        assert_eq!(
            error_to_disconnect(&none, &ClientError::Expired),
            Disconnect::EXPIRED
        );
        assert_eq!(
            error_to_disconnect(&none, &ClientError::TooManyRequests),
            Disconnect::TOO_MANY_REQUESTS
        );
        assert_eq!(
            error_to_disconnect(&none, &ClientError::PermissionDenied),
            Disconnect::PERMISSION_DENIED
        );
        assert_eq!(
            error_to_disconnect(&none, &ClientError::UnknownChannel),
            Disconnect::SERVER_ERROR
        );
    }

    #[test]
    fn configured_transforms_win_when_enabled() {
        let cfg: CodeToDisconnect = serde_json::from_value(serde_json::json!({
            "enabled": true,
            "transforms": [{"code": 109, "to": {"code": 4501, "reason": "token expired"}}]
        }))
        .expect("typed");
        assert_eq!(
            error_to_disconnect(&cfg, &ClientError::TokenExpired),
            Disconnect::custom(4501, "token expired")
        );
        assert_eq!(
            error_to_disconnect(&cfg, &ClientError::Expired),
            Disconnect::EXPIRED
        );
        let off = CodeToDisconnect {
            enabled: false,
            ..cfg.clone()
        };
        assert_eq!(
            error_to_disconnect(&off, &ClientError::TokenExpired),
            Disconnect::EXPIRED
        );
    }
}
