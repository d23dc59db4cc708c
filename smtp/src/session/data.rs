//! Message data: DATA (RFC 5321 §4.1.1.4) and BDAT (RFC 3030), the `Received:` trace header, the
//! line-ending check (bare CR/LF normalized or refused), the loop check and the submission header
//! fixes, then the hand-over for storage.

use smtp_proto::request::receiver::{BdatReceiver, DataReceiver};

use super::body::Body;
use super::{Action, Delivery, DeliveryResult, Event, Session, State};
use crate::reply::Reply;

impl Session {
    /// Feeds message data to a receiver; what it produced goes on through the transaction's
    /// [`Body`] (`end`: the receiver's end is the message's end). Past the size limit the bytes are
    /// counted as too big and dropped, but reading continues to the end of the data.
    pub(super) fn ingest_data(
        &mut self,
        end: bool,
        mut ingest: impl FnMut(&mut std::slice::Iter<'_, u8>, &mut Vec<u8>) -> bool,
    ) -> bool {
        let limit = self.cfg.max_message_size;
        let mut bytes = self.input[self.pos..].iter();
        let done = match self.txn.as_mut() {
            Some(t) => {
                let done = ingest(&mut bytes, &mut t.body.raw);
                if t.body.received() > limit {
                    t.too_big = true;
                }
                let keep = t.spooling();
                t.body.take(done && end, keep, &mut self.data_out);
                done
            }
            None => {
                let mut scratch = Vec::new();
                ingest(&mut bytes, &mut scratch)
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
        if size == 0 {
            // An empty chunk (`BDAT 0 LAST` ends a message, RFC 3030 §2) has no bytes to wait for.
            return self.end_of_chunk(last);
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
        let submission = self.user.is_some().then(|| self.cfg.hostname.clone());
        txn.body = Body::new(header.into_bytes(), submission, self.cfg.bare_line_endings);
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
            let received = txn.body.received();
            return self.reply(Reply::new(
                250,
                (2, 0, 0),
                format!("{received} octets received"),
            ));
        }
        self.finish_message()
    }

    /// The message is complete: refuse it, or hand it over for storage (its data was handed out
    /// before, the rest of it now).
    fn finish_message(&mut self) -> Option<Event> {
        let Some(mut txn) = self.txn.take() else {
            return self.error(Reply::new(503, (5, 5, 1), "Need MAIL command first"));
        };
        if txn.too_big {
            return self.error(Reply::new(552, (5, 3, 4), "Message too big"));
        }
        txn.body.take(true, true, &mut self.data_out);
        if let Some(reply) = txn.body.refusal.take() {
            return self.error(reply);
        }
        self.deliver_after_data = Some(Action::Deliver(Box::new(Delivery {
            sender: txn.sender,
            recipients: txn.recipients,
            user: self.user.clone(),
            helo: self.helo.clone().unwrap_or_default(),
        })));
        self.state = State::Waiting;
        None
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
