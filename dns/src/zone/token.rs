//! Presentation-format fields of RFC 1035 §5.1: domain names and `<character-string>`s with
//! `\X` and `\DDD` escapes, decoded to the octets they stand for (not to Unicode code points).

use hickory_proto::rr::domain::Label;
use hickory_proto::rr::Name;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

/// The octets of one token: quotes removed, `\DDD` is the octet DDD (RFC 1035 §5.1), `\X` is
/// X, and any other character stands for its UTF-8 octets.
pub fn octets(token: &str) -> Result<Vec<u8>, String> {
    let inner = match token.strip_prefix('"') {
        Some(rest) => rest
            .strip_suffix('"')
            .ok_or_else(|| format!("unterminated quoted string {token}"))?,
        None => token,
    };
    let bytes = inner.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let digits = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(u8::is_ascii_digit));
        match (digits, bytes.get(i + 1)) {
            (Some(d), _) => {
                let value = d.iter().fold(0u32, |acc, c| acc * 10 + u32::from(c - b'0'));
                let octet = u8::try_from(value)
                    .map_err(|_| format!("escape \\{value:03} is not an octet (0-255)"))?;
                out.push(octet);
                i += 4;
            }
            (None, Some(c)) if c.is_ascii_digit() => {
                return Err(format!("bad escape in {token}: \\DDD needs three digits"))
            }
            (None, Some(c)) => {
                out.push(*c);
                i += 2;
            }
            (None, None) => return Err(format!("{token} ends with a lone backslash")),
        }
    }
    Ok(out)
}

/// One `<character-string>` (RFC 1035 §3.3): at most 255 octets.
pub fn character_string(token: &str) -> Result<Vec<u8>, String> {
    let data = octets(token)?;
    if data.len() > 255 {
        return Err(format!(
            "character-string of {} octets: at most 255 are allowed (RFC 1035 §3.3); \
             split it into several quoted strings",
            data.len()
        ));
    }
    Ok(data)
}

/// A domain name, relative to `origin` unless it ends with an unescaped dot; `@` is the
/// origin. Labels are taken octet for octet like BIND does (no IDNA conversion): write
/// internationalized names as A-labels (`xn--...`).
pub fn name(token: &str, origin: &Name) -> Result<Name, String> {
    if token == "@" {
        return Ok(origin.clone());
    }
    if token.starts_with('"') {
        return Err(format!("a domain name cannot be quoted: {token}"));
    }
    if token == "." {
        return Ok(Name::root());
    }
    match plain_name(token, origin) {
        Some(name) => Ok(name),
        None => escaped_name(token, origin),
    }
}

/// The name of a token made of letters, digits, `-`, `_`, `*` and dots only (nearly every
/// name of a zone file), built without the per-character work of [`escaped_name`]; `None`
/// for any other token and for one that is not a valid name, whose error
/// [`escaped_name`] gives.
fn plain_name(token: &str, origin: &Name) -> Option<Name> {
    let plain = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'*' | b'.');
    if !token.as_bytes().iter().all(plain) {
        return None;
    }
    let (body, absolute) = match token.strip_suffix('.') {
        Some(body) => (body, true),
        None => (token, false),
    };
    if body.split('.').any(str::is_empty) {
        return None;
    }
    // Read from its wire form, built here: `Name::from_labels` collects the labels into
    // vectors first, and appending label by label moves the name each time.
    let mut wire = [0u8; 256];
    let mut len = 0;
    let origin_labels = origin.iter().filter(|_| !absolute);
    for label in body.split('.').map(str::as_bytes).chain(origin_labels) {
        if label.len() > 63 {
            return None;
        }
        let end = len + 1 + label.len();
        // The root's zero octet comes after: at most 255 octets in all (RFC 1035 §3.1).
        if end >= Name::MAX_LENGTH {
            return None;
        }
        wire[len] = label.len() as u8;
        wire[len + 1..end].copy_from_slice(label);
        len = end;
    }
    let mut name = Name::read(&mut BinDecoder::new(&wire[..=len])).ok()?;
    name.set_fqdn(true);
    Some(name)
}

/// A name with escapes or other characters, taken octet for octet (see [`name`]).
fn escaped_name(token: &str, origin: &Name) -> Result<Name, String> {
    let bad = |why: String| format!("bad domain name `{token}`: {why}");
    let mut labels: Vec<Vec<u8>> = vec![Vec::new()];
    let mut absolute = false;
    let mut rest = token;
    while !rest.is_empty() {
        let (chunk, tail) = split_escape(rest);
        if chunk == "." {
            if labels.last().is_some_and(Vec::is_empty) {
                return Err(bad("empty label".into()));
            }
            if tail.is_empty() {
                absolute = true;
            } else {
                labels.push(Vec::new());
            }
        } else if let Some(last) = labels.last_mut() {
            last.extend(octets(chunk).map_err(bad)?);
        }
        rest = tail;
    }
    let labels = labels
        .iter()
        .map(|l| Label::from_raw_bytes(l))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    let mut name = Name::from_labels(labels).map_err(|e| bad(e.to_string()))?;
    if !absolute {
        name = name.append_name(origin).map_err(|e| bad(e.to_string()))?;
    }
    name.set_fqdn(true);
    Ok(name)
}

