//! CATENATE (RFC 4469): an APPENDed message built from TEXT literals and URL parts. A relative
//! IMAP URL (RFC 5092 §5: `/mailbox[;UIDVALIDITY=n]/;UID=n[/;SECTION=s][/;PARTIAL=o[.l]]`) names a
//! section of the user's own stored messages; an absolute one must carry a valid URLAUTH token
//! the session may use (RFC 4469 §5, RFC 4467 §6, checked as URLFETCH checks it). Anything else,
//! or a URL naming no message, gets `NO [BADURL url]` (RFC 4469 §6).

use std::borrow::Cow;

use imap_codec::decode::Decoder;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::fetch::{MacroOrMessageDataItemNames, MessageDataItemName, Section};
use imap_codec::imap_types::IntoStatic;
use imap_codec::CommandCodec;

use crate::commands::multiappend::Piece;
use crate::commands::section::section_bytes;
use crate::imap_url::percent_decode;
use crate::mail_store::MailStore;
use crate::response::code_other;
use crate::session::{Failure, Session};

/// A relative IMAP URL (RFC 5092 §5 `imessagepart` with an `ipartial`).
#[derive(Debug, PartialEq, Eq)]
struct ImapUrl {
    /// The mailbox name, percent-decoded (UTF-8).
    mailbox: String,
    uidvalidity: Option<i64>,
    uid: i64,
    section: Option<Section<'static>>,
    /// Offset and optional length (`;PARTIAL=o.l`).
    partial: Option<(usize, Option<usize>)>,
}

