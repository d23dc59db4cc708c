//! MULTIAPPEND (RFC 3502): one APPEND with several messages, stored all or none in one store
//! transaction, answered with APPENDUID and the UID set (UIDPLUS, RFC 4315 §3). imap-codec
//! decodes only single-message APPENDs, so each message's options (flags, date) are decoded by it
//! from a one-message APPEND rebuilt around them, the literals located where the fragmentizer
//! read them; the message bytes themselves are never copied.

use std::num::NonZeroU32;
use std::ops::Range;

use imap_codec::decode::Decoder;
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::Mailbox as WireMailbox;
use imap_codec::imap_types::IntoStatic;
use imap_codec::CommandCodec;
use postern_store::NewMessage;

use crate::commands::flags::to_store_flags;
use crate::response::code_other;
use crate::session::{Done, Failure, Outcome, Reply, Session};
use crate::stream::is_append;

/// Most messages one APPEND may carry: the store writes them in one transaction.
pub(crate) const MAX_MESSAGES: usize = 1000;

/// One message of a MULTIAPPEND.
#[derive(Debug)]
pub(crate) struct AppendMessage<'a> {
    flags: Vec<Flag<'static>>,
    date: Option<DateTime>,
    data: &'a [u8],
}

/// A decoded APPEND with more than one message.
#[derive(Debug)]
pub(crate) struct MultiAppend<'a> {
    tag: Tag<'static>,
    mailbox: WireMailbox<'static>,
    messages: Vec<AppendMessage<'a>>,
}

/// Decodes `head` (a command's bytes up to a literal's announcement `{n}` or `~{n}`, ending in
/// CRLF) as an APPEND whose message is that literal, made empty.
fn decode_head(head: &[u8]) -> Option<Command<'static>> {
    let open = head.iter().rposition(|&b| b == b'{')?;
    let mut line = head[..open].to_vec();
    line.extend_from_slice(b"{0}\r\n\r\n");
    match CommandCodec::default().decode(&line) {
        Ok((b"", cmd)) if matches!(cmd.body, CommandBody::Append { .. }) => Some(cmd.into_static()),
        _ => None,
    }
}

/// The options of a decoded one-message APPEND.
fn options(
    cmd: Command<'static>,
) -> Option<(Tag<'static>, WireMailbox<'static>, AppendMessage<'static>)> {
    match cmd.body {
        CommandBody::Append {
            mailbox,
            flags,
            date,
            ..
        } => Some((
            cmd.tag,
            mailbox,
            AppendMessage {
                flags,
                date,
                data: &[],
            },
        )),
        _ => None,
    }
}

/// Reads the APPEND in `bytes`, whose literals are at `literals` (`None`: too many to record),
/// if it carries more than one message; `None` for any other command, which the ordinary path
/// decodes. A malformed or oversized set is an error with the reason.
pub(crate) fn parse<'a>(
    bytes: &'a [u8],
    literals: Option<&[Range<usize>]>,
) -> Option<Result<MultiAppend<'a>, Failure>> {
    if !is_append(bytes) {
        return None;
    }
    let Some(literals) = literals else {
        return Some(Err(too_many()));
    };
    if literals.len() < 2 {
        return None;
    }
    let syntax = || Failure::Bad("Syntax error in APPEND".into());
    // The first literal that completes a one-message APPEND is its first message; one before it
    // is the mailbox name.
    let Some((first, cmd)) = literals
        .iter()
        .enumerate()
        .find_map(|(i, l)| Some((i, decode_head(bytes.get(..l.start)?)?)))
    else {
        return Some(Err(syntax()));
    };
    let Some((tag, mailbox, message)) = options(cmd) else {
        return Some(Err(syntax()));
    };
    if literals.len() - first > MAX_MESSAGES {
        return Some(Err(too_many()));
    }
    let mut messages = vec![AppendMessage {
        data: &bytes[literals[first].clone()],
        ..message
    }];
    for pair in literals[first..].windows(2) {
        let (before, this) = (&pair[0], &pair[1]);
        let mut head = b"a APPEND INBOX".to_vec();
        head.extend_from_slice(&bytes[before.end..this.start]);
        let Some((_, _, message)) = decode_head(&head).and_then(options) else {
            return Some(Err(syntax()));
        };
        messages.push(AppendMessage {
            data: &bytes[this.clone()],
            ..message
        });
    }
    let end = literals.last().map_or(0, |l| l.end);
    if !matches!(&bytes[end..], b"\r\n" | b"\n") {
        return Some(Err(syntax()));
    }
    if messages.len() == 1 {
        return None;
    }
    Some(Ok(MultiAppend {
        tag,
        mailbox,
        messages,
    }))
}

fn too_many() -> Failure {
    Failure::No(
        Some(code_other("LIMIT")),
        format!("At most {MAX_MESSAGES} messages per APPEND"),
    )
}

/// An APPENDUID UID set (RFC 4315 §3 `append-uid`): consecutive UIDs as one range.
fn uid_set(uids: &[i64]) -> String {
    let uids: Vec<NonZeroU32> = uids
        .iter()
        .filter_map(|&u| NonZeroU32::new(u32::try_from(u).ok()?))
        .collect();
    crate::esearch::sequence_set(&uids)
}

