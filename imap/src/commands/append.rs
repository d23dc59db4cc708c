//! APPEND (RFC 3501 §6.3.11) with APPENDUID (UIDPLUS, RFC 4315 §3).

use std::num::NonZeroU32;

use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::Mailbox as WireMailbox;
use imap_codec::imap_types::response::Code;

use crate::commands::flags::to_store_flags;
use crate::session::{Done, Failure, Outcome, Session};

fn nz(v: i64) -> NonZeroU32 {
    NonZeroU32::new(u32::try_from(v).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN)
}

impl Session {
    pub(crate) async fn append(
        &mut self,
        m: &WireMailbox<'_>,
        flags: &[Flag<'_>],
        date: Option<&DateTime>,
        message: LiteralOrLiteral8<'_>,
    ) -> Outcome {
        let mailbox = self.find_mailbox(m, true).await?;
        let raw: &[u8] = match &message {
            LiteralOrLiteral8::Literal(l) => l.data(),
            LiteralOrLiteral8::Literal8(l) => l.data.as_ref(),
        };
        if raw.len() > self.config.max_message_size as usize {
            return Err(Failure::No(
                Some(crate::response::code_other("TOOBIG")),
                "Message too big".into(),
            ));
        }
        let internal_date = date.map_or_else(postern_store::unix_now, |d| d.as_ref().timestamp());
        let uid = self
            .store
            .append(&mailbox, raw, &to_store_flags(flags), internal_date)
            .await?;
        if let Some(sel) = self.selected.as_mut() {
            if sel.mailbox.id == mailbox.id {
                sel.dirty = true;
            }
        }
        Ok(Done::ok("APPEND completed").code(Code::AppendUid {
            uid_validity: nz(mailbox.uidvalidity),
            uid: nz(uid),
        }))
    }
}
