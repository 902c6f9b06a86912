//! Frames and commands: malformed input, ordering, sizes.

use crate::support::{TestServer, assert_healthy, base_config, token, unique};
use rotor::proto::client::Command;
use tokio_tungstenite::tungstenite::Message;

use super::*;

// ---------------------------------------------------------------------------
// Frames and commands.

#[tokio::test]
async fn malformed_json_frame_is_3501() {
    let srv = TestServer::start(base_config()).await;
    for frame in [
        "{nope",
        "{\"id\":1,\"connect\":",
        "{\"id\":\"one\",\"connect\":{}}",
        "not json at all",
    ] {
        frame_closes(&srv, false, true, Message::Text(frame.into()), 3501).await;
        frame_closes(&srv, false, false, Message::Text(frame.into()), 3501).await;
    }
    // A valid command followed by a malformed one in the same frame.
    let mut c = srv.connected(false, "u").await;
    let ch = unique("ok-");
    c.send_raw(Message::Text(
        format!("{{\"id\":5,\"subscribe\":{{\"channel\":\"{ch}\"}}}}\n{{oops").into(),
    ))
    .await;
    expect_close(&mut c, 3501, "valid command then garbage").await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn malformed_protobuf_frame_is_3501() {
    let srv = TestServer::start(base_config()).await;
    // A length prefix of 1 followed by a truncated tag varint.
    let bad: &[&[u8]] = &[&[0x01, 0xff], &[0x02, 0x0a, 0x05], &[0xff]];
    for frame in bad {
        frame_closes(
            &srv,
            true,
            true,
            Message::Binary(frame.to_vec().into()),
            3501,
        )
        .await;
        frame_closes(
            &srv,
            true,
            false,
            Message::Binary(frame.to_vec().into()),
            3501,
        )
        .await;
    }
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn empty_frame_is_3501() {
    let srv = TestServer::start(base_config()).await;
    for connect in [false, true] {
        frame_closes(&srv, false, connect, Message::Text("".into()), 3501).await;
        frame_closes(&srv, false, connect, Message::Text("\n\n".into()), 3501).await;
        frame_closes(
            &srv,
            true,
            connect,
            Message::Binary(Vec::new().into()),
            3501,
        )
        .await;
    }
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn non_command_json_is_3501() {
    let srv = TestServer::start(base_config()).await;
    for frame in [
        "[]",
        "[{\"id\":1,\"connect\":{}}]",
        "\"connect\"",
        "42",
        "null",
        "true",
    ] {
        frame_closes(&srv, false, false, Message::Text(frame.into()), 3501).await;
        frame_closes(&srv, false, true, Message::Text(frame.into()), 3501).await;
    }
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn unknown_command_kind_is_3501() {
    let srv = TestServer::start(base_config()).await;
    let frame = "{\"id\":3,\"teleport\":{\"channel\":\"x\"}}";
    frame_closes(&srv, false, true, Message::Text(frame.into()), 3501).await;
    // Protobuf: id 3 plus an unknown field 99 (length-delimited, empty).
    let mut body = vec![0x08, 0x03, 0x9a, 0x06, 0x00];
    let mut frame = vec![body.len() as u8];
    frame.append(&mut body);
    frame_closes(&srv, true, true, Message::Binary(frame.into()), 3501).await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn command_with_id_and_no_request_is_3501() {
    let srv = TestServer::start(base_config()).await;
    both(async |pb| {
        let mut c = srv.connected(pb, "u").await;
        command_closes(
            &mut c,
            Command {
                id: 7,
                ..Default::default()
            },
            3501,
        )
        .await;
        let mut c = srv.client(pb).await;
        command_closes(
            &mut c,
            Command {
                id: 7,
                ..Default::default()
            },
            3501,
        )
        .await;
    })
    .await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn command_before_connect_is_3501() {
    let srv = TestServer::start(base_config()).await;
    both(async |pb| {
        let mut c = srv.client(pb).await;
        command_closes(&mut c, subscribe_cmd(1, "news"), 3501).await;
        let mut c = srv.client(pb).await;
        let publish = Command {
            id: 1,
            publish: Some(rotor::proto::client::PublishRequest {
                channel: "news".into(),
                data: bytes::Bytes::from_static(b"{}"),
                ..Default::default()
            }),
            ..Default::default()
        };
        command_closes(&mut c, publish, 3501).await;
        // Connect with id 0 is not a connect either.
        let mut c = srv.client(pb).await;
        command_closes(&mut c, connect_cmd(0, &token("u", 60)), 3501).await;
    })
    .await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn second_connect_is_3501() {
    let srv = TestServer::start(base_config()).await;
    both(async |pb| {
        let mut c = srv.connected(pb, "u").await;
        command_closes(&mut c, connect_cmd(9, &token("u", 60)), 3501).await;
    })
    .await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn pong_without_ping_and_id_zero_commands_are_3501() {
    let srv = TestServer::start(base_config()).await;
    both(async |pb| {
        // Default ping interval is 25 s: no ping is outstanding yet.
        let mut c = srv.connected(pb, "u").await;
        command_closes(&mut c, Command::default(), 3501).await;
        // Before connect too.
        let mut c = srv.client(pb).await;
        command_closes(&mut c, Command::default(), 3501).await;
        // id 0 on a command that is not `send`.
        let mut c = srv.connected(pb, "u").await;
        command_closes(&mut c, subscribe_cmd(0, "news"), 3501).await;
    })
    .await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn protobuf_bogus_varint_length_is_3501() {
    let srv = TestServer::start(base_config()).await;
    let frames: &[&[u8]] = &[
        // A 10-byte varint near 2^64.
        &[0xfc, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
        // A 9-byte varint declaring an enormous length.
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x00],
        // An 11-byte (overlong) varint.
        &[
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ],
        // A length running past the frame.
        &[0x05, 0x08],
        // The limit + 1, declared, with the body missing.
        &[0x81, 0x80, 0x04],
    ];
    for f in frames {
        frame_closes(&srv, true, true, Message::Binary(f.to_vec().into()), 3501).await;
        frame_closes(&srv, true, false, Message::Binary(f.to_vec().into()), 3501).await;
    }
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn frame_over_message_size_limit_is_ws_close_1009() {
    let srv = TestServer::start(base_config()).await;
    let limit = 65_536;
    // Exactly the limit is accepted: a publish whose JSON frame is 65,536 bytes.
    let mut c = srv.connected(false, "u").await;
    let ch = unique("big-");
    c.subscribe(&ch).await.subscribe.expect("subscribed");
    let head = format!("{{\"id\":99,\"publish\":{{\"channel\":\"{ch}\",\"data\":\"");
    let tail = "\"}}";
    let pad = "x".repeat(limit - head.len() - tail.len());
    let frame = format!("{head}{pad}{tail}");
    assert_eq!(frame.len(), limit);
    c.send_raw(Message::Text(frame.into())).await;
    let r = c.reply_to(99).await;
    assert!(r.publish.is_some(), "{r:?}");
    // One byte more closes the WebSocket with 1009.
    let frame = format!("{head}{pad}x{tail}");
    assert_eq!(frame.len(), limit + 1);
    c.send_raw(Message::Text(frame.into())).await;
    expect_close(&mut c, 1009, "JSON frame of limit + 1").await;
    // Binary, before connect.
    let mut c = srv.client(true).await;
    c.send_raw(Message::Binary(vec![0u8; limit + 1].into()))
        .await;
    expect_close(&mut c, 1009, "binary frame of limit + 1").await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

/// permessage-deflate is not negotiated (compression is off), so a
/// compressed (RSV1) frame is a protocol violation: the connection is
/// refused, whatever it would inflate to, and nothing is inflated. With
/// compression on, the bomb is tested in `tests/websocket_compression.rs`.
#[tokio::test]
async fn compressed_frame_without_negotiated_deflate_is_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut cfg = base_config();
    cfg.websocket.compression = false;
    let srv = TestServer::start(cfg).await;
    let mut s = tokio::net::TcpStream::connect(srv.addr).await.expect("tcp");
    let req = format!(
        "GET /connection/websocket HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
        srv.addr
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(support::PATIENCE, s.read(&mut byte))
            .await
            .expect("response head")
            .expect("read");
        assert_eq!(n, 1, "eof in response head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    if head.contains("permessage-deflate") {
        // Compression is negotiated: this test no longer describes the
        // server; the decompression-bomb row must be tested instead.
        panic!("permessage-deflate negotiated; replace with a bomb test: {head}");
    }
    // FIN + RSV1 + text, masked, 4-byte payload.
    let frame = [0xc1, 0x84, 1, 2, 3, 4, 0x7a, 0x00, 0x00, 0x00];
    s.write_all(&frame).await.expect("write frame");
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(support::PATIENCE, s.read_to_end(&mut rest))
        .await
        .expect("the server ends the connection");
    // Either a close frame (opcode 8) or a plain TCP close; never data.
    assert!(
        rest.is_empty() || rest[0] & 0x0f == 0x8,
        "unexpected answer {rest:?}"
    );
    if rest.len() >= 4 {
        let code = u16::from_be_bytes([rest[2], rest[3]]);
        assert_eq!(code, 1002, "close code for a protocol error");
    }
    assert_healthy(&srv).await;
    srv.stop().await;
}
