//! Checks of a TSIG-signed request's raw octets that hickory's verification does not make:
//! it recomputes the MAC over a re-encoded header (dropping the Z bit), always with TTL 0 and
//! class ANY, without comparing RDLENGTH, and knows algorithm names only in lower case.

use std::borrow::Cow;

/// Why a signed request's octets are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireProblem {
    /// Not a well-formed TSIG record (RFC 8945 §4.2: class ANY, TTL 0; RDLENGTH must cover
    /// the RDATA exactly): FORMERR.
    Malformed,
    /// Header bits the MAC cannot have covered: the Z bit (RFC 1035 §4.1.1) must be zero,
    /// and hickory cannot include it in the MAC, so the signature is treated as bad.
    Tampered,
}

const TSIG_TYPE: u16 = 250;
const CLASS_ANY: u16 = 255;

/// The request with the TSIG algorithm name lower-cased (names compare case-insensitively,
/// RFC 8945 §6, and enter the MAC in canonical lower case, RFC 8945 §4.3.3), after checking
/// the header Z bit and the TSIG record's class, TTL and RDLENGTH. A message whose last
/// record is not a TSIG is returned unchanged.
pub fn canonical(packet: &[u8]) -> Result<Cow<'_, [u8]>, WireProblem> {
    use WireProblem::{Malformed, Tampered};
    let count = |i: usize| u16::from_be_bytes([packet[i], packet[i + 1]]);
    if packet.len() < 12 {
        return Err(Malformed);
    }
    if packet[3] & 0x40 != 0 {
        return Err(Tampered);
    }
    let (qd, records) = (
        count(4),
        usize::from(count(6)) + usize::from(count(8)) + usize::from(count(10)),
    );
    let Some(before_tsig) = records.checked_sub(1) else {
        return Ok(Cow::Borrowed(packet));
    };
    let mut pos = 12;
    for _ in 0..qd {
        pos = skip_name(packet, pos).ok_or(Malformed)? + 4;
    }
    for _ in 0..before_tsig {
        pos = skip_name(packet, pos).ok_or(Malformed)?;
        let fixed = packet.get(pos..pos + 10).ok_or(Malformed)?;
        pos += 10 + usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
    }
    pos = skip_name(packet, pos).ok_or(Malformed)?;
    let fixed = packet.get(pos..pos + 10).ok_or(Malformed)?;
    if u16::from_be_bytes([fixed[0], fixed[1]]) != TSIG_TYPE {
        return Ok(Cow::Borrowed(packet));
    }
    let class = u16::from_be_bytes([fixed[2], fixed[3]]);
    let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
    let rdlength = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
    let rdata = pos + 10;
    if class != CLASS_ANY || ttl != 0 || rdata + rdlength != packet.len() {
        return Err(Malformed);
    }
    let algorithm_end = skip_name(packet, rdata).ok_or(Malformed)?;
    let algorithm = &packet[rdata..algorithm_end];
    if !algorithm.iter().any(u8::is_ascii_uppercase) {
        return Ok(Cow::Borrowed(packet));
    }
    let mut copy = packet.to_vec();
    copy[rdata..algorithm_end].make_ascii_lowercase();
    Ok(Cow::Owned(copy))
}

/// The offset after a (possibly compressed) name starting at `pos`.
fn skip_name(packet: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *packet.get(pos)?;
        match len {
            0 => return Some(pos + 1),
            l if l & 0xc0 == 0xc0 => return packet.get(pos + 1).map(|_| pos + 2),
            l if l & 0xc0 != 0 => return None,
            l => pos += 1 + usize::from(l),
        }
    }
}
