//! Streaming large APPEND literals (RFC 3501 §6.3.11, RFC 7888) to a spool file instead of
//! buffering them. The shell feeds imap-codec's `Fragmentizer` exactly one fragment at a time
//! ([`Input`]), so when a logged-in client's APPEND line announces a large literal, every byte after
//! that line is still the shell's: it skips the literal in the fragmentizer (client and server
//! agree on its length), copies exactly that many bytes to a [`Spool`] through a bounded buffer
//! ([`receive_literal`]), lets the fragmentizer parse the rest of the command line, and decodes the
//! command with the literal replaced by an empty one ([`spooled_append`]), so that the mailbox,
//! flags and date come from the same parser as for any other command.

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use imap_codec::decode::Decoder;
use imap_codec::fragmentizer::{FragmentInfo, Fragmentizer, LiteralAnnouncement};
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::response::{Response, StatusKind};
use imap_codec::CommandCodec;
use postern_store::Spool;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use crate::compress::Link;
use crate::error::ImapError;
use crate::response::{code_other, tagged};
use crate::session::{ChangeFeed, Next, Reply, Session};
use crate::telemetry::timed;

/// Largest read while copying a literal to its spool file.
const SPOOL_BUFFER: usize = 64 * 1024;

/// What the fragmentizer parses next.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Expect {
    /// A line (up to and including LF).
    #[default]
    Line,
    /// The rest of a literal, this many bytes.
    Literal(u32),
}

/// Most literals of one command whose places [`Input`] records: enough for the largest
/// MULTIAPPEND accepted (see `commands::multiappend`) plus a literal mailbox name; a command with
/// more is refused when it completes, and recording stops, so their list stays small.
pub(crate) const MAX_RECORDED_LITERALS: usize = 1002;

/// Bytes read from the client and not yet given to the fragmentizer.
#[derive(Debug, Default)]
pub(crate) struct Input {
    /// The bytes, in order.
    pub(crate) pending: Vec<u8>,
    /// What the fragmentizer expects; [`Input::skip`] resets it when a message is skipped.
    pub(crate) expect: Expect,
    /// Where the literals of the current command are in its bytes, in order (at most
    /// [`MAX_RECORDED_LITERALS`]).
    literals: Vec<Range<usize>>,
    /// The command had more literals than were recorded.
    too_many_literals: bool,
    /// The last fragment completed a command: the next one starts a new literal list.
    complete: bool,
}

impl Input {
    /// Gives the fragmentizer the bytes of the fragment it parses next, and no more, then lets it
    /// progress. `None` means every pending byte was consumed and more must be read.
    pub(crate) fn progress(&mut self, frag: &mut Fragmentizer) -> Option<FragmentInfo> {
        if self.complete {
            self.complete = false;
            self.literals.clear();
            self.too_many_literals = false;
        }
        let n = match self.expect {
            Expect::Line => self
                .pending
                .iter()
                .position(|&b| b == b'\n')
                .map_or(self.pending.len(), |i| i + 1),
            Expect::Literal(rest) => self.pending.len().min(rest as usize),
        };
        if n > 0 {
            frag.enqueue_bytes(&self.pending[..n]);
            self.pending.drain(..n);
        }
        if let Expect::Literal(rest) = &mut self.expect {
            *rest -= n as u32;
        }
        let info = frag.progress()?;
        match info {
            FragmentInfo::Literal { start, end } if self.literals.len() < MAX_RECORDED_LITERALS => {
                self.literals.push(start..end);
            }
            FragmentInfo::Literal { .. } => self.too_many_literals = true,
            FragmentInfo::Line {
                announcement: None, ..
            } => self.complete = true,
            FragmentInfo::Line { .. } => {}
        }
        self.expect = match info {
            FragmentInfo::Line {
                announcement: Some(LiteralAnnouncement { length, .. }),
                ..
            } => Expect::Literal(length),
            _ => Expect::Line,
        };
        Some(info)
    }
}

impl Input {
    /// Skips the rest of the fragmentizer's current message (its next literal included).
    pub(crate) fn skip(&mut self, frag: &mut Fragmentizer) {
        frag.skip_message();
        self.expect = Expect::Line;
        self.complete = true;
    }

    /// Where the literals of the command just completed are in its bytes; `None` if it had more
    /// than [`MAX_RECORDED_LITERALS`].
    pub(crate) fn literals(&self) -> Option<&[Range<usize>]> {
        (!self.too_many_literals).then_some(&self.literals)
    }
}

