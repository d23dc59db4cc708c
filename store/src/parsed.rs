//! Parsed metadata of a message: what IMAP's ENVELOPE and BODYSTRUCTURE (RFC 3501 §7.4.2), section
//! fetches (§6.4.5) and SEARCH (§6.4.4) need. Computed once with mail-parser when the bytes are first
//! stored and kept beside them as JSON, so FETCH and SEARCH never re-parse a message.

use mail_parser::{
    Address as ParsedAddress, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders,
    PartType,
};
use serde::{Deserialize, Serialize};

use crate::envelope_address::envelope_addresses;

/// Everything IMAP needs to know about a message's structure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParsedMessage {
    /// The top-level ENVELOPE.
    pub envelope: Envelope,
    /// The MIME tree; the root covers the whole message (header and body).
    pub body: BodyPart,
    /// Day of the `Date:` header in the sender's time zone, as days since 1970-01-01 (SENTON and
    /// friends compare dates "disregarding time and timezone", RFC 3501 §6.4.4).
    pub sent_day: Option<i64>,
    /// Decoded header values that SEARCH FROM/TO/CC/BCC/SUBJECT match against.
    pub search: SearchFields,
    /// The raw `References:` value, for THREAD=REFERENCES (RFC 5256 §4.2); absent in metadata
    /// stored before it was kept.
    #[serde(default)]
    pub references: Option<String>,
}

/// Decoded (RFC 2047) header texts used by SEARCH.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchFields {
    /// Subject.
    pub subject: String,
    /// From addresses and names.
    pub from: String,
    /// To addresses and names.
    pub to: String,
    /// Cc addresses and names.
    pub cc: String,
    /// Bcc addresses and names.
    pub bcc: String,
}

/// ENVELOPE fields (RFC 3501 §7.4.2). Strings are the raw, unfolded header values (encoded words
/// stay encoded), as Dovecot shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// `Date:`
    pub date: Option<String>,
    /// `Subject:`
    pub subject: Option<String>,
    /// `From:`
    pub from: Vec<EnvelopeAddress>,
    /// `Sender:`, or From when absent.
    pub sender: Vec<EnvelopeAddress>,
    /// `Reply-To:`, or From when absent.
    pub reply_to: Vec<EnvelopeAddress>,
    /// `To:`
    pub to: Vec<EnvelopeAddress>,
    /// `Cc:`
    pub cc: Vec<EnvelopeAddress>,
    /// `Bcc:`
    pub bcc: Vec<EnvelopeAddress>,
    /// `In-Reply-To:`
    pub in_reply_to: Option<String>,
    /// `Message-ID:`
    pub message_id: Option<String>,
}

/// One address structure of an ENVELOPE. A group starts with `host: None, mailbox: Some(name)` and
/// ends with all fields `None` (RFC 3501 §7.4.2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeAddress {
    /// Display name (or the comment of a bare address).
    pub name: Option<String>,
    /// Source route (`@a,@b`), RFC 3501 `addr-adl`.
    #[serde(default)]
    pub route: Option<String>,
    /// Local part (or group name).
    pub mailbox: Option<String>,
    /// Domain.
    pub host: Option<String>,
}

/// One MIME part with its byte ranges in the raw message and its BODYSTRUCTURE fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BodyPart {
    /// Offset of the part's header (its MIME header; for the root, the message header).
    pub header_start: u32,
    /// Offset of the part's body (after the blank line ending the header).
    pub body_start: u32,
    /// Offset just past the part's body.
    pub end: u32,
    /// Media type, lower case (`text`, `multipart`, ...).
    pub media_type: String,
    /// Media subtype, lower case.
    pub subtype: String,
    /// Content-Type parameters (decoded, RFC 2231).
    pub params: Vec<(String, String)>,
    /// `Content-ID`
    pub id: Option<String>,
    /// `Content-Description`
    pub description: Option<String>,
    /// `Content-Transfer-Encoding`, upper case; `7BIT` when absent.
    pub encoding: String,
    /// Lines of the body (text parts and message/rfc822).
    pub lines: u32,
    /// `Content-MD5`
    pub md5: Option<String>,
    /// `Content-Disposition` value and parameters.
    pub disposition: Option<(String, Vec<(String, String)>)>,
    /// `Content-Language` tags.
    pub language: Vec<String>,
    /// `Content-Location`
    pub location: Option<String>,
    /// What the part contains.
    pub content: Content,
}

