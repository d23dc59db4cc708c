//! A queued message's data as it goes out (RFC 5321 §4.1.1.4), in pieces for lettre, which
//! dot-stuffs each one: every line ending made CRLF whatever was stored, so that dot-stuffing
//! (which looks only after CRLF) covers every line and no receiver can see an early end of data;
//! the message's own final CRLF dropped, since lettre sends CRLF.CRLF after it. A spooled
//! message is read through its map front to back, and the pages behind the piece in hand are let
//! go, so that sending a large message keeps at most a piece of it in memory.

use crate::crlf::Canonicalizer;
use crate::message::Message;

/// Bytes of message data read, made canonical and handed to lettre at a time.
const PIECE: usize = 256 * 1024;

/// The pieces of a message's data (see the module documentation).
pub(super) struct Pieces<'a> {
    message: &'a Message,
    /// Bytes of `message` read so far.
    at: usize,
    canon: Canonicalizer,
    /// The last bytes made canonical (at most 2), held back until it is known whether they are
    /// the message's final CRLF.
    held: Vec<u8>,
    done: bool,
}

impl<'a> Pieces<'a> {
    /// The pieces of `message`.
    pub(super) fn new(message: &'a Message) -> Pieces<'a> {
        Pieces {
            message,
            at: 0,
            canon: Canonicalizer::default(),
            held: Vec::new(),
            done: false,
        }
    }
}

impl Iterator for Pieces<'_> {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if self.done {
            return None;
        }
        let end = (self.at + PIECE).min(self.message.len());
        let mut out = std::mem::take(&mut self.held);
        out.reserve(end - self.at + end.saturating_sub(self.at) / 16);
        self.canon.push(&self.message[self.at..end], &mut out);
        self.message.release(self.at, end);
        self.at = end;
        if end == self.message.len() {
            self.canon.finish(&mut out);
            if out.ends_with(b"\r\n") {
                out.truncate(out.len() - 2);
            }
            self.done = true;
        } else {
            self.held = out.split_off(out.len().saturating_sub(2));
        }
        Some(out)
    }
}

/// Whether `message` is all ASCII (else it needs 8BITMIME, RFC 6152), read like [`Pieces`].
pub(super) fn is_ascii(message: &Message) -> bool {
    let mut at = 0;
    while at < message.len() {
        let end = (at + PIECE).min(message.len());
        let ascii = message[at..end].is_ascii();
        message.release(at, end);
        if !ascii {
            return false;
        }
        at = end;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crlf;

    #[test]
    fn pieces_are_the_canonical_message_without_its_final_crlf() {
        let mut long = b"Subject: x\r\n\r\n".to_vec();
        for i in 0..40_000u32 {
            // Bare LF, bare CR and CRLF endings, one falling on each side of a piece boundary.
            long.extend_from_slice(format!(".line {i}").as_bytes());
            long.extend_from_slice([&b"\n"[..], b"\r", b"\r\n"][i as usize % 3]);
        }
        for raw in [
            b"".to_vec(),
            b"a\r\n".to_vec(),
            b"a\n".to_vec(),
            b"a\r".to_vec(),
            b"a".to_vec(),
            long,
        ] {
            let message = Message::Memory(raw.clone());
            let sent: Vec<u8> = Pieces::new(&message).flatten().collect();
            let canonical = crlf::canonical(&raw);
            let expected = canonical.strip_suffix(b"\r\n").unwrap_or(&canonical);
            assert_eq!(sent, expected);
            assert_eq!(is_ascii(&message), raw.is_ascii());
        }
        assert!(!is_ascii(&Message::Memory(b"caf\xc3\xa9".to_vec())));
    }
}
