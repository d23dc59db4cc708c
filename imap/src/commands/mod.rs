//! Command handlers, one module per command family, each an `impl Session` block.

mod append;
mod binary;
mod catenate;
mod compress;
mod context;
mod copy;
mod enable;
mod expunge;
mod extension;
mod fetch;
mod fetch_line;
mod flags;
mod junk;
mod list;
mod mailboxes;
pub(crate) mod multiappend;
mod namespace;
mod notify;
mod qresync;
mod quota;
mod search;
mod section;
mod select;
mod sort;
mod thread;
mod urlauth;

use imap_codec::imap_types::mailbox::Mailbox as WireMailbox;
use std::collections::HashMap;

use postern_store::{Mailbox, MessageDetails};

pub(crate) use append::AppendData;
pub(crate) use context::LiveSearches;
pub(crate) use fetch::FetchPlan;
pub(crate) use notify::Notify;

use crate::mail_store::MailStore;
use crate::mutf7;
use crate::session::{Failure, Selected, Session};

/// Most messages whose details one batch of FETCH or SEARCH loads from the store.
const BATCH_MESSAGES: usize = 100;

/// Most message bytes one batch loads (a larger message goes alone): with the copies made while
/// answering, what a FETCH or SEARCH holds stays a few times this, whatever the mailbox's size.
const BATCH_BYTES: i64 = 4 * 1024 * 1024;

/// The stored details (with the bytes if `raw`) of the selected messages at `indexes`, by UID; a
/// message expunged meanwhile by another session is missing.
pub(crate) async fn details_by_uid(
    store: &impl MailStore,
    sel: &Selected,
    indexes: impl Iterator<Item = usize>,
    raw: bool,
) -> Result<HashMap<i64, MessageDetails>, Failure> {
    let uids: Vec<i64> = indexes.map(|i| sel.messages[i].uid).collect();
    Ok(store
        .message_details(&sel.mailbox, &uids, raw)
        .await?
        .into_iter()
        .map(|d| (d.uid, d))
        .collect())
}

/// Most messages one batch of a FETCH that reads only header blocks loads: their sizes bound
/// what it holds (a header block is part of its message), so [`BATCH_BYTES`] still applies.
const HEADER_BATCH_MESSAGES: usize = 1000;

/// How many of the messages whose sizes are `sizes` the next batch takes (at least one when
/// there is any); `sizes` are 0 when no message bytes are loaded.
pub(crate) fn batch_len(sizes: impl IntoIterator<Item = i64>) -> usize {
    batch_of(sizes, BATCH_MESSAGES)
}

/// [`batch_len`] for a FETCH that reads only header blocks, `sizes` being the messages' sizes:
/// fewer, larger batches (one store query each), bounded by bytes.
pub(crate) fn header_batch_len(sizes: impl IntoIterator<Item = i64>) -> usize {
    batch_of(sizes, HEADER_BATCH_MESSAGES)
}

fn batch_of(sizes: impl IntoIterator<Item = i64>, most: usize) -> usize {
    let mut bytes = 0i64;
    let mut n = 0;
    for size in sizes {
        if n > 0 && (n >= most || bytes.saturating_add(size) > BATCH_BYTES) {
            break;
        }
        bytes = bytes.saturating_add(size);
        n += 1;
    }
    n
}

impl<S: MailStore> Session<S> {
    /// The UTF-8 name a client means (modified UTF-7 unless UTF8=ACCEPT, RFC 3501 §5.1.3). A name
    /// that does not decode is a well-formed argument naming no mailbox: NO [CANNOT] (RFC 5530
    /// §3), as Dovecot answers, not BAD.
    pub(crate) fn mailbox_name(&self, m: &WireMailbox<'_>) -> Result<String, Failure> {
        let invalid =
            |why: &str| Failure::No(Some(crate::response::code_other("CANNOT")), why.into());
        match m {
            WireMailbox::Inbox => Ok("INBOX".to_owned()),
            WireMailbox::Other(o) => {
                let s = std::str::from_utf8(o.inner().as_ref())
                    .map_err(|_| invalid("Mailbox name is not UTF-8"))?;
                let name = if self.utf8 {
                    Some(s.to_owned())
                } else {
                    mutf7::decode(s)
                };
                let name = name.ok_or_else(|| invalid("Mailbox name is not modified UTF-7"))?;
                Ok(name.trim_end_matches('/').to_owned())
            }
        }
    }

    /// A name as the client expects it.
    pub(crate) fn wire_name(&self, name: &str) -> WireMailbox<'static> {
        if name == "INBOX" {
            return WireMailbox::Inbox;
        }
        let text = if self.utf8 {
            name.to_owned()
        } else {
            mutf7::encode(name)
        };
        WireMailbox::try_from(text).unwrap_or(WireMailbox::Inbox)
    }

    /// The user's mailbox a client names, or NO [TRYCREATE]/[NONEXISTENT] (never another user's).
    pub(crate) async fn find_mailbox(
        &self,
        m: &WireMailbox<'_>,
        trycreate: bool,
    ) -> Result<Mailbox, Failure> {
        let user = self.require_user()?;
        let name = self.mailbox_name(m)?;
        self.store.mailbox(user.id, &name).await?.ok_or_else(|| {
            let code = if trycreate {
                imap_codec::imap_types::response::Code::TryCreate
            } else {
                crate::response::code_other("NONEXISTENT")
            };
            Failure::No(Some(code), "No such mailbox".into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_bounded_by_count_and_bytes() {
        assert_eq!(batch_len([]), 0);
        assert_eq!(batch_len([0; 250]), BATCH_MESSAGES);
        assert_eq!(batch_len([BATCH_BYTES * 3, 1]), 1);
        assert_eq!(batch_len([1024 * 1024; 10]), 4);
        assert_eq!(batch_len([i64::MAX, i64::MAX]), 1);
        assert_eq!(header_batch_len([1024; 5000]), HEADER_BATCH_MESSAGES);
        assert_eq!(header_batch_len([64 * 1024; 200]), 64);
    }
}
