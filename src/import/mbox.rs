//! A streaming mbox reader (mboxrd and mboxo, as written by mutt, Thunderbird and procmail): it
//! yields each message as pieces of at most [`MAX_PIECE`] bytes, so a multi-gigabyte or garbled
//! file (no newlines at all) never sits in memory whole. Hand-written: no mbox crate that streams
//! and reads the `Status:`/`X-Status:`/`X-Keywords:` flag headers is available.

use std::io::{self, BufRead};

use postern_store::Flags;

/// Longest piece handed out at once; a longer line is split (and its tail is not a line start).
pub const MAX_PIECE: usize = 64 * 1024;

/// Which quoting of body lines that begin with `From ` the file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quoting {
    /// mboxrd: `>From `, `>>From ` ... lose one `>` on reading.
    Rd,
    /// mboxo: only `>From ` is unquoted (`>>From ` is left alone).
    O,
}

/// Reads one mbox file message by message.
pub struct MboxReader<R> {
    input: R,
    quoting: Quoting,
    line: Vec<u8>,
    out: Vec<u8>,
    at_line_start: bool,
    held_blank: Option<Vec<u8>>,
    next_from: Option<Vec<u8>>,
    started: bool,
    header: HeaderFlags,
    flag_field: bool,
}

impl<R: BufRead> MboxReader<R> {
    /// A reader over `input` positioned at its start.
    pub fn new(input: R, quoting: Quoting) -> Self {
        MboxReader {
            input,
            quoting,
            line: Vec::new(),
            out: Vec::new(),
            at_line_start: true,
            held_blank: None,
            next_from: None,
            started: false,
            header: HeaderFlags::default(),
            flag_field: false,
        }
    }

    /// Moves to the next message: `Some(date)` with the Unix time of its `From ` line (if it has
    /// one that parses), `None` at the end of the file. The previous message must have been read
    /// to its end with [`MboxReader::next_piece`]. Fails if the file does not begin with `From `.
    pub fn next_message(&mut self) -> io::Result<Option<Option<i64>>> {
        if !self.started {
            self.started = true;
            self.read_piece()?;
            if self.line.is_empty() {
                return Ok(None);
            }
            if !self.line.starts_with(b"From ") {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "not an mbox file (it does not begin with \"From \")",
                ));
            }
            self.at_line_start = self.line.ends_with(b"\n");
            self.next_from = Some(std::mem::take(&mut self.line));
        }
        let Some(from) = self.next_from.take() else {
            return Ok(None);
        };
        self.header = HeaderFlags::default();
        Ok(Some(from_line_date(&from)))
    }

    /// The next piece of the current message's bytes (unquoted), `None` at its end, and whether it
    /// is (part of) a header field that carries flags (`Status:`, `X-Status:`, `X-Keywords:`),
    /// which mail readers rewrite as the flags change.
    pub fn next_piece(&mut self) -> io::Result<Option<(&[u8], bool)>> {
        loop {
            self.read_piece()?;
            if self.line.is_empty() {
                self.held_blank = None;
                return Ok(None);
            }
            let line_start = self.at_line_start;
            self.at_line_start = self.line.ends_with(b"\n");
            if line_start && self.at_line_start && from_line_date(&self.line).is_some() {
                self.held_blank = None;
                self.next_from = Some(std::mem::take(&mut self.line));
                return Ok(None);
            }
            if line_start {
                self.flag_field = self.header.line(&self.line);
            }
            self.out.clear();
            let blank = line_start && (self.line == b"\n" || self.line == b"\r\n");
            if blank {
                match self.held_blank.replace(std::mem::take(&mut self.line)) {
                    Some(held) => self.out.extend_from_slice(&held),
                    None => continue,
                }
            } else {
                if let Some(held) = self.held_blank.take() {
                    self.out.extend_from_slice(&held);
                }
                let skip = usize::from(line_start && self.quoted_from());
                self.out.extend_from_slice(&self.line[skip..]);
            }
            return Ok(Some((&self.out, self.flag_field)));
        }
    }

    /// The flags read from the current message's header so far (complete after its end).
    pub fn flags(&self) -> Flags {
        self.header.flags.clone()
    }

    /// Whether the line in `self.line` is a quoted `From ` line that loses its first `>`.
    fn quoted_from(&self) -> bool {
        let quotes = self.line.iter().take_while(|&&b| b == b'>').count();
        let rest = &self.line[quotes..];
        quotes > 0 && rest.starts_with(b"From ") && (quotes == 1 || self.quoting == Quoting::Rd)
    }

    /// Reads up to and including the next `\n`, or [`MAX_PIECE`] bytes, into `self.line`.
    fn read_piece(&mut self) -> io::Result<()> {
        self.line.clear();
        while self.line.len() < MAX_PIECE {
            let buf = self.input.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            let room = MAX_PIECE - self.line.len();
            let window = &buf[..buf.len().min(room)];
            let (take, done) = match memchr::memchr(b'\n', window) {
                Some(i) => (i + 1, true),
                None => (window.len(), false),
            };
            self.line.extend_from_slice(&window[..take]);
            self.input.consume(take);
            if done {
                break;
            }
        }
        Ok(())
    }
}

/// The flags an mbox writer keeps in the header: `Status: RO` (R = \Seen), `X-Status: AFTD`
/// (\Answered, \Flagged, \Draft, \Deleted) and `X-Keywords:` (comma or space separated).
#[derive(Debug, Default)]
struct HeaderFlags {
    flags: Flags,
    done: bool,
    in_keywords: bool,
    in_field: bool,
}

