//! SORT (RFC 5256 §3, DISPLAYFROM/DISPLAYTO from RFC 5957 §3, ESORT from RFC 5267 §3.2) and THREAD (RFC 5256 §4:
//! ORDEREDSUBJECT here, REFERENCES in `thread`). Both take the messages a search program matches,
//! load their stored envelopes a batch at a time, and keep only the few keys they order by.

use std::cmp::Ordering;

use imap_codec::imap_types::core::{Charset, Vec1, Vec2};
use imap_codec::imap_types::extensions::sort::{SortCriterion, SortKey};
use imap_codec::imap_types::extensions::thread::{Thread, ThreadingAlgorithm};
use imap_codec::imap_types::response::{Data, StatusKind};
use imap_codec::imap_types::search::SearchKey;
use mail_parser::MessageParser;
use postern_store::{EnvelopeAddress, MessageDetails, MessageMeta};

use super::search::Matches;
use super::{batch_len, details_by_uid};
use crate::esearch::{self, SearchReturn};
use crate::mail_store::MailStore;
use crate::response::{code_other, data, untagged};
use crate::session::{bad, Done, Failure, Outcome, Session};

/// What SORT and THREAD know about one message.
pub(crate) struct Keys {
    /// Index in the selected mailbox.
    pub index: usize,
    /// RFC822.SIZE.
    pub size: i64,
    /// INTERNALDATE, seconds since the epoch.
    pub arrival: i64,
    /// Sent date (`Date:`, or the internal date when it is missing or unreadable).
    pub date: i64,
    /// Base subject (RFC 5256 §2.1), upper-cased for i;ascii-casemap.
    pub subject: String,
    /// Whether the subject marked a reply or forward.
    pub reply: bool,
    /// First From local part (RFC 5256 §3 FROM).
    pub from: String,
    /// First To local part.
    pub to: String,
    /// First Cc local part.
    pub cc: String,
    /// First From display name or address (RFC 5957 DISPLAYFROM).
    pub display_from: String,
    /// First To display name or address.
    pub display_to: String,
    /// `Message-ID` without its angle brackets.
    pub message_id: Option<String>,
    /// `References` then `In-Reply-To` message ids (RFC 5256 §4.2 step 1A/1B).
    pub references: Vec<String>,
}

/// Decodes RFC 2047 encoded words (mail-parser's decoder, through a one-line header).
fn decode_words(s: &str) -> String {
    if !s.contains("=?") {
        return s.to_owned();
    }
    let header = format!("Subject: {s}\r\n\r\n");
    MessageParser::default()
        .parse(header.as_bytes())
        .and_then(|m| m.subject().map(str::to_owned))
        .unwrap_or_else(|| s.to_owned())
}

/// RFC 5256 §3: the first address's local part (a group's name, if it starts with a group, as
/// Dovecot sorts), i;ascii-casemap.
fn mailbox_key(list: &[EnvelopeAddress]) -> String {
    list.first()
        .and_then(|a| a.mailbox.as_deref())
        .unwrap_or_default()
        .to_ascii_uppercase()
}

/// RFC 5957 §3: the first address's display name, or its address when it has none (a group's
/// name for a group).
fn display_key(list: &[EnvelopeAddress]) -> String {
    let Some(a) = list.first() else {
        return String::new();
    };
    let name = a.name.as_deref().map(decode_words).unwrap_or_default();
    let name = name.trim();
    if a.host.is_none() {
        a.mailbox
            .as_deref()
            .unwrap_or_default()
            .to_ascii_uppercase()
    } else if name.is_empty() {
        format!(
            "{}@{}",
            a.mailbox.as_deref().unwrap_or_default(),
            a.host.as_deref().unwrap_or_default()
        )
        .to_ascii_uppercase()
    } else {
        name.to_ascii_uppercase()
    }
}

