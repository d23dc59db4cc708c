//! MULTIAPPEND (RFC 3502): one APPEND with several messages, stored all or none in one store
//! transaction, answered with APPENDUID and the UID set (UIDPLUS, RFC 4315 §3); each message may
//! be a literal or a CATENATE list (RFC 4469, resolved in `catenate`). imap-codec decodes only
//! single-message APPENDs, so the argument list is walked here, with the literals located where
//! the fragmentizer read them (their bytes are never copied), while the mailbox and each
//! message's options (flags, date) are decoded by imap-codec from a one-message APPEND rebuilt
//! around them.

use std::borrow::Cow;
use std::num::NonZeroU32;
use std::ops::Range;

use imap_codec::decode::Decoder;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::Mailbox as WireMailbox;
use imap_codec::imap_types::IntoStatic;
use imap_codec::CommandCodec;
use postern_store::NewMessage;

use crate::commands::flags::to_store_flags;
use crate::mail_store::MailStore;
use crate::response::code_other;
use crate::session::{ChangeFeed, Done, Failure, Outcome, Reply, Session};
use crate::stream::is_append;

/// Most messages, and most CATENATE parts, one APPEND may carry: the store writes the messages
/// in one transaction.
pub(crate) const MAX_MESSAGES: usize = 1000;

/// A piece of a message: literal bytes, or (CATENATE) an IMAP URL naming stored ones.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Piece<'a> {
    /// Bytes sent in the command (a literal, or a CATENATE TEXT part).
    Text(&'a [u8]),
    /// A CATENATE URL part, as sent.
    Url(String),
}

/// One message of an APPEND.
#[derive(Debug)]
pub(crate) struct AppendMessage<'a> {
    flags: Vec<Flag<'static>>,
    date: Option<DateTime>,
    pieces: Vec<Piece<'a>>,
}

/// A decoded APPEND with more than one message or with CATENATE.
#[derive(Debug)]
pub(crate) struct MultiAppend<'a> {
    tag: Tag<'static>,
    mailbox: WireMailbox<'static>,
    messages: Vec<AppendMessage<'a>>,
}

/// Walks an APPEND's bytes; `None` on anything it does not expect.
struct Cursor<'a, 'l> {
    bytes: &'a [u8],
    pos: usize,
    literals: &'l [Range<usize>],
    /// A CATENATE list was read.
    catenate: bool,
}

