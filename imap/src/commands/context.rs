//! CONTEXT=SEARCH (RFC 5267 §4): searches made with `RETURN (UPDATE)` stay live while their
//! mailbox is selected. After every command (and while idling) the session re-evaluates them when
//! the view changed and tells the client what entered and left each result with untagged
//! `ESEARCH ... ADDTO` / `REMOVEFROM` (§4.3); an expunged match is removed just before its own
//! EXPUNGE so the sequence number is the one that EXPUNGE carries. CANCELUPDATE (§4.2) ends them.
//! The same pass writes QRESYNC's VANISHED in place of EXPUNGE (RFC 7162 §3.2.10).
//! A session keeps at most [`MAX_LIVE_SEARCHES`] holding [`MAX_LIVE_UIDS`] matches: beyond
//! that a search is answered once and refused updates with `NO [NOUPDATE "tag"]` (§4.1).

use std::num::NonZeroU32;

use imap_codec::imap_types::response::{Data, Response, StatusKind};
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::IntoStatic;

use crate::commands::qresync::vanished;
use crate::esearch::sequence_set;
use crate::mail_store::MailStore;
use crate::response::{code_other, encode_all, untagged};
use crate::session::{bad, Done, Outcome, Selected, Session};

/// Most live searches one selection keeps current; more are answered without updates.
pub(crate) const MAX_LIVE_SEARCHES: usize = 32;

/// Most matching UIDs the live searches of a session hold together (8 bytes each): a search
/// that would go beyond is answered without updates.
pub(crate) const MAX_LIVE_UIDS: usize = 1_000_000;

/// A search the client asked to keep current (RFC 5267 §4.1).
#[derive(Debug)]
pub(crate) struct LiveSearch {
    /// The SEARCH command's tag: the ESEARCH updates' `(TAG "...")` and CANCELUPDATE's name.
    tag: String,
    /// Whether the client sees UIDs (UID SEARCH) or sequence numbers.
    uid: bool,
    /// The search program, evaluated again when the mailbox changes.
    criteria: Vec<SearchKey<'static>>,
    /// UIDs of the messages the client currently holds as matching, ascending.
    matched: Vec<i64>,
}

/// The live searches of a selection, and a mark of the view they were last evaluated on.
#[derive(Debug, Default)]
pub(crate) struct LiveSearches {
    searches: Vec<LiveSearch>,
    mark: u64,
}

/// A cheap summary of the view (UIDs, MODSEQs, recent count): it changes whenever a message
/// arrives, leaves or changes flags, which is when a result may change.
fn view_mark(sel: &Selected) -> u64 {
    sel.messages.iter().fold(sel.recent.len() as u64, |h, m| {
        h.wrapping_mul(1_000_003) ^ ((m.uid as u64) << 32) ^ (m.modseq as u64)
    })
}

/// `* ESEARCH (TAG "t") [UID] ADDTO|REMOVEFROM (0 set)`: RFC 5267 §4.3; the position is 0 since
/// a SEARCH result has no order.
fn update_line(search: &LiveSearch, what: &str, numbers: &[NonZeroU32]) -> Vec<u8> {
    let uid = if search.uid { " UID" } else { "" };
    format!(
        "* ESEARCH (TAG \"{}\"){uid} {what} (0 {})\r\n",
        search.tag,
        sequence_set(numbers)
    )
    .into_bytes()
}

fn number(n: i64) -> Option<NonZeroU32> {
    NonZeroU32::new(u32::try_from(n).ok()?)
}

impl<S: MailStore> Session<S> {
    /// Keeps a `RETURN (UPDATE)` search live with the UIDs it matched now; with
    /// [`MAX_LIVE_SEARCHES`] already live, the untagged `NO [NOUPDATE]` to send instead.
    pub(crate) fn keep_current(
        &mut self,
        tag: &str,
        uid: bool,
        criteria: &[SearchKey<'_>],
        matched: Vec<i64>,
    ) -> Vec<Response<'static>> {
        let Some(sel) = self.selected.as_mut() else {
            return Vec::new();
        };
        sel.live.searches.retain(|s| s.tag != tag);
        let held: usize = sel.live.searches.iter().map(|s| s.matched.len()).sum();
        if sel.live.searches.len() >= MAX_LIVE_SEARCHES || held + matched.len() > MAX_LIVE_UIDS {
            return vec![untagged(
                StatusKind::No,
                Some(code_other(&format!("NOUPDATE \"{tag}\""))),
                "Too many searches kept up to date",
            )];
        }
        if sel.live.searches.is_empty() {
            sel.live.mark = view_mark(sel);
            self.context_view
                .get_or_insert_with(|| sel.messages.iter().map(|m| m.uid).collect());
        }
        sel.live.searches.push(LiveSearch {
            tag: tag.to_owned(),
            uid,
            criteria: criteria.iter().map(|k| k.clone().into_static()).collect(),
            matched,
        });
        Vec::new()
    }

