//! BODY[section]<partial> (RFC 3501 §6.4.5): locating a section's bytes with the part offsets stored
//! at delivery, without parsing the message again.

use imap_codec::imap_types::core::AString;
use imap_codec::imap_types::fetch::Section;
use postern_store::{BodyPart, Content};

/// The part a section path names: part 1 of a non-multipart message body is the body itself, and
/// the parts of an encapsulated message/rfc822 are numbered within it; a part that is neither
/// multipart nor a message has no subparts (RFC 3501 §6.4.5).
pub(crate) fn resolve<'a>(
    root: &'a BodyPart,
    path: &[std::num::NonZeroU32],
) -> Option<&'a BodyPart> {
    let mut cur = root;
    for (i, n) in path.iter().enumerate() {
        let container = if i == 0 {
            root
        } else {
            match &cur.content {
                Content::Message(_, inner) => inner,
                Content::Multipart(_) => cur,
                Content::Single => return None,
            }
        };
        let n = n.get() as usize;
        cur = match &container.content {
            Content::Multipart(children) => children.get(n - 1)?,
            _ if n == 1 => container,
            _ => return None,
        };
    }
    Some(cur)
}

/// The bytes of `raw` from `from` to `to` (cut at its end; empty if `from` is beyond it).
fn within(raw: &[u8], from: u32, to: u32) -> &[u8] {
    raw.get(from as usize..(to as usize).min(raw.len()))
        .unwrap_or_default()
}

fn slice(raw: &[u8], from: u32, to: u32) -> Vec<u8> {
    within(raw, from, to).to_vec()
}

/// The message a section addresses (the top-level message, or an encapsulated message/rfc822
/// part) and where its text ends: at the end of the enclosing part, so the text of an
/// encapsulated multipart keeps its epilogue.
fn message_at<'a>(
    root: &'a BodyPart,
    path: Option<&[std::num::NonZeroU32]>,
    raw_len: u32,
) -> Option<(&'a BodyPart, u32)> {
    match path {
        None => Some((root, raw_len)),
        Some(p) => {
            let part = resolve(root, p)?;
            match &part.content {
                Content::Message(_, inner) => Some((inner, part.end.max(inner.body_start))),
                _ => None,
            }
        }
    }
}

