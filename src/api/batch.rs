//! Running one server API batch, shared by the HTTP, legacy and gRPC
//! adapters. Commands come from a lazy iterator (each decoded just in time
//! from the request body) and replies leave as a stream in command order,
//! so neither all commands nor all replies are ever held: a `parallel`
//! batch keeps at most `middleware.batch.max_parallel` commands in flight.

use futures_util::{Stream, StreamExt};

use crate::api::ApiError;
use crate::api::executor::Executor;
use crate::api::gateway::{dispatch, error_reply};
use crate::config::BatchLimits;
use crate::proto::api::{Command, Reply};

/// Runs one batch command; a `None` (a JSON `null` element) answers 107.
async fn one(ex: &Executor, cmd: Option<Command>) -> Reply {
    match cmd {
        Some(cmd) => dispatch(ex, cmd).await,
        None => error_reply(ApiError::bad_request()),
    }
}

/// The replies to `commands` in command order: one command at a time, or
/// with `parallel` up to `limits.max_parallel` at once. A command is taken
/// from the iterator only when there is room for it in the window, and
/// nothing runs unless the stream is polled, so a consumer that stops
/// reading (or drops the stream) stops the batch.
pub(crate) fn replies<'a, I>(
    ex: &'a Executor,
    commands: I,
    parallel: bool,
    limits: BatchLimits,
) -> impl Stream<Item = Reply> + Send + 'a
where
    I: Iterator<Item = Option<Command>> + Send + 'a,
{
    let commands = futures_util::stream::iter(commands);
    if parallel {
        let window = limits.max_parallel.max(1);
        commands
            .map(move |cmd| one(ex, cmd))
            .buffered(window)
            .left_stream()
    } else {
        // One at a time needs no window (and no task per command).
        commands.then(move |cmd| one(ex, cmd)).right_stream()
    }
}