/// Whether a command's bytes so far start with `tag SP APPEND SP` (case-insensitive, RFC 3501
/// §9: command names are case-insensitive).
pub(crate) fn is_append(message: &[u8]) -> bool {
    let Some(space) = message.iter().position(|&b| b == b' ') else {
        return false;
    };
    let rest = &message[space + 1..];
    space > 0 && rest.len() > 7 && rest[..7].eq_ignore_ascii_case(b"APPEND ")
}

/// Whether a literal announced at the end of `message` (a command's bytes so far) may be an
/// APPEND message streamed to a spool file: an APPEND whose bytes do not include a CATENATE
/// list (RFC 4469), whose TEXT parts are held in memory with the rest of the command.
pub(crate) fn streamable_append(message: &[u8]) -> bool {
    is_append(message)
        && !message
            .windows(11)
            .any(|w| w.eq_ignore_ascii_case(b" CATENATE ("))
}

/// Takes the RFC 6855 §4 wrapper off `APPEND box [flags] [date] UTF8 (~{n}<message>)`, which a
/// client that enabled UTF8=ACCEPT uses for a message with UTF-8 headers: imap-codec decodes the
/// plain form `... ~{n}<message>`. `None` if `message` is not such an APPEND.
pub(crate) fn unwrap_utf8_append(message: &[u8]) -> Option<Vec<u8>> {
    if !is_append(message) {
        return None;
    }
    let at = message
        .windows(9)
        .position(|w| w.eq_ignore_ascii_case(b" UTF8 (~{"))?;
    let tilde = at + 7;
    let close = tilde + message[tilde..].iter().position(|&b| b == b'}')?;
    let length: usize = std::str::from_utf8(&message[tilde + 2..close])
        .ok()?
        .trim_end_matches('+')
        .parse()
        .ok()?;
    let data_end = (close + 3).checked_add(length)?;
    if message.get(close + 1..close + 3) != Some(b"\r\n") || message.get(data_end) != Some(&b')') {
        return None;
    }
    let mut out = message[..=at].to_vec();
    out.extend_from_slice(&message[tilde..data_end]);
    out.extend_from_slice(&message[data_end + 1..]);
    Some(out)
}

/// An APPEND whose message literal is on disk, waiting for the rest of its command line.
pub(crate) struct SpooledAppend {
    /// The command up to and including the literal's announcement (`... {N}\r\n`).
    pub(crate) head: Vec<u8>,
    /// Its tag, for a BAD or NO.
    pub(crate) tag: Option<Tag<'static>>,
    /// The message, or `None` if writing the spool file failed (the literal was still read, so
    /// the connection stays in step, and the command fails).
    pub(crate) spool: Option<Spool>,
}

