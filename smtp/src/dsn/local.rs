//! The reports due right after a message was accepted (RFC 3461 §6.2): a failure for each
//! recipient whose mailboxes were all full, a success for each whose copies were all stored,
//! each only if that recipient's NOTIFY asks for it.

use postern_store::{Accepted, Store};

use super::params::{self, Notice as Kind};
use super::{send, Action, Notice, Original};
use crate::session::Delivery;

/// Sends the failure and success reports for the local copies of `d` (stored as `accepted` at
/// `now`); reports to send go out with `expires_at` if they are queued.
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
    let mut delivered = Vec::new();
    for r in d.recipients.iter().filter(|r| !r.local.is_empty()) {
        if r.local.iter().any(|u| full.contains(u)) {
            if params::wants(&r.dsn, Kind::Failure) {
                failed.push(Notice {
                    diagnostic: Some("552 5.2.2 Mailbox full".into()),
                    ..Notice::new(&r.address, &r.dsn, Action::Failed, "5.2.2")
                });
            }
        } else if params::wants(&r.dsn, Kind::Success) {
            delivered.push(Notice::new(&r.address, &r.dsn, Action::Delivered, "2.0.0"));
        }
    }
    // RET and ENVID are the same for every recipient of the transaction.
    let Some(first) = d.recipients.first() else {
        return;
    };
    let original = Original::new(&d.sender, &d.message, now, &first.dsn);
    for notices in [failed, delivered] {
        if let Err(e) = send(store, hostname, expires_at, &original, &notices).await {
            tracing::error!(error = %e, "could not send a delivery report");
        }
    }
}
