//! The server API executor on a real node (memory engine), with real
//! WebSocket clients where a method reaches connections.

mod support;

use bytes::Bytes;
use rotor::api::{ApiError, Executor};
use rotor::config::{self, Config};
use rotor::proto::api::*;
use support::{TestServer, base_config, ns, unique};

/// The test config: [`base_config`] plus namespaces for formats, types and
/// history without presence.
fn config() -> Config {
    let mut cfg = base_config();
    cfg.channel.namespaces.extend([
        ns("json", &|o| {
            o.publication_data_format = config::DataFormat::Json
        }),
        ns("object", &|o| {
            o.publication_data_format = config::DataFormat::JsonObject
        }),
        ns("binary", &|o| {
            o.publication_data_format = config::DataFormat::Binary
        }),
        ns("stream", &|o| {
            o.history_size = 3;
            o.history_ttl = config::Duration::from_secs(300);
        }),
    ]);
    cfg
}

async fn start(cfg: Config) -> (TestServer, Executor) {
    let srv = TestServer::start(cfg).await;
    let exec = Executor::new(srv.node.clone());
    (srv, exec)
}

fn publish_req(channel: &str, data: &str) -> PublishRequest {
    PublishRequest {
        channel: channel.into(),
        data: Bytes::copy_from_slice(data.as_bytes()),
        ..Default::default()
    }
}

fn code<T: std::fmt::Debug>(r: Result<T, ApiError>) -> u32 {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code,
    }
}

#[tokio::test]
async fn publish_validates_channel_payload_and_namespace() {
    let (_srv, exec) = start(config()).await;
    assert_eq!(code(exec.publish(publish_req("", "{}")).await), 107);
    assert_eq!(code(exec.publish(publish_req("nope:x", "{}")).await), 102);
    let bad_b64 = PublishRequest {
        b64data: "not base64!".into(),
        ..publish_req("news", "{}")
    };
    assert_eq!(code(exec.publish(bad_b64).await), 107);
    assert!(exec.publish(publish_req("stream:x", "{}")).await.is_ok());
}

