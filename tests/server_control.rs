//! Node control of live connections (what the server API's subscribe,
//! unsubscribe, disconnect, refresh, info and channels do), seen by real
//! WebSocket clients.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use rotor::control::{ServerRefresh, ServerSubscribe, Target};
use rotor::engine::StreamPosition;
use rotor::node::Node;
use rotor::node::control::CONTROL_WAIT;
use rotor::proto::client::{Publication, Push};
use support::{TestServer, WsClient, base_config, now, token, unique};

fn user(u: &str) -> Target {
    Target {
        user: u.into(),
        ..Default::default()
    }
}

fn sub(channel: &str, target: Target) -> ServerSubscribe {
    ServerSubscribe {
        channel: channel.into(),
        target,
        ..Default::default()
    }
}

/// Publishes JSON `data` into `channel` through the node.
async fn publish(node: &Node, channel: &str, data: &str) -> u64 {
    let opts = node.rules().options(channel).expect("namespace");
    let r = node
        .publish(
            channel,
            Bytes::copy_from_slice(data.as_bytes()),
            &node.publish_options(&opts),
        )
        .await
        .expect("published");
    r.position.offset
}

/// Connects `user` and returns the client and its client id.
async fn connect(srv: &TestServer, protobuf: bool, user: &str) -> (WsClient, String) {
    let mut c = srv.client(protobuf).await;
    let r = c.connect(&token(user, 3600)).await;
    let id = r.connect.expect("connected").client;
    (c, id)
}

/// Waits for the Subscribe push of `channel`.
async fn subscribe_push(c: &mut WsClient, channel: &str) -> rotor::proto::client::Subscribe {
    loop {
        let p = c.push().await;
        if p.channel == channel
            && let Some(s) = p.subscribe
        {
            return s;
        }
    }
}

/// The next push that is a publication, subscribe or unsubscribe (joins,
/// leaves and others skipped).
async fn next_notable(c: &mut WsClient) -> Push {
    loop {
        let p = c.push().await;
        if p.r#pub.is_some() || p.subscribe.is_some() || p.unsubscribe.is_some() {
            return p;
        }
    }
}

