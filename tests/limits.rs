//! Lifecycle and limit rows of the bad-input table (limits-and-security.md
//! §1 and §5.2(b), (c), (f)): stale connections, per-user and per-node
//! connection caps, ping/pong, slow consumers and graceful shutdown.

mod support;

use std::time::{Duration, Instant};

use rotor::config::{self, Config};
use rotor::proto::client::{Command, ConnectRequest};
use support::{
    Event, TestServer, WsClient, assert_healthy, base_config, http_get, token, unique,
    upgrade_status,
};

async fn expect_close(c: &mut WsClient, code: u16, what: &str) {
    let (got, reason) = c.closed().await;
    assert_eq!(got, code, "{what}: closed with {got} {reason:?}");
}

#[tokio::test]
async fn no_connect_within_stale_close_delay_is_3502() {
    let mut cfg = base_config();
    cfg.client.stale_close_delay = config::Duration::from_secs(1);
    let srv = TestServer::start(cfg).await;
    for pb in [false, true] {
        let started = Instant::now();
        let mut c = srv.client(pb).await;
        expect_close(&mut c, 3502, "stale").await;
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(900) && took <= Duration::from_millis(1500),
            "stale close after {took:?}"
        );
    }
    // A client that connects in time is not closed as stale.
    let mut c = srv.connected(false, "u").await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let ch = unique("fresh-");
    c.subscribe(&ch).await.subscribe.expect("still connected");
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn over_user_connection_limit_is_3504() {
    let mut cfg = base_config();
    cfg.client.user_connection_limit = 1;
    cfg.client.allow_anonymous_connect_without_token = true;
    let srv = TestServer::start(cfg).await;
    let mut first = srv.connected(false, "limited").await;
    for pb in [false, true] {
        let mut c = srv.client(pb).await;
        c.send(vec![Command {
            id: 1,
            connect: Some(ConnectRequest {
                token: token("limited", 600),
                ..Default::default()
            }),
            ..Default::default()
        }])
        .await;
        expect_close(&mut c, 3504, "second connection of the user").await;
    }
    // Other users and anonymous connections are not limited by it.
    let _other = srv.connected(false, "someone-else").await;
    let mut anon1 = srv.client(false).await;
    anon1.connect("").await.connect.expect("anonymous 1");
    let mut anon2 = srv.client(false).await;
    anon2.connect("").await.connect.expect("anonymous 2");
    // The first connection is untouched.
    let ch = unique("lim-");
    first
        .subscribe(&ch)
        .await
        .subscribe
        .expect("first still works");
    // After it leaves, the user may connect again.
    drop(first);
    let deadline = tokio::time::Instant::now() + support::PATIENCE;
    loop {
        let mut c = srv.client(false).await;
        let id = c.id();
        c.send(vec![Command {
            id,
            connect: Some(ConnectRequest {
                token: token("limited", 600),
                ..Default::default()
            }),
            ..Default::default()
        }])
        .await;
        match c.next_event().await {
            Event::Reply(r) if r.connect.is_some() => break,
            other => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "user still over limit: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    assert_healthy(&srv).await;
    srv.stop().await;
}

fn ping_config() -> Config {
    let mut cfg = base_config();
    cfg.client.ping_interval = config::Duration::from_secs(2);
    cfg.client.pong_timeout = config::Duration::from_secs(1);
    cfg
}

#[tokio::test]
async fn client_that_stops_answering_pings_is_3012() {
    let srv = TestServer::start(ping_config()).await;
    let run = async |pb: bool| {
        let started = Instant::now();
        let mut c = srv.client(pb).await;
        let res = c
            .connect(&token("u", 600))
            .await
            .connect
            .expect("connected");
        assert_eq!(res.ping, 2);
        assert!(res.pong);
        // Read everything (including the ping) but never answer.
        let mut pings = 0;
        let code = loop {
            match c.next_event().await {
                Event::Reply(r) if r == Default::default() => pings += 1,
                Event::Reply(_) => {}
                Event::Closed(code, _) => break code,
            }
        };
        let took = started.elapsed();
        assert_eq!(code, 3012, "closed with {code}");
        assert!(pings >= 1, "a ping came first");
        assert!(
            took <= Duration::from_millis(3500),
            "no-pong close after {took:?}"
        );
    };
    let (_, _) = tokio::join!(run(false), run(true));
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn client_that_answers_pings_stays_connected() {
    let srv = TestServer::start(ping_config()).await;
    let run = async |pb: bool| {
        let mut c = srv.connected(pb, "u").await;
        let ch = unique("pong-");
        c.subscribe(&ch).await.subscribe.expect("subscribed");
        // Three ping intervals (the first ping comes within one interval).
        let until = tokio::time::Instant::now() + Duration::from_millis(6500);
        let mut pings = 0;
        while tokio::time::Instant::now() < until {
            let ev = tokio::time::timeout_at(until, c.next_event()).await;
            match ev {
                Err(_) => break,
                Ok(Event::Reply(r)) if r == Default::default() => {
                    pings += 1;
                    c.send(vec![Command::default()]).await;
                }
                Ok(Event::Reply(_)) => {}
                Ok(Event::Closed(code, reason)) => panic!("closed with {code} {reason:?}"),
            }
        }
        assert!(pings >= 3, "only {pings} pings in three intervals");
        c.publish(&ch, "{}").await.publish.expect("still connected");
        c.publication(&ch).await;
    };
    let (_, _) = tokio::join!(run(false), run(true));
    srv.stop().await;
}

/// Value of `centrifugo_client_num_server_disconnects{code="…"}` (0 if absent).
async fn server_disconnects(srv: &TestServer, code: u16) -> u64 {
    let (status, body) = http_get(srv.addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    let needle = format!("code=\"{code}\"");
    body.lines()
        .filter(|l| {
            l.starts_with("centrifugo_client_num_server_disconnects") && l.contains(&needle)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

fn flood_config() -> Config {
    let mut cfg = base_config();
    cfg.prometheus.enabled = true;
    // The default 1 MiB queue, as in the spec's slow-consumer scenario: a
    // healthy reader sharing this test's two threads with the server must
    // not overflow it, while 8 MB sent to a client that stopped reading must.
    cfg.client.queue_max_size = 1024 * 1024;
    cfg.channel.namespaces.push(config::Namespace {
        name: "flood".into(),
        options: config::ChannelOptions {
            allow_subscribe_for_client: true,
            allow_publish_for_client: true,
            ..Default::default()
        },
    });
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_is_3008_and_healthy_subscriber_gets_everything() {
    const COUNT: usize = 5000;
    const BATCH: usize = 10;
    let srv = TestServer::start(flood_config()).await;
    let ch = "flood:firehose";
    let before = server_disconnects(&srv, 3008).await;

    // The stalled subscriber: a 4 KiB receive buffer, and it never reads
    // after subscribing.
    let mut stalled = WsClient::open_with_rcvbuf(&srv.ws_url(), false, 4096).await;
    stalled
        .connect(&token("stalled", 600))
        .await
        .connect
        .expect("connected");
    stalled.subscribe(ch).await.subscribe.expect("subscribed");

    // The healthy subscriber reads everything on its own task.
    let mut healthy = srv.connected(true, "healthy").await;
    healthy.subscribe(ch).await.subscribe.expect("subscribed");
    let reader = tokio::spawn(async move {
        let mut got = Vec::with_capacity(COUNT);
        while got.len() < COUNT {
            let p = healthy.publication(ch).await;
            let n: usize = std::str::from_utf8(&p.data[6..12])
                .expect("utf8")
                .parse()
                .expect("sequence number");
            got.push(n);
        }
        got
    });

    // ~4 KiB publications, pipelined in batches.
    let mut publisher = srv.connected(false, "publisher").await;
    let pad = "p".repeat(4000);
    let started = Instant::now();
    for b in 0..COUNT / BATCH {
        let cmds: Vec<Command> = (0..BATCH)
            .map(|i| {
                let n = b * BATCH + i;
                Command {
                    id: u32::try_from(n + 1).expect("id"),
                    publish: Some(rotor::proto::client::PublishRequest {
                        channel: ch.into(),
                        data: format!("{{\"n\":\"{n:06}\",\"pad\":\"{pad}\"}}").into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }
            })
            .collect();
        publisher.send(cmds).await;
        for i in 0..BATCH {
            let id = u32::try_from(b * BATCH + i + 1).expect("id");
            let r = publisher.reply_to(id).await;
            assert!(r.publish.is_some(), "publish {id}: {r:?}");
        }
    }
    let published_in = started.elapsed();

    // The healthy subscriber got every publication, in order.
    let got = tokio::time::timeout(Duration::from_secs(20), reader)
        .await
        .expect("healthy subscriber keeps up")
        .expect("reader");
    assert_eq!(got, (0..COUNT).collect::<Vec<_>>());

    // The stalled one was closed with 3008 (seen through the metrics: its
    // close frame may never make it through a full socket).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let now = server_disconnects(&srv, 3008).await;
        if now > before {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            let (_, body) = http_get(srv.addr, "/metrics").await;
            let lines: Vec<&str> = body
                .lines()
                .filter(|l| l.contains("disconnects") || l.contains("inflight"))
                .collect();
            panic!(
                "no 3008 disconnect recorded (published {COUNT} × 4 KiB in {published_in:?}): {lines:#?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Reading now drains what the socket held; the connection is over.
    let code = loop {
        match stalled.next_event().await {
            Event::Closed(code, _) => break code,
            Event::Reply(_) => {}
        }
    };
    assert!(
        code == 3008 || code == 1006,
        "stalled client closed with {code}"
    );
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_sends_3001_to_every_client() {
    let srv = TestServer::start(base_config()).await;
    let mut clients = Vec::new();
    for i in 0..4 {
        let mut c = srv.connected(i % 2 == 1, &format!("u{i}")).await;
        c.subscribe(&format!("chat:shutdown{i}"))
            .await
            .subscribe
            .expect("subscribed");
        clients.push(c);
    }
    // A client that has not sent connect yet is told too.
    clients.push(srv.client(false).await);
    let addr = srv.addr;
    let started = Instant::now();
    let stopping = tokio::spawn(srv.stop());
    for (i, c) in clients.iter_mut().enumerate() {
        expect_close(c, 3001, &format!("client {i}")).await;
    }
    drop(clients);
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("server stops")
        .expect("stop task");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
    // Nothing listens any more.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn over_connection_limit_is_http_503() {
    let mut cfg = base_config();
    cfg.client.connection_limit = 2;
    let srv = TestServer::start(cfg).await;
    let _a = srv.connected(false, "a").await;
    let _b = srv.connected(true, "b").await;
    assert_eq!(upgrade_status(srv.addr, &[]).await, 503);
    drop(_a);
    // A freed slot is usable again.
    let deadline = tokio::time::Instant::now() + support::PATIENCE;
    while upgrade_status(srv.addr, &[]).await != 101 {
        assert!(tokio::time::Instant::now() < deadline, "slot never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    srv.stop().await;
}

#[tokio::test]
async fn over_connection_rate_limit_is_http_503() {
    let mut cfg = base_config();
    cfg.client.connection_rate_limit = 2;
    let srv = TestServer::start(cfg).await;
    // Burst of 2, then refused until a token refills (one per second).
    assert_eq!(upgrade_status(srv.addr, &[]).await, 101);
    assert_eq!(upgrade_status(srv.addr, &[]).await, 101);
    assert_eq!(upgrade_status(srv.addr, &[]).await, 503);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(upgrade_status(srv.addr, &[]).await, 101);
    srv.stop().await;
}

/// Centrifugo's quirk (client-protocol §5): any id-0 command that is not
/// `send` counts as a pong. While a ping is outstanding it answers that
/// ping and its request is ignored; without one it is a stray pong (3501,
/// covered in bad_input.rs).
#[tokio::test]
async fn id_zero_command_while_ping_outstanding_counts_as_the_pong() {
    let srv = TestServer::start(ping_config()).await;
    let run = async |pb: bool| {
        let mut c = srv.connected(pb, "u").await;
        loop {
            if let Event::Reply(r) = c.next_event().await
                && r == Default::default()
            {
                break;
            }
        }
        c.send(vec![Command {
            id: 0,
            subscribe: Some(rotor::proto::client::SubscribeRequest {
                channel: "news".into(),
                ..Default::default()
            }),
            ..Default::default()
        }])
        .await;
        // The request was not executed: subscribing now is not a duplicate.
        assert!(c.subscribe("news").await.subscribe.is_some());
    };
    let (_, _) = tokio::join!(run(false), run(true));
    assert_healthy(&srv).await;
    srv.stop().await;
}
