//! SEARCH and UID SEARCH (RFC 3501 §6.4.4) with MODSEQ (CONDSTORE, RFC 7162 §3.1.5). Address,
//! subject, BODY and TEXT keys are answered by the store's search index (decoded texts, one query
//! per key); HEADER reads the stored header blocks; SENT* the metadata stored at delivery.

use std::collections::{HashMap, HashSet};
use std::num::{NonZeroU32, NonZeroU64};

use imap_codec::imap_types::core::{AString, Charset};
use imap_codec::imap_types::datetime::NaiveDate;
use imap_codec::imap_types::response::{Code, Data};
use imap_codec::imap_types::search::SearchKey;
use postern_store::{Flags, MessageDetails, MessageMeta, TextKey};

use crate::commands::{batch_len, details_by_uid};
use crate::esearch::{self, SearchReturn};
use crate::mail_store::MailStore;
use crate::response::{atom, data};
use crate::session::{Done, Failure, Outcome, Selected, Session};

fn text_of(a: &AString<'_>) -> String {
    String::from_utf8_lossy(a.as_ref()).to_lowercase()
}

fn contains(hay: &str, needle: &str) -> bool {
    hay.to_lowercase().contains(needle)
}

fn day(d: &NaiveDate) -> i64 {
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    d.as_ref().signed_duration_since(epoch).num_days()
}

/// What evaluating a key needs beyond the message's flags and sizes: the stored metadata
/// (`parsed`), the header block (`header`), and the index queries of its text keys (`text`).
fn needs<'k>(
    key: &'k SearchKey<'_>,
    parsed: &mut bool,
    header: &mut bool,
    text: &mut Vec<TextQuery<'k>>,
) {
    use SearchKey as K;
    match key {
        K::And(keys) => keys
            .as_ref()
            .iter()
            .for_each(|k| needs(k, parsed, header, text)),
        K::Not(k) => needs(k, parsed, header, text),
        K::Or(a, b) => {
            needs(a, parsed, header, text);
            needs(b, parsed, header, text);
        }
        K::SentBefore(_) | K::SentOn(_) | K::SentSince(_) => *parsed = true,
        K::Header(name, value) => {
            *header = true;
            if name.as_ref().eq_ignore_ascii_case(b"subject") && !value.as_ref().is_empty() {
                text.push((TextKey::Subject, value.as_ref()));
            }
        }
        _ => text.extend(text_query(key)),
    }
}

/// An index query: which text, and the string it must contain as the client sent it (the store
/// folds it), so that evaluating a message looks its key up without allocating.
type TextQuery<'k> = (TextKey, &'k [u8]);

/// The index query a text key (FROM, TO, CC, BCC, SUBJECT, BODY, TEXT) stands for.
fn text_query<'k>(key: &'k SearchKey<'_>) -> Option<TextQuery<'k>> {
    use SearchKey as K;
    let (k, s) = match key {
        K::From(s) => (TextKey::From, s),
        K::To(s) => (TextKey::To, s),
        K::Cc(s) => (TextKey::Cc, s),
        K::Bcc(s) => (TextKey::Bcc, s),
        K::Subject(s) => (TextKey::Subject, s),
        K::Body(s) => (TextKey::Body, s),
        K::Text(s) => (TextKey::Text, s),
        _ => return None,
    };
    Some((k, s.as_ref()))
}

struct Ctx<'a> {
    seq: i64,
    max_seq: i64,
    max_uid: i64,
    meta: &'a MessageMeta,
    recent: bool,
    details: Option<&'a MessageDetails>,
    header: &'a [u8],
    /// UIDs matching each text key, from the index.
    text: &'a HashMap<TextQuery<'a>, HashSet<i64>>,
}

fn in_set(set: &imap_codec::imap_types::sequence::SequenceSet, value: i64, max: i64) -> bool {
    use imap_codec::imap_types::sequence::{SeqOrUid, Sequence};
    let v = |s: &SeqOrUid| match s {
        SeqOrUid::Value(n) => i64::from(n.get()),
        SeqOrUid::Asterisk => max,
    };
    set.0.as_ref().iter().any(|s| match s {
        Sequence::Single(a) => v(a) == value,
        Sequence::Range(a, b) => {
            let (a, b) = (v(a), v(b));
            a.min(b) <= value && value <= a.max(b)
        }
    })
}