#[tokio::test]
async fn publish_checks_the_data_format() {
    let (_srv, exec) = start(config()).await;
    // Default format: anything but empty.
    assert_eq!(code(exec.publish(publish_req("news", "")).await), 107);
    assert!(exec.publish(publish_req("news", "not json")).await.is_ok());
    assert_eq!(code(exec.publish(publish_req("json:a", "{")).await), 107);
    assert!(exec.publish(publish_req("json:a", "[1]")).await.is_ok());
    assert_eq!(
        code(exec.publish(publish_req("object:a", "[1]")).await),
        107
    );
    assert!(
        exec.publish(publish_req("object:a", r#"{"a":1}"#))
            .await
            .is_ok()
    );
    assert!(exec.publish(publish_req("binary:a", "")).await.is_ok());
    let raw = PublishRequest {
        b64data: "AAEC".into(),
        ..publish_req("binary:a", "")
    };
    assert!(exec.publish(raw).await.is_ok());
}

#[tokio::test]
async fn global_data_format_is_the_namespace_default() {
    let mut cfg = config();
    cfg.channel.publication_data_format = config::DataFormat::Json;
    let (_srv, exec) = start(cfg).await;
    assert_eq!(code(exec.publish(publish_req("news", "text")).await), 107);
    assert_eq!(code(exec.publish(publish_req("chat:x", "text")).await), 107);
    assert!(
        exec.publish(publish_req("chat:x", "\"text\""))
            .await
            .is_ok()
    );
    // A namespace's own format wins.
    assert!(exec.publish(publish_req("binary:x", "text")).await.is_ok());
}

#[tokio::test]
async fn publish_reaches_subscribers_and_b64data_wins() {
    let (srv, exec) = start(config()).await;
    let ch = unique("chat:pub");
    let mut c = srv.connected(false, "alice").await;
    assert!(c.subscribe(&ch).await.subscribe.is_some());
    let req = PublishRequest {
        b64data: "eyJiNjQiOnRydWV9".into(), // {"b64":true}
        tags: [("k".to_string(), "v".to_string())].into(),
        ..publish_req(&ch, r#"{"raw":true}"#)
    };
    let res = exec.publish(req).await.expect("published");
    assert_eq!(res.offset, 1);
    assert!(!res.epoch.is_empty());
    let p = c.publication(&ch).await;
    assert_eq!(&p.data[..], br#"{"b64":true}"#);
    assert_eq!(p.offset, 1);
    assert_eq!(p.tags.get("k").map(String::as_str), Some("v"));
    assert!(p.info.is_none(), "server publications carry no client info");
}

#[tokio::test]
async fn skip_history_and_idempotency_key() {
    let (_srv, exec) = start(config()).await;
    let ch = unique("chat:idem");
    let first = exec.publish(publish_req(&ch, "1")).await.expect("ok");
    assert_eq!(first.offset, 1);
    let skipped = PublishRequest {
        skip_history: true,
        ..publish_req(&ch, "2")
    };
    let res = exec.publish(skipped).await.expect("ok");
    assert_eq!((res.offset, res.epoch.as_str()), (0, ""));

    let keyed = |data: &str| PublishRequest {
        idempotency_key: "key-1".into(),
        ..publish_req(&ch, data)
    };
    let a = exec.publish(keyed("3")).await.expect("ok");
    let b = exec.publish(keyed("4")).await.expect("ok");
    assert_eq!(a, b, "a repeated key returns the first result");
    let h = exec
        .history(HistoryRequest {
            channel: ch.clone(),
            limit: -1,
            ..Default::default()
        })
        .await
        .expect("history");
    let data: Vec<&[u8]> = h.publications.iter().map(|p| &p.data[..]).collect();
    assert_eq!(data, vec![&b"1"[..], &b"3"[..]]);
}

/// `version`/`version_epoch` reach the engine: a stale version is not
/// stored and returns the current position.
#[tokio::test]
async fn stale_versions_are_dropped() {
    let (_srv, exec) = start(config()).await;
    let ch = unique("chat:versions");
    let versioned = |data: &str, version: u64| PublishRequest {
        version,
        version_epoch: "e1".into(),
        ..publish_req(&ch, data)
    };
    assert_eq!(exec.publish(versioned("1", 5)).await.expect("ok").offset, 1);
    assert_eq!(exec.publish(versioned("2", 4)).await.expect("ok").offset, 1);
    assert_eq!(exec.publish(versioned("3", 6)).await.expect("ok").offset, 2);
    let h = exec
        .history(HistoryRequest {
            channel: ch.clone(),
            limit: -1,
            ..Default::default()
        })
        .await
        .expect("history");
    let data: Vec<&[u8]> = h.publications.iter().map(|p| &p.data[..]).collect();
    assert_eq!(data, vec![&b"1"[..], &b"3"[..]]);
}

#[tokio::test]
async fn broadcast_answers_per_channel_in_order() {
    let (_srv, exec) = start(config()).await;
    let req = BroadcastRequest {
        channels: vec![
            "chat:b".into(),
            String::new(),
            "nope:b".into(),
            "json:b".into(),
            "news".into(),
        ],
        data: Bytes::from_static(b"plain"),
        ..Default::default()
    };
    let res = exec.broadcast(req).await.expect("broadcast");
    let codes: Vec<Option<u32>> = res
        .responses
        .iter()
        .map(|r| r.error.as_ref().map(|e| e.code))
        .collect();
    assert_eq!(codes, vec![None, Some(107), Some(102), Some(107), None]);
    assert_eq!(res.responses[0].result.as_ref().map(|r| r.offset), Some(1));
    assert_eq!(
        res.responses[2].error.as_ref().map(|e| e.message.as_str()),
        Some("unknown channel")
    );

    let empty = BroadcastRequest::default();
    assert_eq!(code(exec.broadcast(empty).await), 107);
    let bad = BroadcastRequest {
        channels: vec!["news".into()],
        b64data: "***".into(),
        ..Default::default()
    };
    assert_eq!(code(exec.broadcast(bad).await), 107);
}

#[tokio::test]
async fn broadcast_of_many_channels_keeps_order() {
    let (_srv, exec) = start(config()).await;
    let channels: Vec<String> = (0..1500).map(|i| format!("chat:many{i}")).collect();
    let req = BroadcastRequest {
        channels: channels.clone(),
        data: Bytes::from_static(b"{}"),
        ..Default::default()
    };
    let res = exec.broadcast(req).await.expect("broadcast");
    assert_eq!(res.responses.len(), 1500);
    assert!(
        res.responses
            .iter()
            .all(|r| r.result.as_ref().is_some_and(|r| r.offset == 1))
    );
}

#[tokio::test]
async fn presence_and_stats() {
    let (srv, exec) = start(config()).await;
    let presence = |ch: &str| PresenceRequest { channel: ch.into() };
    assert_eq!(code(exec.presence(presence("")).await), 107);
    assert_eq!(code(exec.presence(presence("nope:x")).await), 102);
    assert_eq!(code(exec.presence(presence("closed:x")).await), 108);
    let stats = |ch: &str| PresenceStatsRequest { channel: ch.into() };
    assert_eq!(code(exec.presence_stats(stats("news")).await), 108);

    let ch = unique("chat:who");
    let mut a = srv.connected(false, "alice").await;
    let mut b = srv.connected(true, "alice").await;
    a.subscribe(&ch).await;
    b.subscribe(&ch).await;
    let p = exec.presence(presence(&ch)).await.expect("presence");
    assert_eq!(p.presence.len(), 2);
    for (client, info) in &p.presence {
        assert_eq!(&info.client, client);
        assert_eq!(info.user, "alice");
    }
    let s = exec.presence_stats(stats(&ch)).await.expect("stats");
    assert_eq!((s.num_clients, s.num_users), (2, 1));
}

fn history_req(ch: &str, limit: i32) -> HistoryRequest {
    HistoryRequest {
        channel: ch.into(),
        limit,
        ..Default::default()
    }
}

#[tokio::test]
async fn history_limits_positions_and_errors() {
    let (_srv, exec) = start(config()).await;
    assert_eq!(code(exec.history(history_req("", 0)).await), 107);
    assert_eq!(code(exec.history(history_req("nope:x", 0)).await), 102);
    assert_eq!(code(exec.history(history_req("news", 0)).await), 108);

    let ch = unique("stream:h");
    for i in 1..=5 {
        exec.publish(publish_req(&ch, &i.to_string()))
            .await
            .expect("ok");
    }
    let top = exec.history(history_req(&ch, 0)).await.expect("top");
    assert!(top.publications.is_empty());
    assert_eq!(top.offset, 5);
    let epoch = top.epoch.clone();

    // history_size 3 keeps the newest three.
    let all = exec.history(history_req(&ch, -1)).await.expect("all");
    let offsets: Vec<u64> = all.publications.iter().map(|p| p.offset).collect();
    assert_eq!(offsets, vec![3, 4, 5]);
    let two = exec.history(history_req(&ch, 2)).await.expect("two");
    assert_eq!(two.publications.len(), 2);

    let since = |offset, epoch: &str, reverse| HistoryRequest {
        channel: ch.clone(),
        limit: -1,
        since: Some(StreamPosition {
            offset,
            epoch: epoch.into(),
        }),
        reverse,
    };
    let after = exec.history(since(3, &epoch, false)).await.expect("since");
    let offsets: Vec<u64> = after.publications.iter().map(|p| p.offset).collect();
    assert_eq!(offsets, vec![4, 5]);
    let before = exec.history(since(5, &epoch, true)).await.expect("reverse");
    let offsets: Vec<u64> = before.publications.iter().map(|p| p.offset).collect();
    assert_eq!(offsets, vec![4, 3]);
    assert_eq!(code(exec.history(since(3, "other", false)).await), 112);
}

#[tokio::test]
async fn history_remove_keeps_the_stream_position() {
    let (_srv, exec) = start(config()).await;
    let remove = |ch: &str| HistoryRemoveRequest { channel: ch.into() };
    assert_eq!(code(exec.history_remove(remove("")).await), 107);
    assert_eq!(code(exec.history_remove(remove("nope:x")).await), 102);
    assert_eq!(code(exec.history_remove(remove("news")).await), 108);

    let ch = unique("chat:rm");
    exec.publish(publish_req(&ch, "1")).await.expect("ok");
    exec.publish(publish_req(&ch, "2")).await.expect("ok");
    exec.history_remove(remove(&ch)).await.expect("removed");
    let h = exec.history(history_req(&ch, -1)).await.expect("history");
    assert!(h.publications.is_empty());
    assert_eq!(h.offset, 2);
}

#[tokio::test]
async fn rpc_has_no_methods() {
    let (_srv, exec) = start(config()).await;
    let rpc = |m: &str| RpcRequest {
        method: m.into(),
        params: Bytes::from_static(b"{}"),
    };
    assert_eq!(code(exec.rpc(rpc("")).await), 107);
    assert_eq!(code(exec.rpc(rpc("ping")).await), 104);
}

#[tokio::test]
async fn info_names_this_node() {
    let (srv, exec) = start(config()).await;
    let info = exec.info(InfoRequest {}).await.expect("info");
    assert_eq!(info.nodes.len(), 1);
    let n = &info.nodes[0];
    assert_eq!(n.version, format!("{} OSS", env!("CARGO_PKG_VERSION")));
    assert_eq!(n.uid, srv.node.id);
    assert_eq!(n.name, srv.node.name);
    assert!(n.metrics.is_none() && n.process.is_none());
}

#[tokio::test]
async fn channels_rejects_an_invalid_pattern() {
    let (_srv, exec) = start(config()).await;
    let req = ChannelsRequest {
        pattern: "chat:[".into(),
    };
    assert_eq!(code(exec.channels(req).await), 100);
}

#[tokio::test]
async fn control_methods_validate_channels() {
    let (_srv, exec) = start(config()).await;
    let sub = |ch: &str| SubscribeRequest {
        channel: ch.into(),
        user: "u".into(),
        ..Default::default()
    };
    assert_eq!(code(exec.subscribe(sub("")).await), 107);
    assert_eq!(code(exec.subscribe(sub("nope:x")).await), 102);
    let bad = SubscribeRequest {
        b64data: "!!".into(),
        ..sub("chat:x")
    };
    assert_eq!(code(exec.subscribe(bad).await), 107);
    let unsub = |ch: &str| UnsubscribeRequest {
        channel: ch.into(),
        user: "u".into(),
        ..Default::default()
    };
    assert_eq!(code(exec.unsubscribe(unsub("nope:x")).await), 102);
    assert!(exec.unsubscribe(unsub("")).await.is_ok());
}

// ---------------------------------------------------------------------------
// Methods acting on live connections (need the node control bodies).

/// Connects `user` and returns the client with its client id.
async fn client_of(srv: &TestServer, user: &str) -> (support::WsClient, String) {
    let mut c = srv.client(false).await;
    let reply = c.connect(&support::token(user, 3600)).await;
    let id = reply.connect.map(|r| r.client).expect("connected");
    (c, id)
}

#[tokio::test]
async fn subscribe_pushes_to_the_users_connections() {
    let (srv, exec) = start(config()).await;
    let ch = unique("chat:srv");
    let (mut c, _) = client_of(&srv, "bob").await;
    let req = SubscribeRequest {
        channel: ch.clone(),
        user: "bob".into(),
        data: Bytes::from_static(br#"{"hello":1}"#),
        ..Default::default()
    };
    exec.subscribe(req).await.expect("subscribed");
    let push = c.push().await;
    assert_eq!(push.channel, ch);
    let sub = push.subscribe.expect("subscribe push");
    assert_eq!(&sub.data[..], br#"{"hello":1}"#);
    exec.publish(publish_req(&ch, "{}")).await.expect("ok");
    assert_eq!(c.publication(&ch).await.offset, 1);
}

#[tokio::test]
async fn unsubscribe_pushes_server_unsubscribe() {
    let (srv, exec) = start(config()).await;
    let ch = unique("chat:unsub");
    let (mut c, _) = client_of(&srv, "bob").await;
    assert!(c.subscribe(&ch).await.subscribe.is_some());
    let req = UnsubscribeRequest {
        channel: ch.clone(),
        user: "bob".into(),
        ..Default::default()
    };
    exec.unsubscribe(req).await.expect("unsubscribed");
    // The channel pushes joins to subscribers, so skip to the unsubscribe.
    let unsub = loop {
        let push = c.push().await;
        if push.channel == ch
            && let Some(u) = push.unsubscribe
        {
            break u;
        }
    };
    assert_eq!(unsub.code, 2000);
}

#[tokio::test]
async fn disconnect_defaults_to_force_disconnect_and_honours_whitelist() {
    let (srv, exec) = start(config()).await;
    let (mut a, _) = client_of(&srv, "carol").await;
    let req = DisconnectRequest {
        user: "carol".into(),
        ..Default::default()
    };
    exec.disconnect(req).await.expect("disconnected");
    assert_eq!(a.closed().await, (3503, "force disconnect".to_string()));

    let (mut keep, keep_id) = client_of(&srv, "carol").await;
    let (mut gone, _) = client_of(&srv, "carol").await;
    let req = DisconnectRequest {
        user: "carol".into(),
        disconnect: Some(Disconnect {
            code: 4000,
            reason: "bye".into(),
        }),
        whitelist: vec![keep_id],
        ..Default::default()
    };
    exec.disconnect(req).await.expect("disconnected");
    assert_eq!(gone.closed().await, (4000, "bye".to_string()));
    assert!(
        keep.subscribe(&unique("chat:still"))
            .await
            .subscribe
            .is_some()
    );
}

#[tokio::test]
async fn refresh_expired_closes_with_3005() {
    let (srv, exec) = start(config()).await;
    let (mut c, id) = client_of(&srv, "dave").await;
    let req = RefreshRequest {
        user: "dave".into(),
        client: id,
        expired: true,
        ..Default::default()
    };
    exec.refresh(req).await.expect("refreshed");
    assert_eq!(c.closed().await.0, 3005);
}

#[tokio::test]
async fn info_counts_clients_users_channels_and_subs() {
    let (srv, exec) = start(config()).await;
    let (mut a, _) = client_of(&srv, "alice").await;
    let (mut b, _) = client_of(&srv, "bob").await;
    let (_c, _) = client_of(&srv, "bob").await;
    a.subscribe("chat:i").await;
    b.subscribe("chat:i").await;
    b.subscribe("news").await;
    let info = exec.info(InfoRequest {}).await.expect("info");
    let n = &info.nodes[0];
    assert_eq!(
        (n.num_clients, n.num_users, n.num_channels, n.num_subs),
        (3, 2, 2, 3)
    );
}

#[tokio::test]
async fn channels_lists_subscribed_channels_matching_the_pattern() {
    let (srv, exec) = start(config()).await;
    let (mut a, _) = client_of(&srv, "alice").await;
    let (mut b, _) = client_of(&srv, "bob").await;
    a.subscribe("chat:one").await;
    b.subscribe("chat:one").await;
    b.subscribe("news").await;
    let all = exec
        .channels(ChannelsRequest::default())
        .await
        .expect("channels");
    let mut names: Vec<&String> = all.channels.keys().collect();
    names.sort();
    assert_eq!(names, vec!["chat:one", "news"]);
    let chat = exec
        .channels(ChannelsRequest {
            pattern: "chat:*".into(),
        })
        .await
        .expect("channels");
    assert_eq!(chat.channels.len(), 1);
    assert_eq!(
        chat.channels.get("chat:one").map(|c| c.num_clients),
        Some(2)
    );
}
