//! FETCH and UID FETCH (RFC 3501 §6.4.5, §7.4.2) with MODSEQ and CHANGEDSINCE (CONDSTORE, RFC 7162
//! §3.1.4-5). ENVELOPE, BODYSTRUCTURE and section offsets come from the metadata stored at
//! delivery; raw bytes are read only for items that return them.

use std::collections::HashMap;
use std::num::{NonZeroU32, NonZeroU64};

use imap_codec::imap_types::command::FetchModifier;
use imap_codec::imap_types::core::{Literal, NString, Vec1};
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::fetch::{
    MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName,
};
use imap_codec::imap_types::response::Data;
use imap_codec::imap_types::sequence::SequenceSet;
use imap_codec::imap_types::IntoStatic;
use postern_store::{FlagOp, Flags, MessageDetails};

use crate::bodystructure::body_structure;
use crate::commands::section::section_bytes;
use crate::envelope::envelope;
use crate::response::data;
use crate::session::{bad, flag_items, Done, Outcome, Session};

fn nz(v: i64) -> NonZeroU32 {
    NonZeroU32::new(u32::try_from(v).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN)
}

/// INTERNALDATE as an IMAP date-time (UTC).
pub(crate) fn internal_date(secs: i64) -> Option<DateTime> {
    let t = chrono::DateTime::from_timestamp(secs, 0)?.fixed_offset();
    DateTime::try_from(t).ok()
}

/// Bytes as a literal (NUL bytes, which literals cannot carry, become spaces).
fn literal(mut bytes: Vec<u8>) -> NString<'static> {
    for b in bytes.iter_mut() {
        if *b == 0 {
            *b = b' ';
        }
    }
    NString(Literal::try_from(bytes).ok().map(Into::into))
}

/// The `<origin.length>` window of `bytes`.
fn partial(bytes: Vec<u8>, window: Option<(u32, NonZeroU32)>) -> Vec<u8> {
    match window {
        None => bytes,
        Some((start, len)) => {
            let start = (start as usize).min(bytes.len());
            let end = start.saturating_add(len.get() as usize).min(bytes.len());
            bytes[start..end].to_vec()
        }
    }
}