fn header_values(raw: &[u8], header_end: usize, name: &str) -> String {
    let header = String::from_utf8_lossy(raw.get(..header_end).unwrap_or_default()).into_owned();
    let mut out = String::new();
    let mut current = false;
    for line in header.split_inclusive('\n') {
        if line.starts_with([' ', '\t']) {
            if current {
                out.push_str(line);
            }
            continue;
        }
        current = match line.split_once(':') {
            Some((n, v)) if n.trim().eq_ignore_ascii_case(name) => {
                out.push_str(v);
                true
            }
            _ => false,
        };
    }
    out
}

fn eval(key: &SearchKey<'_>, c: &Ctx<'_>) -> bool {
    use SearchKey as K;
    let f = &c.meta.flags;
    let has = |bit: i64| f.system & bit != 0;
    let parsed = c.details.map(|d| &d.parsed);
    let (raw, header_end) = (c.header, c.header.len());
    let found = |q: TextQuery<'_>| c.text.get(&q).is_some_and(|u| u.contains(&c.meta.uid));
    let indexed = |key: &SearchKey<'_>| text_query(key).is_some_and(found);
    let sent = parsed.and_then(|p| p.sent_day);
    let internal = c.meta.internal_date.div_euclid(86_400);
    match key {
        K::And(keys) => keys.as_ref().iter().all(|k| eval(k, c)),
        K::Not(k) => !eval(k, c),
        K::Or(a, b) => eval(a, c) || eval(b, c),
        K::SequenceSet(set) => in_set(set, c.seq, c.max_seq),
        K::Uid(set) => in_set(set, c.meta.uid, c.max_uid),
        K::All => true,
        K::Answered => has(Flags::ANSWERED),
        K::Deleted => has(Flags::DELETED),
        K::Draft => has(Flags::DRAFT),
        K::Flagged => has(Flags::FLAGGED),
        K::Seen => has(Flags::SEEN),
        K::Unanswered => !has(Flags::ANSWERED),
        K::Undeleted => !has(Flags::DELETED),
        K::Undraft => !has(Flags::DRAFT),
        K::Unflagged => !has(Flags::FLAGGED),
        K::Unseen => !has(Flags::SEEN),
        K::Recent => c.recent,
        K::New => c.recent && !has(Flags::SEEN),
        K::Old => !c.recent,
        K::Keyword(k) => f
            .keywords
            .iter()
            .any(|x| x.eq_ignore_ascii_case(k.as_ref())),
        K::Unkeyword(k) => !f
            .keywords
            .iter()
            .any(|x| x.eq_ignore_ascii_case(k.as_ref())),
        K::Larger(n) => c.meta.size > i64::from(*n),
        K::Smaller(n) => c.meta.size < i64::from(*n),
        K::Before(d) => internal < day(d),
        K::On(d) => internal == day(d),
        K::Since(d) => internal >= day(d),
        K::SentBefore(d) => sent.is_some_and(|s| s < day(d)),
        K::SentOn(d) => sent.is_some_and(|s| s == day(d)),
        K::SentSince(d) => sent.is_some_and(|s| s >= day(d)),
        K::From(_) | K::To(_) | K::Cc(_) | K::Bcc(_) | K::Subject(_) => indexed(key),
        K::Body(_) | K::Text(_) => indexed(key),
        K::Header(name, value) => {
            let name = String::from_utf8_lossy(name.as_ref()).into_owned();
            let values = header_values(raw, header_end, &name);
            let needle = text_of(value);
            if needle.is_empty() {
                !values.is_empty() || header_has(raw, header_end, &name)
            } else {
                contains(&values, &needle)
                    || (name.eq_ignore_ascii_case("subject")
                        && found((TextKey::Subject, value.as_ref())))
            }
        }
        K::ModSequence { modseq, .. } => c.meta.modseq >= *modseq as i64,
    }
}

fn header_has(raw: &[u8], header_end: usize, name: &str) -> bool {
    String::from_utf8_lossy(raw.get(..header_end).unwrap_or_default())
        .lines()
        .any(|l| {
            l.split_once(':')
                .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        })
}

