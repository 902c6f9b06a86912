//! Unit tests of the raw `Batch` path: the check pass agrees with prost's
//! decoder, the lazy commands are the decoded ones, and the reply chunks
//! are the bytes of an encoded `BatchResponse`.

use super::*;
use crate::api::ApiError;
use crate::api::gateway::error_reply;
use crate::proto::api::PublishRequest;

fn request(commands: Vec<Command>, parallel: bool) -> Vec<u8> {
    BatchRequest { commands, parallel }.encode_to_vec()
}

fn publish(channel: &str) -> Command {
    Command {
        publish: Some(PublishRequest {
            channel: channel.into(),
            data: Bytes::from_static(b"{}"),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn the_check_agrees_with_prost() {
    let mut unknown = request(vec![Command::default()], true);
    unknown.extend_from_slice(&[0x18, 0x05, 0x22, 0x01, 0x00]);
    let bodies: Vec<Vec<u8>> = vec![
        vec![],
        request(vec![Command::default(); 3], false),
        request(vec![publish("a"), publish("b")], true),
        unknown,
        vec![0x0a],
        vec![0x0a, 0x05, 0x00],
        vec![0x08, 0x01],
        vec![0x12, 0x00],
        vec![0x10],
        vec![0x00],
        vec![0x0a, 0x02, 0x22, 0x05],
        vec![0x0a, 0x02, 0x20, 0x01],
        vec![0x0a, 0x03, 0x22, 0x01, 0x0a],
        vec![0x0a, 0x00, 0x1c],
    ];
    for body in bodies {
        let ours = check(&body, BatchLimits::default());
        match (BatchRequest::decode(&body[..]), ours) {
            (Ok(req), Ok(checked)) => assert_eq!(
                checked,
                Checked {
                    count: req.commands.len(),
                    parallel: req.parallel
                },
                "{body:?}"
            ),
            (Err(e), Err(status)) => {
                assert_eq!(status.code(), tonic::Code::Internal, "{body:?}");
                assert_eq!(status.message(), e.to_string(), "{body:?}");
            }
            (theirs, ours) => panic!("{body:?}: prost {theirs:?}, check {ours:?}"),
        }
    }
}

#[test]
fn the_cap_is_counted_while_checking() {
    let limits = BatchLimits {
        max_commands: 2,
        ..Default::default()
    };
    let two = request(vec![Command::default(); 2], false);
    assert_eq!(check(&two, limits).map(|c| c.count).ok(), Some(2));
    // Over the cap before the malformed tail is reached.
    let mut three = request(vec![Command::default(); 3], false);
    three.push(0x0a);
    let status = check(&three, limits).expect_err("over the cap");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
}

#[test]
fn commands_are_decoded_lazily_in_order() {
    let mut body = request(vec![publish("a"), Command::default(), publish("c")], true);
    body.extend_from_slice(&[0x18, 0x07]);
    let cmds: Vec<Option<Command>> = decode_commands(Bytes::from(body)).collect();
    assert_eq!(
        cmds,
        vec![
            Some(publish("a")),
            Some(Command::default()),
            Some(publish("c"))
        ]
    );
}

#[test]
fn reply_chunks_are_an_encoded_batch_response() {
    let mut replies = Vec::new();
    for i in 0..20_000u32 {
        replies.push(match i % 3 {
            0 => error_reply(ApiError::not_found()),
            1 => Reply::default(),
            _ => Reply {
                info: Some(Default::default()),
                ..Default::default()
            },
        });
    }
    let mut out = Replies::default();
    for r in &replies {
        out.push(r);
    }
    out.seal();
    assert!(out.chunks.len() > 1, "several chunks");
    let ours: Vec<u8> = out.chunks.concat();
    assert_eq!(ours.len(), out.len);
    assert_eq!(ours, BatchResponse { replies }.encode_to_vec());
    assert!(Replies::default().chunks.is_empty());
}

#[test]
fn only_the_batch_path_is_taken() {
    assert!(is_batch("/centrifugal.centrifugo.api.CentrifugoApi/Batch"));
    for other in [
        "/centrifugal.centrifugo.api.CentrifugoApi/Publish",
        "/centrifugal.centrifugo.api.CentrifugoApi/Batch/",
        "/other.Service/Batch",
        "centrifugal.centrifugo.api.CentrifugoApi/Batch",
    ] {
        assert!(!is_batch(other), "{other}");
    }
}

#[tokio::test]
async fn the_generated_batch_method_shares_the_runner_and_the_cap() {
    use crate::proto::api::centrifugo_api_server::CentrifugoApi;
    let node = crate::node::Node::new(crate::config::Config::default())
        .await
        .expect("node");
    let limits = BatchLimits {
        max_parallel: 2,
        max_commands: 3,
    };
    let api = GrpcApi::new(Arc::new(Executor::new(node)), false, limits);
    let commands = vec![Command::default(), publish(""), Command::default()];
    let req = BatchRequest {
        commands,
        parallel: true,
    };
    let replies = api
        .batch(Request::new(req))
        .await
        .expect("within the cap")
        .into_inner()
        .replies;
    let codes: Vec<Option<u32>> = replies
        .iter()
        .map(|r| r.error.as_ref().map(|e| e.code))
        .collect();
    assert_eq!(codes.len(), 3);
    assert_eq!((codes[0], codes[2]), (Some(104), Some(104)));
    assert!(codes[1].is_some_and(|c| c != 104), "{codes:?}");
    let over = BatchRequest {
        commands: vec![Command::default(); 4],
        parallel: false,
    };
    let status = api.batch(Request::new(over)).await.expect_err("over");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
}
