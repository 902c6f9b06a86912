//! The HTTP API's batch endpoints, `POST <prefix>/batch` and the legacy
//! newline-separated `POST <prefix>`, in memory bounded by the request
//! body. A request is checked whole first by the same decoder as before,
//! each command decoded and dropped (one that does not decode is a 400 and
//! nothing runs; more than `middleware.batch.max_commands` is a 413); then
//! each command is decoded again just before it runs and the replies are
//! streamed out in chunks, byte for byte what encoding them all at once
//! used to give.

use std::fmt;
use std::pin::pin;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::api::ApiError;
use crate::api::batch;
use crate::api::chunked::{self, ChunkWriter};
use crate::api::executor::Executor;
use crate::api::gateway::{legacy_call, legacy_method};
use crate::api::http::{HttpApi, bad_request, decode_body, encode, text};
use crate::api::json_walk::{self, JsonArray};
use crate::config::BatchLimits;
use crate::middleware::{Protocol, Refusal};
use crate::proto::api::{BatchResponse, Command, Error, Reply};

/// Decoded commands the check pass keeps (a prost `Command` is a few
/// kilobytes, so this bounds what a batch holds decoded at once).
const KEPT: usize = 128;

/// The HTTP form of `BatchRequest` as the check pass decodes it: every
/// command is decoded, the first [`KEPT`] are kept and the rest dropped
/// (a `null` element counts: it answers 107 instead of failing the whole
/// body). Unknown keys are ignored and `null` means empty.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct HttpBatch {
    #[serde(deserialize_with = "check_commands")]
    commands: Checked,
    #[serde(deserialize_with = "crate::proto::nullable")]
    parallel: bool,
}

/// What the check pass learnt of `commands`.
#[derive(Debug, Default)]
struct Checked {
    /// How many there are.
    count: usize,
    /// The first [`KEPT`] of them, decoded.
    head: Vec<Option<Command>>,
}

/// Decodes `commands` exactly as `Option<Vec<Option<Command>>>` would,
/// keeping the count and the first [`KEPT`].
fn check_commands<'de, D: Deserializer<'de>>(d: D) -> Result<Checked, D::Error> {
    struct Commands;
    impl<'de> Visitor<'de> for Commands {
        type Value = Checked;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of commands")
        }

        fn visit_none<E>(self) -> Result<Checked, E> {
            Ok(Checked::default())
        }

        fn visit_unit<E>(self) -> Result<Checked, E> {
            Ok(Checked::default())
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Checked, D::Error> {
            d.deserialize_seq(self)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
            let mut checked = Checked::default();
            while let Some(cmd) = seq.next_element::<Option<Command>>()? {
                if checked.count < KEPT {
                    checked.head.push(cmd);
                }
                checked.count += 1;
            }
            Ok(checked)
        }
    }
    d.deserialize_option(Commands)
}

/// 413: more commands than `middleware.batch.max_commands`.
fn too_many() -> Response {
    Refusal::TOO_MANY_COMMANDS.response(Protocol::Http, None)
}

/// Checks a whole batch body before any command runs: 400 unless it
/// decodes (every command included), 413 past `limits.max_commands`.
fn check_batch(body: &[u8], limits: BatchLimits) -> Result<HttpBatch, Response> {
    let req = decode_body::<HttpBatch>(body).ok_or_else(bad_request)?;
    if limits.too_many(req.commands.count) {
        return Err(too_many());
    }
    Ok(req)
}

/// The commands of a checked batch after the first `skip`, each decoded
/// when it is reached.
fn decode_commands(
    commands: &[u8],
    skip: usize,
) -> impl Iterator<Item = Option<Command>> + Send + '_ {
    JsonArray::new(commands)
        .into_iter()
        .flatten()
        .map_while(Result::ok)
        .skip(skip)
        // Checked already, so this cannot fail; if it did, the command
        // would answer 107 like a `null` one.
        .map(|e| serde_json::from_slice(e).unwrap_or(None))
}

/// A reply of error 100 (batch and legacy alike), for a reply that cannot
/// be encoded as JSON (raw data that is not JSON): the head is sent
/// already, so the batch can no longer turn into a 500.
const INTERNAL_REPLY: &[u8] = br#"{"error":{"code":100,"message":"internal server error"}}"#;

/// Appends `v` as JSON, or `fallback` when it cannot be encoded.
fn write_json(buf: &mut Vec<u8>, v: &impl Serialize, fallback: &[u8]) {
    let mark = buf.len();
    if serde_json::to_writer(&mut *buf, v).is_err() {
        buf.truncate(mark);
        buf.extend_from_slice(fallback);
    }
}

