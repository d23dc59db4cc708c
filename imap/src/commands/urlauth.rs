//! URLAUTH (RFC 4467): GENURLAUTH authorizes URLs to the user's own messages with the
//! `INTERNAL` mechanism (the store signs the rump with the mailbox's access key), URLFETCH
//! returns what an authorized URL names (with URLAUTH=BINARY's BODY, BINARY and
//! BODYPARTSTRUCTURE items, RFC 5524 §3), and RESETKEY replaces access keys so that every URL
//! authorized before fails. A URL that is malformed, expired, not authorized for the session's
//! user, signed with another or a reset key, or names nothing is NIL (§7.3: no hint why).

use std::num::NonZeroU32;

use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::fetch::{MessageDataItem, Part, Section};
use imap_codec::imap_types::mailbox::Mailbox as WireMailbox;
use imap_codec::imap_types::response::Data;
use postern_store::{BodyPart, Mailbox};

use crate::bodystructure::body_structure;
use crate::commands::binary::{binary_section, binary_structure};
use crate::commands::catenate::section;
use crate::commands::section::{resolve, section_bytes};
use crate::ext_command::FetchUrl;
use crate::imap_url::{self, Access, ImapUrl};
use crate::mail_store::MailStore;
use crate::response::{data, encode_all, quoted};
use crate::session::{bad, no, Done, Outcome, Session};

/// Most URLs one GENURLAUTH or URLFETCH may carry.
const MAX_URLS: usize = 100;

/// The only URLAUTH mechanism offered (RFC 4467 §7: server-specific).
const MECHANISM: &str = "INTERNAL";

impl<S: MailStore> Session<S> {
    /// The user's own mailbox a URL names (never another user's, RFC 4467 §7.2).
    async fn own_mailbox(&self, url: &ImapUrl) -> Result<Option<Mailbox>, crate::session::Failure> {
        let user = self.require_user()?;
        if !url.owner.eq_ignore_ascii_case(&user.address.to_string()) {
            return Ok(None);
        }
        Ok(self.store.mailbox(user.id, &url.mailbox).await?)
    }

    /// GENURLAUTH (RFC 4467 §7.2): one authorized URL per URL given, all or none.
    pub(crate) async fn genurlauth(&mut self, urls: &[(String, String)]) -> Outcome {
        self.require_user()?;
        if urls.len() > MAX_URLS {
            return Err(bad("Too many URLs"));
        }
        let mut line = String::from("* GENURLAUTH");
        for (text, mechanism) in urls {
            if mechanism != MECHANISM {
                return Err(no("Unsupported URLAUTH mechanism"));
            }
            let Some(url) = imap_url::parse(text) else {
                return Err(bad("Invalid URL"));
            };
            if url.access.is_none() || url.verifier.is_some() {
                return Err(bad("The URL must end with ;URLAUTH=access and no token"));
            }
            let Some(mailbox) = self.own_mailbox(&url).await? else {
                return Err(no("URLs can be authorized only for your own mailboxes"));
            };
            if url
                .uidvalidity
                .is_some_and(|v| i64::from(v) != mailbox.uidvalidity)
            {
                return Err(no("UIDVALIDITY does not match the mailbox"));
            }
            let token = self.store.urlauth_token(&mailbox, &url.rump).await?;
            line.push(' ');
            line.push_str(&quoted(&format!("{}:{MECHANISM}:{token}", url.rump)));
        }
        line.push_str("\r\n");
        Ok(Done::ok("GENURLAUTH completed").raw(line.into_bytes()))
    }

    /// RESETKEY (RFC 4467 §7.1): new access keys for one mailbox of the user's, or all of them.
    pub(crate) async fn resetkey(&mut self, mailbox: Option<&[u8]>) -> Outcome {
        let user_id = self.require_user()?.id;
        let id = match mailbox {
            Some(name) => {
                let wire = WireMailbox::try_from(name.to_vec())
                    .map_err(|_| bad("Invalid mailbox name"))?;
                Some(self.find_mailbox(&wire, false).await?.id)
            }
            None => None,
        };
        self.store.reset_urlauth_keys(user_id, id).await?;
        Ok(Done::ok("RESETKEY completed"))
    }

    /// URLFETCH (RFC 4467 §7.3): each URL's content, or NIL; the extended form (RFC 5524 §3)
    /// answers with the items asked for.
    pub(crate) async fn urlfetch(&mut self, urls: &[FetchUrl]) -> Outcome {
        self.require_user()?;
        if urls.len() > MAX_URLS {
            return Err(bad("Too many URLs"));
        }
        let mut out = Vec::new();
        for url in urls {
            out.extend(format!("* URLFETCH {} ", quoted(&url.url)).into_bytes());
            match self.authorized(&url.url).await? {
                None => out.extend_from_slice(b"NIL"),
                Some(target) if !url.extended => literal(&mut out, &target.body()),
                Some(target) => {
                    let mut items: Vec<Vec<u8>> = Vec::new();
                    let binary = if url.binary { target.binary() } else { None };
                    if url.structure {
                        items.push(target.structure(binary.as_deref(), self.utf8));
                    }
                    if url.body {
                        let mut item = b"BODY ".to_vec();
                        literal(&mut item, &target.body());
                        items.push(item);
                    }
                    if url.binary {
                        let mut item = b"BINARY ".to_vec();
                        match binary {
                            Some(bytes) => literal(&mut item, &bytes),
                            None => item.extend_from_slice(b"NIL"),
                        }
                        items.push(item);
                    }
                    out.push(b'(');
                    out.extend(items.join(&b' '));
                    out.push(b')');
                }
            }
            out.extend_from_slice(b"\r\n");
        }
        Ok(Done::ok("URLFETCH completed").raw(out))
    }

