//! Mailbox commands: LIST/LSUB (RFC 3501 §6.3.8-9, LIST-EXTENDED RFC 5258, SPECIAL-USE RFC 6154,
//! CHILDREN RFC 3348), CREATE, DELETE, RENAME, SUBSCRIBE/UNSUBSCRIBE, STATUS (§6.3.3-10, STATUS=SIZE
//! RFC 8438), NAMESPACE (RFC 2342) and ENABLE (RFC 5161).

use std::collections::{BTreeMap, BTreeSet};

use imap_codec::imap_types::core::{QuotedChar, Vec1};
use imap_codec::imap_types::extensions::enable::CapabilityEnable;
use imap_codec::imap_types::extensions::namespace::Namespace;
use imap_codec::imap_types::extensions::utf8::Utf8Kind;
use imap_codec::imap_types::flag::FlagNameAttribute;
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox as WireMailbox};
use imap_codec::imap_types::response::{Data, Response};
use imap_codec::imap_types::status::{StatusDataItem, StatusDataItemName};
use postern_store::{Flags, Mailbox, MAX_MAILBOX_DEPTH, MAX_MAILBOX_NAME_BYTES};

use crate::list_extended::ListExtras;
use crate::mutf7;
use crate::response::{atom, data, istring};
use crate::session::{no, Done, Failure, Outcome, Session};

/// Longest LIST pattern accepted, in characters (after the reference is prepended). Mailbox names
/// are at most 1,000 bytes (`postern_store`), so a longer pattern can only be a probe.
pub(crate) const MAX_PATTERN_CHARS: usize = 1024;

/// Whether `name` matches a LIST pattern (RFC 3501 §6.3.8): `*` matches any run of characters,
/// `%` any run without the hierarchy delimiter `/`.
///
/// One pass of the pattern over a row of booleans, `row[j]` = "the pattern so far matches the
/// first `j` characters of the name": O(pattern × name) time and O(name) memory whatever the
/// wildcards (the recursive matcher this replaces was exponential in the number of stars).
fn matches(pattern: &[char], name: &[char]) -> bool {
    let mut row = vec![false; name.len() + 1];
    row[0] = true;
    let mut previous = None;
    for &p in pattern {
        // `**` and `*%` match what `*` alone matches; `%%` what `%` alone matches.
        if (p == '*' && previous == Some('*')) || (p == '%' && matches!(previous, Some('*' | '%')))
        {
            continue;
        }
        previous = Some(p);
        match p {
            '*' => {
                let mut seen = false;
                for cell in row.iter_mut() {
                    seen |= *cell;
                    *cell = seen;
                }
            }
            '%' => {
                let mut run = row[0];
                for j in 1..row.len() {
                    run = row[j] || run && name[j - 1] != '/';
                    row[j] = run;
                }
            }
            c => {
                for j in (1..row.len()).rev() {
                    row[j] = row[j - 1] && name[j - 1] == c;
                }
                row[0] = false;
            }
        }
        if !row.contains(&true) {
            return false;
        }
    }
    row[name.len()]
}

/// Pattern matching with INBOX case-insensitive (RFC 3501 §5.1).
fn name_matches(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name_chars: Vec<char> = name.chars().collect();
    if matches(&pattern, &name_chars) {
        return true;
    }
    if name == "INBOX" || name.starts_with("INBOX/") {
        let upper: Vec<char> = pattern
            .iter()
            .enumerate()
            .map(|(i, c)| if i < 5 { c.to_ascii_uppercase() } else { *c })
            .collect();
        return matches(&upper, &name_chars);
    }
    false
}

fn attr(name: &str) -> FlagNameAttribute<'static> {
    FlagNameAttribute::from(atom(name))
}

fn delimiter() -> Option<QuotedChar> {
    QuotedChar::try_from('/').ok()
}

