//! RFC 1035 §5 master files: entries, `$ORIGIN`, `$TTL` (RFC 2308 §4), `$INCLUDE file [origin]`.
//!
//! This module frames the file into entries and tracks `file:line`, owner, TTL and class;
//! the RDATA of each record is read by [`parse_rdata`]. hickory's own whole-file parser
//! reports no line numbers and rejects `$INCLUDE` with an origin, which is why the framing
//! lives here.

use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hickory_proto::rr::{DNSClass, Name, RData, Record};
use hickory_proto::serialize::txt::parse_ttl;

use super::mnemonic::parse_class;
pub use super::mnemonic::{parse_type, type_name};
pub use super::rdata::parse_rdata;

/// Where a record came from, printed as `file:line`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loc {
    /// File name as configured (or a description such as `managed record`).
    pub file: Arc<str>,
    /// 1-based line number (0 when there is no line).
    pub line: u32,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}", self.file, self.line)
        }
    }
}

/// A parse error at a location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Where.
    pub loc: Loc,
    /// What.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.loc, self.message)
    }
}

/// A record with its source location.
#[derive(Debug, Clone)]
pub struct SourceRecord {
    /// The record (owner name as written, FQDN).
    pub record: Record,
    /// Where it was defined.
    pub loc: Loc,
}

/// The result of reading one zone file and its includes.
#[derive(Debug, Default)]
pub struct ParsedFile {
    /// Every record, in file order.
    pub records: Vec<SourceRecord>,
    /// Every file read (the zone file and its `$INCLUDE`s), for change detection, with the
    /// [`content_hash`] of the text that was parsed.
    pub files: Vec<(PathBuf, u64)>,
    /// Non-fatal findings (e.g. TTL taken from the SOA minimum).
    pub warnings: Vec<ParseError>,
}

const MAX_INCLUDE_DEPTH: usize = 16;

/// Reads and parses a zone file; `display` is the name used in messages.
pub fn parse_file(path: &Path, display: &str, origin: &Name) -> Result<ParsedFile, ParseError> {
    let mut out = ParsedFile::default();
    let mut ttl = TtlState::default();
    include(path, display.into(), origin, &mut out, &mut ttl, 0, None)?;
    Ok(out)
}

/// Parses zone text (no `$INCLUDE` relative to a file is possible without a path).
pub fn parse_text(text: &str, display: &str, origin: &Name) -> Result<ParsedFile, ParseError> {
    let mut out = ParsedFile::default();
    let mut ttl = TtlState::default();
    let file: Arc<str> = display.into();
    parse_entries(text, &file, None, origin.clone(), &mut out, &mut ttl, 0)?;
    Ok(out)
}

/// A hash of a file's content, to tell whether it changed since it was read.
pub fn content_hash(bytes: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish()
}

#[derive(Default)]
struct TtlState {
    default: Option<u32>,
    last: Option<u32>,
    soa_minimum: Option<u32>,
}

fn include(
    path: &Path,
    display: Arc<str>,
    origin: &Name,
    out: &mut ParsedFile,
    ttl: &mut TtlState,
    depth: usize,
    from: Option<&Loc>,
) -> Result<(), ParseError> {
    let text = std::fs::read_to_string(path).map_err(|e| ParseError {
        loc: from.cloned().unwrap_or(Loc {
            file: display.clone(),
            line: 0,
        }),
        message: format!("cannot read {}: {e}", path.display()),
    })?;
    out.files
        .push((path.to_path_buf(), content_hash(text.as_bytes())));
    parse_entries(&text, &display, Some(path), origin.clone(), out, ttl, depth)
}

