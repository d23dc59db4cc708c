//! The SEARCH criteria decoder (RFC 3501 §6.4.4, RFC 9051 §6.4.4, grammar in RFC 3501 §9).
//!
//! imap-codec 2.0.0-alpha.10 decodes search keys with a hard-coded recursion budget of 8 levels
//! (`search_key(9)`), so `OR OR ... OR` nested 9 deep is a syntax error there while Dovecot
//! accepts it. This recursive-descent parser takes the program's structure (parentheses, OR, NOT)
//! itself, bounded by an explicit depth counter and a key count, and hands each leaf key
//! (`FROM x`, `1:*`, `HEADER a b`, ...) to imap-codec on its own, so the values are imap-codec's
//! `SearchKey`s and every leaf keeps imap-codec's grammar.

use imap_codec::decode::Decoder;
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::IntoStatic;
use imap_codec::CommandCodec;

/// Most keys a search program may have, counting every key inside OR, NOT and parentheses.
/// A program's cost grows with its size, so this is the real bound.
pub const MAX_SEARCH_KEYS: usize = 1000;

/// Deepest nesting of OR, NOT and parentheses accepted; far beyond what clients send (Dovecot
/// accepts deep nesting too), small enough that recursion over a program stays cheap.
pub const MAX_SEARCH_DEPTH: usize = 128;

/// Why a SEARCH program was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgramError {
    /// Not valid SEARCH syntax (BAD).
    Syntax,
    /// Nested deeper than [`MAX_SEARCH_DEPTH`] (BAD).
    TooDeep,
    /// More than [`MAX_SEARCH_KEYS`] keys (NO \[LIMIT\], RFC 5530 §3).
    TooMany,
}

/// If `message` is a SEARCH or UID SEARCH command, decodes it.
pub fn decode(message: &[u8]) -> Option<Result<Command<'static>, ProgramError>> {
    let space = message.iter().position(|&b| b == b' ')?;
    let mut pos = space + 1;
    let uid = starts_word(message, pos, b"UID ");
    if uid {
        pos += 4;
    }
    if !starts_word(message, pos, b"SEARCH ") {
        return None;
    }
    pos += 7;
    Some(program(message, space, pos, uid))
}

fn starts_word(message: &[u8], pos: usize, word: &[u8]) -> bool {
    message
        .get(pos..pos + word.len())
        .is_some_and(|w| w.eq_ignore_ascii_case(word))
}

fn program(
    message: &[u8],
    tag_end: usize,
    start: usize,
    uid: bool,
) -> Result<Command<'static>, ProgramError> {
    let tag = message.get(..tag_end).ok_or(ProgramError::Syntax)?;
    let mut p = Parser {
        buf: message,
        pos: start,
        keys: 0,
    };
    let mut charset = None;
    if starts_word(message, start, b"CHARSET ") {
        p.pos = start + 8;
        let name_start = p.pos;
        p.pos = p.token_end()?;
        let mut probe = b"a SEARCH CHARSET ".to_vec();
        probe.extend_from_slice(&message[name_start..p.pos]);
        probe.extend_from_slice(b" ALL\r\n");
        match leaf_command(&probe)? {
            CommandBody::Search { charset: c, .. } => charset = c,
            _ => return Err(ProgramError::Syntax),
        }
        p.space()?;
    }
    let mut criteria = vec![p.key(1)?];
    while p.at_space() {
        p.space()?;
        criteria.push(p.key(1)?);
    }
    let rest = &message[p.pos..];
    if rest != b"\r\n" && rest != b"\n" {
        return Err(ProgramError::Syntax);
    }
    let mut head = tag.to_vec();
    head.extend_from_slice(b" NOOP\r\n");
    let tag = match CommandCodec::default().decode(&head) {
        Ok((_, cmd)) => cmd.tag.into_static(),
        Err(_) => return Err(ProgramError::Syntax),
    };
    let criteria = Vec1::try_from(criteria).map_err(|_| ProgramError::Syntax)?;
    Ok(Command {
        tag,
        body: CommandBody::Search {
            charset: charset.map(IntoStatic::into_static),
            criteria,
            uid,
        },
    })
}

/// Decodes a one-key `a SEARCH ...` command with imap-codec.
fn leaf_command(probe: &[u8]) -> Result<CommandBody<'static>, ProgramError> {
    match CommandCodec::default().decode(probe) {
        Ok((b"", cmd)) => Ok(cmd.body.into_static()),
        _ => Err(ProgramError::Syntax),
    }
}