impl Session {
    /// LIST and LSUB (RFC 3501 §6.3.8-9) with the LIST-EXTENDED selection options (RFC 5258).
    /// Patterns longer than [`MAX_PATTERN_CHARS`] get NO [LIMIT] (RFC 5530 §3).
    pub(crate) async fn list(
        &mut self,
        reference: &WireMailbox<'_>,
        pattern: &ListMailbox<'_>,
        extras: ListExtras,
        lsub: bool,
    ) -> Outcome {
        let user = self.require_user()?;
        let reference = match reference {
            WireMailbox::Inbox => "INBOX".to_owned(),
            other => self.mailbox_name(other).unwrap_or_default(),
        };
        let pattern_bytes: &[u8] = match pattern {
            ListMailbox::Token(t) => t.as_ref(),
            ListMailbox::String(s) => s.as_ref(),
        };
        let raw = String::from_utf8_lossy(pattern_bytes).into_owned();
        let pattern = if self.utf8 {
            raw
        } else {
            mutf7::decode(&raw).unwrap_or(raw)
        };
        if pattern.is_empty() {
            let item = Data::List {
                items: vec![FlagNameAttribute::Noselect],
                delimiter: delimiter(),
                mailbox: WireMailbox::try_from("").unwrap_or(WireMailbox::Inbox),
            };
            return Ok(Done::ok("LIST completed").with(vec![data(item)]));
        }
        let full = format!("{reference}{pattern}");
        if full.chars().count() > MAX_PATTERN_CHARS {
            return Err(Failure::No(
                Some(crate::response::code_other("LIMIT")),
                "Mailbox pattern too long".into(),
            ));
        }
        let boxes: BTreeMap<String, Mailbox> = self
            .store
            .list_mailboxes(user.id)
            .await?
            .into_iter()
            .map(|m| (m.name.clone(), m))
            .collect();
        let subscriptions = self.store.subscriptions(user.id).await?;
        // LSUB and LIST (SUBSCRIBED) range over the subscription list, which may name mailboxes
        // that no longer exist (RFC 3501 §6.3.9, RFC 5258 §3.1); LIST over existing mailboxes.
        let mut candidates: BTreeSet<String> = if lsub || extras.subscribed {
            subscriptions.clone()
        } else {
            boxes.keys().cloned().collect()
        };
        if full.contains('%') {
            let names: Vec<String> = candidates.iter().cloned().collect();
            for name in &names {
                let mut parent = name.as_str();
                while let Some((p, _)) = parent.rsplit_once('/') {
                    candidates.insert(p.to_owned());
                    parent = p;
                }
            }
        }
        let has_children = |name: &str| {
            let prefix = format!("{name}/");
            boxes.keys().any(|k| k.starts_with(&prefix))
        };
        // Matching is bounded (O(pattern × name) per name) but a user with many long names can
        // still make it take a while: do it off the async workers so other sessions keep going.
        let matched: Vec<String> = tokio::task::spawn_blocking(move || {
            candidates
                .into_iter()
                .filter(|n| name_matches(&full, n))
                .collect()
        })
        .await
        .map_err(|_| no("LIST failed"))?;
        let mut out: Vec<Response<'static>> = Vec::new();
        for name in &matched {
            let mailbox = boxes.get(name);
            let subscribed = subscriptions.contains(name);
            if extras.subscribed && !subscribed {
                continue;
            }
            if extras.special_use_only && mailbox.and_then(|m| m.special_use.as_ref()).is_none() {
                continue;
            }
            let special_use = mailbox
                .and_then(|m| m.special_use.as_deref())
                .map(|su| attr(su.trim_start_matches('\\')));
            let mut items = Vec::new();
            if lsub {
                // A parent that `%` stopped at but that is not itself subscribed, and a subscribed
                // name without a mailbox, are listed \Noselect (RFC 3501 §6.3.9).
                if !subscribed || mailbox.is_none() {
                    items.push(FlagNameAttribute::Noselect);
                }
                items.extend(special_use);
            } else {
                match mailbox {
                    None => items.push(if extras.extended {
                        attr("NonExistent")
                    } else {
                        FlagNameAttribute::Noselect
                    }),
                    Some(_) => items.extend(special_use),
                }
                // Deleted but subscribed: (\NonExistent \Subscribed) (RFC 5258 §3.1).
                if subscribed && extras.return_subscribed {
                    items.push(attr("Subscribed"));
                }
                items.push(attr(if has_children(name) {
                    "HasChildren"
                } else {
                    "HasNoChildren"
                }));
            }
            let mailbox = self.wire_name(name);
            out.push(data(if lsub {
                Data::Lsub {
                    items,
                    delimiter: delimiter(),
                    mailbox,
                }
            } else {
                Data::List {
                    items,
                    delimiter: delimiter(),
                    mailbox,
                }
            }));
        }
        Ok(Done::ok(if lsub {
            "LSUB completed"
        } else {
            "LIST completed"
        })
        .with(out))
    }

