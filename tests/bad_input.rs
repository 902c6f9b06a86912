//! The client-protocol rows of the bad-input table (limits-and-security.md
//! §5.2(b)): each bad input gets the spec's code, over a real socket against
//! the real server, and the server keeps serving everyone else.

mod support;

use base64::Engine as _;
use rotor::proto::client::{
    Command, HistoryRequest, PresenceRequest, PresenceStatsRequest, SubscribeRequest,
};
use support::{
    Event, TestServer, WsClient, assert_healthy, assert_serves, base_config, keys, now, sign,
    sign_rs256, token, token_with, unique, upgrade_status,
};
use tokio_tungstenite::tungstenite::Message;

/// Runs `f` for JSON, then Protobuf.
async fn both(f: impl AsyncFn(bool)) {
    f(false).await;
    f(true).await;
}

/// Reads until the connection closes and checks the close code.
async fn expect_close(c: &mut WsClient, code: u16, what: &str) {
    let (got, reason) = c.closed().await;
    assert_eq!(got, code, "{what}: closed with {got} {reason:?}");
}

/// Sends `frame` on a fresh client (connected first if `connect`) and
/// expects the connection to be closed with `code`.
async fn frame_closes(srv: &TestServer, pb: bool, connect: bool, frame: Message, code: u16) {
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
async fn command_closes(c: &mut WsClient, cmd: Command, code: u16) {
    let what = format!("{cmd:?}");
    c.send(vec![cmd]).await;
    expect_close(c, code, &what).await;
}

fn subscribe_cmd(id: u32, channel: &str) -> Command {
    Command {
        id,
        subscribe: Some(SubscribeRequest {
            channel: channel.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn connect_cmd(id: u32, token: &str) -> Command {
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
fn code(r: &rotor::proto::client::Reply) -> u32 {
    r.error
        .as_ref()
        .unwrap_or_else(|| panic!("expected an error reply, got {r:?}"))
        .code
}

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

/// permessage-deflate is not negotiated, so a compressed (RSV1) frame is a
/// protocol violation: the connection is refused, whatever it would inflate
/// to, and nothing is inflated.
#[tokio::test]
async fn compressed_frame_without_negotiated_deflate_is_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut cfg = base_config();
    cfg.websocket.compression = true;
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

// ---------------------------------------------------------------------------
// Subscribe, publish, history and presence.

#[tokio::test]
async fn subscribe_with_empty_channel_is_3501() {
    let srv = TestServer::start(base_config()).await;
    both(async |pb| {
        let mut c = srv.connected(pb, "u").await;
        command_closes(&mut c, subscribe_cmd(4, ""), 3501).await;
    })
    .await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn channel_of_256_bytes_is_107_and_connection_stays() {
    let srv = TestServer::start(base_config()).await;
    both(async |pb| {
        let mut c = srv.connected(pb, "u").await;
        let long = "a".repeat(256);
        assert_eq!(code(&c.subscribe(&long).await), 107);
        let ns_long = format!("chat:{}", "b".repeat(251));
        assert_eq!(ns_long.len(), 256);
        assert_eq!(code(&c.subscribe(&ns_long).await), 107);
        // 255 bytes is still fine.
        let ok = "c".repeat(255);
        c.subscribe(&ok)
            .await
            .subscribe
            .expect("255 bytes subscribes");
        // And the connection keeps working.
        let ch = unique("after-");
        c.subscribe(&ch).await.subscribe.expect("subscribed");
        c.publish(&ch, "{}").await.publish.expect("published");
        c.publication(&ch).await;
    })
    .await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn unknown_namespace_is_102() {
    let srv = TestServer::start(base_config()).await;
    both(async |pb| {
        let mut c = srv.connected(pb, "u").await;
        assert_eq!(code(&c.subscribe("nope:room").await), 102);
        assert_eq!(code(&c.publish("nope:room", "{}").await), 102);
        c.subscribe("chat:fine")
            .await
            .subscribe
            .expect("still usable");
    })
    .await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn duplicate_subscribe_is_105() {
    let srv = TestServer::start(base_config()).await;
    both(async |pb| {
        let mut c = srv.connected(pb, "u").await;
        let ch = unique("dup-");
        c.subscribe(&ch).await.subscribe.expect("subscribed");
        assert_eq!(code(&c.subscribe(&ch).await), 105);
        // The original subscription still delivers, exactly once.
        c.publish(&ch, "{\"n\":1}")
            .await
            .publish
            .expect("published");
        assert_eq!(&c.publication(&ch).await.data[..], b"{\"n\":1}");
        c.publish(&ch, "{\"n\":2}")
            .await
            .publish
            .expect("published");
        assert_eq!(&c.publication(&ch).await.data[..], b"{\"n\":2}");
    })
    .await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn channel_over_channel_limit_is_106() {
    let srv = TestServer::start(base_config()).await;
    both(async |pb| {
        let mut c = srv.connected(pb, "u").await;
        let prefix = unique("many-");
        // Pipeline the 128 subscribes, then read their replies.
        let cmds: Vec<Command> = (1..=128)
            .map(|i| subscribe_cmd(1000 + i, &format!("{prefix}-{i}")))
            .collect();
        for chunk in cmds.chunks(32) {
            c.send(chunk.to_vec()).await;
        }
        for i in 1..=128 {
            let r = c.reply_to(1000 + i).await;
            assert!(r.subscribe.is_some(), "subscribe {i}: {r:?}");
        }
        assert_eq!(code(&c.subscribe(&format!("{prefix}-129")).await), 106);
        // Unsubscribing one frees a slot; the connection is intact.
        let r = c
            .call(Command {
                unsubscribe: Some(rotor::proto::client::UnsubscribeRequest {
                    channel: format!("{prefix}-1"),
                }),
                ..Default::default()
            })
            .await;
        assert!(r.unsubscribe.is_some(), "{r:?}");
        c.subscribe(&format!("{prefix}-129"))
            .await
            .subscribe
            .expect("slot freed");
    })
    .await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn private_channel_without_token_is_103() {
    let srv = TestServer::start(base_config()).await;
    both(async |pb| {
        let mut c = srv.connected(pb, "u").await;
        assert_eq!(code(&c.subscribe("$secret:x").await), 103);
        assert_eq!(code(&c.subscribe("$plain").await), 103);
        c.subscribe("secret:x").await.subscribe.expect("usable");
    })
    .await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn namespace_without_allow_flags_is_103() {
    let srv = TestServer::start(base_config()).await;
    both(async |pb| {
        let mut c = srv.connected(pb, "u").await;
        assert_eq!(code(&c.subscribe("closed:x").await), 103);
        assert_eq!(code(&c.publish("closed:x", "{}").await), 103);
        c.subscribe("chat:x").await.subscribe.expect("usable");
    })
    .await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn channel_regex_mismatch_is_107() {
    let srv = TestServer::start(base_config()).await;
    both(async |pb| {
        let mut c = srv.connected(pb, "u").await;
        assert_eq!(code(&c.subscribe("strict:ABC").await), 107);
        assert_eq!(code(&c.subscribe("strict:abc1").await), 107);
        c.subscribe("strict:abc")
            .await
            .subscribe
            .expect("matching channel subscribes");
    })
    .await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn publish_without_permission_is_103() {
    let srv = TestServer::start(base_config()).await;
    both(async |pb| {
        let mut c = srv.connected(pb, "u").await;
        // Publishing needs a subscription here (allow_publish_for_subscriber).
        let ch = unique("pub-");
        assert_eq!(code(&c.publish(&ch, "{}").await), 103);
        assert_eq!(code(&c.publish("chat:unsubscribed", "{}").await), 103);
        // `secret` lets clients subscribe but not publish.
        c.subscribe("secret:room")
            .await
            .subscribe
            .expect("subscribed");
        assert_eq!(code(&c.publish("secret:room", "{}").await), 103);
        c.subscribe(&ch).await.subscribe.expect("subscribed");
        c.publish(&ch, "{}").await.publish.expect("now allowed");
    })
    .await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn history_and_presence_where_unavailable_are_108() {
    let srv = TestServer::start(base_config()).await;
    both(async |pb| {
        let mut c = srv.connected(pb, "u").await;
        c.subscribe("secret:room")
            .await
            .subscribe
            .expect("subscribed");
        let history = Command {
            history: Some(HistoryRequest {
                channel: "secret:room".into(),
                limit: 10,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(code(&c.call(history).await), 108);
        let presence = Command {
            presence: Some(PresenceRequest {
                channel: "secret:room".into(),
            }),
            ..Default::default()
        };
        assert_eq!(code(&c.call(presence).await), 108);
        let stats = Command {
            presence_stats: Some(PresenceStatsRequest {
                channel: "secret:room".into(),
            }),
            ..Default::default()
        };
        assert_eq!(code(&c.call(stats).await), 108);
        // Still usable.
        let ok = Command {
            history: Some(HistoryRequest {
                channel: "chat:h".into(),
                limit: 1,
                ..Default::default()
            }),
            ..Default::default()
        };
        c.subscribe("chat:h").await.subscribe.expect("subscribed");
        assert!(c.call(ok).await.history.is_some());
    })
    .await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

// ---------------------------------------------------------------------------
// Connection tokens.

fn b64(v: &serde_json::Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

/// Sends `connect` with `token` on a fresh client and expects close `code`.
async fn token_closes(srv: &TestServer, pb: bool, token: &str, code: u16) {
    let mut c = srv.client(pb).await;
    c.send(vec![connect_cmd(1, token)]).await;
    expect_close(&mut c, code, &format!("token {token:?}")).await;
}

#[tokio::test]
async fn alg_none_token_is_3500() {
    let srv = TestServer::start(base_config()).await;
    let claims = serde_json::json!({"sub": "u", "exp": now() + 600});
    let body = b64(&claims);
    for header in [
        serde_json::json!({"alg": "none", "typ": "JWT"}),
        serde_json::json!({"alg": "None"}),
        serde_json::json!({"alg": "NONE", "typ": "JWT"}),
    ] {
        let unsigned = format!("{}.{}.", b64(&header), body);
        both(async |pb| token_closes(&srv, pb, &unsigned, 3500).await).await;
        // alg none with a (valid HS256) signature attached.
        let hs = token_with(claims.clone());
        let sig = hs.rsplit('.').next().expect("sig");
        let with_sig = format!("{}.{}.{}", b64(&header), body, sig);
        token_closes(&srv, false, &with_sig, 3500).await;
    }
    assert_healthy(&srv).await;
    srv.stop().await;
}

fn rsa_only_config() -> rotor::config::Config {
    let mut cfg = base_config();
    cfg.client.token.hmac_secret_key = String::new();
    cfg.client.token.rsa_public_key = keys::RSA_PUBLIC_PEM.into();
    cfg
}

#[tokio::test]
async fn hs256_forged_with_rsa_public_key_is_3500() {
    let srv = TestServer::start(rsa_only_config()).await;
    let claims = serde_json::json!({"sub": "u", "exp": now() + 600});
    // The classic key-confusion attack: the public PEM as HMAC secret.
    let forged = sign(keys::RSA_PUBLIC_PEM, claims.clone());
    both(async |pb| token_closes(&srv, pb, &forged, 3500).await).await;
    let forged_trimmed = sign(keys::RSA_PUBLIC_PEM.trim(), claims.clone());
    token_closes(&srv, false, &forged_trimmed, 3500).await;
    // The genuine RS256 token works on this server.
    assert_serves(&srv, &sign_rs256(claims)).await;
    srv.stop().await;
}

#[tokio::test]
async fn rs256_token_on_hmac_only_config_is_3500() {
    let srv = TestServer::start(base_config()).await;
    let rs = sign_rs256(serde_json::json!({"sub": "u", "exp": now() + 600}));
    both(async |pb| token_closes(&srv, pb, &rs, 3500).await).await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn bad_signature_is_3500() {
    let srv = TestServer::start(base_config()).await;
    let claims = serde_json::json!({"sub": "u", "exp": now() + 600});
    let wrong_key = sign("not-the-secret", claims.clone());
    both(async |pb| token_closes(&srv, pb, &wrong_key, 3500).await).await;
    // A genuine token with its payload swapped.
    let good = token_with(claims);
    let mut parts: Vec<&str> = good.split('.').collect();
    let evil = b64(&serde_json::json!({"sub": "admin", "exp": now() + 600}));
    parts[1] = &evil;
    token_closes(&srv, false, &parts.join("."), 3500).await;
    // A truncated signature.
    token_closes(&srv, false, &good[..good.len() - 4], 3500).await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn wrong_audience_or_issuer_is_3500() {
    let mut cfg = base_config();
    cfg.client.token.audience = "rotor-tests".into();
    cfg.client.token.issuer = "https://issuer.example".into();
    let srv = TestServer::start(cfg).await;
    let exp = now() + 600;
    let ok = token_with(
        serde_json::json!({"sub": "u", "exp": exp, "aud": "rotor-tests", "iss": "https://issuer.example"}),
    );
    for bad in [
        serde_json::json!({"sub": "u", "exp": exp, "aud": "other", "iss": "https://issuer.example"}),
        serde_json::json!({"sub": "u", "exp": exp, "iss": "https://issuer.example"}),
        serde_json::json!({"sub": "u", "exp": exp, "aud": "rotor-tests", "iss": "https://evil.example"}),
        serde_json::json!({"sub": "u", "exp": exp, "aud": "rotor-tests"}),
        serde_json::json!({"sub": "u", "exp": exp, "aud": ["other", "more"], "iss": "https://issuer.example"}),
    ] {
        let t = token_with(bad);
        both(async |pb| token_closes(&srv, pb, &t, 3500).await).await;
    }
    assert_serves(&srv, &ok).await;
    srv.stop().await;
}

#[tokio::test]
async fn connect_token_with_channel_claim_is_3500() {
    let srv = TestServer::start(base_config()).await;
    // A subscription token used as a connection token.
    let t = token_with(serde_json::json!({"sub": "u", "exp": now() + 600, "channel": "news"}));
    both(async |pb| token_closes(&srv, pb, &t, 3500).await).await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn expired_token_is_109_and_connection_stays() {
    let srv = TestServer::start(base_config()).await;
    both(async |pb| {
        let mut c = srv.client(pb).await;
        let r = c.connect(&token("u", -10)).await;
        assert_eq!(code(&r), 109);
        // Same socket: a fresh token connects.
        let r = c.connect(&token("u", 600)).await;
        assert!(r.connect.is_some(), "{r:?}");
        let ch = unique("exp-");
        c.subscribe(&ch).await.subscribe.expect("subscribed");
    })
    .await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn future_nbf_is_109_and_connection_stays() {
    let srv = TestServer::start(base_config()).await;
    both(async |pb| {
        let mut c = srv.client(pb).await;
        let t = token_with(serde_json::json!({"sub": "u", "exp": now() + 600, "nbf": now() + 300}));
        assert_eq!(code(&c.connect(&t).await), 109);
        let r = c.connect(&token("u", 600)).await;
        assert!(r.connect.is_some(), "{r:?}");
    })
    .await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn garbage_token_is_3500() {
    let srv = TestServer::start(base_config()).await;
    for t in [
        "garbage",
        "a.b.c",
        "a.b",
        "....",
        "eyJhbGciOiJIUzI1NiJ9.%%%.xx",
        "\u{0}\u{1}",
    ] {
        both(async |pb| token_closes(&srv, pb, t, 3500).await).await;
    }
    let long = "x".repeat(60_000);
    token_closes(&srv, false, &long, 3500).await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn no_token_with_anonymous_disallowed_is_3501() {
    let srv = TestServer::start(base_config()).await;
    both(async |pb| token_closes(&srv, pb, "", 3501).await).await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn empty_sub_with_anonymous_tokens_disallowed_is_3507() {
    let mut cfg = base_config();
    cfg.client.disallow_anonymous_connection_tokens = true;
    let srv = TestServer::start(cfg).await;
    let t = token_with(serde_json::json!({"sub": "", "exp": now() + 600}));
    let no_sub = token_with(serde_json::json!({"exp": now() + 600}));
    both(async |pb| {
        token_closes(&srv, pb, &t, 3507).await;
        token_closes(&srv, pb, &no_sub, 3507).await;
    })
    .await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

// ---------------------------------------------------------------------------
// Subscription tokens.

#[tokio::test]
async fn bad_subscription_tokens() {
    let srv = TestServer::start(base_config()).await;
    let sub_with = |token: String, channel: &str| SubscribeRequest {
        channel: channel.into(),
        token,
        ..Default::default()
    };
    both(async |pb| {
        let mut c = srv.connected(pb, "u1").await;
        // Expired → 109, badly signed → 103; the connection stays.
        let expired =
            token_with(serde_json::json!({"sub": "u1", "channel": "$secret:a", "exp": now() - 5}));
        assert_eq!(
            code(&c.subscribe_with(sub_with(expired, "$secret:a")).await),
            109
        );
        let forged = sign(
            "wrong",
            serde_json::json!({"sub": "u1", "channel": "$secret:a"}),
        );
        assert_eq!(
            code(&c.subscribe_with(sub_with(forged, "$secret:a")).await),
            103
        );
        let good = token_with(serde_json::json!({"sub": "u1", "channel": "$secret:a"}));
        c.subscribe_with(sub_with(good, "$secret:a"))
            .await
            .subscribe
            .expect("subscribed");
        // Token for another channel → 3500.
        let other_ch = token_with(serde_json::json!({"sub": "u1", "channel": "$secret:b"}));
        c.send(vec![Command {
            id: 77,
            subscribe: Some(sub_with(other_ch, "$secret:c")),
            ..Default::default()
        }])
        .await;
        expect_close(&mut c, 3500, "subscription token for another channel").await;
        // Token for another user → 3500.
        let mut c = srv.connected(pb, "u1").await;
        let other_user = token_with(serde_json::json!({"sub": "u2", "channel": "$secret:d"}));
        c.send(vec![Command {
            id: 78,
            subscribe: Some(sub_with(other_user, "$secret:d")),
            ..Default::default()
        }])
        .await;
        expect_close(&mut c, 3500, "subscription token for another user").await;
    })
    .await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

// ---------------------------------------------------------------------------
// Origins.

fn origin_config(allowed: &[&str]) -> rotor::config::Config {
    let mut cfg = base_config();
    cfg.client.allowed_origins = allowed.iter().map(|s| s.to_string()).collect();
    cfg
}

#[tokio::test]
async fn any_origin_with_empty_allowed_origins_is_403() {
    let srv = TestServer::start(origin_config(&[])).await;
    for origin in [
        &b"Origin: https://example.com"[..],
        b"Origin: null",
        b"Origin: http://127.0.0.1",
    ] {
        assert_eq!(
            upgrade_status(srv.addr, &[origin]).await,
            403,
            "{}",
            String::from_utf8_lossy(origin)
        );
    }
    assert!(
        WsClient::open(&srv.ws_url(), false, Some("https://example.com"))
            .await
            .is_err()
    );
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn origin_not_in_allowed_origins_is_403() {
    let srv = TestServer::start(origin_config(&[
        "https://example.com",
        "https://*.example.org",
    ]))
    .await;
    for origin in [
        &b"Origin: https://evil.com"[..],
        b"Origin: https://example.com.evil.com",
        b"Origin: http://example.com",
        b"Origin: https://example.org.evil.com",
        b"Origin: null",
    ] {
        assert_eq!(
            upgrade_status(srv.addr, &[origin]).await,
            403,
            "{}",
            String::from_utf8_lossy(origin)
        );
    }
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn no_origin_is_accepted() {
    let srv = TestServer::start(origin_config(&["https://example.com"])).await;
    assert_eq!(upgrade_status(srv.addr, &[]).await, 101);
    // And the connection is usable.
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn cyrillic_look_alike_origin_is_403() {
    let srv = TestServer::start(origin_config(&["https://example.com"])).await;
    // U+0435 CYRILLIC SMALL LETTER IE in place of the Latin "e", raw UTF-8.
    let header = "Origin: https://\u{0435}xample.com".as_bytes().to_vec();
    assert_eq!(upgrade_status(srv.addr, &[&header]).await, 403);
    // The same with a glob pattern.
    drop(srv);
    let srv = TestServer::start(origin_config(&["https://*.example.com"])).await;
    let header = "Origin: https://app.\u{0435}xample.com".as_bytes().to_vec();
    assert_eq!(upgrade_status(srv.addr, &[&header]).await, 403);
    drop(srv);
    // With an empty list any Origin is refused, ASCII or not.
    let srv = TestServer::start(origin_config(&[])).await;
    assert_eq!(upgrade_status(srv.addr, &[&header]).await, 403);
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn matching_origin_glob_is_accepted() {
    let srv = TestServer::start(origin_config(&[
        "https://*.example.com",
        "http://localhost:*",
    ]))
    .await;
    for origin in [
        &b"Origin: https://app.example.com"[..],
        b"Origin: HTTPS://APP.EXAMPLE.COM",
        b"Origin: http://localhost:3000",
    ] {
        assert_eq!(
            upgrade_status(srv.addr, &[origin]).await,
            101,
            "{}",
            String::from_utf8_lossy(origin)
        );
    }
    let mut c = WsClient::open(&srv.ws_url(), false, Some("https://app.example.com"))
        .await
        .expect("allowed origin connects");
    c.connect(&token("u", 60)).await.connect.expect("connected");
    assert_healthy(&srv).await;
    srv.stop().await;
}

// ---------------------------------------------------------------------------
// Stress replay.

/// One pass over the cheap protocol rows; every row uses its own connection
/// when the row ends it. Returns a description of the first mismatch.
async fn replay_once(srv: &TestServer, pb: bool, n: usize) -> Result<(), String> {
    async fn closes(
        srv: &TestServer,
        pb: bool,
        connect: bool,
        frame: Message,
    ) -> Result<u16, String> {
        let mut c = WsClient::open(&srv.ws_url(), pb, None).await?;
        if connect {
            let r = c.connect(&token("stress", 600)).await;
            if r.error.is_some() {
                return Err(format!("connect: {r:?}"));
            }
        }
        c.send_raw(frame).await;
        loop {
            match c.next_event().await {
                Event::Closed(code, _) => return Ok(code),
                Event::Reply(_) => {}
            }
        }
    }
    let cmd = |c: Command| -> Message {
        if pb {
            use prost::Message as _;
            Message::Binary(c.encode_length_delimited_to_vec().into())
        } else {
            Message::Text(serde_json::to_string(&c).expect("json").into())
        }
    };
    let garbage = if pb {
        Message::Binary(vec![0x01, 0xff].into())
    } else {
        Message::Text("{nope".into())
    };
    let empty = if pb {
        Message::Binary(Vec::new().into())
    } else {
        Message::Text("".into())
    };
    let mut rows: Vec<(&str, bool, Message, u16)> = vec![
        ("malformed", true, garbage, 3501),
        ("empty", true, empty, 3501),
        ("before connect", false, cmd(subscribe_cmd(1, "news")), 3501),
        (
            "second connect",
            true,
            cmd(connect_cmd(9, &token("s", 60))),
            3501,
        ),
        (
            "id no request",
            true,
            cmd(Command {
                id: 3,
                ..Default::default()
            }),
            3501,
        ),
        ("pong without ping", true, cmd(Command::default()), 3501),
        ("empty channel", true, cmd(subscribe_cmd(4, "")), 3501),
        ("garbage token", false, cmd(connect_cmd(1, "garbage")), 3500),
        ("no token", false, cmd(connect_cmd(1, "")), 3501),
    ];
    if pb {
        rows.push((
            "bogus varint",
            true,
            Message::Binary(
                vec![0xfc, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01].into(),
            ),
            3501,
        ));
    } else {
        rows.push(("array", true, Message::Text("[]".into()), 3501));
    }
    for (name, connect, frame, want) in rows {
        let got = closes(srv, pb, connect, frame).await?;
        if got != want {
            return Err(format!("{name}: closed with {got}, want {want}"));
        }
    }
    // Error-reply rows on one connection, which stays usable.
    let mut c = WsClient::open(&srv.ws_url(), pb, None).await?;
    let r = c.connect(&token("stress", -5)).await;
    if r.error.as_ref().map(|e| e.code) != Some(109) {
        return Err(format!("expired: {r:?}"));
    }
    c.connect(&token("stress", 600))
        .await
        .connect
        .ok_or("reconnect after 109")?;
    let own = format!("stress-{n}-{}", unique(""));
    let checks: [(&str, u32); 6] = [
        (&"a".repeat(256), 107),
        ("nope:x", 102),
        ("$secret:x", 103),
        ("closed:x", 103),
        ("strict:ABC", 107),
        (&own, 0),
    ];
    for (ch, want) in checks {
        let r = c.subscribe(ch).await;
        let got = r.error.as_ref().map_or(0, |e| e.code);
        if got != want {
            return Err(format!("subscribe {ch:.20}: got {got}, want {want}"));
        }
    }
    let r = c.subscribe(&own).await;
    if r.error.as_ref().map(|e| e.code) != Some(105) {
        return Err(format!("duplicate: {r:?}"));
    }
    c.publish(&own, "{}").await.publish.ok_or("publish")?;
    c.publication(&own).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stress_replay_50_connections_20_times() {
    let srv = std::sync::Arc::new(TestServer::start(base_config()).await);
    let started = std::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..50 {
        let srv = srv.clone();
        tasks.spawn(async move {
            for i in 0..20 {
                replay_once(&srv, n % 2 == 1, n * 100 + i)
                    .await
                    .map_err(|e| format!("worker {n} round {i}: {e}"))?;
            }
            Ok::<(), String>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("worker did not panic").expect("rows as specified");
    }
    eprintln!("stress replay took {:?}", started.elapsed());
    assert_healthy(&srv).await;
    // A Protobuf client too.
    let mut c = srv.connected(true, "after").await;
    let ch = unique("after-");
    c.subscribe(&ch).await.subscribe.expect("subscribed");
    c.publish(&ch, "{}").await.publish.expect("published");
    c.publication(&ch).await;
    // Every stress connection is gone; only `c` is left.
    let deadline = tokio::time::Instant::now() + support::PATIENCE;
    while srv.node.hub.stats().clients > 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "connections left: {}",
            srv.node.hub.stats().clients
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