/// The kind of a MIME part's body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Content {
    /// A leaf part.
    #[default]
    Single,
    /// A multipart with its children in order (part numbers 1, 2, ...).
    Multipart(Vec<BodyPart>),
    /// A message/rfc822 part: the encapsulated message's envelope and root part.
    Message(Box<Envelope>, Box<BodyPart>),
}

impl BodyPart {
    /// Size of the body in octets (BODYSTRUCTURE body-fld-octets).
    pub fn size(&self) -> u32 {
        self.end.saturating_sub(self.body_start)
    }
}

impl ParsedMessage {
    /// Parses a raw RFC 5322 message. Never fails: unparsable input becomes a text/plain body.
    pub fn parse(raw: &[u8]) -> ParsedMessage {
        ParsedMessage::of(MessageParser::default().parse(raw).as_ref(), raw)
    }

    /// The metadata of `raw` from mail-parser's parse of it (`None`: it did not parse).
    pub(crate) fn of(message: Option<&Message>, raw: &[u8]) -> ParsedMessage {
        match message {
            Some(message) if !message.parts.is_empty() => {
                let body = build_part(message, 0, 0, raw, 0);
                ParsedMessage {
                    envelope: envelope(message, raw, 0),
                    body,
                    sent_day: message
                        .date()
                        .map(|d| d.to_timestamp_local().div_euclid(86_400)),
                    search: SearchFields {
                        subject: message.subject().unwrap_or_default().to_owned(),
                        from: address_text(message.from()),
                        to: address_text(message.to()),
                        cc: address_text(message.cc()),
                        bcc: address_text(message.bcc()),
                    },
                    references: message
                        .parts
                        .first()
                        .and_then(|root| raw_header(root, raw, 0, "References")),
                }
            }
            _ => ParsedMessage {
                envelope: Envelope::default(),
                body: BodyPart {
                    end: raw.len() as u32,
                    media_type: "text".into(),
                    subtype: "plain".into(),
                    params: vec![("charset".into(), "us-ascii".into())],
                    encoding: "7BIT".into(),
                    lines: count_lines(raw),
                    ..BodyPart::default()
                },
                sent_day: None,
                search: SearchFields::default(),
                references: None,
            },
        }
    }
}

/// Nesting depth beyond which encapsulated messages are treated as opaque leaves.
const MAX_DEPTH: usize = 20;

/// Builds the part `idx` of `message`, whose raw bytes start at `base` in `full`.
fn build_part(message: &Message, idx: usize, base: u32, full: &[u8], depth: usize) -> BodyPart {
    let Some(part) = message.parts.get(idx) else {
        return BodyPart::default();
    };
    let header_start = base + part.offset_header;
    let body_start = base + part.offset_body;
    let end = (base + part.offset_end).max(body_start);
    let (media_type, subtype, mut params) = match part.content_type() {
        Some(ct) => (
            ct.ctype().to_ascii_lowercase(),
            ct.subtype()
                .map(str::to_ascii_lowercase)
                .unwrap_or_else(|| default_subtype(ct.ctype())),
            ct.attributes()
                .unwrap_or_default()
                .iter()
                .map(|a| (a.name.to_string(), a.value.to_string()))
                .collect(),
        ),
        None if idx != 0 && parent_is_digest(message, idx) => {
            ("message".into(), "rfc822".into(), Vec::new())
        }
        None => ("text".into(), "plain".into(), Vec::new()),
    };
    if media_type == "text"
        && !params
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("charset"))
    {
        params.push(("charset".into(), "us-ascii".into()));
    }
    let body_bytes = full
        .get(body_start as usize..end as usize)
        .unwrap_or_default();
    let content = match &part.body {
        PartType::Multipart(children) => Content::Multipart(
            children
                .iter()
                .map(|&c| build_part(message, c as usize, base, full, depth))
                .collect(),
        ),
        PartType::Message(nested) if depth < MAX_DEPTH && !nested.parts.is_empty() => {
            let nested_base = if nested.raw_message.len() == message.raw_message.len() {
                Some(base)
            } else if nested.raw_message.as_ref() == body_bytes {
                Some(body_start)
            } else {
                None
            };
            match nested_base {
                Some(nb) => Content::Message(
                    Box::new(envelope(nested, full, nb)),
                    Box::new(build_part(nested, 0, nb, full, depth + 1)),
                ),
                None => Content::Single,
            }
        }
        _ => Content::Single,
    };
    let (media_type, subtype) = match (&content, media_type.as_str()) {
        (Content::Single, "multipart") => ("text".to_owned(), "plain".to_owned()),
        (Content::Single, "message") if subtype == "rfc822" => {
            ("application".to_owned(), "octet-stream".to_owned())
        }
        _ => (media_type, subtype),
    };
    let lines = match (&content, media_type.as_str()) {
        (Content::Message(..), _) | (_, "text") => count_lines(body_bytes),
        _ => 0,
    };
    BodyPart {
        header_start,
        body_start,
        end,
        media_type,
        subtype,
        params,
        id: part.content_id().map(|s| format!("<{s}>")),
        description: part.content_description().map(str::to_owned),
        encoding: part
            .content_transfer_encoding()
            .map(str::to_ascii_uppercase)
            .unwrap_or_else(|| "7BIT".into()),
        lines,
        md5: raw_header(part, full, base, "Content-MD5"),
        disposition: part.content_disposition().map(|d| {
            (
                d.ctype().to_ascii_lowercase(),
                d.attributes()
                    .unwrap_or_default()
                    .iter()
                    .map(|a| (a.name.to_string(), a.value.to_string()))
                    .collect(),
            )
        }),
        language: match part.content_language() {
            HeaderValue::Text(t) => vec![t.to_string()],
            HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
            _ => Vec::new(),
        },
        location: part.content_location().map(str::to_owned),
        content,
    }
}

