//! FETCH BINARY[section]<partial>, BINARY.PEEK and BINARY.SIZE (RFC 3516 §4.2): a part's body
//! with its Content-Transfer-Encoding removed, using mail-parser's base64 and quoted-printable
//! decoders. An encoding the server does not know fails the command with `[UNKNOWN-CTE]` (§4.3).

use std::num::NonZeroU32;

use imap_codec::imap_types::core::{LiteralMode, NString8, Vec1};
use imap_codec::imap_types::extensions::binary::Literal8;
use imap_codec::imap_types::fetch::{Part, Section};
use imap_codec::imap_types::response::Code;
use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use postern_store::{BodyPart, Content, ParsedMessage};

use crate::commands::section::{resolve, section_bytes};
use crate::response::code_other;
use crate::session::Failure;

/// The decoded content of `section` (empty = the whole message, returned as stored); a part
/// that does not exist is empty, like its BODY[] section.
pub(crate) fn binary_section(
    raw: &[u8],
    root: &BodyPart,
    section: &[NonZeroU32],
) -> Result<Vec<u8>, Failure> {
    let Ok(path) = Vec1::try_from(section.to_vec()) else {
        return Ok(raw.to_vec());
    };
    let Some(part) = resolve(root, path.as_ref()) else {
        return Ok(Vec::new());
    };
    match &part.content {
        Content::Single => {
            let body = section_bytes(raw, root, Some(&Section::Part(Part(path))));
            decode(&part.encoding, body)
        }
        _ => converted_body(raw, part),
    }
}

/// `body` with the transfer encoding `encoding` removed.
fn decode(encoding: &str, body: Vec<u8>) -> Result<Vec<u8>, Failure> {
    let decoded = match encoding {
        "" | "7BIT" | "8BIT" | "BINARY" => Some(body),
        "BASE64" => base64_decode(&body),
        "QUOTED-PRINTABLE" => quoted_printable_decode(&body),
        _ => {
            return Err(Failure::No(
                Some(Code::UnknownCte),
                "Unknown Content-Transfer-Encoding".into(),
            ))
        }
    };
    decoded.ok_or_else(|| {
        Failure::No(
            Some(code_other("PARSE")),
            "The part's content does not match its Content-Transfer-Encoding".into(),
        )
    })
}

fn bytes(raw: &[u8], from: u32, to: u32) -> &[u8] {
    raw.get(from as usize..(to as usize).min(raw.len()))
        .unwrap_or_default()
}

/// A part's header and body with every encoded leaf decoded and its Content-Transfer-Encoding
/// header made `binary`, as Dovecot converts a multipart or message/rfc822 section for BINARY
/// (RFC 3516 §4.2 leaves it to the server; URLAUTH=BINARY, RFC 5524 §3, is checked against it).
fn converted(raw: &[u8], part: &BodyPart) -> Result<Vec<u8>, Failure> {
    let header = bytes(raw, part.header_start, part.body_start);
    let encoded = matches!(part.encoding.as_str(), "BASE64" | "QUOTED-PRINTABLE");
    let mut out = if matches!(part.content, Content::Single) && encoded {
        binary_header(header)
    } else {
        header.to_vec()
    };
    out.extend(converted_body(raw, part)?);
    Ok(out)
}

/// The body of `part` as [`converted`] writes it.
fn converted_body(raw: &[u8], part: &BodyPart) -> Result<Vec<u8>, Failure> {
    match &part.content {
        Content::Single => decode(
            &part.encoding,
            bytes(raw, part.body_start, part.end).to_vec(),
        ),
        Content::Message(_, inner) => converted(raw, inner),
        Content::Multipart(children) => {
            let mut out = Vec::new();
            let mut cursor = part.body_start;
            for child in children {
                out.extend_from_slice(bytes(raw, cursor, child.header_start));
                out.extend(converted(raw, child)?);
                cursor = child.end.max(cursor);
            }
            out.extend_from_slice(bytes(raw, cursor, part.end));
            Ok(out)
        }
    }
}

/// The structure of `part` as BINARY returned it (`converted`): the size and line count of the
/// decoded content and, for an encapsulated message, the structure of its converted form, with
/// the transfer encodings still those declared. Dovecot answers so for URLAUTH=BINARY's
/// BODYPARTSTRUCTURE next to BINARY (RFC 5524 §3). A multipart keeps its stored structure.
pub(crate) fn binary_structure(part: &BodyPart, converted: &[u8]) -> BodyPart {
    let mut out = part.clone();
    let content = match &part.content {
        Content::Multipart(_) => return out,
        Content::Single => Content::Single,
        Content::Message(envelope, inner) => {
            let mut root = ParsedMessage::parse(converted).body;
            keep_encodings(&mut root, inner);
            Content::Message(envelope.clone(), Box::new(root))
        }
    };
    out.content = content;
    out.header_start = 0;
    out.body_start = 0;
    out.end = u32::try_from(converted.len()).unwrap_or(u32::MAX);
    out.lines = converted.iter().filter(|&&b| b == b'\n').count() as u32;
    out
}

