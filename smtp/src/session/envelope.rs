//! The envelope: MAIL FROM (RFC 5321 §4.1.1.2) and RCPT TO (§4.1.1.3).

use std::collections::BTreeSet;

use super::body::Body;
use super::{
    Action, Event, Listener, Recipient, RecipientResult, SenderResult, Session, State, Transaction,
};
use crate::dsn::params;
use crate::reply::Reply;
use postern_store::DsnRequest;

/// The recipient address a bare `RCPT TO:<Postmaster>` is reported as (no domain).
pub const POSTMASTER: &str = "postmaster";

impl Session {
    /// MAIL FROM (RFC 5321 §4.1.1.2) with SIZE, BODY, SMTPUTF8 and DSN parameters.
    pub(super) fn mail(&mut self, from: smtp_proto::MailFrom<String>) -> Option<Event> {
        if self.helo.is_none() {
            return self.error(Reply::new(503, (5, 5, 1), "Send HELO or EHLO first"));
        }
        if self.txn.is_some() {
            return self.error(Reply::new(503, (5, 5, 1), "Nested MAIL command"));
        }
        if self.listener != Listener::Mx && self.user.is_none() {
            return self.error(Reply::new(530, (5, 7, 0), "Authentication required"));
        }
        if from.size > self.cfg.max_message_size {
            return self.error(Reply::new(
                552,
                (5, 3, 4),
                "Message size exceeds fixed maximum message size",
            ));
        }
        if from.flags & smtp_proto::MAIL_BODY_BINARYMIME != 0 {
            return self.error(Reply::new(504, (5, 5, 4), "BINARYMIME is not supported"));
        }
        if !from.address.is_empty() && !plausible_address(&from.address) {
            return self.error(Reply::new(501, (5, 1, 7), "Bad sender address syntax"));
        }
        let sender = wire_form(&from.address);
        self.txn = Some(Transaction {
            sender: sender.clone(),
            dsn: DsnRequest {
                ret: params::ret_from_flags(from.flags),
                envid: from.env_id,
                ..DsnRequest::default()
            },
            pending_dsn: None,
            size: from.size,
            smtputf8: from.flags & smtp_proto::MAIL_SMTPUTF8 != 0,
            recipients: Vec::new(),
            body: Body::new(Vec::new(), None, self.cfg.bare_line_endings),
            too_big: false,
            chunking: false,
            failed: false,
        });
        match &self.user {
            Some(user) if !sender.is_empty() => {
                let action = Action::CheckSender {
                    user_id: user.id,
                    user: user.address.clone(),
                    address: sender,
                };
                self.wait(action)
            }
            _ => self.reply(Reply::new(250, (2, 1, 0), "Ok")),
        }
    }

    /// Reports the result of [`Action::CheckSender`].
    pub fn sender_result(&mut self, result: SenderResult) {
        self.state = State::Command;
        match result {
            SenderResult::Owned => Reply::new(250, (2, 1, 0), "Ok").write(&mut self.out),
            SenderResult::NotOwned => {
                self.txn = None;
                self.error(Reply::new(
                    553,
                    (5, 7, 1),
                    "Sender address not owned by the logged-in user",
                ));
            }
            SenderResult::Unavailable => {
                self.txn = None;
                Reply::new(451, (4, 3, 0), "Temporary failure, try again later")
                    .write(&mut self.out);
            }
        }
    }