/// Header fields of `header` whose names are (or, with `not`, are not) in `names`, followed by the
/// blank line (RFC 3501 §6.4.5 HEADER.FIELDS). Lines are found with `memchr`: a header-only FETCH
/// of a whole mailbox runs this over every message's header block.
fn header_fields(header: &[u8], names: &[AString<'_>], not: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len());
    let mut keep = false;
    let mut rest = header;
    while !rest.is_empty() {
        let end = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
        let (line, tail) = rest.split_at(end);
        rest = tail;
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if !matches!(line.first(), Some(b' ' | b'\t')) {
            let name = &line[..memchr::memchr(b':', line).unwrap_or(line.len())];
            let name = name.trim_ascii();
            let listed = names
                .iter()
                .any(|n| AsRef::<[u8]>::as_ref(n).eq_ignore_ascii_case(name));
            keep = listed != not;
        }
        if keep {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The bytes of `section` of the message (`None` = the whole message).
pub fn section_bytes(raw: &[u8], root: &BodyPart, section: Option<&Section<'_>>) -> Vec<u8> {
    let part = |p: &imap_codec::imap_types::fetch::Part| resolve(root, p.0.as_ref());
    let msg = |p: &Option<imap_codec::imap_types::fetch::Part>| {
        message_at(root, p.as_ref().map(|p| p.0.as_ref()), raw.len() as u32)
    };
    let end_of = |b: &BodyPart| {
        if std::ptr::eq(b, root) {
            raw.len() as u32
        } else {
            b.end
        }
    };
    match section {
        None => raw.to_vec(),
        Some(Section::Part(p)) => {
            part(p).map_or_else(Vec::new, |b| slice(raw, b.body_start, end_of(b)))
        }
        Some(Section::Mime(p)) => {
            part(p).map_or_else(Vec::new, |b| slice(raw, b.header_start, b.body_start))
        }
        Some(Section::Header(p)) => {
            msg(p).map_or_else(Vec::new, |(b, _)| slice(raw, b.header_start, b.body_start))
        }
        Some(Section::Text(p)) => {
            msg(p).map_or_else(Vec::new, |(b, end)| slice(raw, b.body_start, end))
        }
        Some(Section::HeaderFields(p, names)) => msg(p).map_or_else(Vec::new, |(b, _)| {
            header_fields(
                within(raw, b.header_start, b.body_start),
                names.as_ref(),
                false,
            )
        }),
        Some(Section::HeaderFieldsNot(p, names)) => msg(p).map_or_else(Vec::new, |(b, _)| {
            header_fields(
                within(raw, b.header_start, b.body_start),
                names.as_ref(),
                true,
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use imap_codec::imap_types::core::{AString, Vec1};
    use imap_codec::imap_types::fetch::{Part, Section};
    use postern_store::ParsedMessage;

    use super::section_bytes;

    const RAW: &[u8] = b"From: a@x.test\r\nSubject: outer\r\n folded\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nbody one\r\n--b1\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--b1--\r\n";

    fn part(p: &[u32]) -> Part {
        let v: Vec<NonZeroU32> = p.iter().map(|&n| NonZeroU32::new(n).unwrap()).collect();
        Part(Vec1::try_from(v).unwrap())
    }

    #[test]
    fn sections() {
        let parsed = ParsedMessage::parse(RAW);
        let get = |s: Option<Section>| {
            String::from_utf8(section_bytes(RAW, &parsed.body, s.as_ref())).unwrap()
        };
        assert_eq!(get(None).as_bytes(), RAW);
        assert!(get(Some(Section::Header(None))).ends_with("boundary=b1\r\n\r\n"));
        assert!(get(Some(Section::Text(None))).starts_with("--b1\r\n"));
        assert_eq!(get(Some(Section::Part(part(&[1])))), "body one");
        assert_eq!(
            get(Some(Section::Mime(part(&[1])))),
            "Content-Type: text/plain\r\n\r\n"
        );
        assert_eq!(
            get(Some(Section::Header(Some(part(&[2]))))),
            "Subject: inner\r\n\r\n"
        );
        assert_eq!(get(Some(Section::Text(Some(part(&[2]))))), "inner body");
        assert_eq!(get(Some(Section::Part(part(&[2, 1])))), "inner body");
        let names = Vec1::try_from(vec!["subject".try_into().unwrap()]).unwrap();
        assert_eq!(
            get(Some(Section::HeaderFields(None, names.clone()))),
            "Subject: outer\r\n folded\r\n\r\n"
        );
        assert!(!get(Some(Section::HeaderFieldsNot(None, names))).contains("Subject"));
        assert_eq!(get(Some(Section::Part(part(&[3])))), "");
        // A text part has no part 1 (imaptest's fetch-body, as Dovecot answers).
        assert_eq!(get(Some(Section::Part(part(&[1, 1])))), "");
    }

    /// The text of an encapsulated multipart runs to the end of its message/rfc822 part,
    /// epilogue included (imaptest's fetch-body-message-rfc822-mime).
    #[test]
    fn encapsulated_text_keeps_its_epilogue() {
        let raw: &[u8] = b"From: a@x\r\nContent-Type: message/rfc822\r\n\r\nFrom: b@y\r\nContent-Type: multipart/digest; boundary=\"foo\"\r\n\r\nprologue\r\n--foo\r\n\r\nSubject: m1\r\n\r\nm1 body\r\n--foo--\r\n\r\nepilogue\r\n";
        let parsed = ParsedMessage::parse(raw);
        let text = section_bytes(raw, &parsed.body, Some(&Section::Text(Some(part(&[1])))));
        let text = String::from_utf8(text).unwrap();
        assert!(text.starts_with("prologue\r\n"), "{text:?}");
        assert!(text.ends_with("--foo--\r\n\r\nepilogue\r\n"), "{text:?}");
    }

    /// The line scanner against the plain byte-by-byte reading it replaced, over headers with
    /// bare LF, folded lines (space and tab), a last line without a line end, spaces before the
    /// colon, a line without a colon, case differences, 8-bit and NUL bytes.
    #[test]
    fn header_fields_match_a_plain_reading() {
        fn plain(header: &[u8], names: &[&[u8]], not: bool) -> Vec<u8> {
            let mut out = Vec::new();
            let mut keep = false;
            for line in header.split_inclusive(|&b| b == b'\n') {
                if line == b"\r\n" || line == b"\n" {
                    break;
                }
                if !matches!(line.first(), Some(b' ' | b'\t')) {
                    let name = line.split(|&b| b == b':').next().unwrap_or_default();
                    keep = names
                        .iter()
                        .any(|n| n.eq_ignore_ascii_case(name.trim_ascii()))
                        != not;
                }
                if keep {
                    out.extend_from_slice(line);
                }
            }
            out.extend_from_slice(b"\r\n");
            out
        }
        let headers: [&[u8]; 7] = [
            b"From: a@x\r\nSUBJECT: hi\r\n\tfolded\r\nTo: b@y\r\n\r\nbody\r\n",
            b"From: a@x\nSubject: bare lf\n more\nTo: c\n\nbody\n",
            b"Subject : spaced\r\nNo colon here\r\n subject: continued\r\nsubject:x",
            b"X-Raw: \xe9\x00\xff\r\nsubject: \x00\r\n\r\n",
            b"\r\nSubject: after the blank line\r\n",
            b"",
            b"Subject:",
        ];
        let names = ["subject", "TO"];
        let listed: Vec<AString<'_>> = names.iter().map(|n| (*n).try_into().unwrap()).collect();
        let raw_names: Vec<&[u8]> = names.iter().map(|n| n.as_bytes()).collect();
        for header in headers {
            for not in [false, true] {
                assert_eq!(
                    super::header_fields(header, &listed, not),
                    plain(header, &raw_names, not),
                    "{:?} not={not}",
                    String::from_utf8_lossy(header)
                );
            }
        }
    }
}
