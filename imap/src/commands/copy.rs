//! COPY (RFC 3501 §6.4.7) and MOVE (RFC 6851 §3) with COPYUID (UIDPLUS, RFC 4315 §3). The copies
//! share the stored bytes.

use std::num::NonZeroU32;

use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::extensions::uidplus::{UidElement, UidSet};
use imap_codec::imap_types::mailbox::Mailbox as WireMailbox;
use imap_codec::imap_types::response::{Code, StatusKind};
use imap_codec::imap_types::sequence::SequenceSet;

use super::junk;
use crate::mail_store::MailStore;
use crate::response::untagged;
use crate::session::{Done, Failure, Outcome, Session};

fn uid_set(uids: impl Iterator<Item = i64>) -> Option<UidSet> {
    let elements: Vec<UidElement> = uids
        .filter_map(|u| NonZeroU32::new(u32::try_from(u).ok()?))
        .map(UidElement::Single)
        .collect();
    Vec1::try_from(elements).ok().map(UidSet)
}

impl<S: MailStore> Session<S> {
    pub(crate) async fn copy(
        &mut self,
        set: &SequenceSet,
        target: &WireMailbox<'_>,
        uid: bool,
        remove: bool,
    ) -> Outcome {
        self.require_selected()?;
        let dest = self.find_mailbox(target, true).await?;
        let store = self.store.clone();
        let sel = self.require_selected()?;
        if remove && sel.read_only {
            return Err(Failure::No(
                Some(crate::response::code_other("READ-ONLY")),
                "Mailbox is read-only".into(),
            ));
        }
        let uids: Vec<i64> = sel
            .resolve(set, uid)?
            .into_iter()
            .map(|i| sel.messages[i].uid)
            .collect();
        let text = if remove {
            "MOVE completed"
        } else {
            "COPY completed"
        };
        if uids.is_empty() {
            return Ok(Done::ok(text));
        }
        let pairs = if remove {
            store.move_messages(&sel.mailbox, &uids, &dest).await?
        } else {
            store.copy_messages(&sel.mailbox, &uids, &dest).await?
        };
        if let Some(class) = junk::transfer_class(&sel.mailbox, &dest) {
            let copies: Vec<i64> = pairs.iter().map(|p| p.1).collect();
            junk::train(&store, &dest, &copies, class).await;
        }
        let code = match (
            uid_set(pairs.iter().map(|p| p.0)),
            uid_set(pairs.iter().map(|p| p.1)),
            NonZeroU32::new(u32::try_from(dest.uidvalidity).unwrap_or(0)),
        ) {
            (Some(source), Some(destination), Some(uid_validity)) => Some(Code::CopyUid {
                uid_validity,
                source,
                destination,
            }),
            _ => None,
        };
        if dest.id == sel.mailbox.id {
            sel.dirty = true;
        }
        if !remove {
            let done = Done::ok(text);
            return Ok(match code {
                Some(c) => done.code(c),
                None => done,
            });
        }
        let moved: Vec<i64> = pairs.iter().map(|p| p.0).collect();
        let mut out = Vec::new();
        if let Some(c) = code {
            out.push(untagged(StatusKind::Ok, Some(c), "Moved"));
        }
        out.extend(sel.remove_uids(&moved));
        Ok(Done::ok(text).with(out))
    }
}
