//! STORE and UID STORE (RFC 3501 §6.4.6), with UNCHANGEDSINCE (CONDSTORE, RFC 7162 §3.1.3).

use std::num::NonZeroU32;

use imap_codec::imap_types::command::StoreModifier;
use imap_codec::imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_codec::imap_types::response::Code;
use imap_codec::imap_types::sequence::{Sequence, SequenceSet};
use postern_store::{FlagOp, Flags};

use super::junk;
use crate::mail_store::MailStore;
use crate::session::{Done, Failure, Outcome, Session};

/// Store flags from IMAP flags; `\Recent` and unknown system flags are ignored.
pub(crate) fn to_store_flags(flags: &[Flag<'_>]) -> Flags {
    let mut out = Flags::default();
    for f in flags {
        match f {
            Flag::Seen => out.system |= Flags::SEEN,
            Flag::Answered => out.system |= Flags::ANSWERED,
            Flag::Flagged => out.system |= Flags::FLAGGED,
            Flag::Deleted => out.system |= Flags::DELETED,
            Flag::Draft => out.system |= Flags::DRAFT,
            Flag::Keyword(k) => {
                out.keywords.insert(k.as_ref().to_owned());
            }
            Flag::Extension(_) => {}
        }
    }
    out
}

impl<S: MailStore> Session<S> {
    pub(crate) async fn store_flags(
        &mut self,
        set: &SequenceSet,
        kind: StoreType,
        response: StoreResponse,
        flags: &[Flag<'_>],
        uid: bool,
        modifiers: &[StoreModifier],
    ) -> Outcome {
        let store = self.store.clone();
        let unchanged_since = modifiers
            .iter()
            .map(|StoreModifier::UnchangedSince(v)| *v as i64)
            .next();
        if unchanged_since.is_some() {
            self.enable_condstore();
        }
        let condstore = self.condstore;
        let sel = self.require_selected()?;
        if sel.read_only {
            return Err(Failure::No(
                Some(crate::response::code_other("READ-ONLY")),
                "Mailbox is read-only".into(),
            ));
        }
        let indexes = sel.resolve(set, uid)?;
        let mut failed = Vec::new();
        let mut targets = Vec::new();
        let mut target_set = std::collections::HashSet::new();
        for &i in &indexes {
            let m = &sel.messages[i];
            match unchanged_since {
                Some(limit) if m.modseq > limit => {
                    failed.push(if uid { m.uid } else { i as i64 + 1 })
                }
                _ => {
                    targets.push(m.uid);
                    target_set.insert(m.uid);
                }
            }
        }
        let op = match kind {
            StoreType::Replace => FlagOp::Replace,
            StoreType::Add => FlagOp::Add,
            StoreType::Remove => FlagOp::Remove,
        };
        let flags = to_store_flags(flags);
        let changed = store.set_flags(&sel.mailbox, &targets, op, &flags).await?;
        if let Some(class) = junk::keyword_class(op, &flags) {
            junk::train(&store, &sel.mailbox, &targets, class).await;
        }
        sel.update(changed);
        let mut out = sel.keyword_updates();
        let silent = matches!(response, StoreResponse::Silent);
        for &i in &indexes {
            let m = &sel.messages[i];
            if target_set.contains(&m.uid) && (!silent || unchanged_since.is_some()) {
                out.push(sel.flags_fetch(i, condstore));
            }
        }
        let mut done = Done::ok("STORE completed").with(out);
        if !failed.is_empty() {
            let seqs: Vec<Sequence> = failed
                .iter()
                .filter_map(|&v| NonZeroU32::new(u32::try_from(v).ok()?))
                .map(Sequence::from)
                .collect();
            if let Ok(set) = SequenceSet::try_from(seqs) {
                done = done.code(Code::Modified(set));
            }
        }
        Ok(done)
    }
}
