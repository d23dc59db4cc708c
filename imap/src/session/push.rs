//! What reaches the client without being asked for: changes other sessions publish on the
//! store's bus, noted as they arrive and turned into untagged responses while idling (RFC 2177)
//! or, with NOTIFY (RFC 5465), between commands.

use imap_codec::imap_types::response::StatusKind;
use postern_store::Change;
use tokio::sync::broadcast;

use super::{Next, Reply, Session};
use crate::response::{code_other, tagged};

impl Session {
    pub(super) fn note(&mut self, change: &Change) {
        if let (Some(sel), Change::Mailbox { mailbox_id, .. }) = (self.selected.as_mut(), change) {
            if *mailbox_id == sel.mailbox.id {
                sel.dirty = true;
            }
        }
        self.note_notify(change);
    }

    pub(super) fn drain_changes(&mut self) {
        let mut seen = Vec::new();
        let mut lagged = false;
        if let Some(rx) = self.changes.as_mut() {
            loop {
                match rx.try_recv() {
                    Ok(c) => seen.push(c),
                    Err(broadcast::error::TryRecvError::Lagged(_)) => lagged = true,
                    Err(_) => break,
                }
            }
        }
        for c in &seen {
            self.note(c);
        }
        if lagged {
            self.lagged();
        }
    }

    /// Completes when a change to the selected mailbox is published, or one NOTIFY reports
    /// (never, if neither can happen). Cancel-safe, for use in a `select!` while idling.
    pub async fn wait_change(&mut self) {
        self.wait_push(true).await
    }

    /// Whether NOTIFY is on: changes are pushed between commands too (RFC 5465 §1).
    pub fn notifying(&self) -> bool {
        self.notify.is_some()
    }

    fn push_due(&self, idle: bool) -> bool {
        let dirty = self.selected.as_ref().is_some_and(|s| s.dirty);
        match &self.notify {
            Some(n) => n.has_pending() || (dirty && (idle || n.pushes_selected().is_some())),
            None => dirty,
        }
    }

    /// Completes when there is something to push: while idling ([`Session::idle_updates`]) or,
    /// with NOTIFY, between commands ([`Session::push_updates`]). Cancel-safe.
    pub async fn wait_push(&mut self, idle: bool) {
        loop {
            let watching = self.selected.is_some() || self.notify.is_some();
            let (Some(rx), true) = (self.changes.as_mut(), watching) else {
                return std::future::pending().await;
            };
            match rx.recv().await {
                Ok(c) => {
                    self.note(&c);
                    if self.push_due(idle) {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    self.lagged();
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    return std::future::pending().await;
                }
            }
        }
    }

    /// Changes were lost: the selected mailbox is read again, and NOTIFY ends with
    /// `OK [NOTIFICATIONOVERFLOW]` (RFC 5465 §5.8).
    fn lagged(&mut self) {
        if let Some(sel) = self.selected.as_mut() {
            sel.dirty = true;
        }
        if self.notify.take().is_some() {
            self.notices.push(crate::response::untagged(
                StatusKind::Ok,
                Some(code_other("NOTIFICATIONOVERFLOW")),
                "Too many changes: NOTIFY is off",
            ));
        }
    }

    /// Untagged updates to send while idling, after [`Session::wait_change`] completed,
    /// encoded (with the updates of live searches, RFC 5267 §4.3, and NOTIFY's).
    pub async fn idle_updates(&mut self) -> Vec<u8> {
        self.pending_updates(Some(true)).await
    }

    /// With NOTIFY, what to push between commands after [`Session::wait_push`]: the selected
    /// mailbox's updates if NOTIFY names it (expunges held back for `selected-delayed`), and
    /// the STATUS and LIST responses of the other mailboxes.
    pub async fn push_updates(&mut self) -> Vec<u8> {
        let selected = self.notify.as_ref().and_then(|n| n.pushes_selected());
        self.pending_updates(selected.map(|delayed| !delayed)).await
    }

    /// Notices, the selected mailbox's updates if `selected` (EXPUNGE too if it is `true`) with
    /// those of live searches, and NOTIFY's responses, encoded.
    async fn pending_updates(&mut self, selected: Option<bool>) -> Vec<u8> {
        self.note_context_view();
        self.drain_changes();
        let mut responses = std::mem::take(&mut self.notices);
        if let Some(allow_expunge) = selected {
            responses.extend(self.updates(allow_expunge).await);
        }
        let mut out = self
            .context_updates(&mut responses)
            .await
            .unwrap_or_default();
        out.extend(crate::response::encode_all(&responses));
        out.extend(self.notify_updates().await);
        out
    }

    /// `DONE` ended the IDLE (RFC 2177 §3).
    pub async fn idle_done(&mut self) -> Reply {
        let raw = self.idle_updates().await;
        let mut responses = Vec::new();
        if let Some(tag) = self.pending.take() {
            responses.push(tagged(&tag, StatusKind::Ok, None, "IDLE terminated"));
        }
        Reply {
            raw,
            responses,
            next: Next::Continue,
        }
    }
}
