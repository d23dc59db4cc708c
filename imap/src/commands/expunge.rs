//! EXPUNGE (RFC 3501 §6.4.3) and UID EXPUNGE (UIDPLUS, RFC 4315 §2.1): removes the selected
//! mailbox's `\Deleted` messages (only those of the UID set for UID EXPUNGE) and reports each
//! with an untagged EXPUNGE.

use imap_codec::imap_types::sequence::SequenceSet;

use crate::mail_store::MailStore;
use crate::response::code_other;
use crate::session::{Done, Outcome, Session};

impl<S: MailStore> Session<S> {
    /// EXPUNGE, or UID EXPUNGE with `uids`; NO [READ-ONLY] after EXAMINE.
    pub(crate) async fn expunge(&mut self, uids: Option<&SequenceSet>) -> Outcome {
        let store = self.store.clone();
        let sel = self.require_selected()?;
        if sel.read_only {
            return Err(crate::session::Failure::No(
                Some(code_other("READ-ONLY")),
                "Mailbox is read-only".into(),
            ));
        }
        let only: Option<Vec<i64>> = match uids {
            Some(set) => Some(
                sel.resolve(set, true)?
                    .into_iter()
                    .map(|i| sel.messages[i].uid)
                    .collect(),
            ),
            None => None,
        };
        if only.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Done::ok("EXPUNGE completed"));
        }
        let removed = store.expunge(&sel.mailbox, only.as_deref()).await?;
        let out = sel.remove_uids(&removed);
        sel.dirty = true;
        Ok(Done::ok("EXPUNGE completed").with(out))
    }
}
