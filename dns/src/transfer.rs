//! Zone transfers: AXFR (RFC 5936) streamed over several messages, and IXFR (RFC 1995)
//! answered with the current SOA when the client is up to date, with the differences from
//! the journal of dynamic updates when it covers the client's serial, else in AXFR form
//! (RFC 1995 §4 allows a full transfer in reply to IXFR). A signed zone always gets the full
//! form: the journal holds the data changes but not the signatures and NSEC3 records that
//! change with them.

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use crate::acl::Who;
use crate::engine::Transport;
use crate::journal;
use crate::state::ServedZone;

/// Target size of one transfer message; well below the 65535-byte TCP limit.
const MESSAGE_BYTES: usize = 16 * 1024;

/// The transfer messages for a request, or the RCODE to refuse it with.
pub fn transfer(
    req: &Message,
    served: &ServedZone,
    transport: Transport,
    who: Who<'_>,
) -> Result<Vec<Message>, ResponseCode> {
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
    let soa = zone.soa().clone();
    let up_to_date = ixfr
        && req.authorities.iter().any(|r| match &r.data {
            RData::SOA(theirs) => !serial_lt(theirs.serial, zone.serial()),
            _ => false,
        });
    if up_to_date || transport == Transport::Udp {
        return Ok(vec![message(req, true, vec![soa])]);
    }
    let client_serial = req.authorities.iter().find_map(|r| match &r.data {
        RData::SOA(theirs) if ixfr => Some(theirs.serial),
        _ => None,
    });
    let chain = client_serial
        .filter(|_| served.signed.is_none())
        .and_then(|from| journal::chain(&served.journal, from, zone.serial()))
        .filter(|chain| !chain.is_empty());
    if let Some(chain) = chain {
        // RFC 1995 §4: current SOA, then per difference the old SOA, the deleted records,
        // the new SOA and the added records, and the current SOA again.
        tracing::info!(client = %who.ip, zone = %zone.origin(), from = client_serial, serial = zone.serial(), "incremental zone transfer");
        let mut records = vec![soa.clone()];
        for d in chain {
            records.push(journal::soa_with_serial(&soa, d.from));
            records.extend(d.removed.iter().cloned());
            records.push(journal::soa_with_serial(&soa, d.to));
            records.extend(d.added.iter().cloned());
        }
        records.push(soa);
        return Ok(batches(req, records.iter()));
    }
    tracing::info!(client = %who.ip, zone = %zone.origin(), serial = zone.serial(), "zone transfer");
    let records = std::iter::once(&soa)
        .chain(
            zone.rrsets_for_transfer()
                .into_iter()
                .flat_map(|set| set.records.iter()),
        )
        .chain(served.signed.iter().flat_map(|s| s.transfer_records()))
        .chain(std::iter::once(&soa));
    Ok(batches(req, records))
}

/// Splits records into transfer messages of about [`MESSAGE_BYTES`] each.
fn batches<'a>(req: &Message, records: impl Iterator<Item = &'a Record>) -> Vec<Message> {
    let mut messages = Vec::new();
    let mut batch: Vec<Record> = Vec::new();
    let mut size = 0;
    for record in records {
        let len = encoded_len(record);
        if size + len > MESSAGE_BYTES && !batch.is_empty() {
            messages.push(message(
                req,
                messages.is_empty(),
                std::mem::take(&mut batch),
            ));
            size = 0;
        }
        size += len;
        batch.push(record.clone());
    }
    messages.push(message(req, messages.is_empty(), batch));
    messages
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
