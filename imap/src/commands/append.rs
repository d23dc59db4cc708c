//! APPEND (RFC 3501 §6.3.11) with APPENDUID (UIDPLUS, RFC 4315 §3). The message comes either as
//! the literal the command was decoded with or, for a large literal, as the spool file the
//! connection streamed it into; both take the same path through [`Session::append`].

use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::Mailbox as WireMailbox;
use imap_codec::imap_types::response::Code;
use postern_store::Spool;

use crate::commands::flags::to_store_flags;
use crate::mail_store::MailStore;
use crate::response::nz;
use crate::session::{bad, ChangeFeed, Done, Failure, Outcome, Reply, Session};

/// Where the bytes of an APPENDed message are.
pub(crate) enum AppendData<'a> {
    /// In the decoded command's literal.
    Literal(&'a [u8]),
    /// In a spool file the connection wrote the literal to as it arrived.
    Spooled(Box<Spool>),
}

impl AppendData<'_> {
    fn len(&self) -> u64 {
        match self {
            AppendData::Literal(raw) => raw.len() as u64,
            AppendData::Spooled(spool) => spool.len(),
        }
    }
}

impl<S: MailStore> Session<S> {
    /// Handles an APPEND whose message literal the connection streamed to `spool` instead of
    /// buffering it; `cmd` is the command decoded with that literal replaced by an empty one.
    /// The reply (APPENDUID, EXISTS for the selected mailbox, OVERQUOTA, TRYCREATE, ...) is the
    /// one the same command with the literal in memory gets.
    pub async fn append_spooled(
        &mut self,
        cmd: Command<'_>,
        spool: Spool,
        feed: &mut dyn ChangeFeed,
    ) -> Reply {
        self.start_command(feed);
        let outcome = match &cmd.body {
            CommandBody::Append {
                mailbox,
                flags,
                date,
                ..
            } => {
                self.append(
                    mailbox,
                    flags,
                    date.as_ref(),
                    AppendData::Spooled(Box::new(spool)),
                )
                .await
            }
            _ => Err(bad("Expected APPEND")),
        };
        self.finish(cmd.tag, true, outcome, feed).await
    }

    pub(crate) async fn append(
        &mut self,
        m: &WireMailbox<'_>,
        flags: &[Flag<'_>],
        date: Option<&DateTime>,
        message: AppendData<'_>,
    ) -> Outcome {
        let mailbox = self.find_mailbox(m, true).await?;
        if message.len() > u64::from(self.config.max_message_size) {
            return Err(Failure::No(
                Some(crate::response::code_other("TOOBIG")),
                "Message too big".into(),
            ));
        }
        let internal_date = date.map_or_else(self.clock, |d| d.as_ref().timestamp());
        let flags = to_store_flags(flags);
        let uid = match message {
            AppendData::Literal(raw) => {
                self.store
                    .append(&mailbox, raw, &flags, internal_date)
                    .await?
            }
            AppendData::Spooled(spool) => {
                self.store
                    .append_spooled(&mailbox, *spool, &flags, internal_date)
                    .await?
            }
        };
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
