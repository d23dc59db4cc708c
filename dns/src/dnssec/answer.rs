//! The DNSSEC records of an answer to a query with the DO bit (RFC 4035 §3.1): the RRSIGs of
//! every RRset, and the NSEC3 proofs (RFC 5155 §7.2) for NXDOMAIN, NODATA, wildcard answers
//! and delegations with no DS.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

use super::nsec3::Link;
use super::sign::SignedZone;
use crate::lookup::{closest_encloser, Answer};
use crate::zone::Zone;

/// Adds the RRSIGs and denial-of-existence proofs to `answer`, the lookup of `qname` in `zone`.
pub fn add_dnssec(zone: &Zone, signed: &SignedZone, qname: &Name, answer: &mut Answer) {
    let mut proofs: Vec<&Link> = Vec::new();
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
        let owner = &link.records[0].name;
        if !seen.contains(owner) {
            seen.push(owner.clone());
            answer.authorities.extend(link.records.iter().cloned());
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
fn with_sigs<'s>(
    zone: &Zone,
    signed: &'s SignedZone,
    records: Vec<Record>,
    proofs: &mut Vec<&'s Link>,
) -> Vec<Record> {
    let mut out = Vec::with_capacity(records.len() * 2);
    let mut records = records.into_iter().peekable();
    while let Some(first) = records.next() {
        let (owner, rtype) = (first.name.clone(), first.record_type());
        out.push(first);
        while let Some(next) = records.next_if(|r| r.record_type() == rtype && r.name == owner) {
            out.push(next);
        }
        let lower = LowerName::new(&owner);
        let source = if zone.node(&lower).is_some() {
            Some(lower)
        } else {
            let encloser = closest_encloser(zone, &owner);
            proofs.extend(signed.chain.covering(&next_closer(&encloser, &owner)));
            encloser.prepend_label("*").ok().map(|w| LowerName::new(&w))
        };
        if let Some(source) = source {
            out.extend(signed.sigs(&source, rtype).iter().map(|sig| {
                let mut sig = sig.clone();
                sig.name = owner.clone();
                sig
            }));
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
fn deny<'s>(
    zone: &Zone,
    signed: &'s SignedZone,
    name: &Name,
    rcode: ResponseCode,
    proofs: &mut Vec<&'s Link>,
) {
    let chain = &signed.chain;
    if rcode != ResponseCode::NXDomain && zone.node(&LowerName::new(name)).is_some() {
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
fn referral<'s>(
    zone: &Zone,
    signed: &'s SignedZone,
    answer: &mut Answer,
    proofs: &mut Vec<&'s Link>,
) {
    let Some(cut) = answer
        .authorities
        .iter()
        .find(|r| r.record_type() == RecordType::NS)
        .map(|r| r.name.clone())
    else {
        return;
    };
    let lower = LowerName::new(&cut);
    match zone.node(&lower).and_then(|n| n.get(RecordType::DS)) {
        Some(ds) => {
            answer.authorities.extend(ds.records.iter().cloned());
            answer
                .authorities
                .extend(signed.sigs(&lower, RecordType::DS).iter().cloned());
        }
        None => proofs.extend(signed.chain.matching(&cut)),
    }
}