    /// RCPT TO (RFC 5321 §4.1.1.3).
    pub(super) fn rcpt(&mut self, to: smtp_proto::RcptTo<String>) -> Option<Event> {
        let max = self.cfg.max_recipients;
        let Some(txn) = &mut self.txn else {
            return self.error(Reply::new(503, (5, 5, 1), "Need MAIL command first"));
        };
        if txn.chunking {
            return self.error(Reply::new(503, (5, 5, 1), "RCPT not allowed after BDAT"));
        }
        // smtp-proto takes NEVER followed by other values; RFC 3461 §4.1 allows NEVER only alone.
        let notify = to.flags & smtp_proto::RCPT_NOTIFY_NEVER;
        if notify != 0 && notify != to.flags & params::NOTIFY_FLAGS {
            let text = super::invalid_parameter_text("NOTIFY");
            return self.error(Reply::new(501, (5, 5, 4), text));
        }
        if txn.recipients.len() >= max {
            return self.reply(Reply::new(452, (4, 5, 3), "Too many recipients"));
        }
        // smtp-proto reports the bare `<Postmaster>` (RFC 5321 §4.1.1.3, any case) as an empty
        // address; it must be accepted (§4.5.1).
        let address = if to.address.is_empty() {
            POSTMASTER.to_owned()
        } else if plausible_address(&to.address) {
            wire_form(&to.address)
        } else {
            return self.error(Reply::new(501, (5, 1, 3), "Bad recipient address syntax"));
        };
        let size = txn.size;
        let sender = txn.sender.clone();
        txn.pending_dsn = Some(DsnRequest {
            notify: params::notify_from_flags(to.flags),
            orcpt: to.orcpt,
            ..txn.dsn.clone()
        });
        self.wait(Action::CheckRecipient {
            address,
            size,
            sender,
            authenticated: self.user.is_some(),
        })
    }

    /// Reports the result of [`Action::CheckRecipient`] for the address it named.
    pub fn recipient_result(&mut self, address: String, result: RecipientResult) {
        self.state = State::Command;
        let authenticated = self.user.is_some();
        let target = match result {
            RecipientResult::Deliver { local, remote } => Some((local, remote)),
            // Only a logged-in user may send to other domains: no open relay (RFC 5321 §3.6.2).
            RecipientResult::NotHosted if authenticated => {
                Some((BTreeSet::new(), BTreeSet::from([address.clone()])))
            }
            RecipientResult::NotHosted => {
                self.error(Reply::new(554, (5, 7, 1), "Relay access denied"));
                None
            }
            RecipientResult::Unknown => {
                self.error(Reply::new(
                    550,
                    (5, 1, 1),
                    "Recipient address rejected: user unknown",
                ));
                None
            }
            RecipientResult::MailboxFull => {
                Reply::new(452, (4, 2, 2), "Mailbox full").write(&mut self.out);
                None
            }
            RecipientResult::Refused(reply) => {
                reply.write(&mut self.out);
                None
            }
            RecipientResult::Unavailable => {
                Reply::new(451, (4, 3, 0), "Temporary failure, try again later")
                    .write(&mut self.out);
                None
            }
        };
        let dsn = self.txn.as_mut().and_then(|t| t.pending_dsn.take());
        if let (Some((local, remote)), Some(txn)) = (target, self.txn.as_mut()) {
            txn.recipients.push(Recipient {
                address,
                local,
                remote,
                dsn: dsn.unwrap_or_default(),
            });
            Reply::new(250, (2, 1, 5), "Ok").write(&mut self.out);
        }
    }
}

/// A light syntax check of an envelope address as smtp-proto gives it (quotes of a quoted local
/// part removed): `local@domain` with both parts present, no control characters, no white space
/// in the domain.
fn plausible_address(address: &str) -> bool {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.starts_with('.')
                && !domain.chars().any(char::is_whitespace)
                && !address.chars().any(char::is_control)
        }
        None => false,
    }
}

/// The RFC 5321 §4.1.2 form of an address smtp-proto gave without its quotes: a local part that
/// is not a Dot-string is quoted again, `\` and `"` escaped (`"alice smith"@example.org`).
pub(super) fn wire_form(address: &str) -> String {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return address.to_owned();
    };
    let atext = |c: char| c.is_alphanumeric() || !c.is_ascii() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    if local
        .split('.')
        .all(|atom| !atom.is_empty() && atom.chars().all(atext))
    {
        return address.to_owned();
    }
    let mut quoted = String::with_capacity(local.len() + 2);
    quoted.push('"');
    for c in local.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    format!("{quoted}\"@{domain}")
}
