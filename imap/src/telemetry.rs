//! IMAP's metrics: commands by result, and how long each kind of command takes to answer.

use std::future::Future;

use imap_codec::imap_types::response::{Response, Status, StatusKind};
use tokio::time::Instant;

use crate::session::Reply;

/// Describes the IMAP metrics (HELP lines) and starts the fixed label sets at zero, so that rates
/// are defined from the first scrape; call once after installing the recorder.
pub fn describe_metrics() {
    for status in ["ok", "no", "bad"] {
        metrics::counter!("postern_imap_commands_total", "status" => status).increment(0);
    }
    metrics::describe_counter!(
        "postern_imap_commands_total",
        "IMAP commands completed, by the status of their tagged response (ok, no, bad)."
    );
    metrics::describe_histogram!(
        "postern_imap_command_duration_seconds",
        metrics::Unit::Seconds,
        "Time from a complete IMAP command to its tagged response, by command."
    );
}

/// Runs one decoded command, recording its duration under its name (one of the fixed command
/// names of the protocol, never client text).
pub(crate) async fn timed(command: &'static str, reply: impl Future<Output = Reply>) -> Reply {
    let started = Instant::now();
    let reply = reply.await;
    metrics::histogram!("postern_imap_command_duration_seconds", "command" => command)
        .record(started.elapsed().as_secs_f64());
    reply
}

/// Counts the command that `responses` complete, if they hold its tagged response (a
/// continuation request completes nothing yet).
pub(crate) fn count_completed(responses: &[Response<'_>]) {
    let status = responses.iter().rev().find_map(|r| match r {
        Response::Status(Status::Tagged(t)) => Some(t.body.kind),
        _ => None,
    });
    let status = match status {
        Some(StatusKind::Ok) => "ok",
        Some(StatusKind::No) => "no",
        Some(StatusKind::Bad) => "bad",
        None => return,
    };
    metrics::counter!("postern_imap_commands_total", "status" => status).increment(1);
}
