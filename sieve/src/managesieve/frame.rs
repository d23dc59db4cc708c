//! Framing of client input (RFC 5804 §4): a command is a line of atoms, quoted strings and
//! literal announcements (`{n+}`, also `{n}`), each literal's octets following its announcing
//! line, until a line ends without one. The [`Framer`] is fed bytes as they arrive and hands out
//! whole commands; memory stays within its limits whatever the client sends: an over-long line
//! is fatal (nothing can follow it), an over-large literal is counted off without being kept.

/// Longest command line (without literals), and longest quoted string (RFC 5804 §4 lets servers
/// refuse quoted strings over 1024 octets).
pub const MAX_LINE: usize = 8 * 1024;
/// Longest quoted string.
pub const MAX_QUOTED: usize = 1024;
/// Most arguments a command may have (PUTSCRIPT and RENAMESCRIPT have two).
const MAX_TOKENS: usize = 8;

/// One argument of a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// A bare word: a command name or a number.
    Atom(String),
    /// A quoted string or a literal, as bytes (not yet checked for UTF-8).
    Str(Vec<u8>),
}

/// What the framer has for the caller.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A whole command.
    Command(Vec<Token>),
    /// A whole command that cannot be served: a syntax error, or a literal over the limit
    /// (whose octets were read and dropped). The connection goes on.
    Refused(Refusal),
    /// Input that cannot be framed any further (a line over [`MAX_LINE`], or an over-large
    /// literal before login): the connection must end.
    Fatal(&'static str),
}

/// Why a framed command is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not RFC 5804 syntax.
    Syntax(&'static str),
    /// A literal larger than the limit (RFC 5804 §2.6: `NO (QUOTA/MAXSIZE)`).
    TooBig,
}

#[derive(Debug)]
enum State {
    Line,
    Literal { remaining: usize },
    Discard { remaining: u64 },
}

/// Splits client input into commands.
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    tokens: Vec<Token>,
    state: State,
    literal_max: usize,
    /// Whether an over-large literal is read and dropped (after login) rather than ending the
    /// connection (before login, when nobody is owed that much reading).
    drop_oversized: bool,
    /// Literal octets the current command holds: all its literals together stay within
    /// `literal_max`.
    held: usize,
    /// Set once a token of the current command is refused: the rest is consumed, then refused.
    refused: Option<Refusal>,
}

impl Framer {
    /// A framer whose commands may carry `literal_max` literal octets in all; a larger literal
    /// is dropped (and its command refused) if `drop_oversized`, else it ends the connection.
    pub fn new(literal_max: usize, drop_oversized: bool) -> Framer {
        Framer {
            buf: Vec::new(),
            tokens: Vec::new(),
            state: State::Line,
            literal_max,
            drop_oversized,
            held: 0,
            refused: None,
        }
    }

    /// Changes the limits (larger after login) for literals announced from now on.
    pub fn set_literal_max(&mut self, literal_max: usize, drop_oversized: bool) {
        self.literal_max = literal_max;
        self.drop_oversized = drop_oversized;
    }

