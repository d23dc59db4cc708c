//! QRESYNC (RFC 7162 §3.2): ENABLE QRESYNC, SELECT/EXAMINE with `(QRESYNC (uidvalidity modseq
//! [known-uids]))`, UID FETCH's VANISHED modifier, and VANISHED instead of EXPUNGE once enabled
//! (`context::Session::context_updates` rewrites them). Postern keeps no record of expunged
//! UIDs, so `VANISHED (EARLIER)` names every UID of the client's range that no longer exists,
//! which §3.2.5.2 and §3.2.6 allow (a UID the client never saw is ignored by it).

use std::num::{NonZeroU32, NonZeroU64};

use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::response::{Data, Response};
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

use crate::mail_store::MailStore;
use crate::response::data;
use crate::session::{bad, set_ranges, Failure, Selected, Session};

/// The UID ranges of `set`, `*` being the highest UID assigned so far (`uidnext - 1`).
fn uid_ranges(set: &SequenceSet, uidnext: i64) -> Vec<(i64, i64)> {
    let last = uidnext - 1;
    set_ranges(set, last)
        .into_iter()
        .map(|(a, b)| (a, b.min(last)))
        .filter(|(a, b)| a <= b)
        .collect()
}

/// `* VANISHED (EARLIER) uids`: the UIDs of `ranges` below UIDNEXT that name no message of the
/// view; `None` if there are none.
pub(crate) fn vanished_earlier(sel: &Selected, ranges: &[(i64, i64)]) -> Option<Response<'static>> {
    let mut gaps: Vec<Sequence> = Vec::new();
    for &(from, to) in ranges {
        let to = to.min(sel.mailbox.uidnext - 1);
        let mut next = from.max(1);
        let start = sel.messages.partition_point(|m| m.uid < next);
        for m in sel.messages[start..].iter().take_while(|m| m.uid <= to) {
            if m.uid > next {
                gaps.push(range(next, m.uid - 1)?);
            }
            next = m.uid + 1;
        }
        if next <= to {
            gaps.push(range(next, to)?);
        }
    }
    let known_uids = SequenceSet(Vec1::try_from(gaps).ok()?);
    Some(data(Data::Vanished {
        earlier: true,
        known_uids,
    }))
}

fn range(a: i64, b: i64) -> Option<Sequence> {
    let n = |v: i64| NonZeroU32::new(u32::try_from(v).ok()?).map(SeqOrUid::Value);
    Some(if a == b {
        Sequence::Single(n(a)?)
    } else {
        Sequence::Range(n(a)?, n(b)?)
    })
}

/// `* VANISHED uid` for one message expunged while QRESYNC is on (RFC 7162 §3.2.10).
pub(crate) fn vanished(uid: i64) -> Option<Response<'static>> {
    Some(data(Data::Vanished {
        earlier: false,
        known_uids: SequenceSet(Vec1::from(range(uid, uid)?)),
    }))
}

impl<S: MailStore> Session<S> {
    /// The resynchronization SELECT (QRESYNC) asks for, sent after its usual responses (RFC 7162
    /// §3.2.5): nothing if UIDVALIDITY changed, else VANISHED (EARLIER) for the known UIDs that
    /// are gone and the flags of every message changed since `modseq`.
    pub(crate) fn resync(
        &self,
        uidvalidity: NonZeroU32,
        modseq: NonZeroU64,
        known: Option<&SequenceSet>,
    ) -> Result<Vec<Response<'static>>, Failure> {
        if !self.qresync {
            return Err(bad("ENABLE QRESYNC first"));
        }
        let Some(sel) = self.selected.as_ref() else {
            return Ok(Vec::new());
        };
        if i64::from(uidvalidity.get()) != sel.mailbox.uidvalidity {
            return Ok(Vec::new());
        }
        let ranges = match known {
            Some(set) => uid_ranges(set, sel.mailbox.uidnext),
            None => vec![(1, sel.mailbox.uidnext - 1)],
        };
        let mut out: Vec<Response<'static>> = vanished_earlier(sel, &ranges).into_iter().collect();
        let since = i64::try_from(modseq.get()).unwrap_or(i64::MAX);
        out.extend(
            (0..sel.messages.len())
                .filter(|&i| sel.messages[i].modseq > since)
                .map(|i| sel.flags_fetch(i, true)),
        );
        Ok(out)
    }

    /// UID FETCH (CHANGEDSINCE m VANISHED) (RFC 7162 §3.2.6): the UIDs of `set` that are gone,
    /// queued to go out before the FETCH responses.
    pub(crate) fn fetch_vanished(
        &mut self,
        set: &SequenceSet,
        uid: bool,
        changed_since: bool,
    ) -> Result<(), Failure> {
        if !self.qresync || !uid || !changed_since {
            return Err(bad("VANISHED needs QRESYNC, UID FETCH and CHANGEDSINCE"));
        }
        let sel = self.require_selected()?;
        let ranges = uid_ranges(set, sel.mailbox.uidnext);
        if let Some(v) = vanished_earlier(sel, &ranges) {
            self.notices.push(v);
        }
        Ok(())
    }
}
