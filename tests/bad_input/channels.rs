//! Subscribe, publish, history and presence errors.

use crate::support::{TestServer, assert_healthy, base_config, unique};
use rotor::proto::client::{Command, HistoryRequest, PresenceRequest, PresenceStatsRequest};

use super::*;

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
async fn unknown_delta_type_is_3501() {
    let srv = TestServer::start(base_config()).await;
    both(async |pb| {
        let mut c = srv.connected(pb, "u").await;
        let mut cmd = subscribe_cmd(4, &unique("delta"));
        if let Some(s) = cmd.subscribe.as_mut() {
            s.delta = "xdelta".into();
        }
        command_closes(&mut c, cmd, 3501).await;
    })
    .await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn bad_tags_filters_are_107_and_connection_stays() {
    use rotor::proto::client::{FilterNode, SubscribeRequest};
    let leaf = |cmp: &str, val: &str| FilterNode {
        key: "k".into(),
        cmp: cmp.into(),
        val: val.into(),
        ..Default::default()
    };
    let mut deep = leaf("ex", "");
    for _ in 0..40 {
        deep = FilterNode {
            op: "not".into(),
            nodes: vec![deep],
            ..Default::default()
        };
    }
    let wide = FilterNode {
        op: "or".into(),
        nodes: vec![leaf("eq", "v"); 1000],
        ..Default::default()
    };
    let mut cfg = base_config();
    cfg.channel
        .namespaces
        .push(crate::support::ns("tags", &|o| {
            o.allow_subscribe_for_client = true;
            o.allow_tags_filter = true;
        }));
    let srv = TestServer::start(cfg).await;
    both(async |pb| {
        let mut c = srv.connected(pb, "u").await;
        let cases = [
            ("tags", leaf("like", "v"), "unknown comparison"),
            ("tags", leaf("eq", ""), "eq without a value"),
            ("tags", deep.clone(), "41 levels deep"),
            ("tags", wide.clone(), "1,001 nodes"),
            (
                "chat",
                leaf("eq", "v"),
                "namespace without allow_tags_filter",
            ),
        ];
        for (ns, tf, what) in cases {
            let req = SubscribeRequest {
                channel: unique(&format!("{ns}:f")),
                tf: Some(tf),
                ..Default::default()
            };
            assert_eq!(code(&c.subscribe_with(req).await), 107, "{what}");
        }
        // The connection still works.
        assert!(c.subscribe(&unique("tags:ok")).await.error.is_none());
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