    /// Adds bytes read from the client.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Forgets everything buffered (after STARTTLS: pipelined plaintext must not be obeyed).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.tokens.clear();
        self.state = State::Line;
        self.held = 0;
        self.refused = None;
    }

    /// Bytes buffered and not yet framed.
    #[cfg(test)]
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next frame, or `None` when more input is needed.
    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            match self.state {
                State::Discard { remaining } => {
                    let n = (self.buf.len() as u64).min(remaining);
                    self.buf.drain(..n as usize);
                    if n < remaining {
                        self.state = State::Discard {
                            remaining: remaining - n,
                        };
                        return None;
                    }
                    self.state = State::Line;
                }
                State::Literal { remaining } => {
                    if self.buf.len() < remaining {
                        return None;
                    }
                    let data: Vec<u8> = self.buf.drain(..remaining).collect();
                    self.tokens.push(Token::Str(data));
                    self.state = State::Line;
                }
                State::Line => {
                    let Some(end) = self.buf.iter().position(|&b| b == b'\n') else {
                        if self.buf.len() > MAX_LINE {
                            return Some(Frame::Fatal("Line too long"));
                        }
                        return None;
                    };
                    if end > MAX_LINE {
                        return Some(Frame::Fatal("Line too long"));
                    }
                    let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    match self.tokenize(&line) {
                        Ok(Some(length)) => {
                            let room = self.literal_max.saturating_sub(self.held) as u64;
                            if length > room || self.refused.is_some() {
                                if !self.drop_oversized {
                                    return Some(Frame::Fatal("Literal too large"));
                                }
                                self.refused = Some(Refusal::TooBig);
                                self.state = State::Discard { remaining: length };
                            } else {
                                self.held += length as usize;
                                self.state = State::Literal {
                                    remaining: length as usize,
                                };
                            }
                        }
                        Ok(None) => {
                            self.held = 0;
                            let tokens = std::mem::take(&mut self.tokens);
                            return Some(match self.refused.take() {
                                Some(why) => Frame::Refused(why),
                                None => Frame::Command(tokens),
                            });
                        }
                        Err(why) => {
                            // The line is consumed; a literal it may have announced is not
                            // known, so what follows is read as the next command.
                            self.tokens.clear();
                            self.held = 0;
                            self.refused = None;
                            return Some(Frame::Refused(Refusal::Syntax(why)));
                        }
                    }
                }
            }
        }
    }

    /// Splits one line (without its line end) into tokens appended to the current command;
    /// `Some(n)` when it ends with a literal announcement of `n` octets.
    fn tokenize(&mut self, line: &[u8]) -> Result<Option<u64>, &'static str> {
        let mut i = 0;
        loop {
            while line.get(i) == Some(&b' ') {
                i += 1;
            }
            let Some(&first) = line.get(i) else {
                return Ok(None);
            };
            if self.tokens.len() >= MAX_TOKENS {
                return Err("Too many arguments");
            }
            match first {
                b'"' => {
                    let (text, next) = quoted(line, i + 1)?;
                    self.tokens.push(Token::Str(text));
                    i = next;
                }
                b'{' => {
                    let close = line[i..]
                        .iter()
                        .position(|&b| b == b'}')
                        .ok_or("Unterminated literal announcement")?
                        + i;
                    if close + 1 != line.len() {
                        return Err("A literal announcement must end the line");
                    }
                    let inner = &line[i + 1..close];
                    let digits = inner.strip_suffix(b"+").unwrap_or(inner);
                    if digits.is_empty()
                        || digits.len() > 19
                        || !digits.iter().all(u8::is_ascii_digit)
                    {
                        return Err("Bad literal length");
                    }
                    let n = std::str::from_utf8(digits)
                        .ok()
                        .and_then(|d| d.parse::<u64>().ok())
                        .ok_or("Bad literal length")?;
                    return Ok(Some(n));
                }
                _ => {
                    let end = line[i..]
                        .iter()
                        .position(|&b| b == b' ')
                        .map_or(line.len(), |p| p + i);
                    let word = &line[i..end];
                    if !word
                        .iter()
                        .all(|&b| b.is_ascii_graphic() && !matches!(b, b'"' | b'{' | b'}' | b'\\'))
                    {
                        return Err("Bad character in atom");
                    }
                    let word = String::from_utf8_lossy(word).into_owned();
                    self.tokens.push(Token::Atom(word));
                    i = end;
                }
            }
        }
    }
}