/// Proves nothing about `quiet` is pending for `c`: a publication into a
/// fresh marker channel the client subscribes to must be the next
/// publication/subscribe/unsubscribe push it sees.
async fn assert_quiet(srv: &TestServer, c: &mut WsClient, quiet: &str) {
    let marker = unique("marker-");
    assert!(c.subscribe(&marker).await.subscribe.is_some());
    publish(&srv.node, &marker, r#"{"marker":true}"#).await;
    let p = next_notable(c).await;
    assert_eq!(
        p.channel, marker,
        "something about {quiet} arrived first: {p:?}"
    );
}

#[tokio::test]
async fn subscribe_push_then_publications() {
    let srv = TestServer::start(base_config()).await;
    let (mut c, _) = connect(&srv, false, "alice").await;
    let ch = unique("chat:s");
    let mut req = sub(&ch, user("alice"));
    req.data = Bytes::from_static(br#"{"welcome":1}"#);
    srv.node.subscribe_user(req).await.expect("subscribe");

    let s = subscribe_push(&mut c, &ch).await;
    assert!(s.recoverable && s.positioned, "chat forces recovery: {s:?}");
    assert!(!s.epoch.is_empty());
    assert_eq!(&s.data[..], br#"{"welcome":1}"#);

    // The call returned after the subscription was live.
    let off = publish(&srv.node, &ch, r#"{"n":1}"#).await;
    let p = c.publication(&ch).await;
    assert_eq!((&p.data[..], p.offset), (&br#"{"n":1}"#[..], off));
    // Presence and the subscriber count include the server-side sub.
    assert_eq!(srv.node.presence(&ch).await.expect("presence").len(), 1);
    assert!(srv.node.channel_counts().contains(&(ch.clone(), 1)));

    // Protobuf clients get the same push.
    let (mut pb, _) = connect(&srv, true, "alice-pb").await;
    srv.node
        .subscribe_user(sub(&ch, user("alice-pb")))
        .await
        .expect("subscribe");
    subscribe_push(&mut pb, &ch).await;
    publish(&srv.node, &ch, r#"{"n":2}"#).await;
    assert_eq!(&pb.publication(&ch).await.data[..], br#"{"n":2}"#);
}

#[tokio::test]
async fn already_subscribed_connection_is_left_alone() {
    let srv = TestServer::start(base_config()).await;
    let (mut c, _) = connect(&srv, false, "again").await;
    let ch = unique("chat:again");
    assert!(c.subscribe(&ch).await.subscribe.is_some());
    srv.node
        .subscribe_user(sub(&ch, user("again")))
        .await
        .expect("subscribe");
    // No Subscribe push: the next notable push is the marker publication.
    assert_quiet(&srv, &mut c, &ch).await;
    assert_eq!(srv.node.info().num_subs, 2, "chat + marker");
}

#[tokio::test]
async fn recover_since_delivers_missed_publications() {
    let srv = TestServer::start(base_config()).await;
    let ch = unique("chat:r");
    let first = publish(&srv.node, &ch, r#"{"m":1}"#).await;
    publish(&srv.node, &ch, r#"{"m":2}"#).await;
    publish(&srv.node, &ch, r#"{"m":3}"#).await;
    let top = srv
        .node
        .history(
            &ch,
            rotor::engine::HistoryFilter {
                since: None,
                limit: 0,
                reverse: false,
            },
            Duration::from_secs(60),
        )
        .await
        .expect("history")
        .position;

    let (mut c, _) = connect(&srv, false, "rita").await;
    let mut req = sub(&ch, user("rita"));
    req.recover_since = Some(StreamPosition {
        offset: first,
        epoch: top.epoch.clone(),
    });
    srv.node.subscribe_user(req).await.expect("subscribe");
    let s = subscribe_push(&mut c, &ch).await;
    assert_eq!((s.offset, s.epoch.as_str()), (first, top.epoch.as_str()));
    let missed: Vec<Publication> = vec![c.publication(&ch).await, c.publication(&ch).await];
    assert_eq!(
        missed.iter().map(|p| p.offset).collect::<Vec<_>>(),
        vec![first + 1, first + 2]
    );
    assert_eq!(&missed[1].data[..], br#"{"m":3}"#);
    let live = publish(&srv.node, &ch, r#"{"m":4}"#).await;
    assert_eq!(c.publication(&ch).await.offset, live);
}

#[tokio::test]
async fn unsubscribe_pushes_2000_and_stops_publications() {
    let srv = TestServer::start(base_config()).await;
    let (mut c, _) = connect(&srv, false, "ursula").await;
    let (mut watcher, _) = connect(&srv, false, "watcher").await;
    let server_ch = unique("chat:u");
    let client_ch = unique("chat:uc");
    assert!(watcher.subscribe(&server_ch).await.subscribe.is_some());
    srv.node
        .subscribe_user(sub(&server_ch, user("ursula")))
        .await
        .expect("subscribe");
    subscribe_push(&mut c, &server_ch).await;
    // A server-side subscription announces its join like a client one.
    watcher.join_of(&server_ch, "ursula").await;
    assert!(c.subscribe(&client_ch).await.subscribe.is_some());

    for ch in [&server_ch, &client_ch] {
        srv.node
            .unsubscribe_user(ch, &user("ursula"))
            .await
            .expect("unsubscribe");
        let p = next_notable(&mut c).await;
        let u = p.unsubscribe.expect("unsubscribe push");
        assert_eq!((p.channel.as_str(), u.code), (ch.as_str(), 2000));
        assert_eq!(u.reason, "server unsubscribe");
        // Applied when the call returns: presence is gone.
        let presence = srv.node.presence(ch).await.expect("presence");
        assert!(
            presence.values().all(|i| i.user != "ursula"),
            "{presence:?}"
        );
    }
    // Others saw the leave, as after a client unsubscribe.
    loop {
        let p = watcher.push().await;
        if p.leave
            .and_then(|l| l.info)
            .is_some_and(|i| i.user == "ursula")
        {
            break;
        }
    }
    publish(&srv.node, &server_ch, r#"{"after":1}"#).await;
    publish(&srv.node, &client_ch, r#"{"after":1}"#).await;
    assert_quiet(&srv, &mut c, &server_ch).await;
}

#[tokio::test]
async fn disconnect_with_custom_code_and_whitelist() {
    let srv = TestServer::start(base_config()).await;
    let (mut gone, _) = connect(&srv, false, "dora").await;
    let (mut kept, kept_id) = connect(&srv, true, "dora").await;
    srv.node
        .disconnect_user(&user("dora"), &[kept_id], 4501, "custom bye")
        .await
        .expect("disconnect");
    assert_eq!(gone.closed().await, (4501, "custom bye".to_string()));
    // Cleaned up when the call returned; the whitelisted one still serves.
    assert_eq!(srv.node.hub.user_connection_count("dora"), 1);
    assert!(kept.subscribe(&unique("plain")).await.subscribe.is_some());

    // The API's default: 3503, no reconnect.
    srv.node
        .disconnect_user(&user("dora"), &[], 3503, "force disconnect")
        .await
        .expect("disconnect");
    assert_eq!(kept.closed().await, (3503, "force disconnect".to_string()));
    assert_eq!(srv.node.hub.user_connection_count("dora"), 0);
}

#[tokio::test]
async fn targeting_by_client_and_session() {
    let srv = TestServer::start(base_config()).await;
    let (mut one, one_id) = connect(&srv, false, "tina").await;
    let (mut two, _) = connect(&srv, false, "tina").await;
    let ch = unique("chat:t");
    let target = Target {
        client: one_id.clone(),
        ..user("tina")
    };
    srv.node
        .subscribe_user(sub(&ch, target))
        .await
        .expect("subscribe");
    subscribe_push(&mut one, &ch).await;
    assert_quiet(&srv, &mut two, &ch).await;

    // A WebSocket connection has no session id (as in Centrifugo): a session
    // target matches none of them.
    let by_session = Target {
        session: one_id.clone(),
        ..user("tina")
    };
    srv.node
        .disconnect_user(&by_session, &[], 4000, "by session")
        .await
        .expect("disconnect");
    // Unknown client id: nobody.
    let other = Target {
        client: "no-such-client".into(),
        ..user("tina")
    };
    srv.node
        .disconnect_user(&other, &[], 4000, "nobody")
        .await
        .expect("disconnect");
    assert_eq!(srv.node.hub.user_connection_count("tina"), 2);

    let only_one = Target {
        client: one_id,
        ..user("tina")
    };
    srv.node
        .disconnect_user(&only_one, &[], 4000, "just you")
        .await
        .expect("disconnect");
    assert_eq!(one.closed().await.0, 4000);
    assert_eq!(srv.node.hub.user_connection_count("tina"), 1);
    assert_quiet(&srv, &mut two, "the disconnect").await;
}

#[tokio::test]
async fn refresh_expired_closes_with_3005() {
    let srv = TestServer::start(base_config()).await;
    let (mut c, _) = connect(&srv, false, "eve").await;
    let refresh = ServerRefresh {
        expired: true,
        ..Default::default()
    };
    srv.node
        .refresh_user(&user("eve"), refresh)
        .await
        .expect("refresh");
    assert_eq!(c.closed().await, (3005, "connection expired".to_string()));

    // A new expiry in the past expires the connection too.
    let (mut c, _) = connect(&srv, false, "eve").await;
    let refresh = ServerRefresh {
        expire_at: now() - 10,
        ..Default::default()
    };
    srv.node
        .refresh_user(&user("eve"), refresh)
        .await
        .expect("refresh");
    assert_eq!(c.closed().await.0, 3005);
}

#[tokio::test]
async fn refresh_extends_expiry_and_replaces_info() {
    let mut cfg = base_config();
    cfg.client.expired_close_delay = rotor::config::Duration::from_secs(0);
    let srv = TestServer::start(cfg).await;
    // Both connections expire in two seconds.
    let short = token("fred", 2);
    let mut refreshed = srv.client(false).await;
    let id = refreshed
        .connect(&short)
        .await
        .connect
        .expect("connected")
        .client;
    let mut clock = srv.client(false).await;
    assert!(clock.connect(&short).await.connect.is_some());

    let target = Target {
        client: id,
        ..user("fred")
    };
    let refresh = ServerRefresh {
        expire_at: now() + 3600,
        info: Some(Bytes::from_static(br#"{"v":2}"#)),
        ..Default::default()
    };
    srv.node
        .refresh_user(&target, refresh)
        .await
        .expect("refresh");
    let r = loop {
        if let Some(r) = refreshed.push().await.refresh {
            break r;
        }
    };
    assert!(r.expires && r.ttl > 3500, "{r:?}");

    // The other connection's expiry passes; the refreshed one stays.
    assert_eq!(clock.closed().await.0, 3005);
    let ch = unique("chat:info");
    srv.node
        .subscribe_user(sub(&ch, target.clone()))
        .await
        .expect("subscribe");
    // Its own join (chat pushes join/leave) carries the new info.
    let join = loop {
        let p = refreshed.push().await;
        if let Some(j) = p.join {
            break j;
        }
    };
    assert_eq!(&join.info.expect("info").conn_info[..], br#"{"v":2}"#);

    // expire_at 0 removes the expiry.
    srv.node
        .refresh_user(&target, ServerRefresh::default())
        .await
        .expect("refresh");
    let r = loop {
        if let Some(r) = refreshed.push().await.refresh {
            break r;
        }
    };
    assert!(!r.expires && r.ttl == 0, "{r:?}");
}

#[tokio::test]
async fn info_and_channel_counts() {
    let srv = TestServer::start(base_config()).await;
    let (mut a1, _) = connect(&srv, false, "ivan").await;
    let (_a2, _) = connect(&srv, true, "ivan").await;
    let (mut b, _) = connect(&srv, false, "iris").await;
    let shared_ch = unique("chat:i");
    let solo = unique("plain-");
    assert!(a1.subscribe(&shared_ch).await.subscribe.is_some());
    assert!(b.subscribe(&shared_ch).await.subscribe.is_some());
    assert!(b.subscribe(&solo).await.subscribe.is_some());
    srv.node
        .subscribe_user(sub(&solo, user("ivan")))
        .await
        .expect("subscribe");

    let info = srv.node.info();
    assert_eq!(
        (
            info.num_clients,
            info.num_users,
            info.num_channels,
            info.num_subs
        ),
        (3, 2, 2, 5)
    );
    assert!(info.uptime < 60);
    assert!(!info.uid.is_empty() && !info.name.is_empty());
    let mut counts = srv.node.channel_counts();
    counts.sort();
    let mut want = vec![(shared_ch, 2), (solo, 3)];
    want.sort();
    assert_eq!(counts, want);
}

#[tokio::test]
async fn nobody_to_control_is_quick() {
    let srv = TestServer::start(base_config()).await;
    let started = Instant::now();
    let n = &srv.node;
    n.subscribe_user(sub("chat:none", user("ghost")))
        .await
        .expect("subscribe");
    n.unsubscribe_user("chat:none", &user("ghost"))
        .await
        .expect("unsubscribe");
    n.disconnect_user(&user("ghost"), &[], 3503, "force disconnect")
        .await
        .expect("disconnect");
    n.refresh_user(&user("ghost"), ServerRefresh::default())
        .await
        .expect("refresh");
    assert!(started.elapsed() < Duration::from_millis(200));
}

#[tokio::test]
async fn stuck_client_cannot_hang_a_control_call() {
    let mut cfg = base_config();
    cfg.client.queue_max_size = 256 << 20;
    cfg.websocket.write_timeout = rotor::config::Duration::from_secs(60);
    let srv = TestServer::start(cfg).await;
    let mut stuck = WsClient::open_with_rcvbuf(&srv.ws_url(), false, 4096).await;
    assert!(stuck.connect(&token("stuck", 600)).await.connect.is_some());
    let ch = unique("firehose-");
    assert!(stuck.subscribe(&ch).await.subscribe.is_some());
    // Far more than the socket buffers hold: the writer blocks.
    let pad = format!(r#""{}""#, "x".repeat(60_000));
    for _ in 0..400 {
        publish(&srv.node, &ch, &pad).await;
    }
    let bound = CONTROL_WAIT + Duration::from_secs(1);
    let started = Instant::now();
    let call = srv
        .node
        .subscribe_user(sub(&unique("chat:late"), user("stuck")));
    tokio::time::timeout(bound, call)
        .await
        .expect("bounded")
        .expect("subscribe");
    let target = user("stuck");
    let call = srv
        .node
        .disconnect_user(&target, &[], 3503, "force disconnect");
    tokio::time::timeout(bound, call)
        .await
        .expect("bounded")
        .expect("disconnect");
    assert!(started.elapsed() < 2 * bound);
}

#[tokio::test]
async fn server_subscription_expiry_disconnects_3006() {
    let mut cfg = base_config();
    cfg.client.expired_sub_close_delay = rotor::config::Duration::from_secs(0);
    let srv = TestServer::start(cfg).await;
    let (mut c, _) = connect(&srv, false, "sam").await;
    let ch = unique("chat:x");
    let mut req = sub(&ch, user("sam"));
    req.expire_at = now() + 2;
    srv.node.subscribe_user(req).await.expect("subscribe");
    subscribe_push(&mut c, &ch).await;
    assert_eq!(c.closed().await, (3006, "subscription expired".to_string()));
}