fn default_subtype(media_type: &str) -> String {
    match media_type.to_ascii_lowercase().as_str() {
        "text" => "plain",
        "multipart" => "mixed",
        "message" => "rfc822",
        _ => "octet-stream",
    }
    .to_owned()
}

/// Whether part `idx` is a direct child of a multipart/digest (default type message/rfc822).
fn parent_is_digest(message: &Message, idx: usize) -> bool {
    message.parts.iter().any(|p| match &p.body {
        PartType::Multipart(children) => {
            children.contains(&(idx as u32)) && p.is_content_type("multipart", "digest")
        }
        _ => false,
    })
}

fn count_lines(bytes: &[u8]) -> u32 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u32
}

/// The raw, unfolded value of the first header field `name` of `part`.
fn raw_header(part: &MessagePart, full: &[u8], base: u32, name: &str) -> Option<String> {
    let h = part
        .headers
        .iter()
        .find(|h| h.name.as_str().eq_ignore_ascii_case(name))?;
    let bytes = full.get((base + h.offset_start) as usize..(base + h.offset_end) as usize)?;
    let text: String = String::from_utf8_lossy(bytes)
        .chars()
        .filter(|&c| c != '\r' && c != '\n')
        .collect();
    Some(text.trim().to_owned())
}

fn envelope(message: &Message, full: &[u8], base: u32) -> Envelope {
    let Some(root) = message.parts.first() else {
        return Envelope::default();
    };
    let addresses = |name: &str| -> Vec<EnvelopeAddress> {
        raw_header(root, full, base, name)
            .map(|v| envelope_addresses(&v))
            .unwrap_or_default()
    };
    let from = addresses("From");
    let sender = addresses("Sender");
    let reply_to = addresses("Reply-To");
    Envelope {
        date: raw_header(root, full, base, "Date"),
        subject: raw_header(root, full, base, "Subject"),
        sender: if sender.is_empty() {
            from.clone()
        } else {
            sender
        },
        reply_to: if reply_to.is_empty() {
            from.clone()
        } else {
            reply_to
        },
        from,
        to: addresses("To"),
        cc: addresses("Cc"),
        bcc: addresses("Bcc"),
        in_reply_to: raw_header(root, full, base, "In-Reply-To"),
        message_id: raw_header(root, full, base, "Message-ID"),
    }
}