/// `<id>` tokens of a header value, without brackets.
fn message_ids(value: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = value.unwrap_or_default();
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>') else {
            break;
        };
        let id = rest[open + 1..open + close].trim();
        if !id.is_empty() {
            out.push(id.to_owned());
        }
        rest = &rest[open + close + 1..];
    }
    out
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// A leading `[...]` blob (RFC 5256 §5 `subj-blob`) and the white space after it.
fn strip_blob(s: &str) -> Option<&str> {
    let rest = s.strip_prefix('[')?;
    let close = rest.find([']', '['])?;
    rest[close..]
        .strip_prefix(']')
        .map(|r| r.trim_start_matches([' ', '\t']))
}

/// A leading `re:`, `fw:` or `fwd:`, optionally with one blob before the colon (`subj-refwd`).
fn strip_refwd(s: &str) -> Option<&str> {
    let rest = strip_prefix_ci(s, "re")
        .or_else(|| strip_prefix_ci(s, "fwd"))
        .or_else(|| strip_prefix_ci(s, "fw"))?;
    let rest = rest.trim_start_matches([' ', '\t']);
    let rest = strip_blob(rest).unwrap_or(rest);
    rest.strip_prefix(':')
}

/// The base subject of a decoded subject (RFC 5256 §2.1), upper-cased for comparison, and whether
/// anything marking a reply or forward was taken off (RFC 5256 §4.2 step 6 needs to know).
fn base_subject_and_reply(decoded: &str) -> (String, bool) {
    let mut reply = false;
    let mut s: String = decoded.split_whitespace().collect::<Vec<_>>().join(" ");
    loop {
        // (2) trailing "(fwd)" and white space.
        loop {
            let t = s.trim_end();
            match t.len().checked_sub(5).and_then(|at| t.get(at..)) {
                Some(tail) if tail.eq_ignore_ascii_case("(fwd)") => {
                    reply = true;
                    s = t[..t.len() - 5].to_owned();
                }
                _ => {
                    s = t.to_owned();
                    break;
                }
            }
        }
        // (3), (4) leading white space, "re:"-style leaders and blobs, as long as any is left.
        loop {
            let t = s.trim_start();
            if let Some(rest) = strip_refwd(t) {
                reply = true;
                s = rest.to_owned();
            } else if let Some(rest) = strip_blob(t).filter(|r| !r.trim().is_empty()) {
                s = rest.to_owned();
            } else {
                s = t.to_owned();
                break;
            }
        }
        // (5) "[fwd: ...]" around the whole subject.
        match strip_prefix_ci(&s, "[fwd:").and_then(|r| r.strip_suffix(']')) {
            Some(inner) => {
                reply = true;
                s = inner.to_owned();
            }
            None => break,
        }
    }
    (s.to_ascii_uppercase(), reply)
}

impl Keys {
    fn of(index: usize, meta: &MessageMeta, d: &MessageDetails) -> Keys {
        let env = &d.parsed.envelope;
        let date = env
            .date
            .as_deref()
            .and_then(mail_parser::DateTime::parse_rfc822)
            .map(|t| t.to_timestamp())
            .unwrap_or(meta.internal_date);
        let mut references = message_ids(d.parsed.references.as_deref());
        if references.is_empty() {
            // RFC 5256 §4.2 step 1B: only the first id of In-Reply-To counts.
            references.extend(message_ids(env.in_reply_to.as_deref()).into_iter().take(1));
        }
        let (subject, reply) = base_subject_and_reply(&d.parsed.search.subject);
        Keys {
            index,
            size: meta.size,
            arrival: meta.internal_date,
            date,
            subject,
            reply,
            from: mailbox_key(&env.from),
            to: mailbox_key(&env.to),
            cc: mailbox_key(&env.cc),
            display_from: display_key(&env.from),
            display_to: display_key(&env.to),
            message_id: message_ids(env.message_id.as_deref()).into_iter().next(),
            references,
        }
    }