/// How copying a literal ended.
pub(crate) enum Received {
    /// All bytes arrived (in the spool, unless writing it failed).
    Spool(Option<Spool>),
    /// The connection must end, after this BYE if any (EOF, timeout, shutdown).
    End(Option<Response<'static>>),
}

/// Copies exactly `length` literal bytes, first those already read, then from the socket, into a
/// new spool file in `dir`, never holding more than [`SPOOL_BUFFER`] of them in memory.
pub(crate) async fn receive_literal(
    conn: &mut Link,
    input: &mut Input,
    length: u32,
    dir: Option<&Path>,
    shutdown: &CancellationToken,
    timeout: Duration,
) -> Result<Received, ImapError> {
    let mut spool = match Spool::create(dir).await {
        Ok(spool) => Some(spool),
        Err(e) => {
            tracing::warn!(error = %e, "cannot create an APPEND spool file");
            None
        }
    };
    let mut remaining = length as usize;
    let take = remaining.min(input.pending.len());
    store_piece(&mut spool, &input.pending[..take]).await;
    input.pending.drain(..take);
    remaining -= take;
    let mut buf = vec![0u8; remaining.min(SPOOL_BUFFER)];
    while remaining > 0 {
        let want = remaining.min(buf.len());
        tokio::select! {
            r = conn.read(&mut buf[..want]) => {
                let n = r?;
                if n == 0 {
                    return Ok(Received::End(None));
                }
                store_piece(&mut spool, &buf[..n]).await;
                remaining -= n;
            }
            _ = tokio::time::sleep(timeout) => {
                return Ok(Received::End(Some(Session::bye("Autologout; idle for too long"))));
            }
            _ = shutdown.cancelled() => {
                return Ok(Received::End(Some(Session::bye("Server shutting down"))));
            }
        }
    }
    Ok(Received::Spool(spool))
}

async fn store_piece(spool: &mut Option<Spool>, bytes: &[u8]) {
    if let Some(s) = spool {
        if let Err(e) = s.write(bytes).await {
            tracing::warn!(error = %e, "writing an APPEND spool file failed");
            *spool = None;
        }
    }
}

/// Completes a spooled APPEND once the fragmentizer holds the rest of its command line: decodes
/// `head` with the literal made empty plus that rest, and appends the spooled message. Anything
/// but a complete APPEND (another literal, trailing syntax) is BAD.
pub(crate) async fn spooled_append(
    session: &mut Session,
    append: SpooledAppend,
    frag: &Fragmentizer,
    feed: &mut dyn ChangeFeed,
) -> Reply {
    let SpooledAppend { head, tag, spool } = append;
    let reply = |response| Reply {
        raw: Vec::new(),
        responses: vec![response],
        next: Next::Continue,
    };
    if frag.is_message_poisoned() {
        return reply(Session::streamed_not_alone(tag.as_ref()));
    }
    if frag.is_max_message_size_exceeded() {
        return reply(Session::syntax_error(tag.as_ref(), "Unexpected literal"));
    }
    let Some(open) = head.iter().rposition(|&b| b == b'{') else {
        return reply(Session::syntax_error(tag.as_ref(), "Syntax error"));
    };
    let mut line = Vec::with_capacity(open + 5 + frag.message_bytes().len());
    line.extend_from_slice(&head[..open]);
    line.extend_from_slice(b"{0}\r\n");
    line.extend_from_slice(frag.message_bytes());
    let line = unwrap_utf8_append(&line).unwrap_or(line);
    let cmd = match CommandCodec::default().decode(&line) {
        Ok((b"", cmd)) => cmd,
        _ => return reply(Session::syntax_error(tag.as_ref(), "Syntax error")),
    };
    match spool {
        Some(spool) => timed("APPEND", session.append_spooled(cmd, spool, feed)).await,
        None => reply(tagged(
            &cmd.tag,
            StatusKind::No,
            Some(code_other("SERVERBUG")),
            "Cannot store the message",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_append_lines() {
        assert!(is_append(b"a1 APPEND INBOX {5}\r\n"));
        assert!(is_append(b"x append \"Sent\" (\\Seen) {300000+}\r\n"));
        assert!(!is_append(b"a1 APPENDX INBOX {5}\r\n"));
        assert!(!is_append(b" APPEND INBOX {5}\r\n"));
        assert!(!is_append(b"a1 LOGIN {5}\r\n"));
        assert!(!is_append(b"a1 UID APPEND {5}\r\n"));
        assert!(streamable_append(b"a1 APPEND INBOX {5}\r\n"));
        assert!(!streamable_append(
            b"a1 APPEND INBOX catenate (TEXT {5}\r\n"
        ));
    }

    #[test]
    fn utf8_append_wrapper() {
        assert_eq!(
            unwrap_utf8_append(b"a APPEND Drafts (\\Draft) UTF8 (~{3+}\r\nabc)\r\n").unwrap(),
            b"a APPEND Drafts (\\Draft) ~{3+}\r\nabc\r\n"
        );
        assert_eq!(
            unwrap_utf8_append(b"a append x utf8 (~{0}\r\n)\r\n").unwrap(),
            b"a append x ~{0}\r\n\r\n"
        );
        assert!(unwrap_utf8_append(b"a APPEND x {3}\r\nabc\r\n").is_none());
        assert!(unwrap_utf8_append(b"a APPEND x UTF8 (~{5}\r\nabc)\r\n").is_none());
        assert!(unwrap_utf8_append(b"a SEARCH UTF8 (~{1}\r\na)\r\n").is_none());
    }

    #[test]
    fn feeds_the_fragmentizer_one_fragment_at_a_time() {
        let mut frag = Fragmentizer::new(1024);
        let mut input = Input::default();
        input
            .pending
            .extend_from_slice(b"a APPEND INBOX {3}\r\nxyz\r\nb NOOP\r\n");
        let first = input.progress(&mut frag);
        assert!(matches!(
            first,
            Some(FragmentInfo::Line {
                announcement: Some(_),
                ..
            })
        ));
        // The literal and everything after it are still ours.
        assert_eq!(input.pending, b"xyz\r\nb NOOP\r\n");
        assert_eq!(input.expect, Expect::Literal(3));
        assert!(matches!(
            input.progress(&mut frag),
            Some(FragmentInfo::Literal { .. })
        ));
        assert!(input.progress(&mut frag).is_some());
        assert!(frag.is_message_complete());
        assert_eq!(frag.message_bytes(), b"a APPEND INBOX {3}\r\nxyz\r\n");
        assert!(input.progress(&mut frag).is_some());
        assert_eq!(frag.message_bytes(), b"b NOOP\r\n");
        assert!(input.progress(&mut frag).is_none());
        assert!(input.pending.is_empty());
    }
}