fn parse_entries(
    text: &str,
    file: &Arc<str>,
    path: Option<&Path>,
    mut origin: Name,
    out: &mut ParsedFile,
    ttl: &mut TtlState,
    depth: usize,
) -> Result<(), ParseError> {
    let mut lexer = Lexer::new(text);
    // One record a line at most: the records are reserved at once, not moved as they grow.
    out.records
        .reserve(text.bytes().filter(|&b| b == b'\n').count() + 1);
    let mut owner: Option<Name> = None;
    // One entry's tokens, the buffer reused from entry to entry.
    let mut tokens = Vec::new();
    while let Some((line, blank_owner)) =
        lexer
            .next_entry(&mut tokens)
            .map_err(|(line, message)| ParseError {
                loc: Loc {
                    file: file.clone(),
                    line,
                },
                message,
            })?
    {
        let loc = Loc {
            file: file.clone(),
            line,
        };
        let err = |message: String| ParseError {
            loc: loc.clone(),
            message,
        };
        let first = tokens[0];
        if !blank_owner && first.starts_with('$') {
            let args = &tokens[1..];
            match first.to_ascii_uppercase().as_str() {
                "$ORIGIN" => {
                    let [name] = args else {
                        return Err(err("$ORIGIN takes one domain name".into()));
                    };
                    origin = parse_name(name, &origin).map_err(err)?;
                }
                "$TTL" => {
                    let [value] = args else {
                        return Err(err("$TTL takes one TTL".into()));
                    };
                    ttl.default = Some(
                        parse_ttl(value).map_err(|e| err(format!("bad $TTL `{value}`: {e}")))?,
                    );
                }
                "$INCLUDE" => {
                    let (target, inc_origin) = match args {
                        [f] => (*f, origin.clone()),
                        [f, o] => (*f, parse_name(o, &origin).map_err(err)?),
                        _ => {
                            return Err(err(
                                "$INCLUDE takes a file name and an optional origin".into()
                            ))
                        }
                    };
                    let target = unquote(target);
                    let Some(base) = path.and_then(Path::parent) else {
                        return Err(err("$INCLUDE needs a zone file on disk".into()));
                    };
                    if depth >= MAX_INCLUDE_DEPTH {
                        return Err(err("$INCLUDE nested too deeply".into()));
                    }
                    let inc_path = base.join(target);
                    let inc_display: Arc<str> = match Path::new(&**file).parent() {
                        Some(dir) => dir.join(target).display().to_string().into(),
                        None => target.into(),
                    };
                    include(
                        &inc_path,
                        inc_display,
                        &inc_origin,
                        out,
                        ttl,
                        depth + 1,
                        Some(&loc),
                    )?;
                }
                other => {
                    return Err(err(format!(
                        "unsupported directive {other} (supported: $ORIGIN, $TTL, $INCLUDE)"
                    )))
                }
            }
            continue;
        }
        let mut rest: &[&str] = &tokens;
        if !blank_owner {
            let name = parse_name(rest[0], &origin).map_err(err)?;
            owner = Some(name);
            rest = &rest[1..];
        }
        let Some(name) = owner.clone() else {
            return Err(err("record without an owner name".into()));
        };
        let mut explicit_ttl = None;
        let mut class_seen = false;
        let rtype_text = loop {
            let Some((tok, tail)) = rest.split_first() else {
                return Err(err("record type missing".into()));
            };
            rest = tail;
            if explicit_ttl.is_none() && tok.starts_with(|c: char| c.is_ascii_digit()) {
                explicit_ttl =
                    Some(parse_ttl(tok).map_err(|e| err(format!("bad TTL `{tok}`: {e}")))?);
                continue;
            }
            if !class_seen {
                if let Some(class) = parse_class(tok) {
                    if class != DNSClass::IN {
                        return Err(err(format!("class {tok} is not supported (only IN)")));
                    }
                    class_seen = true;
                    continue;
                }
            }
            break *tok;
        };
        let rtype = parse_type(rtype_text).map_err(err)?;
        let rdata = parse_rdata(rtype, rest, &origin).map_err(err)?;
        if let RData::SOA(soa) = &rdata {
            ttl.soa_minimum = Some(soa.minimum);
        }
        let record_ttl = match explicit_ttl {
            Some(t) => {
                ttl.last = Some(t);
                t
            }
            None => match (ttl.default, ttl.last, ttl.soa_minimum) {
                (Some(t), _, _) | (None, Some(t), _) => t,
                (None, None, Some(t)) => {
                    out.warnings.push(err(format!(
                        "no TTL specified; using SOA minimum {t} (add $TTL, RFC 2308 §4)"
                    )));
                    t
                }
                (None, None, None) => {
                    return Err(err("no TTL specified and no $TTL before it".into()))
                }
            },
        };
        let mut record = Record::from_rdata(name, record_ttl, rdata);
        record.dns_class = DNSClass::IN;
        out.records.push(SourceRecord { record, loc });
    }
    Ok(())
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

fn parse_name(text: &str, origin: &Name) -> Result<Name, String> {
    super::token::name(text, origin)
}

/// Splits master-file text into entries (RFC 1035 §5.1): `;` comments, `( )` continuation,
/// `"quoted strings"` and `\` escapes.
struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    line: u32,
}

