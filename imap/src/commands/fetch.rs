//! FETCH and UID FETCH (RFC 3501 §6.4.5, §7.4.2) with MODSEQ and CHANGEDSINCE (CONDSTORE, RFC 7162
//! §3.1.4-5). ENVELOPE, BODYSTRUCTURE and section offsets come from the metadata stored at
//! delivery; raw bytes are read only for items that return them.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::num::NonZeroU32;

use imap_codec::imap_types::command::FetchModifier;
use imap_codec::imap_types::core::{Literal, NString};
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::fetch::{
    MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName, Section,
};
use imap_codec::imap_types::sequence::SequenceSet;
use imap_codec::imap_types::IntoStatic;
use postern_store::{BodyPart, FlagOp, Flags, Mailbox, MessageDetails, ParsedMessage, StoreError};

use crate::bodystructure::body_structure;
use crate::commands::binary::{binary_section, binary_value};
use crate::commands::fetch_line::{body_label, FetchLine};
use crate::commands::section::section_bytes;
use crate::commands::{batch_len, details_by_uid, header_batch_len};
use crate::envelope::envelope;
use crate::mail_store::MailStore;
use crate::response::{encode_all, modseq, nz};
use crate::session::{no, ChangeFeed, Done, Failure, Next, Outcome, Reply, Session};

/// INTERNALDATE as an IMAP date-time (UTC).
pub(crate) fn internal_date(secs: i64) -> Option<DateTime> {
    let t = chrono::DateTime::from_timestamp(secs, 0)?.fixed_offset();
    DateTime::try_from(t).ok()
}

/// Bytes as a literal (NUL bytes, which literals cannot carry, become spaces).
pub(crate) fn literal(mut bytes: Vec<u8>) -> NString<'static> {
    for b in bytes.iter_mut() {
        if *b == 0 {
            *b = b' ';
        }
    }
    NString(Literal::try_from(bytes).ok().map(Into::into))
}

/// The `<origin.length>` window of `bytes`.
fn partial(bytes: &[u8], window: Option<(u32, NonZeroU32)>) -> &[u8] {
    match window {
        None => bytes,
        Some((start, len)) => {
            let start = (start as usize).min(bytes.len());
            let end = start.saturating_add(len.get() as usize).min(bytes.len());
            &bytes[start..end]
        }
    }
}

/// Whether `name` returns the top-level header or part of it (HEADER, HEADER.FIELDS[.NOT],
/// RFC822.HEADER): the stored header block is enough to answer it.
fn reads_header_only(name: &MessageDataItemName<'_>) -> bool {
    match name {
        MessageDataItemName::Rfc822Header => true,
        MessageDataItemName::BodyExt { section, .. } => matches!(
            section,
            Some(
                Section::Header(None)
                    | Section::HeaderFields(None, _)
                    | Section::HeaderFieldsNot(None, _)
            )
        ),
        _ => false,
    }
}

/// The messages of `mailbox` with the given UIDs cut to their stored header blocks, by UID: a
/// message whose body is empty, so the top-level header sections resolve exactly as on the
/// whole message. Owns its arguments, so that the next batch can be read while one is answered.
async fn header_details(
    store: impl MailStore,
    mailbox: Mailbox,
    uids: Vec<i64>,
) -> Result<HashMap<i64, MessageDetails>, StoreError> {
    Ok(store
        .message_headers(&mailbox, &uids)
        .await?
        .into_iter()
        .map(|(uid, header)| {
            let len = u32::try_from(header.len()).unwrap_or(u32::MAX);
            let body = BodyPart {
                body_start: len,
                end: len,
                ..BodyPart::default()
            };
            let parsed = ParsedMessage {
                envelope: Default::default(),
                body,
                sent_day: None,
                search: Default::default(),
                references: None,
            };
            let raw = Some(header);
            (uid, MessageDetails { uid, parsed, raw })
        })
        .collect())
}

