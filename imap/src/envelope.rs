//! ENVELOPE (RFC 3501 §7.4.2) from the metadata stored at delivery.

use base64::Engine;
use imap_codec::imap_types::envelope::{Address, Envelope};
use postern_store::{Envelope as Stored, EnvelopeAddress};

use crate::response::nstring;

/// Text for a client: as is when ASCII or when the client accepts UTF-8 (RFC 6855 §3), otherwise
/// as one RFC 2047 encoded word.
pub fn header_text(s: &str, utf8: bool) -> String {
    if utf8 || s.is_ascii() {
        s.to_owned()
    } else {
        format!(
            "=?utf-8?b?{}?=",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    }
}

fn address(a: &EnvelopeAddress, utf8: bool) -> Address<'static> {
    Address {
        name: nstring(a.name.as_deref().map(|n| header_text(n, utf8))),
        adl: nstring(a.route.as_deref()),
        mailbox: nstring(a.mailbox.as_deref().map(|m| header_text(m, utf8))),
        host: nstring(a.host.as_deref().map(|h| header_text(h, utf8))),
    }
}

fn addresses(list: &[EnvelopeAddress], utf8: bool) -> Vec<Address<'static>> {
    list.iter().map(|a| address(a, utf8)).collect()
}

/// The ENVELOPE structure of a stored envelope.
pub fn envelope(e: &Stored, utf8: bool) -> Envelope<'static> {
    let text = |s: &Option<String>| nstring(s.as_deref().map(|v| header_text(v, utf8)));
    Envelope {
        date: text(&e.date),
        subject: text(&e.subject),
        from: addresses(&e.from, utf8),
        sender: addresses(&e.sender, utf8),
        reply_to: addresses(&e.reply_to, utf8),
        to: addresses(&e.to, utf8),
        cc: addresses(&e.cc, utf8),
        bcc: addresses(&e.bcc, utf8),
        in_reply_to: text(&e.in_reply_to),
        message_id: text(&e.message_id),
    }
}