    /// CANCELUPDATE (RFC 5267 §4.2): stops the updates of the searches with these tags (a tag
    /// with no live search is ignored: the server may have refused or ended it already).
    pub(crate) fn cancel_update(&mut self, tags: &[String]) -> Outcome {
        let sel = self.require_selected()?;
        if tags.is_empty() {
            return Err(bad("CANCELUPDATE needs a tag"));
        }
        sel.live.searches.retain(|s| !tags.contains(&s.tag));
        Ok(Done::ok("Updates cancelled"))
    }

    /// Notes the view the command starts from, if searches are live (see
    /// [`Session::context_updates`]).
    pub(crate) fn note_context_view(&mut self) {
        let qresync = self.qresync;
        self.context_view = self
            .selected
            .as_ref()
            .filter(|s| qresync || !s.live.searches.is_empty())
            .map(|s| s.messages.iter().map(|m| m.uid).collect());
    }

    /// With searches live or QRESYNC on: `responses` encoded, EXPUNGE as VANISHED under QRESYNC,
    /// each live search's REMOVEFROM put before the
    /// EXPUNGE of a message it matched, and then the ADDTO / REMOVEFROM of matches that
    /// changed; `None` (and `responses` untouched) when no search is live.
    pub(crate) async fn context_updates(
        &mut self,
        responses: &mut Vec<Response<'static>>,
    ) -> Option<Vec<u8>> {
        let view = self.context_view.take();
        let qresync = self.qresync;
        let sel = self.selected.as_mut()?;
        if sel.live.searches.is_empty() && !qresync {
            return None;
        }
        let mut view = view.unwrap_or_else(|| sel.messages.iter().map(|m| m.uid).collect());
        let mut out = Vec::new();
        for r in responses.drain(..) {
            if let Response::Data(Data::Expunge(seq)) = &r {
                let index = seq.get() as usize - 1;
                if index < view.len() {
                    let uid = view.remove(index);
                    for s in &mut sel.live.searches {
                        if let Ok(at) = s.matched.binary_search(&uid) {
                            s.matched.remove(at);
                            let n = if s.uid { number(uid) } else { Some(*seq) };
                            out.extend(update_line(
                                s,
                                "REMOVEFROM",
                                &n.into_iter().collect::<Vec<_>>(),
                            ));
                        }
                    }
                    if let Some(v) = vanished(uid).filter(|_| qresync) {
                        out.extend(encode_all(&[v]));
                        continue;
                    }
                }
            }
            out.extend(encode_all(std::slice::from_ref(&r)));
        }
        let mark = view_mark(sel);
        if mark == sel.live.mark {
            return Some(out);
        }
        sel.live.mark = mark;
        let mut searches = std::mem::take(&mut sel.live.searches);
        for s in &mut searches {
            let Ok(found) = self.matching(None, &s.criteria, false).await else {
                continue;
            };
            let Some(sel) = self.selected.as_ref() else {
                break;
            };
            let seq_of = sel.index_by_uid();
            let now: Vec<i64> = found.indexes.iter().map(|&i| sel.messages[i].uid).collect();
            let numbers = |uids: &mut dyn Iterator<Item = &i64>| -> Vec<NonZeroU32> {
                let mut n: Vec<NonZeroU32> = uids
                    .filter_map(|u| {
                        let seq = *seq_of.get(u)?;
                        if s.uid {
                            number(*u)
                        } else {
                            Some(Selected::seq(seq))
                        }
                    })
                    .collect();
                n.sort();
                n
            };
            let gone = |from: &[i64], to: &[i64]| -> Vec<i64> {
                from.iter()
                    .copied()
                    .filter(|u| to.binary_search(u).is_err())
                    .collect()
            };
            let removed = numbers(&mut gone(&s.matched, &now).iter());
            let added = numbers(&mut gone(&now, &s.matched).iter());
            if !removed.is_empty() {
                out.extend(update_line(s, "REMOVEFROM", &removed));
            }
            if !added.is_empty() {
                out.extend(update_line(s, "ADDTO", &added));
            }
            s.matched = now;
        }
        if let Some(sel) = self.selected.as_mut() {
            sel.live.searches = searches;
        }
        Some(out)
    }
}