    /// CREATE (RFC 3501 §6.3.3): the mailbox and any missing superior levels, all in one store
    /// transaction. Names deeper than [`MAX_MAILBOX_DEPTH`] levels or longer than
    /// [`MAX_MAILBOX_NAME_BYTES`] get NO [LIMIT] (RFC 5530 §3) and create nothing.
    pub(crate) async fn create(&mut self, m: &WireMailbox<'_>) -> Outcome {
        let user_id = self.require_user()?.id;
        let name = self.mailbox_name(m)?;
        if name.split('/').count() > MAX_MAILBOX_DEPTH || name.len() > MAX_MAILBOX_NAME_BYTES {
            return Err(Failure::No(
                Some(crate::response::code_other("LIMIT")),
                format!(
                    "Mailbox names are limited to {MAX_MAILBOX_DEPTH} levels and \
                     {MAX_MAILBOX_NAME_BYTES} bytes"
                ),
            ));
        }
        if name.eq_ignore_ascii_case("INBOX") || self.store.mailbox(user_id, &name).await?.is_some()
        {
            return Err(Failure::No(
                Some(crate::response::code_other("ALREADYEXISTS")),
                "Mailbox already exists".into(),
            ));
        }
        self.store.create_mailbox_path(user_id, &name).await?;
        Ok(Done::ok("CREATE completed"))
    }

    pub(crate) async fn delete(&mut self, m: &WireMailbox<'_>) -> Outcome {
        let mailbox = self.find_mailbox(m, false).await?;
        if mailbox.name == "INBOX" {
            return Err(no("INBOX cannot be deleted"));
        }
        if self
            .selected
            .as_ref()
            .is_some_and(|s| s.mailbox.id == mailbox.id)
        {
            self.deselect();
        }
        self.store.delete_mailbox(&mailbox).await?;
        Ok(Done::ok("DELETE completed"))
    }

    pub(crate) async fn rename(&mut self, from: &WireMailbox<'_>, to: &WireMailbox<'_>) -> Outcome {
        let user_id = self.require_user()?.id;
        let source = self.find_mailbox(from, false).await?;
        let target = self.mailbox_name(to)?;
        if self.store.mailbox(user_id, &target).await?.is_some() {
            return Err(Failure::No(
                Some(crate::response::code_other("ALREADYEXISTS")),
                "Target mailbox exists".into(),
            ));
        }
        self.store
            .rename_mailbox(user_id, &source.name, &target)
            .await?;
        Ok(Done::ok("RENAME completed"))
    }

    /// SUBSCRIBE (RFC 3501 §6.3.6) of an existing mailbox, UNSUBSCRIBE (§6.3.7) of a subscribed
    /// name or an existing mailbox: a subscription outlives its mailbox, so the name of a deleted
    /// mailbox can still be unsubscribed.
    pub(crate) async fn subscribe(&mut self, m: &WireMailbox<'_>, on: bool) -> Outcome {
        let user_id = self.require_user()?.id;
        if on {
            let mailbox = self.find_mailbox(m, false).await?;
            self.store.set_subscribed(&mailbox, true).await?;
            return Ok(Done::ok("SUBSCRIBE completed"));
        }
        let name = self.mailbox_name(m)?;
        let was_subscribed = self.store.set_subscription(user_id, &name, false).await?;
        if !was_subscribed && self.store.mailbox(user_id, &name).await?.is_none() {
            return Err(Failure::No(
                Some(crate::response::code_other("NONEXISTENT")),
                "Not subscribed".into(),
            ));
        }
        Ok(Done::ok("UNSUBSCRIBE completed"))
    }

    pub(crate) async fn status(
        &mut self,
        m: &WireMailbox<'_>,
        names: &[StatusDataItemName],
    ) -> Outcome {
        let mailbox = self.find_mailbox(m, false).await?;
        let messages = self.store.list_messages(&mailbox).await?;
        let count = |f: &dyn Fn(&postern_store::MessageMeta) -> bool| {
            u32::try_from(messages.iter().filter(|m| f(m)).count()).unwrap_or(u32::MAX)
        };
        let nz = |v: i64| {
            std::num::NonZeroU32::new(u32::try_from(v).unwrap_or(u32::MAX))
                .unwrap_or(std::num::NonZeroU32::MIN)
        };
        let mut items = Vec::new();
        for name in names {
            items.push(match name {
                StatusDataItemName::Messages => StatusDataItem::Messages(count(&|_| true)),
                StatusDataItemName::Recent => StatusDataItem::Recent(
                    u32::try_from(self.store.recent_count(&mailbox).await?).unwrap_or(0),
                ),
                StatusDataItemName::UidNext => StatusDataItem::UidNext(nz(mailbox.uidnext)),
                StatusDataItemName::UidValidity => {
                    StatusDataItem::UidValidity(nz(mailbox.uidvalidity))
                }
                StatusDataItemName::Unseen => {
                    StatusDataItem::Unseen(count(&|m| m.flags.system & Flags::SEEN == 0))
                }
                StatusDataItemName::Deleted => {
                    StatusDataItem::Deleted(count(&|m| m.flags.system & Flags::DELETED != 0))
                }
                StatusDataItemName::DeletedStorage => StatusDataItem::DeletedStorage(
                    messages
                        .iter()
                        .filter(|m| m.flags.system & Flags::DELETED != 0)
                        .map(|m| m.size as u64)
                        .sum(),
                ),
                StatusDataItemName::Size => {
                    StatusDataItem::Size(messages.iter().map(|m| m.size as u64).sum())
                }
                StatusDataItemName::HighestModSeq => {
                    self.condstore = true;
                    StatusDataItem::HighestModSeq(mailbox.highestmodseq as u64)
                }
            });
        }
        let status = Data::Status {
            mailbox: self.wire_name(&mailbox.name),
            items: items.into(),
        };
        Ok(Done::ok("STATUS completed").with(vec![data(status)]))
    }