impl<'a> Lexer<'a> {
    fn new(src: &'a str) -> Self {
        Lexer {
            src,
            pos: 0,
            line: 1,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    /// Reads the next entry's raw tokens into `tokens`; gives its first line and whether its
    /// owner is blank, `None` at the end of the text.
    fn next_entry(
        &mut self,
        tokens: &mut Vec<&'a str>,
    ) -> Result<Option<(u32, bool)>, (u32, String)> {
        loop {
            if self.pos >= self.src.len() {
                return Ok(None);
            }
            let line = self.line;
            let blank_owner = matches!(self.peek(), Some(b' ' | b'\t'));
            tokens.clear();
            let mut depth = 0u32;
            let mut paren_line = line;
            loop {
                match self.peek() {
                    None => {
                        if depth > 0 {
                            return Err((paren_line, "unbalanced `(`".into()));
                        }
                        break;
                    }
                    Some(b'\n') => {
                        self.pos += 1;
                        self.line += 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    Some(b' ' | b'\t' | b'\r') => self.pos += 1,
                    Some(b';') => {
                        while !matches!(self.peek(), None | Some(b'\n')) {
                            self.pos += 1;
                        }
                    }
                    Some(b'(') => {
                        depth += 1;
                        paren_line = self.line;
                        self.pos += 1;
                    }
                    Some(b')') => {
                        depth = depth
                            .checked_sub(1)
                            .ok_or_else(|| (self.line, "unbalanced `)`".to_owned()))?;
                        self.pos += 1;
                    }
                    Some(b'"') => tokens.push(self.quoted()?),
                    Some(_) => tokens.push(self.word()?),
                }
            }
            if !tokens.is_empty() {
                return Ok(Some((line, blank_owner)));
            }
        }
    }

    fn slice(&self, start: usize) -> Result<&'a str, (u32, String)> {
        self.src
            .get(start..self.pos)
            .ok_or_else(|| (self.line, "invalid UTF-8 around an escape".to_owned()))
    }

    fn quoted(&mut self) -> Result<&'a str, (u32, String)> {
        let start = self.pos;
        let start_line = self.line;
        self.pos += 1;
        loop {
            match self.peek() {
                None => return Err((start_line, "unterminated quoted string".into())),
                Some(b'\\') => {
                    if self.src.as_bytes().get(self.pos + 1) == Some(&b'\n') {
                        self.line += 1;
                    }
                    self.pos += 2;
                }
                Some(b'"') => {
                    self.pos += 1;
                    return self.slice(start);
                }
                Some(b'\n') => {
                    self.line += 1;
                    self.pos += 1;
                }
                Some(_) => self.pos += 1,
            }
        }
    }

    fn word(&mut self) -> Result<&'a str, (u32, String)> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\r' | b'\n' | b';' | b'(' | b')' | b'"' => break,
                b'\\' => self.pos = (self.pos + 2).min(self.src.len()),
                _ => self.pos += 1,
            }
        }
        self.slice(start)
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::rr::RecordType;

    use super::*;

    fn origin() -> Name {
        Name::from_ascii("example.test.").expect("name")
    }

    #[test]
    fn frames_entries_with_lines() {
        let text = "$TTL 1h\n@ IN SOA ns1 hostmaster (\n 1 ; serial\n 2h 1h 1w 5m )\n\
                    \tNS ns1\nns1 300 A 192.0.2.1\n; comment\nwww IN 60 TXT \"a;b\" \"c (d)\"\n";
        let parsed = parse_text(text, "z", &origin()).expect("parses");
        let lines: Vec<u32> = parsed.records.iter().map(|r| r.loc.line).collect();
        assert_eq!(lines, vec![2, 5, 6, 8]);
        assert_eq!(parsed.records[1].record.name, origin());
        assert_eq!(parsed.records[1].record.ttl, 3600);
        assert_eq!(parsed.records[2].record.ttl, 300);
        assert_eq!(parsed.records[3].record.ttl, 60);
        let RData::TXT(txt) = &parsed.records[3].record.data else {
            panic!("txt expected")
        };
        let strings: Vec<&[u8]> = txt.txt_data.iter().map(|s| &s[..]).collect();
        assert_eq!(strings, vec![&b"a;b"[..], &b"c (d)"[..]]);
    }

    #[test]
    fn errors_carry_file_and_line() {
        let err = parse_text(
            "$TTL 60\n@ SOA a b 1 2 3 4 5\nwww A 300.1.1.1\n",
            "f.zone",
            &origin(),
        )
        .expect_err("bad address");
        assert_eq!(err.loc.to_string(), "f.zone:3");
        let err =
            parse_text("$TTL 60\n@ SOA a b ( 1 2 3 4 5\n", "f.zone", &origin()).expect_err("paren");
        assert_eq!(err.loc.line, 2);
        assert!(err.message.contains("unbalanced"));
        let err = parse_text("www A 192.0.2.1\n", "f", &origin()).expect_err("ttl");
        assert!(err.message.contains("no TTL"));
    }

    #[test]
    fn generic_and_key_types() {
        let text = "$TTL 60\nx TYPE65280 \\# 3 010203\n\
                    k DNSKEY 257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==\n\
                    d CDS 12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF\n";
        let parsed = parse_text(text, "f", &origin()).expect("parses");
        let types: Vec<RecordType> = parsed
            .records
            .iter()
            .map(|r| r.record.record_type())
            .collect();
        assert_eq!(
            types,
            vec![
                RecordType::Unknown(65280),
                RecordType::DNSKEY,
                RecordType::CDS
            ]
        );
    }

    #[test]
    fn include_with_origin() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(
            dir.path().join("main.zone"),
            "$TTL 60\n@ SOA ns h 1 2 3 4 5\n$INCLUDE sub.inc sub\nafter A 192.0.2.9\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("sub.inc"),
            "host A 192.0.2.7\n  AAAA 2001:db8::7\n",
        )
        .expect("write");
        let parsed =
            parse_file(&dir.path().join("main.zone"), "v/main.zone", &origin()).expect("parses");
        let names: Vec<String> = parsed
            .records
            .iter()
            .map(|r| r.record.name.to_string())
            .collect();
        assert_eq!(
            names,
            vec![
                "example.test.",
                "host.sub.example.test.",
                "host.sub.example.test.",
                "after.example.test."
            ]
        );
        assert_eq!(parsed.records[2].loc.to_string(), "v/sub.inc:2");
        assert_eq!(parsed.files.len(), 2);
    }
}
