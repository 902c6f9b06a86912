//! The client protocol over a real WebSocket: connect, subscribe, publish,
//! history, presence, join/leave, recovery, refresh, in JSON and Protobuf.

mod support;

use bytes::Bytes;
use rotor::proto::client::{
    Command, HistoryRequest, PresenceRequest, PresenceStatsRequest, RefreshRequest, StreamPosition,
    SubRefreshRequest, SubscribeRequest, UnsubscribeRequest,
};
use support::{TestServer, base_config, token, token_with};

async fn both(f: impl AsyncFn(bool)) {
    f(false).await;
    f(true).await;
}

#[tokio::test]
async fn connect_reply_carries_client_ping_and_pong() {
    let srv = TestServer::start(base_config()).await;
    both(async |pb| {
        let mut c = srv.client(pb).await;
        let r = c.connect(&token("42", 3600)).await;
        let res = r.connect.expect("connect result");
        assert!(!res.client.is_empty());
        assert_eq!(res.ping, 25);
        assert!(res.pong);
        assert!(res.expires);
        assert!(res.ttl > 3500);
    })
    .await;
    srv.stop().await;
}

#[tokio::test]
async fn publish_reaches_subscribers_once_encoded_for_each_encoding() {
    let srv = TestServer::start(base_config()).await;
    let mut json_sub = srv.connected(false, "1").await;
    let mut pb_sub = srv.connected(true, "2").await;
    for c in [&mut json_sub, &mut pb_sub] {
        assert!(c.subscribe("news").await.subscribe.is_some());
    }
    let mut publisher = srv.connected(false, "3").await;
    assert!(publisher.subscribe("news").await.error.is_none());
    let r = publisher.publish("news", r#"{"text":"hi"}"#).await;
    assert!(r.publish.is_some(), "{r:?}");
    for c in [&mut json_sub, &mut pb_sub] {
        let publication = c.publication("news").await;
        assert_eq!(&publication.data[..], br#"{"text":"hi"}"#);
        assert_eq!(publication.info.expect("info").user, "3");
    }
    // The publisher gets its own publication too.
    publisher.publication("news").await;
    srv.stop().await;
}

#[tokio::test]
async fn history_presence_and_join_leave() {
    let srv = TestServer::start(base_config()).await;
    both(async |pb| {
        let ch = if pb { "chat:pb" } else { "chat:json" };
        let mut a = srv.connected(pb, "alice").await;
        let s = a.subscribe(ch).await.subscribe.expect("subscribed");
        assert!(s.recoverable && s.positioned);
        assert!(!s.epoch.is_empty());
        let mut b = srv.connected(pb, "bob").await;
        b.subscribe(ch).await.subscribe.expect("subscribed");
        a.join_of(ch, "bob").await;
        for i in 0..3 {
            b.publish(ch, &format!("{{\"n\":{i}}}"))
                .await
                .publish
                .expect("published");
        }
        let h = a
            .call(Command {
                history: Some(HistoryRequest {
                    channel: ch.into(),
                    limit: 10,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .history
            .expect("history");
        assert_eq!(
            h.publications.iter().map(|p| p.offset).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(h.offset, 3);
        assert_eq!(h.epoch, s.epoch);
        let pr = a
            .call(Command {
                presence: Some(PresenceRequest { channel: ch.into() }),
                ..Default::default()
            })
            .await
            .presence
            .expect("presence");
        assert_eq!(pr.presence.len(), 2);
        let st = a
            .call(Command {
                presence_stats: Some(PresenceStatsRequest { channel: ch.into() }),
                ..Default::default()
            })
            .await
            .presence_stats
            .expect("stats");
        assert_eq!((st.num_clients, st.num_users), (2, 2));
        b.call(Command {
            unsubscribe: Some(UnsubscribeRequest { channel: ch.into() }),
            ..Default::default()
        })
        .await
        .unsubscribe
        .expect("unsubscribed");
        loop {
            let p = a.push().await;
            if let Some(leave) = p.leave {
                assert_eq!(leave.info.expect("info").user, "bob");
                break;
            }
        }
    })
    .await;
    srv.stop().await;
}

#[tokio::test]
async fn recovery_returns_exactly_the_missed_publications() {
    let srv = TestServer::start(base_config()).await;
    both(async |pb| {
        let ch = if pb { "chat:rec-pb" } else { "chat:rec-json" };
        let mut a = srv.connected(pb, "a").await;
        let s = a.subscribe(ch).await.subscribe.expect("subscribed");
        let mut b = srv.connected(pb, "b").await;
        b.subscribe(ch).await.subscribe.expect("subscribed");
        b.publish(ch, "1").await.publish.expect("published");
        let got = a.publication(ch).await;
        assert_eq!(got.offset, 1);
        drop(a);
        for i in 2..=4 {
            b.publish(ch, &i.to_string())
                .await
                .publish
                .expect("published");
        }
        let mut a = srv.connected(pb, "a").await;
        let req = SubscribeRequest {
            channel: ch.into(),
            recover: true,
            offset: 1,
            epoch: s.epoch.clone(),
            ..Default::default()
        };
        let r = a.subscribe_with(req).await.subscribe.expect("subscribed");
        assert!(r.recovered && r.was_recovering);
        assert_eq!(r.offset, 1, "offset is the client's own on success");
        assert_eq!(
            r.publications.iter().map(|p| p.offset).collect::<Vec<_>>(),
            vec![2, 3, 4]
        );
        // A wrong epoch is not recovered, and nothing is returned.
        let mut c = srv.connected(pb, "c").await;
        let req = SubscribeRequest {
            channel: ch.into(),
            recover: true,
            offset: 1,
            epoch: "other".into(),
            ..Default::default()
        };
        let r = c.subscribe_with(req).await.subscribe.expect("subscribed");
        assert!(!r.recovered && r.publications.is_empty());
        assert_eq!(r.offset, 4);
    })
    .await;
    srv.stop().await;
}

#[tokio::test]
async fn history_since_epoch_mismatch_is_112_and_reverse_zero_is_107() {
    let srv = TestServer::start(base_config()).await;
    let mut a = srv.connected(false, "a").await;
    a.subscribe("chat:h").await.subscribe.expect("subscribed");
    let since = |epoch: &str, offset| {
        Some(StreamPosition {
            offset,
            epoch: epoch.into(),
        })
    };
    let r = a
        .call(Command {
            history: Some(HistoryRequest {
                channel: "chat:h".into(),
                limit: 5,
                since: since("nope", 0),
                reverse: false,
            }),
            ..Default::default()
        })
        .await;
    assert_eq!(r.error.expect("error").code, 112);
    let r = a
        .call(Command {
            history: Some(HistoryRequest {
                channel: "chat:h".into(),
                limit: 5,
                since: since("", 0),
                reverse: true,
            }),
            ..Default::default()
        })
        .await;
    assert_eq!(r.error.expect("error").code, 107);
    srv.stop().await;
}

#[tokio::test]
async fn refresh_extends_the_connection_and_checks_the_user() {
    let srv = TestServer::start(base_config()).await;
    let mut c = srv.client(false).await;
    c.connect(&token("u1", 60))
        .await
        .connect
        .expect("connected");
    let r = c
        .call(Command {
            refresh: Some(RefreshRequest {
                token: token("u1", 7200),
            }),
            ..Default::default()
        })
        .await;
    let res = r.refresh.expect("refreshed");
    assert!(res.expires && res.ttl > 7000);
    c.send(vec![Command {
        id: 9,
        refresh: Some(RefreshRequest {
            token: token("other", 7200),
        }),
        ..Default::default()
    }])
    .await;
    assert_eq!(c.closed().await.0, 3500);
    srv.stop().await;
}

#[tokio::test]
async fn private_channel_needs_a_subscription_token() {
    let srv = TestServer::start(base_config()).await;
    let mut c = srv.connected(false, "u1").await;
    assert_eq!(
        c.subscribe("$secret:room").await.error.expect("error").code,
        103
    );
    let sub_token = token_with(
        serde_json::json!({"sub": "u1", "channel": "$secret:room", "exp": support::now() + 60}),
    );
    let r = c
        .subscribe_with(SubscribeRequest {
            channel: "$secret:room".into(),
            token: sub_token,
            ..Default::default()
        })
        .await;
    let res = r.subscribe.expect("subscribed with token");
    assert!(res.expires);
    let refresh = token_with(
        serde_json::json!({"sub": "u1", "channel": "$secret:room", "exp": support::now() + 600}),
    );
    let r = c
        .call(Command {
            sub_refresh: Some(SubRefreshRequest {
                channel: "$secret:room".into(),
                token: refresh,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    assert!(r.sub_refresh.expect("refreshed").ttl > 500);
    // Expired subscription token → 109; connection stays.
    let expired = token_with(
        serde_json::json!({"sub": "u1", "channel": "$secret:b", "exp": support::now() - 10}),
    );
    let r = c
        .subscribe_with(SubscribeRequest {
            channel: "$secret:b".into(),
            token: expired,
            ..Default::default()
        })
        .await;
    assert_eq!(r.error.expect("error").code, 109);
    // Badly signed → 103.
    let forged = support::sign(
        "wrong",
        serde_json::json!({"sub": "u1", "channel": "$secret:c"}),
    );
    let r = c
        .subscribe_with(SubscribeRequest {
            channel: "$secret:c".into(),
            token: forged,
            ..Default::default()
        })
        .await;
    assert_eq!(r.error.expect("error").code, 103);
    // Another user's token → 3500.
    let other = token_with(serde_json::json!({"sub": "u2", "channel": "$secret:d"}));
    c.send(vec![Command {
        id: 50,
        subscribe: Some(SubscribeRequest {
            channel: "$secret:d".into(),
            token: other,
            ..Default::default()
        }),
        ..Default::default()
    }])
    .await;
    assert_eq!(c.closed().await.0, 3500);
    srv.stop().await;
}

#[tokio::test]
async fn user_limited_channels() {
    let srv = TestServer::start(base_config()).await;
    let mut c = srv.connected(false, "7").await;
    assert!(c.subscribe("dialog:#7,8").await.subscribe.is_some());
    assert_eq!(
        c.subscribe("dialog:#8,9").await.error.expect("error").code,
        103
    );
    srv.stop().await;
}

#[tokio::test]
async fn server_side_subscriptions_from_token_channels() {
    let srv = TestServer::start(base_config()).await;
    let mut c = srv.client(false).await;
    let t = token_with(serde_json::json!({"sub": "9", "channels": ["chat:srv", "news"]}));
    let res = c.connect(&t).await.connect.expect("connected");
    assert_eq!(
        res.subs.keys().cloned().collect::<Vec<_>>(),
        vec!["chat:srv".to_string(), "news".to_string()]
    );
    assert!(res.subs["chat:srv"].recoverable);
    let mut p = srv.connected(false, "p").await;
    p.subscribe("news").await.subscribe.expect("subscribed");
    p.publish("news", "{}").await.publish.expect("published");
    assert_eq!(&c.publication("news").await.data[..], b"{}");
    srv.stop().await;
}

#[tokio::test]
async fn json_client_cannot_receive_binary_data() {
    let srv = TestServer::start(base_config()).await;
    let mut json = srv.connected(false, "j").await;
    json.subscribe("bin").await.subscribe.expect("subscribed");
    let mut pb = srv.connected(true, "p").await;
    pb.subscribe("bin").await.subscribe.expect("subscribed");
    let req = rotor::proto::client::PublishRequest {
        channel: "bin".into(),
        data: Bytes::from_static(&[0xff, 0]),
        ..Default::default()
    };
    pb.call(Command {
        publish: Some(req),
        ..Default::default()
    })
    .await
    .publish
    .expect("published");
    assert_eq!(json.closed().await.0, 3506);
    srv.stop().await;
}

/// A server-side subscription whose reconnecting client repeats `delta:
/// "fossil"` in `ConnectRequest.subs` gets delta, as a client-side one does:
/// the first publication in full (over JSON as a JSON string), the next as a
/// fossil delta against it.
#[tokio::test]
async fn server_side_subscription_takes_delta_from_connect_subs() {
    let mut cfg = base_config();
    cfg.channel.namespaces.push(support::ns("delta", &|o| {
        o.allow_publish_for_client = true;
        o.history_size = 10;
        o.history_ttl = rotor::config::Duration::from_secs(60);
        o.force_recovery = true;
        o.allowed_delta_types = vec!["fossil".into()];
        o.delta_publish = true;
    }));
    let srv = TestServer::start(cfg).await;
    let doc = |n: u32| format!(r#"{{"doc":"{}","n":{n}}}"#, "x".repeat(400));
    both(async |pb| {
        let channel = support::unique("delta:doc");
        let mut s = srv.client(pb).await;
        let reply = s
            .call(Command {
                connect: Some(rotor::proto::client::ConnectRequest {
                    token: token_with(serde_json::json!({"sub": "s", "channels": [channel]})),
                    subs: [(
                        channel.clone(),
                        SubscribeRequest {
                            recover: true,
                            delta: "fossil".into(),
                            ..Default::default()
                        },
                    )]
                    .into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await;
        let connected = reply.connect.expect("connected");
        assert!(connected.subs[&channel].delta, "{connected:?}");
        let mut p = srv.connected(pb, "p").await;
        for n in 1..=2 {
            assert!(p.publish(&channel, &doc(n)).await.error.is_none());
        }
        let first = s.publication(&channel).await;
        let second = s.publication(&channel).await;
        assert!(!first.delta && second.delta, "{first:?} {second:?}");
        let raw = |data: &Bytes| -> Vec<u8> {
            if pb {
                data.to_vec()
            } else {
                serde_json::from_slice::<String>(data)
                    .expect("a JSON string")
                    .into_bytes()
            }
        };
        let base = raw(&first.data);
        assert_eq!(base, doc(1).into_bytes());
        let patch = raw(&second.data);
        assert!(patch.len() < 100, "a small delta: {} bytes", patch.len());
        let applied = fossil_delta::apply(&base, &patch).expect("valid delta");
        assert_eq!(applied, doc(2).into_bytes());
    })
    .await;
    srv.stop().await;
}

/// Cache recovery with a tags filter sends the newest *matching*
/// publication, not the newest one.
#[tokio::test]
async fn cache_recovery_with_a_tags_filter_sends_the_newest_match() {
    use rotor::proto::client::FilterNode;
    let mut cfg = support::api::api_config();
    cfg.channel.namespaces.push(support::ns("cache", &|o| {
        o.allow_subscribe_for_client = true;
        o.allow_tags_filter = true;
        o.history_size = 10;
        o.history_ttl = rotor::config::Duration::from_secs(60);
        o.force_recovery = true;
        o.force_recovery_mode = rotor::config::RecoveryMode::Cache;
    }));
    let srv = TestServer::start(cfg).await;
    both(async |pb| {
        let channel = support::unique("cache:c");
        for (n, side) in [(1, "buy"), (2, "buy"), (3, "sell")] {
            support::api::call(
                &srv,
                "publish",
                serde_json::json!({"channel": channel, "data": {"n": n}, "tags": {"side": side}}),
            )
            .await;
        }
        let mut c = srv.connected(pb, "u").await;
        let reply = c
            .subscribe_with(SubscribeRequest {
                channel: channel.clone(),
                recover: true,
                tf: Some(FilterNode {
                    key: "side".into(),
                    cmp: "eq".into(),
                    val: "buy".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await;
        let res = reply.subscribe.expect("subscribed");
        assert!(res.recovered, "{res:?}");
        let offsets: Vec<u64> = res.publications.iter().map(|p| p.offset).collect();
        assert_eq!(offsets, [2], "the newest buy, not the newest publication");
        assert_eq!(res.offset, 3);
    })
    .await;
    srv.stop().await;
}