impl Session {
    /// Handles a MULTIAPPEND read by [`parse`] (or the failure it reported for `tag`).
    pub(crate) async fn multiappend(&mut self, set: MultiAppend<'_>) -> Reply {
        self.start_command();
        let tag = set.tag.clone();
        let outcome = self.append_set(set).await;
        self.finish(tag, true, outcome).await
    }

    /// The reply to an APPEND [`parse`] refused; BAD without a tag if none could be read.
    pub(crate) async fn refuse(&mut self, tag: Option<Tag<'static>>, failure: Failure) -> Reply {
        let Some(tag) = tag else {
            return Reply {
                raw: Vec::new(),
                responses: vec![Session::syntax_error(None, "Syntax error")],
                next: crate::session::Next::Continue,
            };
        };
        self.start_command();
        self.finish(tag, true, Err(failure)).await
    }

    async fn append_set(&mut self, set: MultiAppend<'_>) -> Outcome {
        let mailbox = self.find_mailbox(&set.mailbox, true).await?;
        let max = u64::from(self.config.max_message_size);
        if set.messages.iter().any(|m| m.data.len() as u64 > max) {
            return Err(Failure::No(
                Some(code_other("TOOBIG")),
                "Message too big".into(),
            ));
        }
        let now = postern_store::unix_now();
        let flags: Vec<_> = set
            .messages
            .iter()
            .map(|m| to_store_flags(&m.flags))
            .collect();
        let new: Vec<NewMessage> = set
            .messages
            .iter()
            .zip(&flags)
            .map(|(m, flags)| NewMessage {
                raw: m.data,
                flags,
                internal_date: m.date.as_ref().map_or(now, |d| d.as_ref().timestamp()),
            })
            .collect();
        let uids = self.store.append_all(&mailbox, &new).await?;
        if let Some(sel) = self.selected.as_mut() {
            if sel.mailbox.id == mailbox.id {
                sel.dirty = true;
            }
        }
        Ok(Done::ok("APPEND completed").code(code_other(&format!(
            "APPENDUID {} {}",
            mailbox.uidvalidity,
            uid_set(&uids)
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The literal ranges of `bytes`, found the way the fragmentizer reads them.
    fn literals(bytes: &[u8]) -> Vec<Range<usize>> {
        let mut frag = imap_codec::fragmentizer::Fragmentizer::new(1 << 20);
        frag.enqueue_bytes(bytes);
        let mut out = Vec::new();
        while let Some(info) = frag.progress() {
            if let imap_codec::fragmentizer::FragmentInfo::Literal { start, end } = info {
                out.push(start..end);
            }
            if frag.is_message_complete() {
                break;
            }
        }
        out
    }

    fn parsed(bytes: &[u8]) -> Option<Result<MultiAppend<'_>, Failure>> {
        parse(bytes, Some(&literals(bytes)))
    }

    #[test]
    fn reads_every_message_with_its_options() {
        let cmd: &[u8] = b"t1 APPEND {5}\r\nDraft (\\Seen) {3}\r\nabc ~{2}\r\n\0x (\\Flagged $k) \"01-Jan-2020 00:00:00 +0000\" {0}\r\n\r\n";
        let set = parsed(cmd).unwrap().unwrap();
        assert_eq!(set.tag.as_ref(), "t1");
        assert_eq!(set.messages.len(), 3);
        assert_eq!(set.messages[0].data, b"abc");
        assert_eq!(set.messages[0].flags, vec![Flag::Seen]);
        assert_eq!(set.messages[1].data, b"\0x");
        assert!(set.messages[1].flags.is_empty() && set.messages[1].date.is_none());
        assert_eq!(set.messages[2].flags.len(), 2);
        assert!(set.messages[2].date.is_some());
        assert_eq!(set.messages[2].data, b"");
    }

    #[test]
    fn single_messages_and_other_commands_take_the_ordinary_path() {
        assert!(parsed(b"a APPEND INBOX {3}\r\nabc\r\n").is_none());
        assert!(parsed(b"a APPEND {5}\r\nINBOX {3}\r\nabc\r\n").is_none());
        assert!(parsed(b"a LOGIN {1}\r\nx {1}\r\ny\r\n").is_none());
    }

    #[test]
    fn malformed_and_oversized_sets_are_refused() {
        for bad in [
            &b"a APPEND INBOX {1}\r\nx {1}\r\ny junk\r\n"[..],
            b"a APPEND INBOX {1}\r\nx (\\Seen {1}\r\ny\r\n",
            b"a APPEND INBOX {1}\r\nx{1}\r\ny\r\n",
        ] {
            assert!(
                matches!(parsed(bad), Some(Err(Failure::Bad(_)))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut many = b"a APPEND INBOX".to_vec();
        for _ in 0..=MAX_MESSAGES {
            many.extend_from_slice(b" {1}\r\nx");
        }
        many.extend_from_slice(b"\r\n");
        assert!(matches!(parsed(&many), Some(Err(Failure::No(..)))));
        assert!(matches!(
            parse(b"a APPEND INBOX {1}\r\nx\r\n", None),
            Some(Err(Failure::No(..)))
        ));
    }

    #[test]
    fn uid_sets_join_consecutive_uids() {
        assert_eq!(uid_set(&[4, 5, 6]), "4:6");
        assert_eq!(uid_set(&[4, 6, 7, 9]), "4,6:7,9");
        assert_eq!(uid_set(&[1]), "1");
    }
}
