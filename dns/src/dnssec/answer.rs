//! The DNSSEC records of an answer to a query with the DO bit (RFC 4035 §3.1): the RRSIGs of
//! every RRset, and the NSEC3 proofs (RFC 5155 §7.2) for NXDOMAIN, NODATA, wildcard answers
//! and delegations with no DS.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::sign::SignedZone;
use crate::lookup::{closest_encloser, Answer};
use crate::zone::Zone;

/// Adds the RRSIGs and denial-of-existence proofs to `answer`, the lookup of `qname` in `zone`.
pub fn add_dnssec(zone: &Zone, signed: &SignedZone, qname: &Name, answer: &mut Answer) {
    let mut proofs: Vec<usize> = Vec::new();
    answer.answers = with_sigs(
        zone,
        signed,
        std::mem::take(&mut answer.answers),
        &mut proofs,
    );
    let negative = answer.authoritative
        && answer
            .answers
            .iter()
            .all(|r| r.record_type() == RecordType::CNAME)
        && answer
            .authorities
            .iter()
            .any(|r| r.record_type() == RecordType::SOA);
    if negative {
        let denied = last_target(&answer.answers).unwrap_or_else(|| qname.clone());
        deny(zone, signed, &denied, answer.rcode, &mut proofs);
        let authorities = std::mem::take(&mut answer.authorities);
        answer.authorities = with_sigs(zone, signed, authorities, &mut Vec::new());
    } else if answer
        .authorities
        .iter()
        .any(|r| r.record_type() == RecordType::NS)
    {
        referral(zone, signed, answer, &mut proofs);
    }
    let mut seen = Vec::new();
    for link in proofs {
        if !seen.contains(&link) {
            seen.push(link);
            answer.authorities.extend(signed.chain.records(link));
        }
    }
}

/// The name a CNAME chain ends at, if the answer is one.
fn last_target(answers: &[Record]) -> Option<Name> {
    answers.last().and_then(|r| match &r.data {
        RData::CNAME(c) => Some(c.0.clone()),
        _ => None,
    })
}

/// `records` with the RRSIGs of each RRset after it (the records are moved, not copied). An RRset whose owner is not in the zone
/// was synthesised from a wildcard: it gets the wildcard's signatures (their label count tells
/// the validator so, RFC 4035 §5.3.4) and the proof that the next closer name does not exist
/// (RFC 5155 §7.2.6).
fn with_sigs(
    zone: &Zone,
    signed: &SignedZone,
    records: Vec<Record>,
    proofs: &mut Vec<usize>,
) -> Vec<Record> {
    let mut out = Vec::with_capacity(records.len() * 2);
    let mut records = records.into_iter().peekable();
    while let Some(first) = records.next() {
        let (owner, rtype) = (first.name.clone(), first.record_type());
        out.push(first);
        while let Some(next) = records.next_if(|r| r.record_type() == rtype && r.name == owner) {
            out.push(next);
        }
        let source = if zone.node(&owner).is_some() {
            Some(owner.clone())
        } else {
            let encloser = closest_encloser(zone, &owner);
            proofs.extend(signed.chain.covering(&next_closer(&encloser, &owner)));
            encloser.prepend_label("*").ok()
        };
        if let Some(source) = source {
            out.extend(signed.sigs(&source, rtype, &owner));
        }
    }
    out
}

/// The ancestor of `name` one label below its closest encloser (RFC 5155 §1.3).
fn next_closer(encloser: &Name, name: &Name) -> Name {
    name.trim_to(usize::from(encloser.num_labels()) + 1)
}

/// NXDOMAIN: closest encloser, next closer and wildcard proofs (RFC 5155 §7.2.2). NODATA:
/// the matching NSEC3 (§7.2.3, also DS at a delegation, §7.2.4), or for a wildcard NODATA
/// the closest encloser, next closer and matching wildcard NSEC3s (§7.2.5).
fn deny(
    zone: &Zone,
    signed: &SignedZone,
    name: &Name,
    rcode: ResponseCode,
    proofs: &mut Vec<usize>,
) {
    let chain = &signed.chain;
    if rcode != ResponseCode::NXDomain && zone.node(name).is_some() {
        proofs.extend(chain.matching(name));
        return;
    }
    let encloser = closest_encloser(zone, name);
    proofs.extend(chain.matching(&encloser));
    proofs.extend(chain.covering(&next_closer(&encloser, name)));
    if let Ok(wildcard) = encloser.prepend_label("*") {
        if rcode == ResponseCode::NXDomain {
            proofs.extend(chain.covering(&wildcard));
        } else {
            proofs.extend(chain.matching(&wildcard));
        }
    }
}

/// A referral carries the signed DS RRset, or the NSEC3 proving there is none (RFC 4035
/// §3.1.4, RFC 5155 §7.2.7 without opt-out).
fn referral(zone: &Zone, signed: &SignedZone, answer: &mut Answer, proofs: &mut Vec<usize>) {
    let Some(cut) = answer
        .authorities
        .iter()
        .find(|r| r.record_type() == RecordType::NS)
        .map(|r| r.name.clone())
    else {
        return;
    };
    match zone.node(&cut).and_then(|n| n.get(RecordType::DS)) {
        Some(ds) => {
            let owner = zone.owner(&cut);
            answer.authorities.extend(ds.records(&owner));
            answer
                .authorities
                .extend(signed.sigs(&cut, RecordType::DS, &owner));
        }
        None => proofs.extend(signed.chain.matching(&cut)),
    }
}