impl<'a> Cursor<'a, '_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Takes `word` (ASCII, any case) if it comes next.
    fn eat(&mut self, word: &[u8]) -> bool {
        let next = self.bytes.get(self.pos..self.pos + word.len());
        if next.is_some_and(|w| w.eq_ignore_ascii_case(word)) {
            self.pos += word.len();
            return true;
        }
        false
    }

    /// A literal (`{n}`, `{n+}`, or literal8 `~{n}`, CRLF, then the bytes the fragmentizer read).
    fn literal(&mut self) -> Option<&'a [u8]> {
        self.eat(b"~");
        if self.peek() != Some(b'{') {
            return None;
        }
        let close = self.pos + self.bytes[self.pos..].iter().position(|&b| b == b'}')?;
        let after = close + 1 + usize::from(self.bytes.get(close + 1) == Some(&b'\r')) + 1;
        let range = self.literals.iter().find(|l| l.start == after)?;
        self.pos = range.end;
        self.bytes.get(range.clone())
    }

    /// A quoted string's bytes, quotes included.
    fn quoted(&mut self) -> Option<Range<usize>> {
        let start = self.pos;
        if !self.eat(b"\"") {
            return None;
        }
        while let Some(b) = self.peek() {
            self.pos += if b == b'\\' { 2 } else { 1 };
            if b == b'"' {
                return Some(start..self.pos);
            }
        }
        None
    }

    /// An atom (up to a space, parenthesis or line end).
    fn atom(&mut self) -> Option<Range<usize>> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| !matches!(b, b' ' | b'(' | b')' | b'\r' | b'\n' | b'{' | b'"'))
        {
            self.pos += 1;
        }
        (self.pos > start).then_some(start..self.pos)
    }

    /// An astring's raw bytes (atom, quoted string with its quotes, or literal with its
    /// announcement).
    fn astring(&mut self) -> Option<&'a [u8]> {
        let start = self.pos;
        match self.peek()? {
            b'"' => self.quoted()?,
            b'{' => {
                self.literal()?;
                start..self.pos
            }
            _ => self.atom()?,
        };
        self.bytes.get(start..self.pos)
    }

    /// An astring's value (quotes and escapes removed).
    fn astring_value(&mut self) -> Option<Vec<u8>> {
        match self.peek()? {
            b'"' => {
                let raw = self.bytes.get(self.quoted()?)?;
                let inner = &raw[1..raw.len() - 1];
                let mut out = Vec::with_capacity(inner.len());
                let mut escaped = false;
                for &b in inner {
                    if b == b'\\' && !escaped {
                        escaped = true;
                        continue;
                    }
                    escaped = false;
                    out.push(b);
                }
                Some(out)
            }
            b'{' => self.literal().map(<[u8]>::to_vec),
            _ => self.bytes.get(self.atom()?).map(<[u8]>::to_vec),
        }
    }

    /// A message: options (flag list, date-time), then a literal or `CATENATE (...)`.
    fn message(&mut self, parts: &mut usize) -> Option<AppendMessage<'a>> {
        let opts_start = self.pos;
        if self.peek() == Some(b'(') {
            self.pos += self.bytes[self.pos..].iter().position(|&b| b == b')')? + 1;
            self.eat(b" ").then_some(())?;
        }
        if self.peek() == Some(b'"') {
            self.quoted()?;
            self.eat(b" ").then_some(())?;
        }
        let mut probe = b"a APPEND INBOX ".to_vec();
        probe.extend_from_slice(&self.bytes[opts_start..self.pos]);
        probe.extend_from_slice(b"{0}\r\n\r\n");
        let (flags, date) = match CommandCodec::default().decode(&probe) {
            Ok((b"", cmd)) => match cmd.body {
                CommandBody::Append { flags, date, .. } => (flags.into_static(), date),
                _ => return None,
            },
            _ => return None,
        };
        let mut pieces = Vec::new();
        if self.eat(b"CATENATE (") {
            self.catenate = true;
            loop {
                *parts += 1;
                if self.eat(b"TEXT ") {
                    pieces.push(Piece::Text(self.literal()?));
                } else if self.eat(b"URL ") {
                    let url = String::from_utf8(self.astring_value()?).ok()?;
                    pieces.push(Piece::Url(url));
                } else {
                    return None;
                }
                if self.eat(b")") {
                    break;
                }
                self.eat(b" ").then_some(())?;
            }
        } else {
            *parts += 1;
            pieces.push(Piece::Text(self.literal()?));
        }
        Some(AppendMessage {
            flags,
            date,
            pieces,
        })
    }
}

/// Reads the APPEND in `bytes`, whose literals are at `literals` (`None`: too many to record),
/// if it carries more than one message or a CATENATE list; `None` for any other command, and
/// for anything this grammar does not read (imap-codec's path then decodes it, or says BAD).
/// A set with too many messages or parts is an error.
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
    let space = bytes.iter().position(|&b| b == b' ')?;
    let mut c = Cursor {
        bytes,
        pos: space + 8,
        literals,
        catenate: false,
    };
    let mailbox_token = c.astring()?;
    let mut probe = b"a APPEND ".to_vec();
    probe.extend_from_slice(mailbox_token);
    probe.extend_from_slice(b" {0}\r\n\r\n");
    let mailbox = match CommandCodec::default().decode(&probe) {
        Ok((b"", cmd)) => match cmd.body {
            CommandBody::Append { mailbox, .. } => mailbox.into_static(),
            _ => return None,
        },
        _ => return None,
    };
    let mut messages = Vec::new();
    let mut parts = 0;
    while c.eat(b" ") {
        messages.push(c.message(&mut parts)?);
        if parts > MAX_MESSAGES {
            return Some(Err(too_many()));
        }
    }
    if !matches!(&bytes[c.pos..], b"\r\n" | b"\n") {
        return None;
    }
    if messages.is_empty() || (messages.len() == 1 && !c.catenate) {
        return None;
    }
    let tag = Tag::try_from(String::from_utf8_lossy(&bytes[..space]).into_owned()).ok()?;
    Some(Ok(MultiAppend {
        tag,
        mailbox,
        messages,
    }))
}

