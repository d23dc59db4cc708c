//! The reports due right after a message was accepted (RFC 3461 §6.2): a failure for each
//! recipient with a full mailbox, `delivered` for each whose one local copy was stored, and
//! `expanded` for an alias reaching several destinations (§6.2.7.3), each only if that
//! recipient's NOTIFY asks for it.

use postern_store::{Accepted, Store};

use super::params::{self, Notice as Kind};
use super::{send, Action, Notice, Original};
use crate::session::Delivery;

/// Sends the reports due once `d` is stored as `accepted` at `now`: failures for full mailboxes,
/// `delivered` and `expanded` successes; they go out with `expires_at` if they are queued.
pub async fn report(
    store: &Store,
    hostname: &str,
    expires_at: i64,
    d: &Delivery,
    accepted: &Accepted,
    now: i64,
) {
    let full = accepted.over_quota();
    let mut failed = Vec::new();
    let mut succeeded = Vec::new();
    for r in &d.recipients {
        let targets = r.local.len() + r.remote.len();
        if r.local.iter().any(|u| full.contains(u)) {
            if params::wants(&r.dsn, Kind::Failure) {
                failed.push(Notice {
                    diagnostic: Some("552 5.2.2 Mailbox full".into()),
                    ..Notice::new(&r.address, &r.dsn, Action::Failed, "5.2.2")
                });
            }
        } else if params::wants(&r.dsn, Kind::Success) && (targets > 1 || !r.local.is_empty()) {
            // A single remote destination gets NOTIFY passed on: the queue reports for it.
            let action = if targets > 1 {
                Action::Expanded
            } else {
                Action::Delivered
            };
            succeeded.push(Notice::new(&r.address, &r.dsn, action, "2.0.0"));
        }
    }
    // RET and ENVID are the same for every recipient of the transaction.
    let Some(first) = d.recipients.first() else {
        return;
    };
    let original = Original::new(&d.sender, &d.message, now, &first.dsn);
    // One report per action: its subject and text speak of one kind of outcome.
    let (expanded, delivered) = succeeded
        .into_iter()
        .partition(|n| n.action == Action::Expanded);
    for notices in [failed, delivered, expanded] {
        if let Err(e) = send(store, hostname, expires_at, &original, &notices).await {
            tracing::error!(error = %e, "could not send a delivery report");
        }
    }
}
