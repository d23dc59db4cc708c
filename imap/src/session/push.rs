//! What reaches the client without being asked for: changes other sessions publish on the
//! store's bus, passed in by the shell as they arrive ([`Session::changes`]) and turned into
//! untagged responses while idling (RFC 2177) or, with NOTIFY (RFC 5465), between commands.

use imap_codec::imap_types::response::StatusKind;
use postern_store::Change;

use super::{Next, Reply, Session};
use crate::mail_store::MailStore;
use crate::response::{code_other, tagged};

/// The shell's subscription to the store's change bus (RFC 2177 IDLE, RFC 5465 NOTIFY), lent to
/// the session while it answers: it takes what was published before a command and while the
/// command ran, so its reply carries the updates (RFC 3501 §7.4.1).
pub trait ChangeFeed: Send {
    /// The changes received since the last call, in order, and whether some were lost.
    fn received(&mut self) -> (Vec<Change>, bool);
}

impl<S: MailStore> Session<S> {
    /// Takes note of changes published on the store's bus, in order: the shell owns the
    /// subscription (from login on) and passes on what it receives while waiting to push (each
    /// command takes the rest through the [`ChangeFeed`] it is lent). Nothing is sent yet; a later
    /// command, IDLE or NOTIFY reports it.
    pub fn changes(&mut self, changes: &[Change]) {
        for change in changes {
            if let (Some(sel), Change::Mailbox { mailbox_id, .. }) =
                (self.selected.as_mut(), change)
            {
                if *mailbox_id == sel.mailbox.id {
                    sel.dirty = true;
                }
            }
            self.note_notify(change);
        }
    }

    /// Notes what `feed` received since it was last asked.
    pub(super) fn take_changes(&mut self, feed: &mut dyn ChangeFeed) {
        let (changes, lost) = feed.received();
        self.changes(&changes);
        if lost {
            self.changes_lost();
        }
    }

    /// Whether a change can matter to this session: a mailbox is selected or NOTIFY is on. The
    /// shell need not wait for changes otherwise.
    pub fn watching(&self) -> bool {
        self.selected.is_some() || self.notify.is_some()
    }

    /// Whether NOTIFY is on: changes are pushed between commands too (RFC 5465 §1).
    pub fn notifying(&self) -> bool {
        self.notify.is_some()
    }

    /// Whether the changes noted so far are worth pushing now: while idling (`idle`,
    /// [`Session::idle_updates`]) any change to the selected mailbox, and with NOTIFY
    /// ([`Session::push_updates`]) what it asks for.
    pub fn push_due(&self, idle: bool) -> bool {
        let dirty = self.selected.as_ref().is_some_and(|s| s.dirty);
        match &self.notify {
            Some(n) => n.has_pending() || (dirty && (idle || n.pushes_selected().is_some())),
            None => dirty,
        }
    }

    /// Changes were lost (the shell's subscription lagged): the selected mailbox is read again,
    /// and NOTIFY ends with `OK [NOTIFICATIONOVERFLOW]` (RFC 5465 §5.8). Worth pushing at once.
    pub fn changes_lost(&mut self) {
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

    /// Untagged updates to send while idling, once [`Session::push_due`],
    /// encoded (with the updates of live searches, RFC 5267 §4.3, and NOTIFY's).
    pub async fn idle_updates(&mut self, feed: &mut dyn ChangeFeed) -> Vec<u8> {
        self.pending_updates(Some(true), feed).await
    }

    /// With NOTIFY, what to push between commands once [`Session::push_due`]: the selected
    /// mailbox's updates if NOTIFY names it (expunges held back for `selected-delayed`), and
    /// the STATUS and LIST responses of the other mailboxes.
    pub async fn push_updates(&mut self, feed: &mut dyn ChangeFeed) -> Vec<u8> {
        let selected = self.notify.as_ref().and_then(|n| n.pushes_selected());
        self.pending_updates(selected.map(|delayed| !delayed), feed)
            .await
    }

    /// Notices, the selected mailbox's updates if `selected` (EXPUNGE too if it is `true`) with
    /// those of live searches, and NOTIFY's responses, encoded.
    async fn pending_updates(
        &mut self,
        selected: Option<bool>,
        feed: &mut dyn ChangeFeed,
    ) -> Vec<u8> {
        self.note_context_view();
        self.take_changes(feed);
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
    pub async fn idle_done(&mut self, feed: &mut dyn ChangeFeed) -> Reply {
        let raw = self.idle_updates(feed).await;
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