/// How many arguments a leaf key takes (RFC 3501 §9 `search-key`, RFC 7162 §3.1.5 MODSEQ).
fn arity(word: &[u8], next_is_quoted: bool) -> usize {
    const ONE: [&str; 18] = [
        "BCC",
        "BEFORE",
        "BODY",
        "CC",
        "FROM",
        "KEYWORD",
        "LARGER",
        "ON",
        "SENTBEFORE",
        "SENTON",
        "SENTSINCE",
        "SINCE",
        "SMALLER",
        "SUBJECT",
        "TEXT",
        "TO",
        "UID",
        "UNKEYWORD",
    ];
    let word = String::from_utf8_lossy(word).to_ascii_uppercase();
    match word.as_str() {
        "HEADER" => 2,
        // MODSEQ ["entry-name" entry-type] mod-sequence-valzer
        "MODSEQ" if next_is_quoted => 3,
        "MODSEQ" => 1,
        w if ONE.contains(&w) => 1,
        _ => 0,
    }
}

struct Parser<'b> {
    buf: &'b [u8],
    pos: usize,
    keys: usize,
}

impl Parser<'_> {
    fn at_space(&self) -> bool {
        self.buf.get(self.pos) == Some(&b' ')
    }

    fn space(&mut self) -> Result<(), ProgramError> {
        if !self.at_space() {
            return Err(ProgramError::Syntax);
        }
        self.pos += 1;
        Ok(())
    }

    /// The end of the atom, quoted string or literal starting at the current position.
    fn token_end(&self) -> Result<usize, ProgramError> {
        let buf = self.buf;
        let start = self.pos;
        match buf.get(start) {
            Some(b'"') => {
                let mut i = start + 1;
                loop {
                    match buf.get(i) {
                        Some(b'"') => return Ok(i + 1),
                        Some(b'\\') => i += 2,
                        Some(b'\r') | Some(b'\n') | None => return Err(ProgramError::Syntax),
                        Some(_) => i += 1,
                    }
                }
            }
            Some(b'{') => {
                let close = buf[start..]
                    .iter()
                    .position(|&b| b == b'}')
                    .map(|c| start + c)
                    .ok_or(ProgramError::Syntax)?;
                let digits = buf[start + 1..close]
                    .strip_suffix(b"+")
                    .unwrap_or(&buf[start + 1..close]);
                let length: usize = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| d.parse().ok())
                    .ok_or(ProgramError::Syntax)?;
                if buf.get(close + 1..close + 3) != Some(b"\r\n") {
                    return Err(ProgramError::Syntax);
                }
                let end = (close + 3)
                    .checked_add(length)
                    .ok_or(ProgramError::Syntax)?;
                if end > buf.len() {
                    return Err(ProgramError::Syntax);
                }
                Ok(end)
            }
            _ => {
                let len = buf[start..]
                    .iter()
                    .position(|b| matches!(b, b' ' | b'(' | b')' | b'\r' | b'\n'))
                    .unwrap_or(buf.len() - start);
                if len == 0 {
                    return Err(ProgramError::Syntax);
                }
                Ok(start + len)
            }
        }
    }

    /// One search key at nesting level `depth` (1 for the program's own keys).
    fn key(&mut self, depth: usize) -> Result<SearchKey<'static>, ProgramError> {
        if depth > MAX_SEARCH_DEPTH {
            return Err(ProgramError::TooDeep);
        }
        self.keys += 1;
        if self.keys > MAX_SEARCH_KEYS {
            return Err(ProgramError::TooMany);
        }
        if self.buf.get(self.pos) == Some(&b'(') {
            self.pos += 1;
            let mut keys = vec![self.key(depth + 1)?];
            while self.at_space() {
                self.space()?;
                keys.push(self.key(depth + 1)?);
            }
            if self.buf.get(self.pos) != Some(&b')') {
                return Err(ProgramError::Syntax);
            }
            self.pos += 1;
            let keys = Vec1::try_from(keys).map_err(|_| ProgramError::Syntax)?;
            return Ok(SearchKey::And(keys));
        }
        let start = self.pos;
        let word_end = self.token_end()?;
        let word = &self.buf[start..word_end];
        self.pos = word_end;
        if word.eq_ignore_ascii_case(b"OR") {
            self.space()?;
            let a = self.key(depth + 1)?;
            self.space()?;
            let b = self.key(depth + 1)?;
            return Ok(SearchKey::Or(Box::new(a), Box::new(b)));
        }
        if word.eq_ignore_ascii_case(b"NOT") {
            self.space()?;
            return Ok(SearchKey::Not(Box::new(self.key(depth + 1)?)));
        }
        let next_is_quoted = self.buf.get(word_end + 1) == Some(&b'"');
        for _ in 0..arity(word, next_is_quoted) {
            self.space()?;
            self.pos = self.token_end()?;
        }
        let mut probe = b"a SEARCH ".to_vec();
        probe.extend_from_slice(&self.buf[start..self.pos]);
        probe.extend_from_slice(b"\r\n");
        match leaf_command(&probe)? {
            CommandBody::Search { criteria, .. } if criteria.as_ref().len() == 1 => {
                Ok(criteria.into_iter().next().ok_or(ProgramError::Syntax)?)
            }
            _ => Err(ProgramError::Syntax),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(line: &str) -> Result<Vec<SearchKey<'static>>, ProgramError> {
        match decode(line.as_bytes()) {
            Some(Ok(Command {
                body: CommandBody::Search { criteria, .. },
                ..
            })) => Ok(criteria.into_iter().collect()),
            Some(Err(e)) => Err(e),
            _ => panic!("not a search: {line}"),
        }
    }

    #[test]
    fn same_keys_as_imap_codec() {
        for line in [
            "a SEARCH ALL\r\n",
            "a UID SEARCH OR FROM bob (SUBJECT \"x y\" NOT SEEN) 1:*\r\n",
            "a SEARCH CHARSET UTF-8 HEADER X-Tag blue TEXT {3}\r\nabc UNDELETED\r\n",
            "a SEARCH MODSEQ \"/flags/\\\\seen\" all 5 SINCE 1-Feb-1994\r\n",
            "a SEARCH OR OR OR SEEN UNSEEN NOT DRAFT ((ANSWERED))\r\n",
        ] {
            let ours = decode(line.as_bytes()).unwrap().unwrap();
            let (_, theirs) = CommandCodec::default().decode(line.as_bytes()).unwrap();
            assert_eq!(ours, theirs.into_static(), "{line}");
        }
        assert!(decode(b"a SELECT INBOX\r\n").is_none());
        assert!(decode(b"a SEARCHING x\r\n").is_none());
        assert!(decode(b"a SEARCH\r\n").is_none());
    }

    #[test]
    fn deep_is_fine_hostile_is_refused() {
        let nested = |n: usize| {
            format!(
                "a SEARCH {}SEEN{}\r\n",
                "OR ".repeat(n),
                " UNSEEN".repeat(n)
            )
        };
        assert_eq!(keys(&nested(9)).unwrap().len(), 1);
        assert_eq!(keys(&nested(100)).unwrap().len(), 1);
        assert_eq!(keys(&nested(10_000)), Err(ProgramError::TooDeep));
        let parens = format!(
            "a SEARCH {}ALL{}\r\n",
            "(".repeat(10_000),
            ")".repeat(10_000)
        );
        assert_eq!(keys(&parens), Err(ProgramError::TooDeep));
        let nots = format!("a SEARCH {}ALL\r\n", "NOT ".repeat(10_000));
        assert_eq!(keys(&nots), Err(ProgramError::TooDeep));
        let wide = format!("a SEARCH {}\r\n", ["ALL"; 1001].join(" "));
        assert_eq!(keys(&wide), Err(ProgramError::TooMany));
        for bad in [
            "a SEARCH \r\n",
            "a SEARCH (ALL\r\n",
            "a SEARCH ALL)\r\n",
            "a SEARCH ()\r\n",
            "a SEARCH OR ALL\r\n",
            "a SEARCH FROM \"x\r\n",
            "a SEARCH TEXT {99}\r\nab\r\n",
            "a SEARCH TEXT {99999999999999999999999}\r\n",
            "a SEARCH BOGUS\r\n",
            "a SEARCH ALL  ALL\r\n",
            "a SEARCH CHARSET\r\n",
        ] {
            assert_eq!(keys(bad), Err(ProgramError::Syntax), "{bad:?}");
        }
    }
}