    fn compare(&self, other: &Keys, key: &SortKey) -> Ordering {
        match key {
            SortKey::Arrival => self.arrival.cmp(&other.arrival),
            SortKey::Cc => self.cc.cmp(&other.cc),
            SortKey::Date => self.date.cmp(&other.date),
            SortKey::From => self.from.cmp(&other.from),
            SortKey::Size => self.size.cmp(&other.size),
            SortKey::Subject => self.subject.cmp(&other.subject),
            SortKey::To => self.to.cmp(&other.to),
            SortKey::DisplayFrom => self.display_from.cmp(&other.display_from),
            SortKey::DisplayTo => self.display_to.cmp(&other.display_to),
        }
    }
}

/// A thread node (a message, or a missing parent for REFERENCES) as imap-types writes it: a
/// message followed by its only child is one list, several children are nested lists.
pub(crate) fn thread_of(
    number: Option<std::num::NonZeroU32>,
    mut children: Vec<Thread>,
) -> Option<Thread> {
    match (number, children.len()) {
        (None, 0) => None,
        (None, 1) => children.pop(),
        (None, _) => Vec2::try_from(children)
            .ok()
            .map(|answers| Thread::Nested { answers }),
        (Some(n), 0) => Some(Thread::Members {
            prefix: Vec1::from(n),
            answers: None,
        }),
        (Some(n), 1) => match children.pop() {
            Some(Thread::Members { prefix, answers }) => {
                let mut p = vec![n];
                p.extend(prefix.into_inner());
                Vec1::try_from(p)
                    .ok()
                    .map(|prefix| Thread::Members { prefix, answers })
            }
            Some(Thread::Nested { answers }) => Some(Thread::Members {
                prefix: Vec1::from(n),
                answers: Some(answers),
            }),
            None => None,
        },
        (Some(n), _) => Some(Thread::Members {
            prefix: Vec1::from(n),
            answers: Vec2::try_from(children).ok(),
        }),
    }
}