/// The section of `BODY[<text>]` as imap-codec reads it (CATENATE and URLAUTH URLs).
pub(crate) fn section(text: &str) -> Option<Section<'static>> {
    let line = format!("a FETCH 1 BODY[{text}]\r\n");
    match CommandCodec::default().decode(line.as_bytes()) {
        Ok((b"", cmd)) => match cmd.body {
            CommandBody::Fetch {
                macro_or_item_names: MacroOrMessageDataItemNames::MessageDataItemNames(names),
                ..
            } => match names.as_slice() {
                [MessageDataItemName::BodyExt { section, .. }] => {
                    section.clone().map(IntoStatic::into_static)
                }
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

/// Reads a relative IMAP URL; `None` for anything else.
fn parse_url(url: &str) -> Option<ImapUrl> {
    let rest = url.strip_prefix('/').filter(|r| !r.starts_with('/'))?;
    let mut parts = rest.split("/;");
    let mut mailbox_part = parts.next()?.split(';');
    let mut mailbox = String::from_utf8(percent_decode(mailbox_part.next()?)?).ok()?;
    if mailbox.eq_ignore_ascii_case("INBOX") {
        mailbox = "INBOX".to_owned();
    }
    let mut uidvalidity = None;
    for param in mailbox_part {
        let (key, value) = param.split_once('=')?;
        if !key.eq_ignore_ascii_case("UIDVALIDITY") {
            return None;
        }
        uidvalidity = Some(value.parse().ok()?);
    }
    let mut url = ImapUrl {
        mailbox,
        uidvalidity,
        uid: 0,
        section: None,
        partial: None,
    };
    for (i, part) in parts.enumerate() {
        let (key, value) = part.split_once('=')?;
        let value = String::from_utf8(percent_decode(value)?).ok()?;
        match key.to_ascii_uppercase().as_str() {
            "UID" if i == 0 => url.uid = value.parse().ok().filter(|&u| u > 0)?,
            "SECTION" if i == 1 && url.partial.is_none() => url.section = Some(section(&value)?),
            "PARTIAL" if i >= 1 && url.partial.is_none() => {
                let (offset, length) = match value.split_once('.') {
                    Some((o, l)) => (o.parse().ok()?, Some(l.parse().ok()?)),
                    None => (value.parse().ok()?, None),
                };
                url.partial = Some((offset, length));
            }
            _ => return None,
        }
    }
    (url.uid > 0 && !url.mailbox.is_empty()).then_some(url)
}

/// `NO [BADURL url]` (RFC 4469 §6; `url-resp-text` cannot hold `]` or line breaks).
fn bad_url(url: &str) -> Failure {
    let text: String = url
        .chars()
        .filter(|c| !matches!(c, ']' | '\r' | '\n'))
        .collect();
    Failure::No(
        Some(code_other(&format!("BADURL {text}"))),
        "Cannot resolve the URL".into(),
    )
}

fn too_big() -> Failure {
    Failure::No(Some(code_other("TOOBIG")), "Message too big".into())
}

impl<S: MailStore> Session<S> {
    /// The bytes of one APPENDed message from its pieces, counting them against `room` (bytes
    /// the whole APPEND may still hold; `NO [TOOBIG]` past it). A single TEXT piece is not copied.
    pub(crate) async fn catenate<'a>(
        &self,
        pieces: &[Piece<'a>],
        room: &mut u64,
    ) -> Result<Cow<'a, [u8]>, Failure> {
        if let [Piece::Text(bytes)] = pieces {
            *room = room.checked_sub(bytes.len() as u64).ok_or_else(too_big)?;
            return Ok(Cow::Borrowed(bytes));
        }
        let mut out = Vec::new();
        for piece in pieces {
            let bytes = match piece {
                Piece::Text(bytes) => Cow::Borrowed(*bytes),
                Piece::Url(url) => Cow::Owned(self.url_bytes(url).await?),
            };
            *room = room.checked_sub(bytes.len() as u64).ok_or_else(too_big)?;
            out.extend_from_slice(&bytes);
        }
        Ok(Cow::Owned(out))
    }

    /// The bytes a URL part names: in the session user's own mailboxes, or through URLAUTH.
    async fn url_bytes(&self, text: &str) -> Result<Vec<u8>, Failure> {
        if text
            .get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case("imap://"))
        {
            return self
                .authorized(text)
                .await?
                .map(|target| target.body())
                .ok_or_else(|| bad_url(text));
        }
        let url = parse_url(text).ok_or_else(|| bad_url(text))?;
        let user = self.require_user()?;
        let mailbox = self
            .store
            .mailbox(user.id, &url.mailbox)
            .await?
            .filter(|m| url.uidvalidity.is_none_or(|v| v == m.uidvalidity))
            .ok_or_else(|| bad_url(text))?;
        let details = self
            .store
            .message_details(&mailbox, &[url.uid], true)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| bad_url(text))?;
        let raw = details.raw.as_deref().unwrap_or_default();
        let bytes = section_bytes(raw, &details.parsed.body, url.section.as_ref());
        Ok(match url.partial {
            None => bytes,
            Some((offset, length)) => {
                let start = offset.min(bytes.len());
                let end = length.map_or(bytes.len(), |l| start.saturating_add(l).min(bytes.len()));
                bytes[start..end].to_vec()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_urls() {
        let u = parse_url("/INBOX;UIDVALIDITY=7/;UID=12/;SECTION=HEADER").unwrap();
        assert_eq!(u.mailbox, "INBOX");
        assert_eq!((u.uidvalidity, u.uid), (Some(7), 12));
        assert_eq!(u.section, Some(Section::Header(None)));
        let u = parse_url("/Caf%C3%A9%20bar/;uid=3/;section=1.2.MIME/;partial=5.10").unwrap();
        assert_eq!(u.mailbox, "Café bar");
        assert!(matches!(u.section, Some(Section::Mime(_))));
        assert_eq!(u.partial, Some((5, Some(10))));
        let u = parse_url("/INBOX/;uid=3/;partial=100000.1").unwrap();
        assert_eq!((u.section, u.partial), (None, Some((100000, Some(1)))));
        let u = parse_url("/x/;uid=3/;section=header.fields%20(subject)").unwrap();
        assert!(matches!(u.section, Some(Section::HeaderFields(None, _))));
    }

    #[test]
    fn other_urls_are_refused() {
        for url in [
            "imap://bob@other.example/INBOX/;uid=1",
            "//host/INBOX/;uid=1",
            "INBOX/;uid=1",
            "/INBOX",
            "/INBOX/;uid=0",
            "/INBOX/;uid=1/;section=bogus",
            "/INBOX;x=1/;uid=1",
            "/INBOX/;uid=1/;urlauth=anonymous",
            "/%ZZ/;uid=1",
            "/INBOX/;uid=1/;partial=1/;section=text",
        ] {
            assert!(parse_url(url).is_none(), "{url}");
        }
    }

    #[test]
    fn badurl_text_is_safe() {
        match bad_url("/a]b\r\n/;uid=1") {
            Failure::No(Some(code), _) => {
                let code = format!("{code:?}");
                assert!(code.contains("/ab/;uid=1"), "{code}");
            }
            other => panic!("{other:?}"),
        }
    }
}
