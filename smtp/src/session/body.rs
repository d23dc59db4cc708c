//! A message's data as it streams through the session: counted against the size limit, its line
//! endings made canonical piece by piece (`crate::crlf`), its header section held back until it is
//! complete (for the loop check and the submission fixes, which decide what goes before it), and
//! then handed out in pieces, so that the session never holds the whole message.

use crate::crlf::{BareLineEndings, Canonicalizer};
use crate::reply::Reply;

/// Hop count beyond which a message is taken to be looping (RFC 5321 §6.3).
const MAX_RECEIVED_HEADERS: usize = 50;

/// The most bytes of a header section held back while waiting for its end; a longer one is
/// checked on its first part.
pub(super) const HEAD_LIMIT: usize = 256 * 1024;

/// The data of the message being received.
pub(super) struct Body {
    /// What the data receiver produced and was not taken yet (its last byte is held back: the
    /// receiver may still drop a CR it pushed).
    pub raw: Vec<u8>,
    /// Bytes taken from `raw`, the count the size limit applies to.
    taken: usize,
    canon: Canonicalizer,
    bare_line_endings: BareLineEndings,
    /// What goes before the message: the `Received:` header, then any submission fixes.
    prefix: Vec<u8>,
    /// The start of the message while its header section is held back; `None` once handed out.
    head: Option<Vec<u8>>,
    /// For submissions, this server's host name (the submission fixes are made).
    submission: Option<String>,
    /// Why the message will be refused at its end; its data is no longer handed out.
    pub refusal: Option<Reply>,
}

impl Body {
    /// The data of a new message that gets `prefix` (the trace header) put before it; with
    /// `submission` (this host's name) a missing `Date:` or `Message-ID:` is added.
    pub fn new(prefix: Vec<u8>, submission: Option<String>, bare: BareLineEndings) -> Body {
        Body {
            raw: Vec::new(),
            taken: 0,
            canon: Canonicalizer::default(),
            bare_line_endings: bare,
            prefix,
            head: Some(Vec::new()),
            submission,
            refusal: None,
        }
    }

    /// Data bytes received so far (before line endings are made canonical).
    pub fn received(&self) -> usize {
        self.taken + self.raw.len()
    }

    /// Bytes held: not yet taken, or the header section held back.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.raw.len() + self.head.as_ref().map_or(0, Vec::len)
    }

    /// Takes what the receiver produced (all of it at the `end` of the data) and appends what is
    /// ready to `out`, or drops it when `keep` is false (the message is refused anyway).
    pub fn take(&mut self, end: bool, keep: bool, out: &mut Vec<u8>) {
        let ready = if end {
            self.raw.len()
        } else {
            self.raw.len().saturating_sub(1)
        };
        self.taken += ready;
        if !keep || self.refusal.is_some() {
            self.raw.drain(..ready);
            self.head = None;
            return;
        }
        match self.head.as_mut() {
            Some(head) => {
                let from = head.len().saturating_sub(3);
                self.canon.push(&self.raw[..ready], head);
                if end {
                    self.canon.finish(head);
                }
                let complete =
                    head.starts_with(b"\r\n") || head[from..].windows(4).any(|w| w == b"\r\n\r\n");
                if complete || end || head.len() >= HEAD_LIMIT {
                    self.release_head(out);
                }
            }
            None => {
                self.canon.push(&self.raw[..ready], out);
                if end {
                    self.canon.finish(out);
                }
            }
        }
        self.raw.drain(..ready);
        if self.canon.saw_bare() && self.bare_line_endings == BareLineEndings::Reject {
            self.refusal = Some(Reply::new(
                550,
                (5, 5, 2),
                "Message refused: bare CR or LF in the data (RFC 5321 §2.3.8)",
            ));
        }
    }

    /// The header section is complete (or as long as it may get): the loop check, the submission
    /// fixes, then the prefix and the held bytes go out.
    fn release_head(&mut self, out: &mut Vec<u8>) {
        let Some(head) = self.head.take() else { return };
        let parsed = mail_parser::MessageParser::new().parse_headers(&head[..]);
        let hops = parsed
            .as_ref()
            .map_or(0, |m| m.header_values("Received").count());
        if hops >= MAX_RECEIVED_HEADERS {
            self.refusal = Some(Reply::new(
                554,
                (5, 4, 6),
                "Too many hops, mail loop detected",
            ));
            return;
        }
        if let Some(hostname) = &self.submission {
            // RFC 6409 §8.2–8.3: a submission server may add a missing Date and Message-ID.
            let (has_date, has_id) = parsed.as_ref().map_or((false, false), |m| {
                (m.date().is_some(), m.message_id().is_some())
            });
            if !has_date {
                let date =
                    mail_builder::headers::date::Date::new(postern_store::unix_now()).to_rfc822();
                self.prefix
                    .extend_from_slice(format!("Date: {date}\r\n").as_bytes());
            }
            if !has_id {
                let id: u128 = rand::random();
                self.prefix.extend_from_slice(
                    format!("Message-ID: <{id:032x}@{hostname}>\r\n").as_bytes(),
                );
            }
        }
        out.append(&mut self.prefix);
        out.extend_from_slice(&head);
    }
}
