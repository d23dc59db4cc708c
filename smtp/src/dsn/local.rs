//! The reports due right after a message was accepted (RFC 3461 §6.2): a failure for each
//! recipient with a full mailbox, `delivered` for each whose one local copy was stored, and
//! `expanded` for an alias reaching several destinations (§6.2.7.3), each only if that
//! recipient's NOTIFY asks for it.

use postern_store::{Accepted, DsnRequest, Store};

use super::params::{self, Notice as Kind};
use super::{send, Action, Notice, Original};
use crate::session::Delivery;

/// Sends the reports about `original` due once `d` is stored as `accepted`: failures for full mailboxes
/// and for recipients whose Sieve script rejected it (`rejects`: address and reason, RFC 5429
/// §2.1), `delivered` and `expanded` successes; they go out with `expires_at` if queued.
pub async fn report(
    store: &Store,
    hostname: &str,
    expires_at: i64,
    d: &Delivery,
    original: &Original<'_>,
    accepted: &Accepted,
    rejects: &[(String, String)],
) {
    let full = accepted.over_quota();
    let mut failed = Vec::new();
    let mut succeeded = Vec::new();
    for r in &d.recipients {
        let targets = r.local.len() + r.remote.len();
        if let Some((_, reason)) = rejects.iter().find(|(a, _)| *a == r.address) {
            if params::wants(&r.dsn, Kind::Failure) {
                failed.push(rejected(&r.address, &r.dsn, reason));
            }
        } else if r.local.iter().any(|u| full.contains(u)) {
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
    // One report per action: its subject and text speak of one kind of outcome.
    let (expanded, delivered) = succeeded
        .into_iter()
        .partition(|n| n.action == Action::Expanded);
    for notices in [failed, delivered, expanded] {
        if let Err(e) = send(store, hostname, expires_at, original, &notices).await {
            tracing::error!(error = %e, "could not send a delivery report");
        }
    }
}

/// The failure notice for `recipient`, whose Sieve script rejected the message with `reason`
/// (RFC 5429 §2.1).
pub fn rejected(recipient: &str, dsn: &DsnRequest, reason: &str) -> Notice {
    Notice {
        diagnostic: Some(format!("550 5.7.1 {}", crate::local::reply_text(reason))),
        ..Notice::new(recipient, dsn, Action::Failed, "5.7.1")
    }
}