/// Splits off the first character or escape sequence (`\X`, `\DDD`) of a name token.
fn split_escape(text: &str) -> (&str, &str) {
    let len = match text.as_bytes() {
        [b'\\', d1, d2, d3, ..] if [d1, d2, d3].iter().all(|d| d.is_ascii_digit()) => 4,
        [b'\\', ..] => 1 + text[1..].chars().next().map_or(0, char::len_utf8),
        _ => text.chars().next().map_or(0, char::len_utf8),
    };
    text.split_at(len)
}

/// A name in uncompressed wire format (RFC 1035 §3.1), as new types carry it (RFC 3597 §4).
pub fn emit_name(name: &Name, wire: &mut Vec<u8>) {
    for label in name.iter() {
        wire.push(label.len() as u8);
        wire.extend_from_slice(label);
    }
    wire.push(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Name {
        Name::from_ascii("example.test.").expect("name")
    }

    #[test]
    fn escapes_are_octets() {
        assert_eq!(octets(r#""\000\255\010""#).expect("ok"), vec![0, 255, 10]);
        assert_eq!(octets(r#""caf\195\169""#).expect("ok"), "café".as_bytes());
        assert_eq!(octets(r#"a\"b\\c"#).expect("ok"), br#"a"b\c"#);
        assert!(octets(r"\256").is_err());
        assert!(octets(r"\25").is_err());
        assert!(character_string(&"x".repeat(256)).is_err());
        assert_eq!(character_string(&"x".repeat(255)).expect("ok").len(), 255);
    }

    #[test]
    fn names() {
        let n = name(r"a\032b", &origin()).expect("ok");
        assert_eq!(n.iter().next(), Some(&b"a b"[..]));
        assert_eq!(n.num_labels(), 3);
        let n = name(r"a\.b.c.", &origin()).expect("ok");
        assert_eq!(n.num_labels(), 2);
        assert_eq!(name("@", &origin()).expect("ok"), origin());
        assert!(name("a..b", &origin()).is_err());
        assert!(name(&"x".repeat(64), &origin()).is_err());
        let utf8 = name("é", &origin()).expect("octets");
        assert_eq!(utf8.iter().next(), Some("é".as_bytes()));
    }

    /// Every token of the fidelity corpus (owners, targets, and all the rest, escapes and
    /// quotes included) reads as the same name, or fails the same way, with the shortcut.
    #[test]
    fn corpus_tokens_read_as_escaped_ones() {
        let corpus = include_str!("../../../tests/fixtures/fidelity/corpus.zone");
        let origin = Name::from_ascii("fidelity.test.").expect("name");
        let mut plain = 0;
        for token in corpus
            .lines()
            .map(|l| l.split(';').next().unwrap_or_default())
            .flat_map(str::split_whitespace)
            // The origin, the root and quoted tokens are decided before either reader.
            .filter(|t| !matches!(*t, "@" | ".") && !t.starts_with('"'))
        {
            plain += usize::from(plain_name(token, &origin).is_some());
            let text = |n: Result<Name, String>| n.map(|n| (n.to_string(), n.is_fqdn()));
            assert_eq!(
                text(name(token, &origin)),
                text(escaped_name(token, &origin).and_then(|slow| {
                    // Same labels octet for octet, case included.
                    match plain_name(token, &origin) {
                        Some(fast) if !fast.eq_case(&slow) => Err(format!("{fast} vs {slow}")),
                        _ => Ok(slow),
                    }
                })),
                "{token}"
            );
        }
        assert!(plain > 100, "{plain} plain tokens");
    }

    /// The plain-name shortcut gives what the octet-for-octet reader gives, case and all,
    /// and leaves every token it does not take (escapes, bad names) to that reader.
    #[test]
    fn plain_names_read_as_escaped_ones() {
        let long = "x".repeat(63);
        let tokens = [
            "www".to_owned(),
            "WwW.Example.TEST.".into(),
            "*.wild".into(),
            "a-b_c.d".into(),
            "a.".into(),
            "a..b".into(),
            ".a".into(),
            "a.b..".into(),
            "x".repeat(64),
            format!("{long}.{long}.{long}.{long}"),
            format!("{long}.{long}.{long}.{long}."),
            format!("{long}.{long}.{long}.x{}.", "y".repeat(60)),
            r"a\.b".into(),
            r"a\032b".into(),
            "é".into(),
            "a\"b".into(),
            "".into(),
            "*".into(),
            "Host-9.Sub".into(),
            format!("{long}.{long}.{long}.{}", "y".repeat(48)),
            format!("{long}.{long}.{long}.{}", "y".repeat(49)),
        ];
        for token in &tokens {
            let slow = escaped_name(token, &origin());
            match plain_name(token, &origin()) {
                Some(fast) => {
                    let slow = slow.expect("a plain name the reader takes");
                    assert!(fast.eq_case(&slow), "{token}: {fast} vs {slow}");
                    assert_eq!(fast.is_fqdn(), slow.is_fqdn(), "{token}");
                    assert_eq!(fast.to_string(), slow.to_string(), "{token}");
                }
                None => {
                    let plain = token
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_*.".contains(&b));
                    assert!(
                        !plain || slow.is_err(),
                        "{token}: plain and valid, not taken"
                    );
                }
            }
            let text = |n: Result<Name, String>| n.map(|n| n.to_string());
            assert_eq!(
                text(name(token, &origin())),
                text(escaped_name(token, &origin())),
                "{token}"
            );
        }
    }
}
