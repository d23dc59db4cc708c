//! DNSSEC online signing (RFC 4033-4035): zone keys from the store, RRSIGs made when a zone
//! is loaded or changed and cached until they near expiry, authenticated denial with NSEC3
//! (RFC 5155, parameters per RFC 9276), and the DNSSEC records added to answers for queries
//! with the DO bit.

mod answer;
mod incremental;
mod journal;
mod keys;
pub(crate) mod nsec3;
mod persist;
mod sign;

pub use answer::add_dnssec;
pub use keys::{
    generate, KeyRole, KeyState, ZoneKey, ZoneKeys, ECDSAP256SHA256, ED25519, SIGNATURE_VALIDITY,
};
pub use persist::{
    decode, encode, Delta, JournalRow, SignatureRow, SignedChange, Stored, StoredSigned, Upsert,
};
pub use sign::{sign_zone, Basis, Previous, SignedZone};

use std::sync::Arc;

use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::error::DnsError;
use crate::zone::{Loc, SourceRecord};

/// The types of the apex records signing adds to a zone ([`prepare_signing`]).
pub(crate) const SIGNING_APEX_TYPES: [RecordType; 4] = [
    RecordType::DNSKEY,
    RecordType::CDS,
    RecordType::CDNSKEY,
    RecordType::NSEC3PARAM,
];

/// The keys a zone is signed with, after adding its DNSKEY, CDS, CDNSKEY and NSEC3PARAM
/// records to `records` (the records it is built from); unusable keys are an error.
pub(crate) fn prepare_signing(
    keys: &[ZoneKey],
    origin: &Name,
    records: &mut Vec<SourceRecord>,
) -> Result<ZoneKeys, DnsError> {
    let ttl = records
        .iter()
        .find(|r| r.record.record_type() == RecordType::SOA)
        .map_or(3600, |r| r.record.ttl);
    let keys = ZoneKeys::new(keys.to_vec())?;
    let loc = Loc {
        file: Arc::from("DNSSEC keys"),
        line: 0,
    };
    records.extend(
        apex_records(&keys, origin, ttl)?
            .into_iter()
            .map(|record| SourceRecord {
                record,
                loc: loc.clone(),
            }),
    );
    Ok(keys)
}

/// The apex records a signed zone publishes (RFC 4034 §2, RFC 7344 §3, RFC 5155 §4): DNSKEY
/// for every published key, CDS and CDNSKEY for the entry points not being retired, and
/// NSEC3PARAM (TTL 0, as it only tells secondaries the chain's parameters).
fn apex_records(keys: &ZoneKeys, origin: &Name, ttl: u32) -> Result<Vec<Record>, DnsError> {
    let mut out = Vec::new();
    let record =
        |data: DNSSECRData, ttl: u32| Record::from_rdata(origin.clone(), ttl, RData::DNSSEC(data));
    for key in &keys.published {
        out.push(record(DNSSECRData::DNSKEY(key.dnskey()?), ttl));
        if key.role.is_entry_point() && key.state != KeyState::Retired {
            out.push(record(DNSSECRData::CDS(key.cds()?), ttl));
            out.push(record(DNSSECRData::CDNSKEY(key.cdnskey()?), ttl));
        }
    }
    out.push(record(DNSSECRData::NSEC3PARAM(nsec3::param()), 0));
    Ok(out)
}

#[cfg(test)]
mod change_tests;
#[cfg(test)]
mod tests;