/// Reads a quoted string whose opening quote precedes `start` (RFC 5804 §4 `quoted`: `\` only
/// before `"` or `\`, no CR or LF, at most [`MAX_QUOTED`] octets); returns its text and the
/// index after the closing quote.
fn quoted(line: &[u8], start: usize) -> Result<(Vec<u8>, usize), &'static str> {
    let mut text = Vec::new();
    let mut i = start;
    loop {
        match line.get(i) {
            None => return Err("Unterminated quoted string"),
            Some(b'"') => return Ok((text, i + 1)),
            Some(b'\\') => match line.get(i + 1) {
                Some(&c @ (b'"' | b'\\')) => {
                    text.push(c);
                    i += 2;
                }
                _ => return Err("Bad escape in quoted string"),
            },
            Some(0) | Some(b'\r') => return Err("Bad character in quoted string"),
            Some(&c) => {
                text.push(c);
                i += 1;
            }
        }
        if text.len() > MAX_QUOTED {
            return Err("Quoted string too long; use a literal");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn atom(s: &str) -> Token {
        Token::Atom(s.into())
    }

    fn string(s: &str) -> Token {
        Token::Str(s.as_bytes().to_vec())
    }

    #[test]
    fn lines_quoted_and_literals() {
        let mut f = Framer::new(100, true);
        f.push(b"capability\r\nPUTSCRIPT \"a \\\"b\\\\\" {5+}\r\nkeep;");
        assert_eq!(
            f.next_frame(),
            Some(Frame::Command(vec![atom("capability")]))
        );
        assert_eq!(f.next_frame(), None);
        f.push(b"\r\nHAVESPACE {3}\r\nabc 12\nLOGOUT");
        assert_eq!(
            f.next_frame(),
            Some(Frame::Command(vec![
                atom("PUTSCRIPT"),
                string("a \"b\\"),
                string("keep;")
            ]))
        );
        assert_eq!(
            f.next_frame(),
            Some(Frame::Command(vec![
                atom("HAVESPACE"),
                string("abc"),
                atom("12")
            ]))
        );
        assert_eq!(f.next_frame(), None);
        assert_eq!(f.buffered(), 6);
    }

    #[test]
    fn syntax_errors_are_recoverable() {
        let mut f = Framer::new(100, true);
        f.push(b"GETSCRIPT \"abc\r\nX \"bad\\q\"\r\nNOOP {3+} x\r\nNOOP\r\n");
        for _ in 0..3 {
            assert!(matches!(
                f.next_frame(),
                Some(Frame::Refused(Refusal::Syntax(_)))
            ));
        }
        assert_eq!(f.next_frame(), Some(Frame::Command(vec![atom("NOOP")])));
    }

    #[test]
    fn endless_line_is_fatal_and_bounded() {
        let mut f = Framer::new(100, true);
        for _ in 0..10 {
            f.push(&[b'a'; 1000]);
            if f.next_frame().is_some() {
                break;
            }
        }
        assert_eq!(f.next_frame(), Some(Frame::Fatal("Line too long")));
        let mut f = Framer::new(100, true);
        f.push(&[b'x'; MAX_LINE + 2]);
        f.push(b"\r\n");
        assert_eq!(f.next_frame(), Some(Frame::Fatal("Line too long")));
    }

    #[test]
    fn huge_literal_is_dropped_after_login_and_fatal_before() {
        let mut f = Framer::new(64 * 1024, true);
        f.push(b"PUTSCRIPT \"s\" {99999999999+}\r\n");
        assert_eq!(f.next_frame(), None);
        // Whatever arrives is counted off, not kept.
        for _ in 0..100 {
            f.push(&[b'x'; 4096]);
            assert_eq!(f.next_frame(), None);
            assert_eq!(f.buffered(), 0);
        }
        let mut f = Framer::new(64 * 1024, true);
        f.push(b"PUTSCRIPT \"s\" {70000+}\r\n");
        f.push(&vec![b'x'; 70000]);
        f.push(b"\r\nNOOP\r\n");
        assert_eq!(f.next_frame(), Some(Frame::Refused(Refusal::TooBig)));
        assert_eq!(f.next_frame(), Some(Frame::Command(vec![atom("NOOP")])));
        let mut f = Framer::new(MAX_LINE, false);
        f.push(b"AUTHENTICATE \"PLAIN\" {100000+}\r\n");
        assert_eq!(f.next_frame(), Some(Frame::Fatal("Literal too large")));
    }

    #[test]
    fn long_quoted_string_is_refused() {
        let mut f = Framer::new(100, true);
        let mut line = b"GETSCRIPT \"".to_vec();
        line.extend(std::iter::repeat_n(b'a', MAX_QUOTED + 1));
        line.extend(b"\"\r\n");
        f.push(&line);
        assert!(matches!(
            f.next_frame(),
            Some(Frame::Refused(Refusal::Syntax(_)))
        ));
    }

    #[test]
    fn too_many_arguments() {
        let mut f = Framer::new(100, true);
        f.push(b"a b c d e f g h i j\r\n");
        assert!(matches!(
            f.next_frame(),
            Some(Frame::Refused(Refusal::Syntax(_)))
        ));
    }
}
