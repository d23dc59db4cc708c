//! Zone transfers: AXFR (RFC 5936) streamed over several messages, and IXFR (RFC 1995)
//! answered with the current SOA when the client is up to date, with the differences from
//! the journal when it covers the client's serial, else in AXFR form (RFC 1995 §4 allows a
//! full transfer in reply to IXFR). A signed zone's journal is the one its signer keeps
//! (data, RRSIG and NSEC3 changes together); the store's journal of dynamic updates serves
//! unsigned zones.
//!
//! A transfer is planned on the query path ([`transfer`]) but its messages are built one at a
//! time while they are sent ([`Transfer::messages`]), from the zone as it was when asked, so
//! that the shell can build them off the threads that answer queries and stop as soon as the
//! client stops reading.

use std::sync::Arc;

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use crate::acl::Who;
use crate::engine::{encode, Transport};
use crate::journal::{self, Difference};
use crate::state::ServedZone;
use crate::tsig::Signed;

/// Target size of one transfer message; well below the 65535-byte TCP limit.
const MESSAGE_BYTES: usize = 16 * 1024;

/// A transfer to send: the request, the zone as it was when asked, and what to send of it.
pub struct Transfer {
    req: Message,
    served: Arc<ServedZone>,
    form: Form,
}

/// What a transfer sends.
enum Form {
    /// The current SOA only: the client is up to date, or asked over UDP.
    Soa,
    /// The differences from this serial on (RFC 1995 §4).
    Incremental(u32),
    /// The whole zone (RFC 5936 §2.2).
    Full,
}

/// Plans the transfer for a request, or returns the RCODE to refuse it with.
pub fn transfer(
    req: &Message,
    served: &Arc<ServedZone>,
    transport: Transport,
    who: Who<'_>,
) -> Result<Transfer, ResponseCode> {
    let query = req.queries.first().ok_or(ResponseCode::FormErr)?;
    let zone = &served.zone;
    if query.name() != zone.origin() {
        return Err(ResponseCode::NotAuth);
    }
    let ixfr = query.query_type() == RecordType::IXFR;
    if transport == Transport::Udp && !ixfr {
        return Err(ResponseCode::FormErr);
    }
    if !served.allow_transfer.allows(who) {
        tracing::info!(client = %who.ip, zone = %zone.origin(), "zone transfer denied");
        return Err(ResponseCode::Refused);
    }
    let client_serial = req.authorities.iter().find_map(|r| match &r.data {
        RData::SOA(theirs) if ixfr => Some(theirs.serial),
        _ => None,
    });
    let up_to_date = client_serial.is_some_and(|theirs| !serial_lt(theirs, zone.serial()));
    let form = if up_to_date || transport == Transport::Udp {
        Form::Soa
    } else if let Some(from) = client_serial.filter(|from| diff_chain(served, *from).is_some()) {
        tracing::info!(client = %who.ip, zone = %zone.origin(), from, serial = zone.serial(), "incremental zone transfer");
        Form::Incremental(from)
    } else {
        tracing::info!(client = %who.ip, zone = %zone.origin(), serial = zone.serial(), "zone transfer");
        Form::Full
    };
    Ok(Transfer {
        req: req.clone(),
        served: served.clone(),
        form,
    })
}

/// The differences from `from` to the served serial, if the journal covers them: the
/// signer's journal for a signed zone, else the store's journal of dynamic updates.
fn diff_chain(served: &ServedZone, from: u32) -> Option<Vec<&Difference>> {
    let current = served.zone.serial();
    match &served.signed {
        Some(signed) => journal::chain(signed.journal(), from, current),
        None => journal::chain(&served.journal, from, current),
    }
    .filter(|c| !c.is_empty())
}

impl Transfer {
    /// Whether this transfer is a single message (the SOA), cheap enough to build at once.
    pub fn is_single(&self) -> bool {
        matches!(self.form, Form::Soa)
    }

    /// Builds the messages in order and hands each to `emit`, stopping when it returns false.
    pub fn messages(&self, emit: &mut dyn FnMut(Message) -> bool) {
        let zone = &self.served.zone;
        let soa = zone.soa();
        let mut out = Batcher {
            req: &self.req,
            batch: Vec::new(),
            size: 0,
            first: true,
            emit,
        };
        let chain = match self.form {
            Form::Soa => {
                out.push(soa);
                out.finish();
                return;
            }
            Form::Incremental(from) => diff_chain(&self.served, from),
            Form::Full => None,
        };
        let going = match chain {
            // RFC 1995 §4: current SOA, then per difference the old SOA, the deleted records,
            // the new SOA and the added records, and the current SOA again.
            Some(chain) => {
                out.push(soa)
                    && chain.into_iter().all(|d| {
                        out.push(&journal::soa_with_serial(soa, d.from))
                            && d.removed.iter().all(|r| out.push(r))
                            && out.push(&journal::soa_with_serial(soa, d.to))
                            && d.added.iter().all(|r| out.push(r))
                    })
            }
            None => {
                let sets = zone.rrsets_for_transfer();
                out.push(soa)
                    && sets
                        .into_iter()
                        .flat_map(|(owner, set)| set.records(&owner))
                        .chain(self.served.signed.iter().flat_map(|s| s.transfer_records()))
                        .all(|r| out.push(&r))
            }
        };
        if going && out.push(soa) {
            out.finish();
        }
    }
}