/// Streams `{"replies":[…]}` (the JSON of a non-empty `BatchResponse`).
async fn write_replies(
    out: &mut ChunkWriter,
    mut replies: impl futures_util::Stream<Item = Reply> + Unpin,
) -> bool {
    out.buf().extend_from_slice(b"{\"replies\":[");
    let mut first = true;
    while let Some(reply) = replies.next().await {
        if !first {
            out.buf().push(b',');
        }
        first = false;
        write_json(out.buf(), &reply, INTERNAL_REPLY);
        if !out.flush_full().await {
            return false;
        }
    }
    out.buf().extend_from_slice(b"]}");
    true
}

/// `POST <prefix>/batch`: never in transport error mode.
pub(crate) async fn batch(State(api): State<HttpApi>, body: Bytes) -> Response {
    let HttpBatch { commands, parallel } = match check_batch(&body, api.batch) {
        Ok(req) if req.commands.count == 0 => {
            return encode(StatusCode::OK, &BatchResponse::default());
        }
        Ok(req) => req,
        Err(refusal) => return refusal,
    };
    let Checked { count, head } = commands;
    // The rest of the array, when the head is not all of it. Decoded once
    // already, so the object and its array are well formed.
    let rest = if count > head.len() {
        json_walk::member(&body, "commands").map(|range| body.slice(range))
    } else {
        None
    };
    let (ex, limits) = (api.executor, api.batch);
    chunked::respond(move |mut out| async move {
        let skip = head.len();
        let rest = rest.iter().flat_map(|rest| decode_commands(rest, skip));
        let commands = head.into_iter().chain(rest);
        let replies = pin!(batch::replies(&ex, commands, parallel, limits));
        if write_replies(&mut out, replies).await {
            out.finish().await;
        }
    })
    .await
}

/// One command of the legacy protocol, borrowed from the body.
#[derive(Deserialize)]
struct LegacyCommand<'a> {
    #[serde(default)]
    id: u32,
    #[serde(default)]
    method: serde_json::Value,
    #[serde(default, borrow)]
    params: Option<&'a RawValue>,
}

/// One reply of the legacy protocol.
#[derive(Serialize)]
struct LegacyReply {
    #[serde(skip_serializing_if = "crate::proto::is_default")]
    id: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Error>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<Box<RawValue>>,
}

/// The commands of a legacy body in order: JSON objects one after another
/// (usually a line each); `None` for a value that is not a command.
fn legacy_commands(body: &[u8]) -> impl Iterator<Item = Option<LegacyCommand<'_>>> + Send + '_ {
    serde_json::Deserializer::from_slice(body)
        .into_iter::<&RawValue>()
        .map(|value| {
            value
                .ok()
                .filter(|raw| raw.get().starts_with('{'))
                .and_then(|raw| serde_json::from_str::<LegacyCommand>(raw.get()).ok())
        })
}

/// `POST <prefix>`: newline-separated `{"id","method","params"}` commands,
/// answered by newline-joined replies in order. Any command that does not
/// decode makes the whole request a 400 before anything runs.
pub(crate) async fn legacy(State(api): State<HttpApi>, body: Bytes) -> Response {
    if api.shutdown.is_cancelled() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return bad_request();
    }
    let mut count = 0;
    for cmd in legacy_commands(&body) {
        if cmd.is_none() {
            return bad_request();
        }
        count += 1;
        if api.batch.too_many(count) {
            return too_many();
        }
    }
    let ex = api.executor;
    chunked::respond(move |mut out| async move {
        // Checked already: every value is a command.
        for (i, cmd) in legacy_commands(&body)
            .map_while(std::convert::identity)
            .enumerate()
        {
            let reply = legacy_one(&ex, cmd).await;
            if i > 0 {
                out.buf().push(b'\n');
            }
            write_json(out.buf(), &reply, INTERNAL_REPLY);
            if !out.flush_full().await {
                return;
            }
        }
        out.finish().await;
    })
    .await
}

