//! Server API batches over HTTP (`/api/batch`, the legacy `POST /api`) and
//! gRPC (`Batch`): what is accepted, that a malformed command anywhere
//! means nothing runs, reply order under `parallel` with a small window,
//! streamed replies byte for byte as one encoding would give them, and the
//! `middleware.batch.max_commands` cap (413 / `RESOURCE_EXHAUSTED`).

mod support;

use prost::Message as _;
use rotor::config::Config;
use rotor::proto::api::{BatchRequest, BatchResponse, Command, InfoRequest, PublishRequest};
use serde_json::{Value, json};
use support::TestServer;
use support::api::{API_KEY, api_config, call, grpc_channel, grpc_client, post, with_key};
use support::grpc_raw;
use tonic::Code;

/// The publications in `channel`'s history.
async fn history_len(srv: &TestServer, channel: &str) -> usize {
    let v = call(srv, "history", json!({"channel": channel, "limit": 100})).await;
    v.pointer("/result/publications")
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

fn publish_json(channel: &str) -> Value {
    json!({"publish": {"channel": channel, "data": {"n": 1}}})
}

#[tokio::test]
async fn empty_batches_and_what_is_refused_are_as_before() {
    let srv = TestServer::start(api_config()).await;
    for empty in [
        "{}",
        "null",
        " {\"commands\":null} ",
        "{\"commands\":[ ]}",
        "{\"commands\":[],\"parallel\":null,\"other\":[1]}",
    ] {
        let r = post(&srv, "/api/batch", empty).await;
        assert_eq!((r.status, r.body.as_str()), (200, "{}"), "{empty:?}");
    }
    for bad in [
        "[]",
        "1",
        "{\"commands\":{}}",
        "{\"commands\":[1]}",
        "{\"commands\":[{}],\"parallel\":1}",
        "{\"commands\":[{},]}",
        "{\"commands\":[{}]} x",
        "{\"commands\":[{}],\"commands\":[]}",
    ] {
        let r = post(&srv, "/api/batch", bad).await;
        assert_eq!((r.status, r.body.as_str()), (400, "Bad Request"), "{bad:?}");
    }
    srv.stop().await;
}

/// Command `i` of the order tests and the reply it must get.
fn command(i: usize) -> (Value, &'static str) {
    match i % 4 {
        0 => (json!({}), "104"),
        1 => (Value::Null, "107"),
        2 => (json!({"info": {}}), "info"),
        _ => (json!({"history": {"channel": "nope:x"}}), "102"),
    }
}

fn kind(reply: &Value) -> &'static str {
    match reply.pointer("/error/code").and_then(Value::as_u64) {
        Some(104) => "104",
        Some(107) => "107",
        Some(102) => "102",
        Some(_) => "error",
        None if reply.get("info").is_some() => "info",
        None => "other",
    }
}

#[tokio::test]
async fn long_batches_stream_in_order_byte_for_byte() {
    let mut cfg = api_config();
    cfg.middleware.batch.max_parallel = 3;
    let srv = TestServer::start(cfg).await;
    let n = 4000;
    let commands: Vec<Value> = (0..n).map(|i| command(i).0).collect();
    for parallel in [false, true] {
        let body = json!({"commands": commands, "parallel": parallel}).to_string();
        let r = post(&srv, "/api/batch", &body).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.content_type, "application/json");
        assert!(r.body.len() > 64 << 10, "long enough to be streamed");
        let v = r.json();
        let replies = v["replies"].as_array().expect("replies");
        assert_eq!(replies.len(), n);
        for (i, reply) in replies.iter().enumerate() {
            assert_eq!(kind(reply), command(i).1, "reply {i}: {reply}");
        }
        // What one `serde_json` encoding of these replies gives.
        let decoded: BatchResponse = serde_json::from_str(&r.body).expect("BatchResponse");
        assert_eq!(serde_json::to_string(&decoded).expect("json"), r.body);
    }
    srv.stop().await;
}

