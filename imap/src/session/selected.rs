//! The selected mailbox as one session sees it: the message sequence numbers it has announced
//! (RFC 3501 §2.3.1.2), their flags and MODSEQs, and which messages are `\Recent` for it. Changes
//! made by other sessions are folded in by [`Selected::refresh`], which yields the untagged EXISTS,
//! RECENT, EXPUNGE and FETCH responses that keep the client's view consistent (RFC 3501 §7.4.1).

use std::collections::{BTreeSet, HashMap};
use std::num::NonZeroU32;

use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::flag::{Flag, FlagFetch, FlagPerm};
use imap_codec::imap_types::response::{Code, Data, Response, StatusKind};
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use postern_store::{Flags, Mailbox, MessageMeta, StoreError};

use crate::commands::LiveSearches;
use crate::mail_store::MailStore;
use crate::response::{atom, data, modseq, nz, untagged};
use crate::session::{bad, Failure};

/// A selected mailbox.
#[derive(Debug)]
pub struct Selected {
    /// The mailbox (counters as of the last refresh).
    pub mailbox: Mailbox,
    /// EXAMINE, or SELECT of a mailbox the session may not change.
    pub read_only: bool,
    /// Messages in sequence-number order (sequence number = index + 1).
    pub messages: Vec<MessageMeta>,
    /// UIDs that are `\Recent` in this session.
    pub recent: BTreeSet<i64>,
    /// Whether a change notification arrived since the last refresh.
    pub dirty: bool,
    /// Keywords announced in FLAGS so far (the list only grows during a selection).
    pub keywords: BTreeSet<String>,
    /// UIDs of the result saved by `SEARCH RETURN (SAVE)` (SEARCHRES, RFC 5182 §2.1): empty
    /// until a search saves one, for this selection only; expunged messages drop out.
    pub saved: BTreeSet<i64>,
    /// The current command's set is `$`: [`Selected::resolve`] names the saved messages.
    pub use_saved: bool,
    /// Searches kept up to date for this selection (CONTEXT=SEARCH, RFC 5267 §4).
    pub live: LiveSearches,
    /// The lowest UID of the messages announced since NOTIFY last fetched new messages with
    /// MessageNew's fetch attributes (RFC 5465 §5.2); `None` when none wait. One number
    /// whatever the number of new messages.
    pub notify_fetch_from: Option<i64>,
}

/// The FLAGS of a message as FETCH items.
pub fn flag_items(flags: &Flags, recent: bool) -> Vec<FlagFetch<'static>> {
    let mut out = Vec::new();
    for (bit, flag) in [
        (Flags::SEEN, Flag::Seen),
        (Flags::ANSWERED, Flag::Answered),
        (Flags::FLAGGED, Flag::Flagged),
        (Flags::DELETED, Flag::Deleted),
        (Flags::DRAFT, Flag::Draft),
    ] {
        if flags.system & bit != 0 {
            out.push(FlagFetch::Flag(flag));
        }
    }
    for k in &flags.keywords {
        out.push(FlagFetch::Flag(Flag::Keyword(atom(k))));
    }
    if recent {
        out.push(FlagFetch::Recent);
    }
    out
}

/// The ranges of a sequence set, each in ascending order, `*` standing for `max`.
pub fn set_ranges(set: &SequenceSet, max: i64) -> Vec<(i64, i64)> {
    let value = |s: &SeqOrUid| match s {
        SeqOrUid::Value(v) => i64::from(v.get()),
        SeqOrUid::Asterisk => max,
    };
    set.0
        .as_ref()
        .iter()
        .map(|s| match s {
            Sequence::Single(v) => (value(v), value(v)),
            Sequence::Range(a, b) => {
                let (a, b) = (value(a), value(b));
                (a.min(b), a.max(b))
            }
        })
        .collect()
}

impl Selected {
    /// Opens `mailbox`; a read-write selection claims the messages no session has seen as recent,
    /// a read-only one (EXAMINE) sees them as recent without claiming them, so its RECENT agrees
    /// with STATUS (RFC 3501 §6.3.2).
    pub async fn open(
        store: &impl MailStore,
        mailbox: Mailbox,
        read_only: bool,
    ) -> Result<Selected, StoreError> {
        // Only what this session claimed is \Recent here: a message appended between the claim
        // and the listing is left to the session that claims it.
        let recent_uids = if read_only {
            store.first_recent_uid(&mailbox).await?..i64::MAX
        } else {
            store.claim_recent(&mailbox).await?
        };
        let messages = store.list_messages(&mailbox).await?;
        let recent = messages
            .iter()
            .map(|m| m.uid)
            .filter(|u| recent_uids.contains(u))
            .collect();
        let keywords = messages
            .iter()
            .flat_map(|m| m.flags.keywords.iter().cloned())
            .collect();
        Ok(Selected {
            mailbox,
            read_only,
            messages,
            recent,
            dirty: false,
            keywords,
            saved: BTreeSet::new(),
            use_saved: false,
            live: LiveSearches::default(),
            notify_fetch_from: None,
        })
    }

