//! SELECT/EXAMINE (RFC 3501 §6.3.1-2, CONDSTORE RFC 7162 §3.1.8, QRESYNC §3.2.5 in `qresync`) and CLOSE
//! (§6.4.2); EXPUNGE is in `expunge`.

use imap_codec::imap_types::command::SelectParameter;
use imap_codec::imap_types::mailbox::Mailbox as WireMailbox;
use imap_codec::imap_types::response::{Code, Data, StatusKind};
use postern_store::Flags;

use crate::mail_store::MailStore;
use crate::response::{data, modseq, nz, untagged};
use crate::session::{bad, Done, Outcome, Selected, Session};

impl<S: MailStore> Session<S> {
    pub(crate) async fn select(
        &mut self,
        m: &WireMailbox<'_>,
        read_only: bool,
        params: &[SelectParameter],
    ) -> Outcome {
        let resync = params.iter().find_map(|p| match p {
            SelectParameter::QResync {
                uid_validity,
                mod_sequence_value,
                known_uids,
                ..
            } => Some((*uid_validity, *mod_sequence_value, known_uids.clone())),
            SelectParameter::CondStore => None,
        });
        if resync.is_some() && !self.qresync {
            return Err(bad("ENABLE QRESYNC first"));
        }
        let had = self.deselect().is_some();
        let mut out = Vec::new();
        if had && self.condstore {
            out.push(untagged(
                StatusKind::Ok,
                Some(Code::Closed),
                "Previous mailbox closed",
            ));
        }
        for p in params {
            if let SelectParameter::CondStore = p {
                self.condstore = true;
            }
        }
        let mailbox = self.find_mailbox(m, false).await?;
        let sel = Selected::open(&self.store, mailbox, read_only).await?;
        out.push(data(Data::Flags(sel.flag_list())));
        out.push(data(Data::Exists(sel.exists())));
        out.push(data(Data::Recent(
            u32::try_from(sel.recent.len()).unwrap_or(u32::MAX),
        )));
        if let Some(i) = sel
            .messages
            .iter()
            .position(|m| m.flags.system & Flags::SEEN == 0)
        {
            out.push(untagged(
                StatusKind::Ok,
                Some(Code::Unseen(Selected::seq(i))),
                "First unseen",
            ));
        }
        out.push(sel.permanent_flags());
        out.push(untagged(
            StatusKind::Ok,
            Some(Code::UidValidity(nz(sel.mailbox.uidvalidity))),
            "UIDs valid",
        ));
        out.push(untagged(
            StatusKind::Ok,
            Some(Code::UidNext(nz(sel.mailbox.uidnext))),
            "Predicted next UID",
        ));
        out.push(untagged(
            StatusKind::Ok,
            Some(Code::HighestModSeq(modseq(sel.mailbox.highestmodseq))),
            "Highest",
        ));
        self.selected = Some(sel);
        if let Some((uidvalidity, modseq, known)) = resync {
            out.extend(self.resync(uidvalidity, modseq, known.as_ref())?);
        }
        let (code, text) = if read_only {
            (Code::ReadOnly, "EXAMINE completed")
        } else {
            (Code::ReadWrite, "SELECT completed")
        };
        Ok(Done::ok(text).with(out).code(code))
    }

    pub(crate) async fn close(&mut self) -> Outcome {
        let sel = self.require_selected()?;
        if !sel.read_only {
            let mailbox = sel.mailbox.clone();
            self.store.expunge(&mailbox, None).await?;
        }
        self.deselect();
        Ok(Done::ok("CLOSE completed"))
    }
}
