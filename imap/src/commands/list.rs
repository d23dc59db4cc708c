//! LIST and LSUB (RFC 3501 §6.3.8-9) with LIST-EXTENDED (RFC 5258: selection and return options,
//! several patterns, RECURSIVEMATCH with CHILDINFO), CHILDREN (RFC 3348), SPECIAL-USE (RFC 6154)
//! and LIST-STATUS (RFC 5819).

use std::collections::{BTreeMap, BTreeSet};

use imap_codec::encode::Encoder;
use imap_codec::imap_types::core::QuotedChar;
use imap_codec::imap_types::flag::FlagNameAttribute;
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox as WireMailbox};
use imap_codec::imap_types::response::{Data, Response};
use imap_codec::ResponseCodec;
use postern_store::Mailbox;

use crate::list_extended::ListExtras;
use crate::mail_store::MailStore;
use crate::mutf7;
use crate::response::{atom, data};
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

/// The hierarchy delimiter, `/`.
pub(crate) fn delimiter() -> Option<QuotedChar> {
    QuotedChar::try_from('/').ok()
}

impl<S: MailStore> Session<S> {
    /// LIST and LSUB (RFC 3501 §6.3.8-9) with the LIST-EXTENDED options (RFC 5258). Patterns
    /// longer than [`MAX_PATTERN_CHARS`] get NO [LIMIT] (RFC 5530 §3).
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
        let first: &[u8] = match pattern {
            ListMailbox::Token(t) => t.as_ref(),
            ListMailbox::String(s) => s.as_ref(),
        };
        let raw_patterns = if extras.patterns.is_empty() {
            vec![first.to_vec()]
        } else {
            extras.patterns.clone()
        };
        let patterns: Vec<String> = raw_patterns
            .iter()
            .map(|p| {
                let raw = String::from_utf8_lossy(p).into_owned();
                let p = if self.utf8 {
                    raw
                } else {
                    mutf7::decode(&raw).unwrap_or(raw)
                };
                format!("{reference}{p}")
            })
            .collect();
        if raw_patterns.len() == 1 && raw_patterns[0].is_empty() {
            let item = Data::List {
                items: vec![FlagNameAttribute::Noselect],
                delimiter: delimiter(),
                mailbox: WireMailbox::try_from("").unwrap_or(WireMailbox::Inbox),
            };
            return Ok(Done::ok("LIST completed").with(vec![data(item)]));
        }
        if patterns
            .iter()
            .any(|p| p.chars().count() > MAX_PATTERN_CHARS)
        {
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
        // `%` stops at parents, and RECURSIVEMATCH reports parents of subscribed names.
        if extras.recursive_match || patterns.iter().any(|p| p.contains('%')) {
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
        // RECURSIVEMATCH: a name has CHILDINFO (SUBSCRIBED) when a subscribed descendant does not
        // match the patterns itself (RFC 5258 §3.5).
        let recursive = extras.recursive_match && extras.subscribed;
        let subscribed_names = subscriptions.clone();
        let matched: Vec<(String, bool)> = tokio::task::spawn_blocking(move || {
            let any = |n: &str| patterns.iter().any(|p| name_matches(p, n));
            candidates
                .into_iter()
                .filter(|n| any(n))
                .map(|n| {
                    let prefix = format!("{n}/");
                    let childinfo = recursive
                        && subscribed_names
                            .iter()
                            .any(|s| s.starts_with(&prefix) && !any(s));
                    (n, childinfo)
                })
                .collect()
        })
        .await
        .map_err(|_| no("LIST failed"))?;
        let codec = ResponseCodec::default();
        let mut out = Vec::new();
        for (name, childinfo) in &matched {
            let mailbox = boxes.get(name);
            let subscribed = subscriptions.contains(name);
            if extras.subscribed && !subscribed && !childinfo {
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
                if !extras.extended || extras.return_children {
                    items.push(attr(if has_children(name) {
                        "HasChildren"
                    } else {
                        "HasNoChildren"
                    }));
                }
            }
            let wire = self.wire_name(name);
            let line = if lsub {
                Data::Lsub {
                    items,
                    delimiter: delimiter(),
                    mailbox: wire.clone(),
                }
            } else {
                Data::List {
                    items,
                    delimiter: delimiter(),
                    mailbox: wire.clone(),
                }
            };
            let mut bytes = codec.encode(&Response::Data(line)).dump();
            if *childinfo && bytes.ends_with(b"\r\n") {
                // mbox-list-extended (RFC 5258 §6), which imap-codec's LIST response lacks.
                bytes.truncate(bytes.len() - 2);
                bytes.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n");
            }
            out.extend(bytes);
            // LIST-STATUS: the STATUS of each selectable mailbox listed (RFC 5819 §2).
            if let (Some(names), Some(mailbox)) = (&extras.return_status, mailbox) {
                let items = self.status_items(mailbox, names).await?;
                let status = Data::Status {
                    mailbox: wire,
                    items: items.into(),
                };
                out.extend(codec.encode(&Response::Data(status)).dump());
            }
        }
        Ok(Done::ok(if lsub {
            "LSUB completed"
        } else {
            "LIST completed"
        })
        .raw(out))
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