/// How many batches of a header-only FETCH are read ahead, each on its own pooled connection,
/// while one is encoded and written: the store's lookups of one batch and the next run on
/// different cores (PostgreSQL's backend spends more per batch than the encoding).
const HEADER_READ_AHEAD: usize = 2;

/// The header blocks of a batch of a header-only FETCH, being read while an earlier batch is
/// encoded and written: the end of that batch in the plan's indexes, and the read.
type HeaderPrefetch = (
    usize,
    tokio::task::JoinHandle<Result<HashMap<i64, MessageDetails>, StoreError>>,
);

/// A FETCH in progress (RFC 3501 §6.4.5): the messages and items to return, handed out batch by
/// batch through [`Session::fetch_batch`] so that the reply is never built whole.
pub(crate) struct FetchPlan {
    names: Vec<MessageDataItemName<'static>>,
    /// What each BODY[section] item of `names` is called in the responses (empty for others).
    labels: Vec<Vec<u8>>,
    indexes: Vec<usize>,
    next: usize,
    newly_seen: BTreeSet<i64>,
    needs_raw: bool,
    needs_parsed: bool,
    /// Every item that reads the message reads only its header: see [`header_details`].
    headers_only: bool,
    /// For a header-only FETCH, the next batches, read ahead (at most [`HEADER_READ_AHEAD`]).
    prefetch: VecDeque<HeaderPrefetch>,
    uid: bool,
    failure: Option<Failure>,
}