impl<S: MailStore> Session<S> {
    /// The keys of the messages a search program matches (a batch of envelopes at a time).
    async fn keys(
        &mut self,
        charset: &Charset<'_>,
        criteria: &[SearchKey<'_>],
    ) -> Result<(Vec<Keys>, Matches), Failure> {
        let found = self.matching(Some(charset), criteria, true).await?;
        let store = self.store.clone();
        let sel = self.require_selected()?;
        let mut keys = Vec::with_capacity(found.indexes.len());
        let mut start = 0;
        while start < found.indexes.len() {
            let len = batch_len(found.indexes[start..].iter().map(|_| 0));
            let batch = &found.indexes[start..start + len];
            start += len;
            let details = details_by_uid(&store, sel, batch.iter().copied(), false).await?;
            for &i in batch {
                let meta = &sel.messages[i];
                if let Some(d) = details.get(&meta.uid) {
                    keys.push(Keys::of(i, meta, d));
                }
            }
        }
        Ok((keys, found))
    }

    /// SORT / UID SORT (RFC 5256 §3): ties are broken by sequence number.
    pub(crate) async fn sort(
        &mut self,
        criteria: &[SortCriterion],
        charset: &Charset<'_>,
        search: &[SearchKey<'_>],
        uid: bool,
        esort: Option<SearchReturn>,
    ) -> Outcome {
        let (mut keys, found) = self.keys(charset, search).await?;
        keys.sort_by(|a, b| {
            criteria
                .iter()
                .map(|c| {
                    let o = a.compare(b, &c.key);
                    if c.reverse {
                        o.reverse()
                    } else {
                        o
                    }
                })
                .find(|o| o.is_ne())
                .unwrap_or_else(|| a.index.cmp(&b.index))
        });
        let sel = self.require_selected()?;
        let order: Vec<usize> = keys.iter().map(|k| k.index).collect();
        let numbers = Matches::numbers_of(sel, &order, uid);
        let modseq = found.modseq(!numbers.is_empty());
        if let Some(options) = esort {
            if options.save {
                // RFC 5267 §3.2 with SEARCHRES: MIN and MAX are the first and last in order.
                let uids: Vec<i64> = order.iter().map(|&i| sel.messages[i].uid).collect();
                sel.saved = options.saved(&uids).into_iter().collect();
            }
            // RFC 5267 §4.1: a server may decline to keep a result current; sorted results
            // are not kept.
            let refused = if options.update {
                vec![untagged(
                    StatusKind::No,
                    Some(code_other(&format!("NOUPDATE \"{}\"", options.tag))),
                    "Sorted results are not kept up to date",
                )]
            } else {
                Vec::new()
            };
            if options.save_only() {
                return Ok(Done::ok("SORT completed").with(refused));
            }
            let line = esearch::response(&options, uid, &numbers, modseq.map(|m| m.get()));
            return Ok(Done::ok("SORT completed").raw(line).with(refused));
        }
        Ok(Done::ok("SORT completed").with(vec![data(Data::Sort(numbers, modseq))]))
    }

    /// THREAD / UID THREAD (RFC 5256 §4) with ORDEREDSUBJECT or REFERENCES.
    pub(crate) async fn thread(
        &mut self,
        algorithm: &ThreadingAlgorithm<'_>,
        charset: &Charset<'_>,
        search: &[SearchKey<'_>],
        uid: bool,
    ) -> Outcome {
        if !matches!(
            algorithm,
            ThreadingAlgorithm::OrderedSubject | ThreadingAlgorithm::References
        ) {
            return Err(bad("Unknown threading algorithm"));
        }
        let (mut keys, _) = self.keys(charset, search).await?;
        let sel = self.require_selected()?;
        let number = |k: &Keys| Matches::numbers_of(sel, &[k.index], uid).first().copied();
        let threads = match algorithm {
            ThreadingAlgorithm::References => super::thread::references(&keys, number),
            _ => {
                // §4.1: by base subject, then sent date; each subject is a thread whose first
                // message is the parent of all the others; threads ordered by their first date.
                keys.sort_by(|a, b| {
                    (&a.subject, a.date, a.index).cmp(&(&b.subject, b.date, b.index))
                });
                let mut groups: Vec<Vec<&Keys>> = Vec::new();
                for k in &keys {
                    match groups.last_mut() {
                        Some(g) if g[0].subject == k.subject => g.push(k),
                        _ => groups.push(vec![k]),
                    }
                }
                groups.sort_by_key(|g| (g[0].date, g[0].index));
                groups
                    .into_iter()
                    .filter_map(|g| {
                        let children = g[1..]
                            .iter()
                            .filter_map(|k| thread_of(number(k), Vec::new()))
                            .collect();
                        thread_of(number(g[0]), children)
                    })
                    .collect()
            }
        };
        Ok(Done::ok("THREAD completed").with(vec![data(Data::Thread(threads))]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_subjects() {
        for (subject, base) in [
            ("Re: hello", "HELLO"),
            ("RE: Re:  re[x]: Fwd: hello  (fwd) (FWD)", "HELLO"),
            ("[list] Re: [other] hello", "HELLO"),
            ("[fwd: Re: hello]", "HELLO"),
            ("[only blob]", "[ONLY BLOB]"),
            ("  spaced\t out  ", "SPACED OUT"),
            ("Reply to this", "REPLY TO THIS"),
            ("", ""),
        ] {
            assert_eq!(base_subject_and_reply(subject).0, base, "{subject:?}");
        }
    }

    #[test]
    fn ids() {
        assert_eq!(message_ids(Some("<a@b> junk <c@d>")), vec!["a@b", "c@d"]);
        assert!(message_ids(Some("<unterminated")).is_empty());
        assert!(message_ids(None).is_empty());
    }
}