fn too_many() -> Failure {
    Failure::No(
        Some(code_other("LIMIT")),
        format!("At most {MAX_MESSAGES} messages and CATENATE parts per APPEND"),
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

impl<S: MailStore> Session<S> {
    /// Handles a MULTIAPPEND read by [`parse`] (or the failure it reported for `tag`).
    pub(crate) async fn multiappend(
        &mut self,
        set: MultiAppend<'_>,
        feed: &mut dyn ChangeFeed,
    ) -> Reply {
        self.start_command(feed);
        let tag = set.tag.clone();
        let outcome = self.append_set(set).await;
        self.finish(tag, true, outcome, feed).await
    }

    /// The reply to an APPEND [`parse`] refused; BAD without a tag if none could be read.
    pub(crate) async fn refuse(
        &mut self,
        tag: Option<Tag<'static>>,
        failure: Failure,
        feed: &mut dyn ChangeFeed,
    ) -> Reply {
        let Some(tag) = tag else {
            return Reply {
                raw: Vec::new(),
                responses: vec![Session::syntax_error(None, "Syntax error")],
                next: crate::session::Next::Continue,
            };
        };
        self.start_command(feed);
        self.finish(tag, true, Err(failure), feed).await
    }

    async fn append_set(&mut self, set: MultiAppend<'_>) -> Outcome {
        let mailbox = self.find_mailbox(&set.mailbox, true).await?;
        // The whole set, URL parts included, is held at once: it is bounded like one message.
        let mut room = u64::from(self.config.max_message_size);
        let mut raws: Vec<Cow<'_, [u8]>> = Vec::with_capacity(set.messages.len());
        for m in &set.messages {
            raws.push(self.catenate(&m.pieces, &mut room).await?);
        }
        let now = (self.clock)();
        let flags: Vec<_> = set
            .messages
            .iter()
            .map(|m| to_store_flags(&m.flags))
            .collect();
        let new: Vec<NewMessage> = set
            .messages
            .iter()
            .zip(&flags)
            .zip(&raws)
            .map(|((m, flags), raw)| NewMessage {
                raw,
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
        assert_eq!(set.messages[0].pieces, [Piece::Text(b"abc")]);
        assert_eq!(set.messages[0].flags, vec![Flag::Seen]);
        assert_eq!(set.messages[1].pieces, [Piece::Text(b"\0x")]);
        assert!(set.messages[1].flags.is_empty() && set.messages[1].date.is_none());
        assert_eq!(set.messages[2].flags.len(), 2);
        assert!(set.messages[2].date.is_some());
        assert_eq!(set.messages[2].pieces, [Piece::Text(b"")]);
    }

    #[test]
    fn reads_catenate_lists() {
        let cmd: &[u8] = b"t2 APPEND Drafts (\\Seen) CATENATE (URL \"/INBOX/;uid=2/;section=HEADER\" TEXT {4+}\r\nbody url /a/;UID=1) catenate (text {1}\r\nx) {2}\r\nyz\r\n";
        let set = parsed(cmd).unwrap().unwrap();
        assert_eq!(set.messages.len(), 3);
        assert_eq!(
            set.messages[0].pieces,
            [
                Piece::Url("/INBOX/;uid=2/;section=HEADER".into()),
                Piece::Text(b"body"),
                Piece::Url("/a/;UID=1".into()),
            ]
        );
        assert_eq!(set.messages[0].flags, vec![Flag::Seen]);
        assert_eq!(set.messages[1].pieces, [Piece::Text(b"x")]);
        assert_eq!(set.messages[2].pieces, [Piece::Text(b"yz")]);
        // One CATENATE message is not a plain APPEND either.
        let one: &[u8] = b"t3 APPEND INBOX CATENATE (TEXT {1}\r\nx)\r\n";
        assert_eq!(parsed(one).unwrap().unwrap().messages.len(), 1);
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
            b"a APPEND INBOX CATENATE (TEXT {1}\r\nx FOO bar)\r\n",
            b"a APPEND INBOX CATENATE ()\r\n",
        ] {
            // Left to imap-codec's path, which answers BAD.
            assert!(parsed(bad).is_none(), "{}", String::from_utf8_lossy(bad));
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