    /// The FLAGS of the mailbox: the system flags and every keyword announced so far.
    pub fn flag_list(&self) -> Vec<Flag<'static>> {
        let mut flags = vec![
            Flag::Answered,
            Flag::Flagged,
            Flag::Deleted,
            Flag::Seen,
            Flag::Draft,
        ];
        flags.extend(self.keywords.iter().map(|k| Flag::Keyword(atom(k))));
        flags
    }

    /// `* OK [PERMANENTFLAGS ...]`: the flags and `\*` (new keywords may be created), none when
    /// read-only.
    pub fn permanent_flags(&self) -> Response<'static> {
        let perm = if self.read_only {
            Vec::new()
        } else {
            let mut perm: Vec<FlagPerm<'static>> =
                self.flag_list().into_iter().map(FlagPerm::Flag).collect();
            perm.push(FlagPerm::Asterisk);
            perm
        };
        untagged(StatusKind::Ok, Some(Code::PermanentFlags(perm)), "Limited")
    }

    /// Untagged FLAGS and PERMANENTFLAGS if a message now carries a keyword the session has not
    /// announced yet (RFC 3501 §7.2.6: the client must record the update), else nothing.
    pub fn keyword_updates(&mut self) -> Vec<Response<'static>> {
        let before = self.keywords.len();
        for m in &self.messages {
            for k in &m.flags.keywords {
                if !self.keywords.contains(k) {
                    self.keywords.insert(k.clone());
                }
            }
        }
        if self.keywords.len() == before {
            return Vec::new();
        }
        vec![data(Data::Flags(self.flag_list())), self.permanent_flags()]
    }

    /// Number of messages (EXISTS).
    pub fn exists(&self) -> u32 {
        u32::try_from(self.messages.len()).unwrap_or(u32::MAX)
    }

    /// Sequence number of the message at `index`.
    pub fn seq(index: usize) -> NonZeroU32 {
        nz(index as i64 + 1)
    }

    /// Whether every number of a message sequence number set names a message: RFC 3501 §9 /
    /// RFC 9051 §9 ("seq-number ... greater than the number of messages in the mailbox are
    /// invalid") and `*` in an empty mailbox names none. UID sets are not checked (RFC 9051
    /// §6.4.9: UIDs that name no message are ignored).
    pub fn check_seq_set(&self, set: &SequenceSet) -> Result<(), Failure> {
        let n = self.messages.len() as i64;
        let valid = |s: &SeqOrUid| match s {
            SeqOrUid::Value(v) => i64::from(v.get()) <= n,
            SeqOrUid::Asterisk => n > 0,
        };
        let all = set.0.as_ref().iter().all(|s| match s {
            Sequence::Single(a) => valid(a),
            Sequence::Range(a, b) => valid(a) && valid(b),
        });
        if all {
            Ok(())
        } else {
            Err(bad("Invalid messageset"))
        }
    }

    /// Indexes of the messages a sequence set names, by sequence number or by UID, ascending.
    /// Sequence numbers beyond EXISTS are BAD ([`Selected::check_seq_set`]); UIDs that name no
    /// message are ignored (RFC 9051 §6.4.9; CLIENT-COMPAT). While the command's set is `$`
    /// ([`Selected::use_saved`]), the saved messages still present (RFC 5182 §2.2).
    pub fn resolve(&self, set: &SequenceSet, uid: bool) -> Result<Vec<usize>, Failure> {
        if self.use_saved {
            return Ok((0..self.messages.len())
                .filter(|&i| self.saved.contains(&self.messages[i].uid))
                .collect());
        }
        if !uid {
            self.check_seq_set(set)?;
        }
        Ok(self.resolve_lenient(set, uid))
    }

    /// [`Selected::resolve`] without the check: numbers that name no message are ignored.
    fn resolve_lenient(&self, set: &SequenceSet, uid: bool) -> Vec<usize> {
        let n = self.messages.len();
        if n == 0 {
            return Vec::new();
        }
        let max = if uid {
            self.messages[n - 1].uid
        } else {
            n as i64
        };
        let ranges = set_ranges(set, max);
        let hit = |x: i64| ranges.iter().any(|&(a, b)| a <= x && x <= b);
        (0..n)
            .filter(|&i| {
                if uid {
                    hit(self.messages[i].uid)
                } else {
                    hit(i as i64 + 1)
                }
            })
            .collect()
    }

    /// An untagged FETCH of a message's flags (with UID, and MODSEQ under CONDSTORE).
    pub fn flags_fetch(&self, index: usize, condstore: bool) -> Response<'static> {
        let m = &self.messages[index];
        let mut items = vec![
            MessageDataItem::Flags(flag_items(&m.flags, self.recent.contains(&m.uid))),
            MessageDataItem::Uid(nz(m.uid)),
        ];
        if condstore {
            items.push(MessageDataItem::ModSeq(modseq(m.modseq)));
        }
        let items =
            Vec1::try_from(items).unwrap_or_else(|_| Vec1::from(MessageDataItem::Uid(nz(m.uid))));
        data(Data::Fetch {
            seq: Self::seq(index),
            items,
        })
    }

    /// Replaces the cached state of messages whose flags changed (by this session's STORE or an
    /// implicit `\Seen`).
    pub fn update(&mut self, changed: Vec<MessageMeta>) {
        let index = self.index_by_uid();
        for meta in changed {
            if let Some(&i) = index.get(&meta.uid) {
                self.messages[i] = meta;
            }
        }
    }

    /// The index of each message, by UID.
    pub fn index_by_uid(&self) -> HashMap<i64, usize> {
        self.messages
            .iter()
            .enumerate()
            .map(|(i, m)| (m.uid, i))
            .collect()
    }

    /// Removes messages the session itself expunged and returns their EXPUNGE responses.
    pub fn remove_uids(&mut self, uids: &[i64]) -> Vec<Response<'static>> {
        let gone: BTreeSet<i64> = uids.iter().copied().collect();
        let mut out = Vec::new();
        let mut index = 0;
        while index < self.messages.len() {
            if gone.contains(&self.messages[index].uid) {
                let m = self.messages.remove(index);
                self.recent.remove(&m.uid);
                out.push(data(Data::Expunge(Self::seq(index))));
            } else {
                index += 1;
            }
        }
        out
    }

    /// Marks the view dirty when the stored mailbox moved on (another HIGHESTMODSEQ or UIDNEXT,
    /// or the mailbox is gone) since the last refresh: one small query.
    pub async fn poll(&mut self, store: &impl MailStore) -> Result<(), StoreError> {
        if self.dirty {
            return Ok(());
        }
        let now = store
            .mailbox_by_id(self.mailbox.user_id, self.mailbox.id)
            .await?;
        self.dirty = now.is_none_or(|m| {
            m.highestmodseq != self.mailbox.highestmodseq || m.uidnext != self.mailbox.uidnext
        });
        Ok(())
    }

    /// Re-reads the mailbox and returns what changed since the session last looked. EXPUNGEs are
    /// reported only if `allow_expunge` (not during FETCH, STORE or SEARCH, RFC 3501 §7.4.1);
    /// otherwise expunged messages stay in the view until a later command may report them.
    pub async fn refresh(
        &mut self,
        store: &impl MailStore,
        allow_expunge: bool,
        condstore: bool,
    ) -> Result<Vec<Response<'static>>, StoreError> {
        self.dirty = false;
        let Some(mailbox) = store
            .mailbox_by_id(self.mailbox.user_id, self.mailbox.id)
            .await?
        else {
            // The mailbox was deleted or the user removed: report everything expunged.
            let uids: Vec<i64> = self.messages.iter().map(|m| m.uid).collect();
            return Ok(if allow_expunge {
                self.remove_uids(&uids)
            } else {
                Vec::new()
            });
        };
        let current = store.list_messages(&mailbox).await?;
        let first_new = self.messages.last().map_or(0, |m| m.uid);
        let by_uid: HashMap<i64, &MessageMeta> = current.iter().map(|m| (m.uid, m)).collect();
        let mut out = Vec::new();
        let gone: Vec<i64> = self
            .messages
            .iter()
            .filter(|m| !by_uid.contains_key(&m.uid))
            .map(|m| m.uid)
            .collect();
        if allow_expunge {
            out.extend(self.remove_uids(&gone));
        } else if !gone.is_empty() {
            // Report them on the next command that may.
            self.dirty = true;
        }
        let mut changed = Vec::new();
        for (index, m) in self.messages.iter_mut().enumerate() {
            if let Some(now) = by_uid.get(&m.uid) {
                if now.flags != m.flags || now.modseq != m.modseq {
                    let flags_changed = now.flags != m.flags;
                    *m = (*now).clone();
                    if flags_changed || condstore {
                        changed.push(index);
                    }
                }
            }
        }
        let before = self.messages.len();
        let new: Vec<MessageMeta> = current.into_iter().filter(|m| m.uid > first_new).collect();
        if !new.is_empty() {
            if !self.read_only {
                let claimed = store.claim_recent(&mailbox).await?;
                self.recent
                    .extend(new.iter().map(|m| m.uid).filter(|u| claimed.contains(u)));
            }
            self.messages.extend(new);
        }
        if self.messages.len() != before {
            out.push(data(Data::Exists(self.exists())));
            out.push(data(Data::Recent(
                u32::try_from(self.recent.len()).unwrap_or(u32::MAX),
            )));
        }
        out.extend(self.keyword_updates());
        for index in changed {
            out.push(self.flags_fetch(index, condstore));
        }
        self.mailbox = mailbox;
        Ok(out)
    }
}