#[tokio::test]
async fn a_malformed_command_means_nothing_runs() {
    let srv = TestServer::start(api_config()).await;
    let body = json!({"commands": [publish_json("chat:b"), {"publish": 1}]}).to_string();
    let r = post(&srv, "/api/batch", &body).await;
    assert_eq!((r.status, r.body.as_str()), (400, "Bad Request"));
    let legacy = "{\"method\":\"publish\",\"params\":{\"channel\":\"chat:l\",\"data\":{}}}\n[1]";
    let r = post(&srv, "/api", legacy).await;
    assert_eq!((r.status, r.body.as_str()), (400, "Bad Request"));

    let mut raw = BatchRequest {
        commands: vec![Command {
            publish: Some(PublishRequest {
                channel: "chat:g".into(),
                data: b"{}".to_vec().into(),
                ..Default::default()
            }),
            ..Default::default()
        }],
        parallel: false,
    }
    .encode_to_vec();
    raw.extend_from_slice(&[0x0a, 0x04, 0x22]);
    let prost_error = BatchRequest::decode(&raw[..]).expect_err("malformed");
    let status = grpc_raw::unary(grpc_channel(&srv).await, grpc_raw::BATCH, raw, API_KEY)
        .await
        .expect_err("malformed");
    assert_eq!(status.code(), Code::Internal);
    assert_eq!(status.message(), prost_error.to_string());

    for channel in ["chat:b", "chat:l", "chat:g"] {
        assert_eq!(history_len(&srv, channel).await, 0, "{channel}");
    }
    // Well formed, the same publish does run.
    let body = json!({"commands": [publish_json("chat:b")]}).to_string();
    assert_eq!(post(&srv, "/api/batch", &body).await.status, 200);
    assert_eq!(history_len(&srv, "chat:b").await, 1);
    srv.stop().await;
}

fn capped(max_commands: usize) -> Config {
    let mut cfg = api_config();
    cfg.middleware.batch.max_commands = max_commands;
    cfg
}

#[tokio::test]
async fn max_commands_caps_every_batch_endpoint() {
    let srv = TestServer::start(capped(2)).await;
    let two = json!({"commands": [{}, {}]}).to_string();
    let v = post(&srv, "/api/batch", &two).await.json();
    assert_eq!(v["replies"].as_array().map(Vec::len), Some(2));
    let three = json!({"commands": [publish_json("chat:cap"), {}, {}]}).to_string();
    let r = post(&srv, "/api/batch", &three).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (413, "too many commands in batch")
    );
    let legacy = "{\"method\":\"info\"}\n{\"method\":\"info\"}\n{\"method\":\"info\"}";
    assert_eq!(post(&srv, "/api", legacy).await.status, 413);
    let legacy_two = "{\"method\":\"info\"}\n{\"method\":\"info\"}";
    assert_eq!(post(&srv, "/api", legacy_two).await.status, 200);

    let mut c = grpc_client(&srv).await;
    let batch = |n: usize| {
        with_key(BatchRequest {
            commands: vec![Command::default(); n],
            parallel: true,
        })
    };
    let replies = c.batch(batch(2)).await.expect("within the cap");
    assert_eq!(replies.into_inner().replies.len(), 2);
    let status = c.batch(batch(3)).await.expect_err("over the cap");
    assert_eq!(
        (status.code(), status.message()),
        (Code::ResourceExhausted, "too many commands in batch")
    );
    assert_eq!(history_len(&srv, "chat:cap").await, 0);
    srv.stop().await;
}

#[tokio::test]
async fn grpc_batch_keeps_order_with_a_small_window() {
    let mut cfg = api_config();
    cfg.middleware.batch.max_parallel = 3;
    let srv = TestServer::start(cfg).await;
    let mut c = grpc_client(&srv).await;
    let commands: Vec<Command> = (0..300)
        .map(|i| match i % 3 {
            0 => Command::default(),
            1 => Command {
                info: Some(InfoRequest {}),
                ..Default::default()
            },
            _ => Command {
                rpc: Some(Default::default()),
                ..Default::default()
            },
        })
        .collect();
    let mut runs = Vec::new();
    for parallel in [false, true] {
        let req = with_key(BatchRequest {
            commands: commands.clone(),
            parallel,
        });
        let replies = c.batch(req).await.expect("batch").into_inner().replies;
        assert_eq!(replies.len(), commands.len());
        let kinds: Vec<(Option<u32>, bool)> = replies
            .iter()
            .map(|r| (r.error.as_ref().map(|e| e.code), r.info.is_some()))
            .collect();
        for (i, k) in kinds.iter().enumerate() {
            match i % 3 {
                0 => assert_eq!(*k, (Some(104), false), "reply {i}"),
                1 => assert!(k.1 || k.0.is_some(), "reply {i}"),
                _ => assert!(k.0.is_some() && k.0 != Some(104), "reply {i}"),
            }
        }
        runs.push(kinds);
    }
    assert_eq!(runs[0], runs[1], "parallel replies in command order");
    srv.stop().await;
}