/// Checks every message sequence number set of the program against EXISTS (RFC 3501 §9; UID
/// sets are lenient, RFC 9051 §6.4.9).
fn check_seq_sets(key: &SearchKey<'_>, sel: &Selected) -> Result<(), Failure> {
    match key {
        SearchKey::SequenceSet(set) => sel.check_seq_set(set),
        SearchKey::And(keys) => keys
            .as_ref()
            .iter()
            .try_for_each(|k| check_seq_sets(k, sel)),
        SearchKey::Not(k) => check_seq_sets(k, sel),
        SearchKey::Or(a, b) => {
            check_seq_sets(a, sel)?;
            check_seq_sets(b, sel)
        }
        _ => Ok(()),
    }
}

fn uses_modseq(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::ModSequence { .. } => true,
        SearchKey::And(keys) => keys.as_ref().iter().any(uses_modseq),
        SearchKey::Not(k) => uses_modseq(k),
        SearchKey::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        _ => false,
    }
}

impl<S: MailStore> Session<S> {
    /// SEARCH / UID SEARCH (RFC 3501 §6.4.4); sequence numbers beyond EXISTS are BAD (RFC 3501
    /// §9). The program's size and depth are bounded while decoding (`search_program`).
    pub(crate) async fn search(
        &mut self,
        charset: Option<&Charset<'_>>,
        criteria: &[SearchKey<'_>],
        uid: bool,
        esearch: Option<SearchReturn>,
    ) -> Outcome {
        // Out-of-range sequence numbers: BAD for SEARCH (RFC 3501 §9), no match for ESEARCH,
        // whose result reports "nothing" (RFC 4731 §3.1) as Dovecot does.
        let found = self.matching(charset, criteria, esearch.is_none()).await?;
        let sel = self.require_selected()?;
        let hits = found.numbers(sel, uid);
        if let Some(options) = esearch.as_ref().filter(|o| o.save) {
            let uids: Vec<i64> = found.indexes.iter().map(|&i| sel.messages[i].uid).collect();
            sel.saved = options.saved(&uids).into_iter().collect();
        }
        let Some(options) = esearch else {
            let modseq = found.modseq(!hits.is_empty());
            return Ok(Done::ok("SEARCH completed").with(vec![data(Data::Search(hits, modseq))]));
        };
        // RFC 7162 §3.1.5: with only MIN and/or MAX, the MODSEQ of the messages returned.
        let modseq = found.highest_modseq.map(|highest| {
            let ends = [found.indexes.first(), found.indexes.last()];
            if options.all || options.count {
                highest
            } else {
                ends.iter()
                    .zip([options.min, options.max])
                    .filter(|(_, wanted)| *wanted)
                    .filter_map(|(i, _)| i.map(|&i| sel.messages[i].modseq))
                    .max()
                    .unwrap_or(highest)
            }
        });
        let matched: Vec<i64> = found.indexes.iter().map(|&i| sel.messages[i].uid).collect();
        let refused = if options.update {
            self.keep_current(&options.tag, uid, criteria, matched)
        } else {
            Vec::new()
        };
        if options.save_only() {
            return Ok(Done::ok("SEARCH completed").with(refused));
        }
        let line = esearch::response(&options, uid, &hits, modseq.map(|m| m as u64));
        Ok(Done::ok("SEARCH completed").raw(line).with(refused))
    }

    /// The selected messages a search program matches (shared by SEARCH, SORT and THREAD);
    /// with `check_sets`, a sequence number beyond EXISTS is BAD.
    pub(crate) async fn matching(
        &mut self,
        charset: Option<&Charset<'_>>,
        criteria: &[SearchKey<'_>],
        check_sets: bool,
    ) -> Result<Matches, Failure> {
        if let Some(cs) = charset {
            let name = match cs {
                Charset::Atom(a) => a.as_ref().to_owned(),
                Charset::Quoted(q) => q.inner().to_owned(),
            };
            if !["UTF-8", "US-ASCII"]
                .iter()
                .any(|c| c.eq_ignore_ascii_case(&name))
            {
                return Err(Failure::No(
                    Some(Code::BadCharset {
                        allowed: vec![
                            Charset::Atom(atom("UTF-8")),
                            Charset::Atom(atom("US-ASCII")),
                        ],
                    }),
                    "Unsupported charset".into(),
                ));
            }
        }
        if check_sets {
            let sel = self.require_selected()?;
            criteria.iter().try_for_each(|k| check_seq_sets(k, sel))?;
        }
        let modseq = criteria.iter().any(uses_modseq);
        if modseq {
            self.enable_condstore();
        }
        let (mut parsed, mut header, mut queries) = (false, false, Vec::new());
        criteria
            .iter()
            .for_each(|k| needs(k, &mut parsed, &mut header, &mut queries));
        let store = self.store.clone();
        let sel = self.require_selected()?;
        let mut text = HashMap::new();
        for q in queries {
            if let std::collections::hash_map::Entry::Vacant(slot) = text.entry(q) {
                let (key, needle) = *slot.key();
                let needle = String::from_utf8_lossy(needle);
                let uids = store.search_text(&sel.mailbox, key, &needle).await?;
                slot.insert(uids);
            }
        }
        let max_seq = sel.messages.len() as i64;
        let max_uid = sel.messages.last().map_or(0, |m| m.uid);
        let mut hits = Vec::new();
        let mut highest = 0i64;
        let mut start = 0;
        // One batch of messages at a time: only its details (and header blocks) are held.
        while start < sel.messages.len() {
            let len = if parsed || header {
                batch_len(sel.messages[start..].iter().map(|_| 0))
            } else {
                sel.messages.len() - start
            };
            let batch = start..start + len;
            start += len;
            let details = if parsed {
                details_by_uid(&store, sel, batch.clone(), false).await?
            } else {
                HashMap::new()
            };
            let headers: HashMap<i64, Vec<u8>> = if header {
                let uids: Vec<i64> = batch.clone().map(|i| sel.messages[i].uid).collect();
                store
                    .message_headers(&sel.mailbox, &uids)
                    .await?
                    .into_iter()
                    .collect()
            } else {
                HashMap::new()
            };
            for i in batch {
                let meta = &sel.messages[i];
                let d = details.get(&meta.uid);
                let h = headers.get(&meta.uid);
                if (parsed && d.is_none()) || (header && h.is_none()) {
                    continue;
                }
                let ctx = Ctx {
                    seq: i as i64 + 1,
                    max_seq,
                    max_uid,
                    meta,
                    recent: sel.recent.contains(&meta.uid),
                    details: d,
                    header: h.map_or(&[][..], Vec::as_slice),
                    text: &text,
                };
                if criteria.iter().all(|k| eval(k, &ctx)) {
                    highest = highest.max(meta.modseq);
                    hits.push(i);
                }
            }
        }
        Ok(Matches {
            indexes: hits,
            highest_modseq: modseq.then_some(highest),
        })
    }
}

/// What a search program matched.
pub(crate) struct Matches {
    /// Indexes into the selected mailbox's messages, ascending.
    pub indexes: Vec<usize>,
    /// The highest MODSEQ of the matches, when the program used MODSEQ (RFC 7162 §3.1.5).
    pub highest_modseq: Option<i64>,
}

impl Matches {
    /// Sequence numbers or UIDs of the messages at `indexes`.
    pub fn numbers_of(sel: &Selected, indexes: &[usize], uid: bool) -> Vec<NonZeroU32> {
        indexes
            .iter()
            .filter_map(|&i| {
                if uid {
                    NonZeroU32::new(u32::try_from(sel.messages[i].uid).unwrap_or(0))
                } else {
                    Some(Selected::seq(i))
                }
            })
            .collect()
    }

    /// Sequence numbers or UIDs of the matches.
    pub fn numbers(&self, sel: &Selected, uid: bool) -> Vec<NonZeroU32> {
        Self::numbers_of(sel, &self.indexes, uid)
    }

    /// The MODSEQ to report: only when asked for and something matched.
    pub fn modseq(&self, any: bool) -> Option<NonZeroU64> {
        self.highest_modseq
            .filter(|_| any)
            .and_then(|h| NonZeroU64::new(h as u64))
    }
}
