//! Mailbox commands (LIST and LSUB are in `list`): CREATE, DELETE, RENAME, SUBSCRIBE/UNSUBSCRIBE, STATUS (§6.3.3-10, STATUS=SIZE
//! RFC 8438).

use imap_codec::imap_types::mailbox::Mailbox as WireMailbox;
use imap_codec::imap_types::response::Data;
use imap_codec::imap_types::status::{StatusDataItem, StatusDataItemName};
use postern_store::{Flags, Mailbox, MAX_MAILBOX_DEPTH, MAX_MAILBOX_NAME_BYTES};

use crate::mail_store::MailStore;
use crate::response::{data, nz};
use crate::session::{no, Done, Failure, Outcome, Session};

impl<S: MailStore> Session<S> {
    /// CREATE (RFC 3501 §6.3.3): the mailbox and any missing superior levels, all in one store
    /// transaction. Names deeper than [`MAX_MAILBOX_DEPTH`] levels or longer than
    /// [`MAX_MAILBOX_NAME_BYTES`] get NO [LIMIT] (RFC 5530 §3) and create nothing.
    pub(crate) async fn create(&mut self, m: &WireMailbox<'_>) -> Outcome {
        let user_id = self.require_user()?.id;
        let name = self.mailbox_name(m)?;
        if name.split('/').count() > MAX_MAILBOX_DEPTH || name.len() > MAX_MAILBOX_NAME_BYTES {
            return Err(Failure::No(
                Some(crate::response::code_other("LIMIT")),
                format!(
                    "Mailbox names are limited to {MAX_MAILBOX_DEPTH} levels and \
                     {MAX_MAILBOX_NAME_BYTES} bytes"
                ),
            ));
        }
        if name.eq_ignore_ascii_case("INBOX") || self.store.mailbox(user_id, &name).await?.is_some()
        {
            return Err(Failure::No(
                Some(crate::response::code_other("ALREADYEXISTS")),
                "Mailbox already exists".into(),
            ));
        }
        self.store.create_mailbox_path(user_id, &name).await?;
        Ok(Done::ok("CREATE completed"))
    }

    pub(crate) async fn delete(&mut self, m: &WireMailbox<'_>) -> Outcome {
        let mailbox = self.find_mailbox(m, false).await?;
        if mailbox.name == "INBOX" {
            return Err(no("INBOX cannot be deleted"));
        }
        if self
            .selected
            .as_ref()
            .is_some_and(|s| s.mailbox.id == mailbox.id)
        {
            self.deselect();
        }
        self.store.delete_mailbox(&mailbox).await?;
        Ok(Done::ok("DELETE completed"))
    }

    pub(crate) async fn rename(&mut self, from: &WireMailbox<'_>, to: &WireMailbox<'_>) -> Outcome {
        let user_id = self.require_user()?.id;
        let source = self.find_mailbox(from, false).await?;
        let target = self.mailbox_name(to)?;
        if self.store.mailbox(user_id, &target).await?.is_some() {
            return Err(Failure::No(
                Some(crate::response::code_other("ALREADYEXISTS")),
                "Target mailbox exists".into(),
            ));
        }
        self.store
            .rename_mailbox(user_id, &source.name, &target)
            .await?;
        Ok(Done::ok("RENAME completed"))
    }

    /// SUBSCRIBE (RFC 3501 §6.3.6) of an existing mailbox, UNSUBSCRIBE (§6.3.7) of a subscribed
    /// name or an existing mailbox: a subscription outlives its mailbox, so the name of a deleted
    /// mailbox can still be unsubscribed.
    pub(crate) async fn subscribe(&mut self, m: &WireMailbox<'_>, on: bool) -> Outcome {
        let user_id = self.require_user()?.id;
        if on {
            let mailbox = self.find_mailbox(m, false).await?;
            self.store
                .set_subscription(mailbox.user_id, &mailbox.name, true)
                .await?;
            return Ok(Done::ok("SUBSCRIBE completed"));
        }
        let name = self.mailbox_name(m)?;
        let was_subscribed = self.store.set_subscription(user_id, &name, false).await?;
        if !was_subscribed && self.store.mailbox(user_id, &name).await?.is_none() {
            return Err(Failure::No(
                Some(crate::response::code_other("NONEXISTENT")),
                "Not subscribed".into(),
            ));
        }
        Ok(Done::ok("UNSUBSCRIBE completed"))
    }

    pub(crate) async fn status(
        &mut self,
        m: &WireMailbox<'_>,
        names: &[StatusDataItemName],
    ) -> Outcome {
        let mailbox = self.find_mailbox(m, false).await?;
        let items = self.status_items(&mailbox, names).await?;
        let status = Data::Status {
            mailbox: self.wire_name(&mailbox.name),
            items: items.into(),
        };
        Ok(Done::ok("STATUS completed").with(vec![data(status)]))
    }

    /// The STATUS items `names` of `mailbox` (RFC 3501 §6.3.10), for STATUS and LIST-STATUS.
    pub(crate) async fn status_items(
        &mut self,
        mailbox: &Mailbox,
        names: &[StatusDataItemName],
    ) -> Result<Vec<StatusDataItem>, Failure> {
        let messages = self.store.list_messages(mailbox).await?;
        let count = |f: &dyn Fn(&postern_store::MessageMeta) -> bool| {
            u32::try_from(messages.iter().filter(|m| f(m)).count()).unwrap_or(u32::MAX)
        };
        let mut items = Vec::new();
        for name in names {
            items.push(match name {
                StatusDataItemName::Messages => StatusDataItem::Messages(count(&|_| true)),
                StatusDataItemName::Recent => StatusDataItem::Recent(
                    u32::try_from(self.store.recent_count(mailbox).await?).unwrap_or(0),
                ),
                StatusDataItemName::UidNext => StatusDataItem::UidNext(nz(mailbox.uidnext)),
                StatusDataItemName::UidValidity => {
                    StatusDataItem::UidValidity(nz(mailbox.uidvalidity))
                }
                StatusDataItemName::Unseen => {
                    StatusDataItem::Unseen(count(&|m| m.flags.system & Flags::SEEN == 0))
                }
                StatusDataItemName::Deleted => {
                    StatusDataItem::Deleted(count(&|m| m.flags.system & Flags::DELETED != 0))
                }
                StatusDataItemName::DeletedStorage => StatusDataItem::DeletedStorage(
                    messages
                        .iter()
                        .filter(|m| m.flags.system & Flags::DELETED != 0)
                        .map(|m| m.size as u64)
                        .sum(),
                ),
                StatusDataItemName::Size => {
                    StatusDataItem::Size(messages.iter().map(|m| m.size as u64).sum())
                }
                StatusDataItemName::HighestModSeq => {
                    self.condstore = true;
                    StatusDataItem::HighestModSeq(mailbox.highestmodseq as u64)
                }
            });
        }
        Ok(items)
    }
}
