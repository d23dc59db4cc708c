//! SMTP's metrics: what the server and the queue count, and how long the commands that wait on
//! a check or the store take to answer.

use std::time::Duration;

use crate::session::{Action, Listener};

/// Describes the SMTP metrics (HELP lines) and starts the fixed label sets at zero, so that rates
/// are defined from the first scrape; call once after installing the recorder.
pub fn describe_metrics() {
    for result in ["delivered", "deferred", "bounced", "expired"] {
        metrics::counter!("postern_smtp_outbound_total", "result" => result).increment(0);
    }
    for reason in ["dnsbl", "greylist", "dmarc"] {
        metrics::counter!("postern_smtp_policy_refusals_total", "reason" => reason).increment(0);
    }
    metrics::counter!("postern_smtp_junk_total").increment(0);
    for action in ["reject", "quarantine"] {
        metrics::counter!("postern_smtp_virus_total", "action" => action).increment(0);
    }
    metrics::counter!("postern_smtp_virus_scan_errors_total").increment(0);
    metrics::counter!("postern_smtp_bayes_junk_total").increment(0);
    metrics::describe_counter!(
        "postern_smtp_bayes_junk_total",
        "Local copies the learning junk filter filed into Junk."
    );
    metrics::describe_counter!(
        "postern_smtp_virus_total",
        "Messages in which clamd found a virus, by action (reject, quarantine)."
    );
    metrics::describe_counter!(
        "postern_smtp_virus_scan_errors_total",
        "Virus scans that gave no verdict (clamd down, timed out or refusing)."
    );
    metrics::describe_counter!(
        "postern_smtp_messages_total",
        "Messages at the end of DATA, by source (mx, submission) and result."
    );
    metrics::describe_counter!(
        "postern_smtp_policy_refusals_total",
        "Clients, recipients or messages refused by policy, by reason."
    );
    metrics::describe_counter!(
        "postern_smtp_junk_total",
        "Messages accepted but filed as junk (DMARC quarantine)."
    );
    metrics::describe_counter!(
        "postern_smtp_outbound_total",
        "Outbound delivery attempts, by result."
    );
    metrics::describe_histogram!(
        "postern_smtp_command_duration_seconds",
        metrics::Unit::Seconds,
        "Time from a complete SMTP command to its reply, for the commands that wait on a check \
         or the store (AUTH, MAIL, RCPT, end of DATA or BDAT LAST), by command and listener."
    );
}

/// The command an action answers, as the `command` label.
pub(crate) fn command_name(action: &Action) -> &'static str {
    match action {
        Action::Authenticate { .. } => "auth",
        Action::CheckSender { .. } => "mail",
        Action::CheckRecipient { .. } => "rcpt",
        Action::Deliver(_) => "data",
    }
}

/// Records how long the server took for `command` (named by [`command_name`]).
pub(crate) fn command_took(command: &'static str, listener: Listener, took: Duration) {
    metrics::histogram!(
        "postern_smtp_command_duration_seconds",
        "command" => command,
        "listener" => listener.name()
    )
    .record(took.as_secs_f64());
}