impl HeaderFlags {
    /// Reads one line of the header; true if it is (a continuation of) a flag field.
    fn line(&mut self, line: &[u8]) -> bool {
        if self.done {
            return false;
        }
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            self.done = true;
            return false;
        }
        if text.starts_with([' ', '\t']) {
            if self.in_keywords {
                self.keywords(text);
            }
            return self.in_field;
        }
        self.in_keywords = false;
        self.in_field = false;
        let Some((name, value)) = text.split_once(':') else {
            return false;
        };
        match name.to_ascii_lowercase().as_str() {
            "status" => {
                if value.contains('R') {
                    self.flags.system |= Flags::SEEN;
                }
            }
            "x-status" => {
                for (letter, bit) in [
                    ('A', Flags::ANSWERED),
                    ('F', Flags::FLAGGED),
                    ('T', Flags::DRAFT),
                    ('D', Flags::DELETED),
                ] {
                    if value.contains(letter) {
                        self.flags.system |= bit;
                    }
                }
            }
            "x-keywords" => {
                self.in_keywords = true;
                self.keywords(value);
            }
            _ => return false,
        }
        self.in_field = true;
        true
    }

    fn keywords(&mut self, value: &str) {
        let words = value.split([',', ' ', '\t']).filter(|w| !w.is_empty());
        self.flags.keywords.extend(words.map(str::to_owned));
    }
}

/// The Unix time of a `From sender Mon Dec  7 01:02:03 2026` line (asctime date, optionally with
/// a zone before or after the year, read as UTC), or `None` if it is not such a line.
pub fn from_line_date(line: &[u8]) -> Option<i64> {
    let rest = line.strip_prefix(b"From ")?;
    let text = std::str::from_utf8(rest).ok()?;
    let tokens: Vec<&str> = text.split_ascii_whitespace().collect();
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (i, month) = tokens.iter().enumerate().skip(1).find_map(|(i, t)| {
        let m = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(t))?;
        Some((i, m))
    })?;
    let day: u8 = tokens.get(i + 1)?.parse().ok()?;
    let mut hms = tokens.get(i + 2)?.split(':').map(str::parse::<u8>);
    let (h, m) = (hms.next()?.ok()?, hms.next()?.ok()?);
    let s = hms.next().transpose().ok()?.unwrap_or(0);
    let year: i32 = tokens[i + 3..]
        .iter()
        .take(2)
        .find(|t| t.len() == 4 && t.bytes().all(|b| b.is_ascii_digit()))?
        .parse()
        .ok()?;
    let month = time::Month::try_from(u8::try_from(month + 1).ok()?).ok()?;
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    Some(date.with_hms(h, m, s).ok()?.assume_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &[u8], quoting: Quoting) -> Vec<(Option<i64>, Vec<u8>, Flags)> {
        let mut reader = MboxReader::new(text, quoting);
        let mut all = Vec::new();
        while let Some(date) = reader.next_message().expect("reads") {
            let mut bytes = Vec::new();
            while let Some((piece, _)) = reader.next_piece().expect("reads") {
                bytes.extend_from_slice(piece);
            }
            all.push((date, bytes, reader.flags()));
        }
        all
    }

    #[test]
    fn splits_unquotes_and_reads_flags() {
        let mbox = b"From a@b Mon Dec  7 01:02:03 2026\nStatus: RO\nX-Status: AF\nX-Keywords: $Label1, work\nSubject: x\n\n>From here\n>>From there\n\n\nFrom c@d Tue Jan  5 00:00:00 2021\nSubject: y\n\nno newline";
        let all = read_all(mbox, Quoting::Rd);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].0, Some(1796605323));
        assert_eq!(
            all[0].1,
            b"Status: RO\nX-Status: AF\nX-Keywords: $Label1, work\nSubject: x\n\nFrom here\n>From there\n\n"
        );
        assert_eq!(
            all[0].2.system,
            Flags::SEEN | Flags::ANSWERED | Flags::FLAGGED
        );
        assert!(all[0].2.keywords.contains("work") && all[0].2.keywords.contains("$Label1"));
        assert_eq!(all[1].1, b"Subject: y\n\nno newline");
        let o = read_all(mbox, Quoting::O);
        assert!(o[0].1.ends_with(b"From here\n>>From there\n\n"));
    }

    #[test]
    fn long_lines_are_split_and_garbage_refused() {
        let mut mbox = b"From x Mon Dec  7 01:02:03 2026\n".to_vec();
        mbox.extend(std::iter::repeat_n(b'a', 3 * MAX_PIECE));
        let mut reader = MboxReader::new(&mbox[..], Quoting::Rd);
        assert!(reader.next_message().expect("reads").is_some());
        let mut pieces = 0;
        while let Some((p, _)) = reader.next_piece().expect("reads") {
            assert!(p.len() <= MAX_PIECE);
            pieces += 1;
        }
        assert_eq!(pieces, 3);
        let mut garbage = MboxReader::new(&b"\0\0garbage"[..], Quoting::Rd);
        assert!(garbage.next_message().is_err());
    }

    #[test]
    fn from_line_dates() {
        assert_eq!(
            from_line_date(b"From x Thu Jan  1 00:00:00 1970\n"),
            Some(0)
        );
        assert_eq!(
            from_line_date(b"From MAILER-DAEMON Fri Jan  2 00:00 +0000 1970\n"),
            Some(86400)
        );
        assert_eq!(from_line_date(b"From here on, we go\n"), None);
    }
}
