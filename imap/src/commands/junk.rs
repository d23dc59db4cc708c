//! Training the junk filter from what the user does over IMAP: moving or copying a message into
//! the Junk mailbox (RFC 6154 §2 `\Junk`, or named `Junk`) teaches spam, into any other mailbox
//! but Trash teaches ham, and setting the `$Junk` / `$NotJunk` keywords (IANA IMAP keyword
//! registry, RFC 5788) teaches spam / ham. Training runs before the command's reply, so it is
//! never lost; a failure is logged and does not fail the command.

use std::time::Instant;

use postern_store::{FlagOp, Flags, JunkClass, Mailbox};

use crate::mail_store::MailStore;

/// Whether `m` is the user's junk mailbox.
pub(crate) fn is_junk(m: &Mailbox) -> bool {
    special_or_named(m, "\\Junk", "Junk")
}

fn special_or_named(m: &Mailbox, special: &str, name: &str) -> bool {
    match &m.special_use {
        Some(s) => s.eq_ignore_ascii_case(special),
        None => m.name.eq_ignore_ascii_case(name),
    }
}

/// What moving or copying messages from `from` into `to` teaches: spam into Junk, nothing into
/// Trash or within one mailbox, ham into any other mailbox.
pub(crate) fn transfer_class(from: &Mailbox, to: &Mailbox) -> Option<JunkClass> {
    if is_junk(to) {
        Some(JunkClass::Spam)
    } else if from.id == to.id || special_or_named(to, "\\Trash", "Trash") {
        None
    } else {
        Some(JunkClass::Ham)
    }
}

/// What a STORE teaches: adding (or setting) `$Junk` spam, `$NotJunk` ham; both or neither:
/// nothing.
pub(crate) fn keyword_class(op: FlagOp, flags: &Flags) -> Option<JunkClass> {
    if op == FlagOp::Remove {
        return None;
    }
    let has = |k: &str| flags.keywords.iter().any(|f| f.eq_ignore_ascii_case(k));
    match (has("$Junk"), has("$NotJunk")) {
        (true, false) => Some(JunkClass::Spam),
        (false, true) => Some(JunkClass::Ham),
        _ => None,
    }
}

/// Trains the owner's statistics with the messages `uids` of `mailbox` as `class`.
pub(crate) async fn train(
    store: &impl MailStore,
    mailbox: &Mailbox,
    uids: &[i64],
    class: JunkClass,
) {
    let started = Instant::now();
    match store.train_junk(mailbox, uids, class).await {
        Ok(trained) => tracing::info!(
            user_id = mailbox.user_id,
            ?class,
            messages = uids.len(),
            trained,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "junk filter trained"
        ),
        Err(e) => {
            tracing::error!(user_id = mailbox.user_id, error = %e, "junk filter training failed")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(id: i64, name: &str, special: Option<&str>) -> Mailbox {
        Mailbox {
            id,
            user_id: 1,
            name: name.into(),
            special_use: special.map(Into::into),
            subscribed: true,
            uidvalidity: 1,
            uidnext: 1,
            highestmodseq: 1,
        }
    }

    #[test]
    fn classes() {
        let inbox = mailbox(1, "INBOX", None);
        let junk = mailbox(2, "Junk", Some("\\Junk"));
        let spam = mailbox(3, "Spam", Some("\\Junk"));
        let trash = mailbox(4, "Deleted", Some("\\Trash"));
        let archive = mailbox(5, "Archive", None);
        assert_eq!(transfer_class(&inbox, &junk), Some(JunkClass::Spam));
        assert_eq!(transfer_class(&inbox, &spam), Some(JunkClass::Spam));
        assert_eq!(transfer_class(&junk, &inbox), Some(JunkClass::Ham));
        assert_eq!(transfer_class(&inbox, &archive), Some(JunkClass::Ham));
        assert_eq!(transfer_class(&junk, &trash), None);
        assert_eq!(transfer_class(&inbox, &inbox), None);
        let kw = |k: &[&str]| Flags {
            system: 0,
            keywords: k.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(
            keyword_class(FlagOp::Add, &kw(&["$junk"])),
            Some(JunkClass::Spam)
        );
        assert_eq!(
            keyword_class(FlagOp::Replace, &kw(&["$NotJunk"])),
            Some(JunkClass::Ham)
        );
        assert_eq!(keyword_class(FlagOp::Remove, &kw(&["$Junk"])), None);
        assert_eq!(
            keyword_class(FlagOp::Add, &kw(&["$Junk", "$NotJunk"])),
            None
        );
        assert_eq!(keyword_class(FlagOp::Add, &kw(&["$Label1"])), None);
    }
}