fn address_text(a: Option<&ParsedAddress>) -> String {
    let Some(a) = a else {
        return String::new();
    };
    let one = |x: &mail_parser::Addr| {
        format!(
            "{} <{}>",
            x.name.as_deref().unwrap_or_default(),
            x.address.as_deref().unwrap_or_default()
        )
    };
    match a {
        ParsedAddress::List(l) => l.iter().map(one).collect::<Vec<_>>().join(", "),
        // A group's name is searchable too (SEARCH TO matches the group, as in Dovecot).
        ParsedAddress::Group(g) => g
            .iter()
            .flat_map(|g| {
                g.name
                    .as_deref()
                    .map(|n| format!("{n}:"))
                    .into_iter()
                    .chain(g.addresses.iter().map(one))
            })
            .collect::<Vec<_>>()
            .join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_text_message() {
        let raw = b"From: Alice <alice@example.test>\r\nTo: bob@example.test\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nDate: Tue, 14 Nov 2023 22:13:20 +0100\r\nMessage-ID: <1@x>\r\n\r\nHello\r\nWorld\r\n";
        let p = ParsedMessage::parse(raw);
        assert_eq!(
            p.envelope.subject.as_deref(),
            Some("=?utf-8?q?Gr=C3=BC=C3=9Fe?=")
        );
        assert_eq!(p.search.subject, "Grüße");
        assert_eq!(p.envelope.from[0].name.as_deref(), Some("Alice"));
        assert_eq!(p.envelope.from[0].mailbox.as_deref(), Some("alice"));
        assert_eq!(p.envelope.sender, p.envelope.from);
        assert_eq!(p.envelope.to[0].host.as_deref(), Some("example.test"));
        assert_eq!(p.body.media_type, "text");
        assert_eq!(p.body.lines, 2);
        assert_eq!(
            &raw[p.body.body_start as usize..p.body.end as usize],
            b"Hello\r\nWorld\r\n"
        );
        assert!(raw[..p.body.body_start as usize].ends_with(b"\r\n\r\n"));
        assert_eq!(p.sent_day, Some(19675));
    }

    #[test]
    fn multipart_with_nested_message() {
        let raw = b"From: a@x.test\r\nSubject: outer\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\nContent-Type: text/plain\r\n\r\nbody one\r\n--b1\r\nContent-Type: message/rfc822\r\n\r\nFrom: c@y.test\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=b2\r\n\r\n--b2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain\r\n--b2\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--b2--\r\n\r\n--b1\r\nContent-Type: application/pdf; name=a.pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b1--\r\n";
        let p = ParsedMessage::parse(raw);
        let Content::Multipart(children) = &p.body.content else {
            panic!("{:?}", p.body)
        };
        assert_eq!(children.len(), 3);
        let slice = |b: &BodyPart| &raw[b.body_start as usize..b.end as usize];
        assert_eq!(slice(&children[0]), b"body one");
        let Content::Message(env, inner) = &children[1].content else {
            panic!("{:?}", children[1])
        };
        assert_eq!(env.subject.as_deref(), Some("inner"));
        let Content::Multipart(alt) = &inner.content else {
            panic!()
        };
        assert_eq!(alt[1].subtype, "html");
        assert_eq!(slice(&alt[1]), b"<p>html</p>");
        assert!(slice(&children[1]).starts_with(b"From: c@y.test"));
        assert_eq!(children[2].encoding, "BASE64");
        assert_eq!(
            children[2].disposition,
            Some((
                "attachment".into(),
                vec![("filename".into(), "a.pdf".into())]
            ))
        );
        assert_eq!(slice(&children[2]), b"JVBERi0=");
    }

    /// ENVELOPE as Dovecot shows it (issue 12): groups, routes, quoted local parts, no domain,
    /// and a last header line without CRLF.
    #[test]
    fn envelope_addresses_and_unterminated_header() {
        let raw = b"From: <@route:user@domain>\r\nTo: \"a b\"@c, nodomain\r\nCc: group:;, group2: (foo) ;\r\nSubject: last line";
        let p = ParsedMessage::parse(raw);
        assert_eq!(p.envelope.subject.as_deref(), Some("last line"));
        assert_eq!(p.envelope.from[0].route.as_deref(), Some("@route"));
        assert_eq!(p.envelope.from[0].mailbox.as_deref(), Some("user"));
        assert_eq!(p.envelope.to[0].mailbox.as_deref(), Some("a b"));
        assert_eq!(p.envelope.to[1].mailbox.as_deref(), Some("nodomain"));
        assert_eq!(p.envelope.to[1].host.as_deref(), Some("MISSING_DOMAIN"));
        assert_eq!(p.envelope.cc.len(), 4);
        assert_eq!(p.envelope.cc[1], EnvelopeAddress::default());
        assert!(p.search.cc.contains("group2"), "{:?}", p.search);
    }

    #[test]
    fn garbage_is_a_text_body() {
        let p = ParsedMessage::parse(b"");
        assert_eq!(p.body.media_type, "text");
    }
}