async fn legacy_one(ex: &Executor, cmd: LegacyCommand<'_>) -> LegacyReply {
    let name = match &cmd.method {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    let params = cmd.params.map_or(&b""[..], |p| p.get().as_bytes());
    let outcome = match legacy_method(&name) {
        Some(m) => legacy_call(ex, m.name, params).await,
        None => Err(ApiError::not_found()),
    };
    let (error, result) = match outcome {
        Ok(bytes) => match String::from_utf8(bytes)
            .ok()
            .and_then(|s| RawValue::from_string(s).ok())
        {
            Some(raw) => (None, Some(raw)),
            None => (Some(ApiError::internal().into()), None),
        },
        Err(e) => (Some(e.into()), None),
    };
    LegacyReply {
        id: cmd.id,
        error,
        result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::gateway::error_reply;

    #[test]
    fn fallback_replies_are_what_serde_writes() {
        let reply = error_reply(ApiError::internal());
        assert_eq!(
            serde_json::to_vec(&reply).expect("json"),
            INTERNAL_REPLY.to_vec()
        );
        let legacy = LegacyReply {
            id: 0,
            error: Some(ApiError::internal().into()),
            result: None,
        };
        assert_eq!(
            serde_json::to_vec(&legacy).expect("json"),
            INTERNAL_REPLY.to_vec()
        );
    }

    #[test]
    fn checking_counts_refuses_and_caps() {
        let limits = BatchLimits::default();
        for (body, expected) in [
            (&b"null"[..], (0, false)),
            (b"{}", (0, false)),
            (br#"{"commands":null,"parallel":null}"#, (0, false)),
            (br#"{"commands":[],"parallel":true}"#, (0, true)),
            (
                br#"{"x":[1],"commands":[{}, null, {"info":{}}]}"#,
                (3, false),
            ),
        ] {
            let req = check_batch(body, limits)
                .ok()
                .map(|r| (r.commands.count, r.parallel));
            assert_eq!(req, Some(expected));
        }
        for bad in [
            &b"[]"[..],
            br#"{"commands":{}}"#,
            br#"{"commands":1}"#,
            br#"{"commands":[{"info":1}]}"#,
            br#"{"commands":[1]}"#,
            br#"{"commands":[],"commands":[]}"#,
            br#"{"commands":[]} x"#,
        ] {
            let r = check_batch(bad, limits).expect_err("refused");
            assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        }
        let capped = BatchLimits {
            max_commands: 2,
            ..limits
        };
        assert!(check_batch(br#"{"commands":[{},{}]}"#, capped).is_ok());
        let r = check_batch(br#"{"commands":[{},{},{}]}"#, capped).expect_err("over the cap");
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn invalid_utf8_where_it_is_ignored_stays_accepted() {
        let body = b"{\"commands\":[{\"info\":{},\"x\":\"\xff\"}],\"y\":\"\xfe\"}";
        let checked = check_batch(body, BatchLimits::default()).expect("accepted");
        assert_eq!(checked.commands.count, 1);
        let range = json_walk::member(body, "commands").expect("commands");
        let cmds: Vec<Option<Command>> = decode_commands(&body[range], 0).collect();
        assert!(cmds.len() == 1 && cmds[0].as_ref().is_some_and(|c| c.info.is_some()));
    }

    #[test]
    fn decoded_commands_follow_the_array() {
        let cmds: Vec<Option<Command>> =
            decode_commands(br#"[{"info":{}}, null, {}]"#, 0).collect();
        assert_eq!(cmds.len(), 3);
        assert!(cmds[0].as_ref().is_some_and(|c| c.info.is_some()));
        assert!(cmds[1].is_none());
        assert_eq!(cmds[2], Some(Command::default()));
        let rest: Vec<Option<Command>> =
            decode_commands(br#"[{"info":{}}, null, {}]"#, 2).collect();
        assert_eq!(rest, [Some(Command::default())]);
    }

    #[test]
    fn the_check_keeps_a_bounded_head() {
        let body = format!(
            r#"{{"commands":[{}{{"info":{{}}}}]}}"#,
            "{},".repeat(KEPT + 9)
        );
        let checked = check_batch(body.as_bytes(), BatchLimits::default()).expect("accepted");
        assert_eq!(checked.commands.count, KEPT + 10);
        assert_eq!(checked.commands.head.len(), KEPT);
        let range = json_walk::member(body.as_bytes(), "commands").expect("commands");
        let rest: Vec<Option<Command>> = decode_commands(&body.as_bytes()[range], KEPT).collect();
        assert_eq!(rest.len(), 10);
        assert!(rest[9].as_ref().is_some_and(|c| c.info.is_some()));
    }

    #[test]
    fn legacy_values_must_be_objects() {
        let cmds: Vec<bool> = legacy_commands(b"{\"id\":1}\n[1]\n{\"method\":\"x\"}")
            .map(|c| c.is_some())
            .collect();
        assert_eq!(cmds, [true, false, true]);
    }
}
