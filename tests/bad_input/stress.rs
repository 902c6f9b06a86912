//! The whole table replayed from many connections at once.

use crate::support::{Event, TestServer, WsClient, assert_healthy, base_config, token, unique};
use rotor::proto::client::Command;
use tokio_tungstenite::tungstenite::Message;

use super::*;

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
    // A failed connect answers 109 (the connection is then unusable).
    let mut c = WsClient::open(&srv.ws_url(), pb, None).await?;
    let r = c.connect(&token("stress", -5)).await;
    if r.error.as_ref().map(|e| e.code) != Some(109) {
        return Err(format!("expired: {r:?}"));
    }
    // Error-reply rows on one connection, which stays usable.
    let mut c = WsClient::open(&srv.ws_url(), pb, None).await?;
    c.connect(&token("stress", 600))
        .await
        .connect
        .ok_or("connect")?;
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