impl<S: MailStore> Session<S> {
    /// Checks a FETCH / UID FETCH and sets `\Seen` where it must; the responses themselves come
    /// from [`Session::fetch_batch`] (the reply's next step is [`Next::Fetch`]).
    pub(crate) async fn fetch(
        &mut self,
        set: &SequenceSet,
        items: MacroOrMessageDataItemNames<'_>,
        uid: bool,
        modifiers: &[FetchModifier],
    ) -> Outcome {
        let mut names: Vec<MessageDataItemName<'static>> = match items {
            MacroOrMessageDataItemNames::Macro(m) => m
                .expand()
                .into_iter()
                .map(IntoStatic::into_static)
                .collect(),
            MacroOrMessageDataItemNames::MessageDataItemNames(n) => {
                n.into_iter().map(IntoStatic::into_static).collect()
            }
        };
        let mut changed_since = None;
        for m in modifiers {
            if let FetchModifier::ChangedSince(v) = m {
                changed_since = Some(v.get() as i64);
            }
        }
        if modifiers.contains(&FetchModifier::Vanished) {
            self.fetch_vanished(set, uid, changed_since.is_some())?;
        }
        if uid && !names.contains(&MessageDataItemName::Uid) {
            names.insert(0, MessageDataItemName::Uid);
        }
        if changed_since.is_some() && !names.contains(&MessageDataItemName::ModSeq) {
            names.push(MessageDataItemName::ModSeq);
        }
        if names.contains(&MessageDataItemName::ModSeq) {
            self.enable_condstore();
        }
        let sel = self.require_selected()?;
        let indexes: Vec<usize> = sel
            .resolve(set, uid)?
            .into_iter()
            .filter(|&i| changed_since.is_none_or(|c| sel.messages[i].modseq > c))
            .collect();
        self.fetching = Some(self.fetch_plan(names, indexes, uid).await?);
        let mut done = Done::ok("FETCH completed");
        done.next = Next::Fetch;
        Ok(done)
    }

    /// The plan of a FETCH of `names` for the messages at `indexes` of the selected mailbox
    /// (FETCH and UID FETCH, and NOTIFY's fetch of new messages, RFC 5465 §5.2): `\Seen` is set
    /// where an item requires it (RFC 3501 §6.4.5), as a FETCH command sets it.
    pub(crate) async fn fetch_plan(
        &mut self,
        names: Vec<MessageDataItemName<'static>>,
        indexes: Vec<usize>,
        uid: bool,
    ) -> Result<FetchPlan, Failure> {
        if names.contains(&MessageDataItemName::ModSeq) {
            self.enable_condstore();
        }
        let needs_raw = names.iter().any(|n| {
            matches!(
                n,
                MessageDataItemName::BodyExt { .. }
                    | MessageDataItemName::Rfc822
                    | MessageDataItemName::Rfc822Header
                    | MessageDataItemName::Rfc822Text
                    | MessageDataItemName::Binary { .. }
                    | MessageDataItemName::BinarySize { .. }
            )
        });
        let needs_parsed = needs_raw
            || names.iter().any(|n| {
                matches!(
                    n,
                    MessageDataItemName::Envelope
                        | MessageDataItemName::Body
                        | MessageDataItemName::BodyStructure
                )
            });
        let headers_only = needs_raw
            && names.iter().all(|n| {
                reads_header_only(n)
                    || matches!(
                        n,
                        MessageDataItemName::Uid
                            | MessageDataItemName::Flags
                            | MessageDataItemName::InternalDate
                            | MessageDataItemName::Rfc822Size
                            | MessageDataItemName::ModSeq
                    )
            });
        let sets_seen = names.iter().any(|n| {
            matches!(
                n,
                MessageDataItemName::BodyExt { peek: false, .. }
                    | MessageDataItemName::Binary { peek: false, .. }
                    | MessageDataItemName::Rfc822
                    | MessageDataItemName::Rfc822Text
            )
        });
        let store = self.store.clone();
        let sel = self.require_selected()?;
        let mut newly_seen = BTreeSet::new();
        if sets_seen && !sel.read_only {
            let unseen: Vec<i64> = indexes
                .iter()
                .map(|&i| &sel.messages[i])
                .filter(|m| m.flags.system & Flags::SEEN == 0)
                .map(|m| m.uid)
                .collect();
            if !unseen.is_empty() {
                let changed = store
                    .set_flags(
                        &sel.mailbox,
                        &unseen,
                        FlagOp::Add,
                        &Flags::system(Flags::SEEN),
                    )
                    .await?;
                newly_seen.extend(changed.iter().map(|m| m.uid));
                sel.update(changed);
            }
        }
        let labels = names
            .iter()
            .map(|n| match n {
                MessageDataItemName::BodyExt {
                    section, partial, ..
                } => body_label(section.as_ref(), partial.map(|w| w.0)),
                _ => Vec::new(),
            })
            .collect();
        Ok(FetchPlan {
            names,
            labels,
            indexes,
            next: 0,
            newly_seen,
            needs_raw,
            needs_parsed,
            headers_only,
            prefetch: VecDeque::new(),
            uid,
            failure: None,
        })
    }

    /// The next FETCH responses of the FETCH in progress, one batch of messages ([`batch_len`])
    /// at a time; `None` when it is complete (or failed: the failure is
    /// reported by [`Session::fetch_done`]).
    pub async fn fetch_batch(&mut self) -> Option<Vec<u8>> {
        let mut plan = self.fetching.take()?;
        let batch = if plan.failure.is_some() || plan.next >= plan.indexes.len() {
            None
        } else {
            match self.fetch_next(&mut plan).await {
                Ok(messages) => {
                    let mut out = encode_all(&std::mem::take(&mut self.notices));
                    out.extend(messages);
                    Some(out)
                }
                Err(f) => {
                    plan.failure = Some(f);
                    None
                }
            }
        };
        self.fetching = Some(plan);
        batch
    }

    /// The FETCH responses NOTIFY sends for the selected mailbox's new messages (RFC 5465 §5.2:
    /// after their EXISTS, with MessageNew's fetch attributes), one batch of messages
    /// ([`batch_len`]) at a time, through the FETCH command's own plan; `None` when none are
    /// left. The shell writes them after the updates that announced the messages, before a
    /// command's tagged status.
    pub async fn notify_fetch_batch(&mut self) -> Option<Vec<u8>> {
        let mut plan = match self.notify_fetching.take() {
            Some(plan) => plan,
            None => {
                let from = self.selected.as_mut()?.notify_fetch_from.take()?;
                let names = self.notify.as_ref()?.new_message_fetch()?.to_vec();
                let sel = self.selected.as_ref()?;
                let first = sel.messages.partition_point(|m| m.uid < from);
                let indexes = (first..sel.messages.len()).collect();
                match self.fetch_plan(names, indexes, false).await {
                    Ok(plan) => plan,
                    Err(_) => {
                        tracing::warn!("NOTIFY's FETCH of new messages failed");
                        return None;
                    }
                }
            }
        };
        if plan.next >= plan.indexes.len() {
            return None;
        }
        match self.fetch_next(&mut plan).await {
            Ok(messages) => {
                let mut out = encode_all(&std::mem::take(&mut self.notices));
                out.extend(messages);
                self.notify_fetching = Some(plan);
                Some(out)
            }
            Err(_) => {
                tracing::warn!("NOTIFY's FETCH of new messages failed");
                None
            }
        }
    }

    /// Whether new messages of the selected mailbox wait for NOTIFY's FETCH
    /// ([`Session::notify_fetch_batch`]).
    pub fn notify_fetch_due(&self) -> bool {
        self.notify_fetching.is_some()
            || self
                .selected
                .as_ref()
                .is_some_and(|s| s.notify_fetch_from.is_some())
    }

    /// Ends the FETCH in progress: pending updates (EXPUNGE only for UID FETCH, RFC 3501 §7.4.1)
    /// and the tagged status.
    pub async fn fetch_done(&mut self, feed: &mut dyn ChangeFeed) -> Reply {
        let plan = self.fetching.take();
        let Some(tag) = self.pending.take() else {
            return Reply {
                raw: Vec::new(),
                responses: Vec::new(),
                next: Next::Continue,
            };
        };
        let (uid, outcome) = match plan {
            Some(FetchPlan {
                uid,
                failure: Some(f),
                ..
            }) => (uid, Err(f)),
            Some(plan) => (plan.uid, Ok(Done::ok("FETCH completed"))),
            None => (false, Ok(Done::ok("FETCH completed"))),
        };
        self.finish(tag, uid, outcome, feed).await
    }

    /// The encoded FETCH responses of the plan's next batch.
    async fn fetch_next(&mut self, plan: &mut FetchPlan) -> Result<Vec<u8>, Failure> {
        let (utf8, condstore) = (self.utf8, self.condstore);
        let store = self.store.clone();
        let sel = self.require_selected()?;
        let header_batch = |from: usize| {
            from + header_batch_len(plan.indexes[from..].iter().map(|&i| sel.messages[i].size))
        };
        let uids = |range: std::ops::Range<usize>| -> Vec<i64> {
            plan.indexes[range]
                .iter()
                .map(|&i| sel.messages[i].uid)
                .collect()
        };
        let (end, prefetched) = match plan.prefetch.pop_front() {
            Some((end, read)) => (end, Some(read)),
            None if plan.headers_only => (header_batch(plan.next), None),
            None => {
                let rest = plan.indexes[plan.next..].iter().map(|&i| {
                    if plan.needs_raw {
                        sel.messages[i].size
                    } else {
                        0
                    }
                });
                (plan.next + batch_len(rest), None)
            }
        };
        let start = std::mem::replace(&mut plan.next, end);
        let details = if plan.headers_only {
            // The next batches are read from the store while this one is read, encoded and
            // written.
            let mut from = plan.prefetch.back().map_or(end, |(to, _)| *to);
            while plan.prefetch.len() < HEADER_READ_AHEAD {
                let to = header_batch(from);
                if to == from {
                    break;
                }
                let read = header_details(store.clone(), sel.mailbox.clone(), uids(from..to));
                plan.prefetch.push_back((to, tokio::spawn(read)));
                from = to;
            }
            match prefetched {
                Some(read) => read.await.map_err(|_| no("FETCH failed"))??,
                None => {
                    header_details(store.clone(), sel.mailbox.clone(), uids(start..end)).await?
                }
            }
        } else if plan.needs_parsed {
            details_by_uid(
                &store,
                sel,
                plan.indexes[start..end].iter().copied(),
                plan.needs_raw,
            )
            .await?
        } else {
            HashMap::new()
        };
        let chunk = &plan.indexes[start..end];
        let (names, labels, newly_seen) = (&plan.names, &plan.labels, &plan.newly_seen);
        let mut out = Vec::new();
        for &i in chunk {
            let m = &sel.messages[i];
            let d = details.get(&m.uid);
            if plan.needs_parsed && d.is_none() {
                // Expunged by another session and not yet reported: nothing to return.
                continue;
            }
            let raw = d.and_then(|d| d.raw.as_deref()).unwrap_or_default();
            let recent = sel.recent.contains(&m.uid);
            let mut line = FetchLine::new(&mut out, crate::session::Selected::seq(i));
            for (name, label) in names.iter().zip(labels) {
                match name {
                    MessageDataItemName::Uid => line.uid(nz(m.uid)),
                    MessageDataItemName::Flags => line.flags(&m.flags, recent),
                    MessageDataItemName::InternalDate => {
                        if let Some(date) = internal_date(m.internal_date) {
                            line.item(MessageDataItem::InternalDate(date), None);
                        }
                    }
                    MessageDataItemName::Rfc822Size => {
                        line.rfc822_size(u32::try_from(m.size).unwrap_or(u32::MAX))
                    }
                    MessageDataItemName::ModSeq => line.modseq(modseq(m.modseq)),
                    MessageDataItemName::Envelope => {
                        if let Some(d) = d {
                            let item =
                                MessageDataItem::Envelope(envelope(&d.parsed.envelope, utf8));
                            line.item(item, None);
                        }
                    }
                    MessageDataItemName::Body | MessageDataItemName::BodyStructure => {
                        if let Some(d) = d {
                            let ext = *name == MessageDataItemName::BodyStructure;
                            let body = body_structure(&d.parsed.body, ext, utf8);
                            let item = if ext {
                                MessageDataItem::BodyStructure(body)
                            } else {
                                MessageDataItem::Body(body)
                            };
                            line.item(item, None);
                        }
                    }
                    MessageDataItemName::BodyExt {
                        section,
                        partial: window,
                        ..
                    } => {
                        if let Some(d) = d {
                            let bytes = section_bytes(raw, &d.parsed.body, section.as_ref());
                            line.literal(label, partial(&bytes, *window));
                        }
                    }
                    MessageDataItemName::Rfc822 => line.literal(b"RFC822", raw),
                    MessageDataItemName::Rfc822Header | MessageDataItemName::Rfc822Text => {
                        if let Some(d) = d {
                            let (label, section): (&[u8], _) =
                                if *name == MessageDataItemName::Rfc822Header {
                                    (b"RFC822.HEADER", Section::Header(None))
                                } else {
                                    (b"RFC822.TEXT", Section::Text(None))
                                };
                            line.literal(
                                label,
                                &section_bytes(raw, &d.parsed.body, Some(&section)),
                            );
                        }
                    }
                    MessageDataItemName::Binary {
                        section,
                        partial: window,
                        ..
                    } => {
                        if let Some(d) = d {
                            let bytes = binary_section(raw, &d.parsed.body, section)?;
                            let item = MessageDataItem::Binary {
                                section: section.clone(),
                                value: binary_value(partial(&bytes, *window).to_vec()),
                            };
                            line.item(item, window.map(|w| w.0));
                        }
                    }
                    MessageDataItemName::BinarySize { section } => {
                        if let Some(d) = d {
                            let bytes = binary_section(raw, &d.parsed.body, section)?;
                            let size = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
                            let section = section.clone();
                            line.item(MessageDataItem::BinarySize { section, size }, None);
                        }
                    }
                }
            }
            if newly_seen.contains(&m.uid) && !names.contains(&MessageDataItemName::Flags) {
                line.flags(&m.flags, recent);
                if condstore && !names.contains(&MessageDataItemName::ModSeq) {
                    line.modseq(modseq(m.modseq));
                }
            }
            line.finish();
        }
        Ok(out)
    }
}