/// Copies the declared transfer encodings of `original` onto `converted` (same shape).
fn keep_encodings(converted: &mut BodyPart, original: &BodyPart) {
    converted.encoding.clone_from(&original.encoding);
    match (&mut converted.content, &original.content) {
        (Content::Multipart(a), Content::Multipart(b)) => {
            for (a, b) in a.iter_mut().zip(b) {
                keep_encodings(a, b);
            }
        }
        (Content::Message(_, a), Content::Message(_, b)) => keep_encodings(a, b),
        _ => {}
    }
}

/// A MIME header with its Content-Transfer-Encoding field (and its folded lines) replaced by
/// `Content-Transfer-Encoding: binary`.
fn binary_header(header: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len());
    let mut skipping = false;
    for line in header.split_inclusive(|&b| b == b'\n') {
        if skipping && line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            continue;
        }
        skipping = line.iter().position(|&b| b == b':').is_some_and(|c| {
            line[..c]
                .trim_ascii()
                .eq_ignore_ascii_case(b"content-transfer-encoding")
        });
        if skipping {
            out.extend_from_slice(b"Content-Transfer-Encoding: binary\r\n");
        } else {
            out.extend_from_slice(line);
        }
    }
    out
}

/// Decoded bytes as a FETCH value: a literal8 when they contain NUL, which a literal cannot
/// carry (RFC 3516 §4.2), a plain string or literal otherwise.
pub(crate) fn binary_value(bytes: Vec<u8>) -> NString8<'static> {
    if bytes.contains(&0) {
        return NString8::Literal8(Literal8 {
            data: bytes.into(),
            mode: LiteralMode::Sync,
        });
    }
    NString8::NString(super::fetch::literal(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_store::ParsedMessage;

    const RAW: &[u8] = b"From: a@x.test\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Transfer-Encoding: base64\r\n\r\n  aGVs    \r\n bG8g  \r\n   d29y  \t \r\n    bGQ= \r\n\
--b\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nhello  \r\nbar=\r\n\r\nfoo\t \t= \r\n=62\r\nfoo = \t\r\nbar\r\n\
--b\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n\
--b\r\nContent-Transfer-Encoding: binary\r\n\r\n\0-\xe4\n\
--b--\r\n";

    fn get(section: &[u32]) -> Result<Vec<u8>, Failure> {
        let parsed = ParsedMessage::parse(RAW);
        let path: Vec<NonZeroU32> = section
            .iter()
            .map(|&n| NonZeroU32::new(n).unwrap())
            .collect();
        binary_section(RAW, &parsed.body, &path)
    }

    #[test]
    fn decodes_transfer_encodings() {
        assert_eq!(get(&[]).unwrap(), RAW);
        assert_eq!(get(&[1]).unwrap(), b"hello world");
        assert_eq!(get(&[2]).unwrap(), b"hello\r\nbar\r\nfoo\t \tb\r\nfoo bar");
        assert!(matches!(
            get(&[3]),
            Err(Failure::No(Some(Code::UnknownCte), _))
        ));
        // The line break before the boundary belongs to the boundary (RFC 2046 §5.1.1).
        assert_eq!(get(&[4]).unwrap(), b"\0-\xe4");
        assert_eq!(get(&[9]).unwrap(), b"");
    }

    #[test]
    fn nested_parts_are_converted() {
        let raw: &[u8] = b"Content-Type: multipart/mixed; boundary=b\r\n\r\npre\r\n--b\r\n\
Content-Type: message/rfc822\r\n\r\nSubject: in\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n\
--c\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding:\r\n base64\r\n\r\naGk=\r\n--c\r\n\
Content-Type: text/plain\r\n\r\nplain\r\n--c--\r\n\r\n--b--\r\n";
        let parsed = postern_store::ParsedMessage::parse(raw);
        let one = [NonZeroU32::new(1).unwrap()];
        assert_eq!(
            binary_section(raw, &parsed.body, &one).unwrap(),
            b"Subject: in\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n\
--c\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n\r\nhi\r\n--c\r\n\
Content-Type: text/plain\r\n\r\nplain\r\n--c--\r\n"
        );
    }

    #[test]
    fn nul_needs_literal8() {
        assert!(matches!(
            binary_value(b"a\0b".to_vec()),
            NString8::Literal8(_)
        ));
        assert!(matches!(binary_value(b"ab".to_vec()), NString8::NString(_)));
    }
}
