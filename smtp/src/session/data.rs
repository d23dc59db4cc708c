//! Message data: DATA (RFC 5321 §4.1.1.4) and BDAT (RFC 3030), the `Received:` trace header, the
//! line-ending check (bare CR/LF normalized or refused), the loop check and the submission header
//! fixes, then the hand-over for storage.

use smtp_proto::request::receiver::{BdatReceiver, DataReceiver};

use super::{Action, Delivery, DeliveryResult, Event, Session, State};
use crate::crlf::{self, BareLineEndings};
use crate::reply::Reply;

/// Hop count beyond which a message is taken to be looping (RFC 5321 §6.3).
const MAX_RECEIVED_HEADERS: usize = 50;

impl Session {
    /// Feeds message data to a receiver with a bounded buffer: past the size limit the bytes are
    /// counted as too big and dropped, but reading continues to the end of the data.
    pub(super) fn ingest_data(
        &mut self,
        mut ingest: impl FnMut(&mut std::slice::Iter<'_, u8>, &mut Vec<u8>) -> bool,
    ) -> bool {
        let limit = self.cfg.max_message_size;
        let mut bytes = self.input[self.pos..].iter();
        let mut scratch = Vec::new();
        let txn = self.txn.as_mut();
        let done = match txn {
            Some(t) if !t.too_big && !t.failed => {
                let done = ingest(&mut bytes, &mut t.message);
                if t.message.len().saturating_sub(t.header_len) > limit {
                    t.too_big = true;
                    // Keep the last byte: the receiver may still drop a CR it pushed.
                    let last = t.message.last().copied();
                    t.message = last.into_iter().collect();
                }
                done
            }
            Some(t) => {
                let done = ingest(&mut bytes, &mut t.message);
                let last = t.message.last().copied();
                t.message.clear();
                t.message.extend(last);
                done
            }
            None => {
                let done = ingest(&mut bytes, &mut scratch);
                scratch.clear();
                done
            }
        };
        self.pos = self.input.len() - bytes.as_slice().len();
        done
    }

    /// Checks that a transaction may receive data; the error reply if not.
    fn data_allowed(&self, bdat: bool) -> Result<(), Reply> {
        match &self.txn {
            None => Err(Reply::new(503, (5, 5, 1), "Need MAIL command first")),
            Some(t) if t.recipients.is_empty() => {
                Err(Reply::new(554, (5, 5, 1), "No valid recipients"))
            }
            Some(t) if t.chunking && !bdat => {
                Err(Reply::new(503, (5, 5, 1), "DATA not allowed after BDAT"))
            }
            Some(t) if t.failed => Err(Reply::new(503, (5, 5, 1), "Transaction failed, send RSET")),
            Some(_) => Ok(()),
        }
    }

    /// DATA (RFC 5321 §4.1.1.4).
    pub(super) fn data(&mut self) -> Option<Event> {
        if let Err(reply) = self.data_allowed(false) {
            return self.error(reply);
        }
        self.start_message();
        Reply::new(354, (0, 0, 0), "End data with <CR><LF>.<CR><LF>")
            .plain()
            .write(&mut self.out);
        self.state = State::Data(DataReceiver::new());
        None
    }

    /// BDAT (RFC 3030 §2): the chunk is read whatever happens, then answered.
    pub(super) fn bdat(&mut self, size: usize, last: bool) -> Option<Event> {
        match self.data_allowed(true) {
            Ok(()) => {
                if let Some(t) = &self.txn {
                    if !t.chunking {
                        self.start_message();
                    }
                }
                if let Some(t) = self.txn.as_mut() {
                    t.chunking = true;
                }
            }
            Err(reply) => {
                // Read and drop the chunk, then answer with the error.
                if let Some(t) = self.txn.as_mut() {
                    t.failed = true;
                    t.chunking = true;
                }
                self.pending_bdat_error = Some(reply);
            }
        }
        self.state = State::Bdat(BdatReceiver::new(size, last));
        None
    }

    /// Prepends the `Received:` header (RFC 5321 §4.4, RFC 3848 protocol names).
    fn start_message(&mut self) {
        let Some(txn) = self.txn.as_mut() else { return };
        let protocol = match (txn.smtputf8, self.esmtp, self.tls, self.user.is_some()) {
            (true, _, false, false) => "UTF8SMTP",
            (true, _, false, true) => "UTF8SMTPA",
            (true, _, true, false) => "UTF8SMTPS",
            (true, _, true, true) => "UTF8SMTPSA",
            (false, false, _, _) => "SMTP",
            (false, true, false, false) => "ESMTP",
            (false, true, false, true) => "ESMTPA",
            (false, true, true, false) => "ESMTPS",
            (false, true, true, true) => "ESMTPSA",
        };
        let helo = self.helo.as_deref().unwrap_or("unknown");
        let helo: String = helo
            .chars()
            .filter(|c| c.is_ascii_graphic() && *c != '(' && *c != ')')
            .take(255)
            .collect();
        let id: u64 = rand::random();
        let for_clause = match txn.recipients.as_slice() {
            [one] => format!("\r\n\tfor <{}>", one.address),
            _ => String::new(),
        };
        let date = mail_builder::headers::date::Date::new(postern_store::unix_now()).to_rfc822();
        let header = format!(
            "Received: from {helo} ([{ip}])\r\n\tby {host} (Postern) with {protocol} id {id:016x}{for_clause};\r\n\t{date}\r\n",
            ip = self.peer.ip(),
            host = self.cfg.hostname,
        );
        txn.header_len = header.len();
        txn.message = header.into_bytes();
    }

    pub(super) fn end_of_data(&mut self) -> Option<Event> {
        self.finish_message()
    }

    pub(super) fn end_of_chunk(&mut self, last: bool) -> Option<Event> {
        if let Some(reply) = self.pending_bdat_error.take() {
            return self.error(reply);
        }
        let Some(txn) = self.txn.as_mut() else {
            return self.error(Reply::new(503, (5, 5, 1), "Need MAIL command first"));
        };
        if txn.too_big {
            txn.failed = true;
            if last {
                self.txn = None;
            }
            return self.error(Reply::new(552, (5, 3, 4), "Message too big"));
        }
        if !last {
            let received = txn.message.len().saturating_sub(txn.header_len);
            return self.reply(Reply::new(
                250,
                (2, 0, 0),
                format!("{received} octets received"),
            ));
        }
        self.finish_message()
    }

    /// The message is complete: check it and hand it over for storage.
    fn finish_message(&mut self) -> Option<Event> {
        let Some(txn) = self.txn.take() else {
            return self.error(Reply::new(503, (5, 5, 1), "Need MAIL command first"));
        };
        if txn.too_big {
            return self.error(Reply::new(552, (5, 3, 4), "Message too big"));
        }
        let mut message = txn.message;
        if crlf::has_bare(&message[txn.header_len..]) {
            match self.cfg.bare_line_endings {
                BareLineEndings::Reject => {
                    return self.error(Reply::new(
                        550,
                        (5, 5, 2),
                        "Message refused: bare CR or LF in the data (RFC 5321 §2.3.8)",
                    ));
                }
                BareLineEndings::Normalize => {
                    let body = crlf::canonical(&message[txn.header_len..]).into_owned();
                    message.truncate(txn.header_len);
                    message.extend_from_slice(&body);
                }
            }
        }
        let body = &message[txn.header_len..];
        let parsed = mail_parser::MessageParser::new().parse_headers(body);
        let hops = parsed
            .as_ref()
            .map_or(0, |m| m.header_values("Received").count());
        if hops >= MAX_RECEIVED_HEADERS {
            return self.error(Reply::new(
                554,
                (5, 4, 6),
                "Too many hops, mail loop detected",
            ));
        }
        if self.user.is_some() {
            // RFC 6409 §8.2–8.3: a submission server may add a missing Date and Message-ID.
            let (has_date, has_id) = parsed.as_ref().map_or((false, false), |m| {
                (m.date().is_some(), m.message_id().is_some())
            });
            let mut extra = String::new();
            if !has_date {
                let date =
                    mail_builder::headers::date::Date::new(postern_store::unix_now()).to_rfc822();
                extra.push_str(&format!("Date: {date}\r\n"));
            }
            if !has_id {
                let id: u128 = rand::random();
                extra.push_str(&format!(
                    "Message-ID: <{id:032x}@{}>\r\n",
                    self.cfg.hostname
                ));
            }
            if !extra.is_empty() {
                let at = txn.header_len;
                message.splice(at..at, extra.into_bytes());
            }
        }
        self.wait(Action::Deliver(Box::new(Delivery {
            sender: txn.sender,
            recipients: txn.recipients,
            message,
            user: self.user.clone(),
            helo: self.helo.clone().unwrap_or_default(),
        })))
    }

    /// Reports the result of [`Action::Deliver`]; the transaction is over either way.
    pub fn delivery_result(&mut self, result: DeliveryResult) {
        self.state = State::Command;
        self.txn = None;
        let reply = match result {
            DeliveryResult::Accepted { id } => {
                Reply::new(250, (2, 0, 0), format!("Ok: queued as {id}"))
            }
            DeliveryResult::MailboxFull => Reply::new(552, (5, 2, 2), "Mailbox full"),
            DeliveryResult::Refused(reply) => reply,
            DeliveryResult::Unavailable => {
                Reply::new(451, (4, 3, 0), "Temporary failure, try again later")
            }
        };
        reply.write(&mut self.out);
    }
}
