//! The client-protocol rows of the bad-input table (limits-and-security.md
//! §5.2(b)): each bad input gets the spec's code, over a real socket against
//! the real server, and the server keeps serving everyone else.

#[path = "../support/mod.rs"]
mod support;

mod channels;
mod frames;
mod origins;
mod stress;
mod tokens;

use rotor::proto::client::{Command, SubscribeRequest};
use support::{TestServer, WsClient};
use tokio_tungstenite::tungstenite::Message;

/// Runs `f` for JSON, then Protobuf.
pub(crate) async fn both(f: impl AsyncFn(bool)) {
    f(false).await;
    f(true).await;
}

/// Reads until the connection closes and checks the close code.
pub(crate) async fn expect_close(c: &mut WsClient, code: u16, what: &str) {
    let (got, reason) = c.closed().await;
    assert_eq!(got, code, "{what}: closed with {got} {reason:?}");
}

/// Sends `frame` on a fresh client (connected first if `connect`) and
/// expects the connection to be closed with `code`.
pub(crate) async fn frame_closes(
    srv: &TestServer,
    pb: bool,
    connect: bool,
    frame: Message,
    code: u16,
) {
    let mut c = if connect {
        srv.connected(pb, "u").await
    } else {
        srv.client(pb).await
    };
    let what = format!("{frame:?} (protobuf: {pb}, connected: {connect})");
    c.send_raw(frame).await;
    expect_close(&mut c, code, &what).await;
}

/// Sends `cmd` (as is, id included) and expects the connection to close with `code`.
pub(crate) async fn command_closes(c: &mut WsClient, cmd: Command, code: u16) {
    let what = format!("{cmd:?}");
    c.send(vec![cmd]).await;
    expect_close(c, code, &what).await;
}

pub(crate) fn subscribe_cmd(id: u32, channel: &str) -> Command {
    Command {
        id,
        subscribe: Some(SubscribeRequest {
            channel: channel.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(crate) fn connect_cmd(id: u32, token: &str) -> Command {
    Command {
        id,
        connect: Some(rotor::proto::client::ConnectRequest {
            token: token.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The error code of a reply, panicking with the reply if there is none.
pub(crate) fn code(r: &rotor::proto::client::Reply) -> u32 {
    r.error
        .as_ref()
        .unwrap_or_else(|| panic!("expected an error reply, got {r:?}"))
        .code
}
