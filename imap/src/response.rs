//! Small constructors for imap-types responses, so command code stays readable. Inputs that a type
//! cannot carry (an empty text, a CR in a string) degrade to a safe value instead of failing.

use std::num::{NonZeroU32, NonZeroU64};

use imap_codec::imap_types::core::{Atom, IString, NString, Tag, Text};
use imap_codec::imap_types::response::{
    Code, Data, Response, Status, StatusBody, StatusKind, Tagged,
};

/// Human-readable response text (RFC 3501 §9 `text`): non-empty, no CR or LF.
pub fn text(s: &str) -> Text<'static> {
    let clean: String = s.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    Text::try_from(clean).unwrap_or_else(|_| Text::try_from("done").expect("static text is valid"))
}

/// A UID, UIDVALIDITY, UIDNEXT or sequence number from the store as the non-zero number the
/// protocol carries (RFC 3501 §9 `nz-number`): out-of-range values saturate, 0 becomes 1.
pub fn nz(v: i64) -> NonZeroU32 {
    NonZeroU32::new(u32::try_from(v).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN)
}

/// A MODSEQ from the store as the non-zero number CONDSTORE carries (RFC 7162 §3.1.1: a
/// mailbox's MODSEQs start at 1).
pub fn modseq(v: i64) -> NonZeroU64 {
    NonZeroU64::new(v.max(1) as u64).unwrap_or(NonZeroU64::MIN)
}

/// A tagged status response (RFC 3501 §7.1).
pub fn tagged(
    tag: &Tag<'_>,
    kind: StatusKind,
    code: Option<Code<'static>>,
    msg: &str,
) -> Response<'static> {
    let tag = Tag::try_from(tag.as_ref().to_owned())
        .unwrap_or_else(|_| Tag::try_from("*x").expect("static tag is valid"));
    Response::Status(Status::Tagged(Tagged {
        tag,
        body: StatusBody {
            kind,
            code,
            text: text(msg),
        },
    }))
}

/// An untagged OK/NO/BAD with an optional response code.
pub fn untagged(kind: StatusKind, code: Option<Code<'static>>, msg: &str) -> Response<'static> {
    Response::Status(Status::Untagged(StatusBody {
        kind,
        code,
        text: text(msg),
    }))
}

/// An untagged BYE (RFC 3501 §7.1.5).
pub fn bye(msg: &str) -> Response<'static> {
    Response::Status(Status::Bye(imap_codec::imap_types::response::Bye {
        code: None,
        text: text(msg),
    }))
}

/// Untagged data.
pub fn data(d: Data<'static>) -> Response<'static> {
    Response::Data(d)
}

/// A string, quoted when possible and a literal otherwise (NUL bytes become spaces).
pub fn istring(s: impl AsRef<[u8]>) -> IString<'static> {
    let bytes: Vec<u8> = s
        .as_ref()
        .iter()
        .map(|&b| if b == 0 { b' ' } else { b })
        .collect();
    IString::try_from(bytes).unwrap_or_else(|_| IString::try_from("").expect("empty is valid"))
}

/// NIL or a string.
pub fn nstring(s: Option<impl AsRef<[u8]>>) -> NString<'static> {
    NString(s.map(istring))
}

/// An atom; characters not allowed in atoms make it `X`.
pub fn atom(s: &str) -> Atom<'static> {
    Atom::try_from(s.to_owned()).unwrap_or_else(|_| Atom::try_from("X").expect("static atom"))
}

/// A response code IMAP4rev1 has no variant for, such as `TOOBIG` or `CLOSED`.
pub fn code_other(s: &str) -> Code<'static> {
    Code::Other(imap_codec::imap_types::response::CodeOther::unvalidated(
        s.as_bytes().to_vec(),
    ))
}

/// Responses encoded for the wire, in order (literals synchronizing, as imap-codec writes them).
pub fn encode_all(responses: &[Response<'static>]) -> Vec<u8> {
    use imap_codec::encode::Encoder;
    let codec = imap_codec::ResponseCodec::default();
    let mut out = Vec::new();
    for r in responses {
        out.extend(codec.encode(r).dump());
    }
    out
}

/// `s` as an IMAP quoted string (RFC 3501 §4.3); the caller keeps CR and LF out (URLs are
/// refused with them, mailbox names cannot hold them).
pub fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