    pub(crate) fn namespace(&mut self) -> Outcome {
        self.require_user()?;
        let personal = vec![Namespace::new(istring(""), delimiter())];
        Ok(
            Done::ok("NAMESPACE completed").with(vec![data(Data::Namespace {
                personal,
                other: Vec::new(),
                shared: Vec::new(),
            })]),
        )
    }

    pub(crate) fn enable(&mut self, caps: Vec1<CapabilityEnable<'_>>) -> Outcome {
        self.require_user()?;
        let mut enabled = Vec::new();
        for c in caps.as_ref() {
            match c {
                CapabilityEnable::CondStore => {
                    self.condstore = true;
                    enabled.push(CapabilityEnable::CondStore);
                }
                CapabilityEnable::Utf8(Utf8Kind::Accept) => {
                    self.utf8 = true;
                    enabled.push(CapabilityEnable::Utf8(Utf8Kind::Accept));
                }
                _ => {}
            }
        }
        Ok(Done::ok("ENABLE completed").with(vec![data(Data::Enabled {
            capabilities: enabled,
        })]))
    }
}

#[cfg(test)]
mod tests {
    use super::name_matches;

    #[test]
    fn wildcards() {
        assert!(name_matches("*", "a/b/c"));
        assert!(name_matches("%", "INBOX"));
        assert!(!name_matches("%", "a/b"));
        assert!(name_matches("a/%", "a/b"));
        assert!(!name_matches("a/%", "a/b/c"));
        assert!(name_matches("inbox", "INBOX"));
        assert!(name_matches("S*t", "Sent"));
        assert!(!name_matches("Sent", "Sent2"));
        assert!(name_matches("%/%", "a/b"));
        assert!(!name_matches("%/%", "a/b/c"));
        assert!(name_matches("*/%", "a/b/c"));
        assert!(name_matches("%*", "a/b"));
        assert!(name_matches("a%%b", "axyb"));
        assert!(!name_matches("a%%b", "a/b/b/x"));
        assert!(name_matches("a%/b", "ax/b"));
        assert!(name_matches("", "") && !name_matches("", "a"));
        assert!(name_matches("INBOX/%", "INBOX/x"));
        assert!(name_matches("inbox/%", "INBOX/x"));
        assert!(!name_matches("inbox/%", "INBOX/x/y"));
    }

    /// Patterns that made the old recursive matcher exponential; this checks the answers (the
    /// matcher is O(pattern × name) by construction, so no timing is asserted).
    #[test]
    fn pathological_patterns() {
        let name = "a".repeat(66);
        let twelve = format!("{}b", "*a".repeat(12));
        assert!(!name_matches(&twelve, &name));
        assert!(name_matches(&"*a".repeat(12), &name));
        assert!(!name_matches("*a*a*a*a*a*a*b", &name));
        assert!(name_matches("*a*a*a*a*a*a*", &name));
        assert!(!name_matches(&format!("{}b", "%a".repeat(12)), &name));
        assert!(name_matches(&"%a".repeat(12), &name));
        assert!(!name_matches(&"*a".repeat(67), &name));
        assert!(name_matches(&"*a".repeat(66), &name));
        let nested = format!("{}/b", ["a"; 30].join("/"));
        assert!(name_matches("*/".repeat(30).trim_end_matches('/'), &nested));
        assert!(!name_matches(&format!("{}x", "%/".repeat(30)), &nested));
        assert!(name_matches(&format!("{}%", "%/".repeat(30)), &nested));
        assert!(!name_matches(&format!("{}%", "%/".repeat(29)), &nested));
    }
}
