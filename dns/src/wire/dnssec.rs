//! The DNSSEC records of an answer written from octets, for a query with the DO bit to a
//! signed zone (RFC 4035 §3.1), as [`crate::dnssec::add_dnssec`] adds them: the RRSIGs of the
//! answer's RRset, or of the SOA with the NSEC3 proofs of a negative answer (RFC 5155 §7.2.2
//! for NXDOMAIN, §7.2.3 for NODATA).

use hickory_proto::rr::RecordType;

use super::wildcard_key;
use super::writer::{name_wire, Writer};
use crate::dnssec::nsec3::hash_label;
use crate::dnssec::SignedZone;
use crate::zone::Zone;

/// Writes the RRSIGs over the RRset `key`/`rtype`, owned by `owner` (uncompressed wire form);
/// returns how many.
pub(super) fn sigs(
    w: &mut Writer,
    signed: &SignedZone,
    key: &[u8],
    rtype: RecordType,
    owner: &[u8],
) -> u16 {
    let Some(set) = signed.sig_set_key(key, rtype) else {
        return 0;
    };
    for rdata in set.rdata() {
        w.record(owner, u16::from(RecordType::RRSIG), set.ttl(), rdata);
    }
    set.len() as u16
}

/// Writes the SOA's RRSIGs and the NSEC3 records (with theirs) that deny the query name
/// `key`: the matching NSEC3 for NODATA; for NXDOMAIN those of the closest encloser (starting
/// at `encloser` in `key`), the next closer name and the wildcard at the closest encloser.
/// Returns how many records.
pub(super) fn denial(
    w: &mut Writer,
    zone: &Zone,
    signed: &SignedZone,
    key: &[u8],
    origin_at: usize,
    nxdomain: Option<usize>,
) -> u16 {
    let mut soa_owner = [0u8; 256];
    let len = name_wire(&zone.soa().name, &mut soa_owner);
    let mut count = sigs(
        w,
        signed,
        &key[origin_at..],
        RecordType::SOA,
        &soa_owner[..len],
    );
    let chain = &signed.chain;
    let mut links = [None; 3];
    match nxdomain {
        None => links[0] = chain.matching_key(key),
        Some(encloser) => {
            let mut next_closer = 0;
            while next_closer + 1 + usize::from(key[next_closer]) < encloser {
                next_closer += 1 + usize::from(key[next_closer]);
            }
            let parent = &key[encloser..];
            let mut buf = [0u8; 258];
            links = [
                chain.matching_key(parent),
                chain.covering_key(&key[next_closer..]),
                wildcard_key(parent, &mut buf).and_then(|w| chain.covering_key(w)),
            ];
        }
    }
    let mut origin = [0u8; 256];
    let origin_len = name_wire(zone.origin(), &mut origin);
    for (i, link) in links.iter().enumerate() {
        let Some(link) = *link else { continue };
        if links[..i].contains(&Some(link)) {
            continue;
        }
        let Some((hash, node)) = chain.link(link).filter(|_| 33 + origin_len <= 255) else {
            continue;
        };
        let mut owner = [0u8; 290];
        owner[0] = 32;
        owner[1..33].copy_from_slice(&hash_label(hash));
        owner[33..33 + origin_len].copy_from_slice(&origin[..origin_len]);
        for set in node.rrsets() {
            for rdata in set.rdata() {
                w.record(
                    &owner[..33 + origin_len],
                    u16::from(set.rtype),
                    set.ttl(),
                    rdata,
                );
                count += 1;
            }
        }
    }
    count
}