/// Gathers records into transfer messages of about [`MESSAGE_BYTES`] each.
struct Batcher<'a> {
    req: &'a Message,
    batch: Vec<Record>,
    size: usize,
    first: bool,
    emit: &'a mut dyn FnMut(Message) -> bool,
}

impl Batcher<'_> {
    /// Adds a record, sending the batch before it when it is full; false once the receiver
    /// stopped.
    fn push(&mut self, record: &Record) -> bool {
        let len = encoded_len(record);
        if self.size + len > MESSAGE_BYTES && !self.batch.is_empty() && !self.send() {
            return false;
        }
        self.size += len;
        self.batch.push(record.clone());
        true
    }

    fn send(&mut self) -> bool {
        let answers = std::mem::take(&mut self.batch);
        self.size = 0;
        let msg = message(self.req, self.first, answers);
        self.first = false;
        (self.emit)(msg)
    }

    fn finish(mut self) {
        self.send();
    }
}

/// One transfer message; only the first repeats the question (RFC 5936 §2.2.1).
fn message(req: &Message, first: bool, answers: Vec<Record>) -> Message {
    let mut msg = Message::response(req.id, OpCode::Query);
    msg.metadata.authoritative = true;
    if first {
        msg.queries = req.queries.clone();
    }
    msg.answers = answers;
    msg
}

fn encoded_len(record: &Record) -> usize {
    let mut buf = Vec::with_capacity(64);
    let mut encoder = BinEncoder::new(&mut buf);
    match record.emit(&mut encoder) {
        Ok(()) => buf.len(),
        Err(_) => MESSAGE_BYTES,
    }
}

/// A planned transfer with what its messages need on the wire: encoding and, for a signed
/// request, the TSIG chain over all of them (RFC 8945 §5.3.1).
pub struct Outgoing {
    transfer: Transfer,
    tsig: Option<Signed>,
    now: u64,
}

impl Outgoing {
    pub(crate) fn new(transfer: Transfer, tsig: Option<Signed>, now: u64) -> Self {
        Outgoing {
            transfer,
            tsig,
            now,
        }
    }

    /// Whether this is a single message (see [`Transfer::is_single`]).
    pub fn is_single(&self) -> bool {
        self.transfer.is_single()
    }

    /// Builds, encodes and signs the messages in order, handing each to `send` until it
    /// returns false; a message that cannot be encoded or signed ends the transfer there.
    pub fn send(&self, send: &mut dyn FnMut(Vec<u8>) -> bool) {
        let mut chain = self.tsig.as_ref().map(|t| t.chain(self.now));
        self.transfer.messages(&mut |msg| {
            let Some(mut bytes) = encode(&msg) else {
                return false;
            };
            if let Some(chain) = &mut chain {
                if let Err(e) = chain.sign(&mut bytes) {
                    tracing::warn!("cannot sign transfer: {e}");
                    return false;
                }
            }
            send(bytes)
        });
    }

    /// Every message at once.
    pub fn collect(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        self.send(&mut |bytes| {
            out.push(bytes);
            true
        });
        out
    }

    /// The answer when too many transfers are running: SERVFAIL, as BIND answers over its
    /// `transfers-out` quota, so that the secondary retries later.
    pub fn busy(&self) -> Vec<Vec<u8>> {
        let mut resp = Message::response(self.transfer.req.id, OpCode::Query);
        resp.queries = self.transfer.req.queries.clone();
        resp.metadata.response_code = ResponseCode::ServFail;
        let Some(bytes) = encode(&resp) else {
            return Vec::new();
        };
        let mut out = vec![bytes];
        if let Some(tsig) = &self.tsig {
            if let Err(e) = tsig.sign_all(&mut out, self.now) {
                tracing::warn!("cannot sign response: {e}");
                return Vec::new();
            }
        }
        out
    }
}

/// RFC 1982 §3.2: `a < b` in sequence space arithmetic.
pub(crate) fn serial_lt(a: u32, b: u32) -> bool {
    a != b && b.wrapping_sub(a) < 0x8000_0000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_arithmetic() {
        assert!(serial_lt(1, 2));
        assert!(!serial_lt(2, 1));
        assert!(serial_lt(u32::MAX, 0), "wraps");
        assert!(!serial_lt(5, 5));
    }
}