impl Session {
    pub(crate) async fn fetch(
        &mut self,
        set: &SequenceSet,
        items: MacroOrMessageDataItemNames<'_>,
        uid: bool,
        modifiers: &[FetchModifier],
    ) -> Outcome {
        let mut names: Vec<MessageDataItemName<'_>> = match items {
            MacroOrMessageDataItemNames::Macro(m) => m
                .expand()
                .into_iter()
                .map(IntoStatic::into_static)
                .collect(),
            MacroOrMessageDataItemNames::MessageDataItemNames(n) => n,
        };
        let mut changed_since = None;
        for m in modifiers {
            match m {
                FetchModifier::ChangedSince(v) => changed_since = Some(v.get() as i64),
                FetchModifier::Vanished => return Err(bad("VANISHED needs QRESYNC")),
            }
        }
        if uid && !names.contains(&MessageDataItemName::Uid) {
            names.insert(0, MessageDataItemName::Uid);
        }
        if changed_since.is_some() && !names.contains(&MessageDataItemName::ModSeq) {
            names.push(MessageDataItemName::ModSeq);
        }
        if names.contains(&MessageDataItemName::ModSeq) {
            self.condstore = true;
        }
        if names.iter().any(|n| {
            matches!(
                n,
                MessageDataItemName::Binary { .. } | MessageDataItemName::BinarySize { .. }
            )
        }) {
            return Err(bad("BINARY is not supported"));
        }
        let needs_raw = names.iter().any(|n| {
            matches!(
                n,
                MessageDataItemName::BodyExt { .. }
                    | MessageDataItemName::Rfc822
                    | MessageDataItemName::Rfc822Header
                    | MessageDataItemName::Rfc822Text
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
        let sets_seen = names.iter().any(|n| {
            matches!(
                n,
                MessageDataItemName::BodyExt { peek: false, .. }
                    | MessageDataItemName::Rfc822
                    | MessageDataItemName::Rfc822Text
            )
        });
        let (utf8, condstore) = (self.utf8, self.condstore);
        let store = self.store.clone();
        let sel = self.require_selected()?;
        let indexes: Vec<usize> = sel
            .resolve(set, uid)?
            .into_iter()
            .filter(|&i| changed_since.is_none_or(|c| sel.messages[i].modseq > c))
            .collect();
        let mut newly_seen = std::collections::BTreeSet::new();
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
        let mut out = Vec::with_capacity(indexes.len());
        for chunk in indexes.chunks(100) {
            let details: HashMap<i64, MessageDetails> = if needs_parsed {
                let uids: Vec<i64> = chunk.iter().map(|&i| sel.messages[i].uid).collect();
                store
                    .message_details(&sel.mailbox, &uids, needs_raw)
                    .await?
                    .into_iter()
                    .map(|d| (d.uid, d))
                    .collect()
            } else {
                HashMap::new()
            };
            for &i in chunk {
                let m = &sel.messages[i];
                let d = details.get(&m.uid);
                if needs_parsed && d.is_none() {
                    // Expunged by another session and not yet reported: nothing to return.
                    continue;
                }
                let raw = d.and_then(|d| d.raw.as_deref()).unwrap_or_default();
                let mut items = Vec::with_capacity(names.len() + 1);
                for name in &names {
                    let item = match name {
                        MessageDataItemName::Uid => MessageDataItem::Uid(nz(m.uid)),
                        MessageDataItemName::Flags => MessageDataItem::Flags(flag_items(
                            &m.flags,
                            sel.recent.contains(&m.uid),
                        )),
                        MessageDataItemName::InternalDate => match internal_date(m.internal_date) {
                            Some(d) => MessageDataItem::InternalDate(d),
                            None => continue,
                        },
                        MessageDataItemName::Rfc822Size => {
                            MessageDataItem::Rfc822Size(u32::try_from(m.size).unwrap_or(u32::MAX))
                        }
                        MessageDataItemName::ModSeq => MessageDataItem::ModSeq(
                            NonZeroU64::new(m.modseq.max(1) as u64).unwrap_or(NonZeroU64::MIN),
                        ),
                        MessageDataItemName::Envelope => match d {
                            Some(d) => {
                                MessageDataItem::Envelope(envelope(&d.parsed.envelope, utf8))
                            }
                            None => continue,
                        },
                        MessageDataItemName::Body => match d {
                            Some(d) => {
                                MessageDataItem::Body(body_structure(&d.parsed.body, false, utf8))
                            }
                            None => continue,
                        },
                        MessageDataItemName::BodyStructure => match d {
                            Some(d) => MessageDataItem::BodyStructure(body_structure(
                                &d.parsed.body,
                                true,
                                utf8,
                            )),
                            None => continue,
                        },
                        MessageDataItemName::BodyExt {
                            section,
                            partial: window,
                            ..
                        } => {
                            let Some(d) = d else { continue };
                            let bytes = section_bytes(raw, &d.parsed.body, section.as_ref());
                            MessageDataItem::BodyExt {
                                section: section.clone().map(IntoStatic::into_static),
                                origin: window.map(|w| w.0),
                                data: literal(partial(bytes, *window)),
                            }
                        }
                        MessageDataItemName::Rfc822 => {
                            MessageDataItem::Rfc822(literal(raw.to_vec()))
                        }
                        MessageDataItemName::Rfc822Header => match d {
                            Some(d) => MessageDataItem::Rfc822Header(literal(section_bytes(
                                raw,
                                &d.parsed.body,
                                Some(&imap_codec::imap_types::fetch::Section::Header(None)),
                            ))),
                            None => continue,
                        },
                        MessageDataItemName::Rfc822Text => match d {
                            Some(d) => MessageDataItem::Rfc822Text(literal(section_bytes(
                                raw,
                                &d.parsed.body,
                                Some(&imap_codec::imap_types::fetch::Section::Text(None)),
                            ))),
                            None => continue,
                        },
                        MessageDataItemName::Binary { .. }
                        | MessageDataItemName::BinarySize { .. } => continue,
                    };
                    items.push(item);
                }
                if newly_seen.contains(&m.uid) && !names.contains(&MessageDataItemName::Flags) {
                    items.push(MessageDataItem::Flags(flag_items(
                        &m.flags,
                        sel.recent.contains(&m.uid),
                    )));
                    if condstore && !names.contains(&MessageDataItemName::ModSeq) {
                        items.push(MessageDataItem::ModSeq(
                            NonZeroU64::new(m.modseq.max(1) as u64).unwrap_or(NonZeroU64::MIN),
                        ));
                    }
                }
                if let Ok(items) = Vec1::try_from(items) {
                    out.push(data(Data::Fetch {
                        seq: crate::session::Selected::seq(i),
                        items,
                    }));
                }
            }
        }
        Ok(Done::ok("FETCH completed").with(out))
    }
}
