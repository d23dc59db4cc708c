//! Reads the common query straight from its octets: a standard QUERY (RFC 1035 §4.1) with one
//! question, no answer or authority records, and at most an OPT record without options
//! (RFC 6891 §6.1.2). Anything else is left to the full decoder.

use super::writer::{name_len, HEADER};
use crate::zone::NameKey;

/// The EDNS(0) part of a query (RFC 6891 §6.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueryEdns {
    /// The requestor's UDP payload size.
    pub payload: u16,
    /// The DO bit (RFC 3225 §3).
    pub dnssec_ok: bool,
}

/// A query read from its octets.
pub(crate) struct WireQuery<'a> {
    /// The message ID.
    pub id: u16,
    /// Recursion desired (echoed, RFC 1035 §4.1.1).
    pub rd: bool,
    /// Checking disabled (echoed, RFC 4035 §3.1.6).
    pub cd: bool,
    /// The question section as received: name, type and class.
    pub question: &'a [u8],
    /// The query name as received (uncompressed wire form).
    pub qname: &'a [u8],
    /// The query name lower-cased.
    pub key: NameKey,
    /// QTYPE.
    pub qtype: u16,
    /// QCLASS.
    pub qclass: u16,
    /// The OPT record's content, if the query had one.
    pub edns: Option<QueryEdns>,
}

/// The query in `packet`, or `None` when it is not of the common form read here.
pub(crate) fn read(packet: &[u8]) -> Option<WireQuery<'_>> {
    let header = packet.get(..HEADER)?;
    // QR clear and OPCODE QUERY; the other bits of the third octet are AA, TC and RD.
    if header[2] & 0xF8 != 0 {
        return None;
    }
    let count = |i: usize| u16::from_be_bytes([header[4 + 2 * i], header[5 + 2 * i]]);
    if count(0) != 1 || count(1) != 0 || count(2) != 0 || count(3) > 1 {
        return None;
    }
    let rest = &packet[HEADER..];
    let name = name_len(rest)?;
    let fixed = rest.get(name..name + 4)?;
    let question = &rest[..name + 4];
    let mut edns = None;
    let after = &rest[name + 4..];
    if count(3) == 1 {
        // Root owner, type OPT, payload size, extended RCODE and version, flags, no RDATA.
        let opt: &[u8; 11] = after.try_into().ok()?;
        if opt[0] != 0 || opt[1..3] != [0, 41] || opt[6] != 0 || opt[9..11] != [0, 0] {
            return None;
        }
        edns = Some(QueryEdns {
            payload: u16::from_be_bytes([opt[3], opt[4]]),
            dnssec_ok: opt[7] & 0x80 != 0,
        });
    } else if !after.is_empty() {
        return None;
    }
    let qname = &rest[..name];
    Some(WireQuery {
        id: u16::from_be_bytes([header[0], header[1]]),
        rd: header[2] & 0x01 != 0,
        cd: header[3] & 0x10 != 0,
        question,
        qname,
        key: NameKey::from_wire(qname),
        qtype: u16::from_be_bytes([fixed[0], fixed[1]]),
        qclass: u16::from_be_bytes([fixed[2], fixed[3]]),
        edns,
    })
}