    /// The message part `text` names if it is a valid URLAUTH URL this session may fetch
    /// (RFC 4467 §6).
    pub(crate) async fn authorized(
        &self,
        text: &str,
    ) -> Result<Option<Target>, crate::session::Failure> {
        let user = self.require_user()?;
        let Some(url) = imap_url::parse(text) else {
            return Ok(None);
        };
        let allowed = match &url.access {
            Some(Access::Anonymous | Access::AuthUser) => true,
            Some(Access::User(name)) => name.eq_ignore_ascii_case(&user.address.to_string()),
            // Only a submission server acting for the user may use these (§3).
            Some(Access::Submit(_)) | None => false,
        };
        let Some((mechanism, token)) = &url.verifier else {
            return Ok(None);
        };
        let now = (self.clock)();
        let expired = url.expire.is_some_and(|t| t <= now);
        if !allowed || mechanism != MECHANISM || expired {
            return Ok(None);
        }
        let Some(owner) = self.store.user(&url.owner).await? else {
            return Ok(None);
        };
        let Some(mailbox) = self.store.mailbox(owner.id, &url.mailbox).await? else {
            return Ok(None);
        };
        if url
            .uidvalidity
            .is_some_and(|v| i64::from(v) != mailbox.uidvalidity)
            || !self
                .store
                .urlauth_verify(&mailbox, &url.rump, token)
                .await?
        {
            return Ok(None);
        }
        let section = match url.section.as_deref() {
            Some(s) => match section(s) {
                Some(s) => Some(s),
                None => return Ok(None),
            },
            None => None,
        };
        let mut details = self
            .store
            .message_details(&mailbox, &[i64::from(url.uid)], true)
            .await?;
        let Some(message) = details.pop() else {
            return Ok(None);
        };
        let Some(raw) = message.raw else {
            return Ok(None);
        };
        Ok(Some(Target {
            raw,
            root: message.parsed.body,
            section,
            partial: url.partial,
        }))
    }
}

/// Appends `bytes` as a literal, a literal8 if they hold NUL (RFC 3516 §4.2).
fn literal(out: &mut Vec<u8>, bytes: &[u8]) {
    let tilde = if bytes.contains(&0) { "~" } else { "" };
    out.extend(format!("{tilde}{{{}}}\r\n", bytes.len()).into_bytes());
    out.extend_from_slice(bytes);
}

/// What an authorized URL names.
pub(crate) struct Target {
    raw: Vec<u8>,
    root: BodyPart,
    section: Option<Section<'static>>,
    partial: Option<(u32, Option<u32>)>,
}

impl Target {
    fn cut(&self, mut bytes: Vec<u8>) -> Vec<u8> {
        if let Some((offset, length)) = self.partial {
            let start = (offset as usize).min(bytes.len());
            let end = length.map_or(bytes.len(), |l| (start + l as usize).min(bytes.len()));
            bytes = bytes[start..end].to_vec();
        }
        bytes
    }

    /// The section's bytes as stored (BODY[section]<partial>).
    pub(crate) fn body(&self) -> Vec<u8> {
        self.cut(section_bytes(&self.raw, &self.root, self.section.as_ref()))
    }

    /// The section number path, if the section is a part (or the whole message: empty).
    fn path(&self) -> Option<Vec<NonZeroU32>> {
        match &self.section {
            None => Some(Vec::new()),
            Some(Section::Part(Part(path))) => Some(path.as_ref().to_vec()),
            Some(_) => None,
        }
    }

    /// BINARY (RFC 5524 §3): the part decoded; `None` for a section that is not a part or
    /// cannot be decoded.
    fn binary(&self) -> Option<Vec<u8>> {
        let path = self.path()?;
        binary_section(&self.raw, &self.root, &path)
            .ok()
            .map(|b| self.cut(b))
    }

    /// `BODYPARTSTRUCTURE (...)` (RFC 5524 §3), `NIL` for a section that is not a part; with
    /// the BINARY content sent beside it, the structure of that content.
    fn structure(&self, binary: Option<&[u8]>, utf8: bool) -> Vec<u8> {
        let part = match self.path() {
            Some(path) if path.is_empty() => Some(&self.root),
            Some(path) => resolve(&self.root, &path),
            None => None,
        };
        let mut out = b"BODYPARTSTRUCTURE ".to_vec();
        let Some(part) = part else {
            out.extend_from_slice(b"NIL");
            return out;
        };
        let converted = binary.map(|b| binary_structure(part, b));
        let part = converted.as_ref().unwrap_or(part);
        // imap-codec writes a body structure only inside a response: one FETCH item, cut out.
        let head = b"* 1 FETCH (BODYSTRUCTURE ";
        let encoded = encode_all(&[data(Data::Fetch {
            seq: NonZeroU32::MIN,
            items: Vec1::from(MessageDataItem::BodyStructure(body_structure(
                part, true, utf8,
            ))),
        })]);
        out.extend_from_slice(
            encoded
                .get(head.len()..encoded.len().saturating_sub(3))
                .unwrap_or(b"NIL"),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quoted("a\"b\\"), "\"a\\\"b\\\\\"");
    }
}
