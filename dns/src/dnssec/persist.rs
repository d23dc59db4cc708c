//! A signed zone's state as the store keeps it, so that a restart (or another node on the same
//! database) serves the signed zone its secondaries hold and IXFR (RFC 1995 §4) still sends
//! them differences: the signatures of every RRset and NSEC3 record, each with a digest of the
//! records it covers (reused while they are the same and fresh), and the journal of
//! differences between the signed versions served. Signatures are kept as the compact zone
//! form keeps them (each RRSIG's RDATA after its two-octet length), journal records in DNS
//! wire format.

use std::sync::Arc;

use hickory_proto::rr::{Name, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};
use sha2::{Digest, Sha256};

use super::keys::SIGNATURE_VALIDITY;
use super::sign::{expiration, SignedZone};
use crate::error::DnsError;
use crate::journal::Difference;
use crate::zone::{key_name, rdata_list, NameKey, NameMap, RrSet};

/// The signatures over one RRset (or one NSEC3 record), as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureRow {
    /// Owner name, lower case, fully qualified.
    pub owner: String,
    /// Type of the RRset signed.
    pub rtype: u16,
    /// Digest of the RRset the signatures cover (owner, type, TTL and RDATA).
    pub digest: u64,
    /// The RRSIGs' RDATA, each after its length as two octets (network order).
    pub rrsigs: Vec<u8>,
}

/// One journal entry of a signed zone, as stored: the difference between two served serials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalRow {
    /// Served serial before.
    pub from: u32,
    /// Served serial after.
    pub to: u32,
    /// Records removed, in wire format ([`encode`]).
    pub removed: Vec<u8>,
    /// Records added, in wire format.
    pub added: Vec<u8>,
}

/// What the store holds for one signed zone of one view, read at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredSigned {
    /// The view.
    pub view: String,
    /// The zone origin, lower case with a trailing dot.
    pub zone: String,
    /// The signatures served last.
    pub signatures: Vec<SignatureRow>,
    /// The journal, oldest entry first.
    pub journal: Vec<JournalRow>,
}

/// What one signing changed, for the store: the new journal entry (when the serial moved),
/// the signatures made or dropped since the version before.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignedChange {
    /// The view.
    pub view: String,
    /// The zone origin, lower case with a trailing dot.
    pub zone: String,
    /// The served serial of the signed version.
    pub serial: u32,
    /// The difference from the previous signed version, if the serial moved.
    pub entry: Option<JournalRow>,
    /// Signatures new or changed, replacing the stored ones of their RRset.
    pub upserts: Vec<SignatureRow>,
    /// RRsets (owner, type) no longer signed.
    pub deletes: Vec<(String, u16)>,
}

/// The stored signatures of one RRset: type signed, digest and the RRSIGs' RDATA (stored form).
type StoredSet = (RecordType, u64, Box<[u8]>);

/// The stored signatures of one zone by lower-cased wire owner name, and its journal.
#[derive(Debug, Default)]
pub struct Stored {
    sigs: NameMap<Vec<StoredSet>>,
    journal: Vec<Arc<Difference>>,
}

impl Stored {
    /// Takes what the store holds; a row that does not parse is left out (its RRset is signed
    /// again), a journal entry that does not parse ends the journal before it.
    pub fn parse(stored: StoredSigned) -> Stored {
        let mut sigs: NameMap<Vec<StoredSet>> = NameMap::default();
        for row in stored.signatures {
            let Ok(owner) = Name::from_ascii(&row.owner) else {
                continue;
            };
            if rdata_list(&row.rrsigs).is_none() {
                continue;
            }
            sigs.entry(NameKey::new(&owner).as_bytes().into())
                .or_default()
                .push((RecordType::from(row.rtype), row.digest, row.rrsigs.into()));
        }
        let mut journal = Vec::new();
        for row in &stored.journal {
            match (decode(&row.removed), decode(&row.added)) {
                (Ok(removed), Ok(added)) => journal.push(Arc::new(Difference {
                    from: row.from,
                    to: row.to,
                    removed,
                    added,
                })),
                _ => {
                    tracing::warn!(view = %stored.view, zone = %stored.zone, from = row.from, "stored journal entry does not parse; IXFR across it sends the full zone");
                    journal.clear();
                }
            }
        }
        Stored { sigs, journal }
    }

    /// The stored signatures (RDATA) over the RRset `set` of the owner with wire key `owner`,
    /// if they cover exactly these records.
    pub(crate) fn sigs(&self, owner: &[u8], set: RrSet<'_>) -> Vec<&[u8]> {
        let found = self
            .sigs
            .get(owner)
            .and_then(|sets| sets.iter().find(|s| s.0 == set.rtype));
        match found {
            Some((_, digest, sigs)) if *digest == rrset_digest(owner, set) => {
                rdata_list(sigs).unwrap_or_default()
            }
            _ => Vec::new(),
        }
    }

    /// Every stored RRset key: wire owner name and type.
    pub(crate) fn keys(&self) -> impl Iterator<Item = (&[u8], RecordType)> {
        self.sigs
            .iter()
            .flat_map(|(owner, sets)| sets.iter().map(move |s| (&owner[..], s.0)))
    }

    /// The stored journal, oldest first.
    pub(crate) fn journal(&self) -> &[Arc<Difference>] {
        &self.journal
    }

    /// Whether signing at `now` would renew some stored signature (less than half its validity
    /// left), or there is none: the signed zone then differs from the one served before.
    pub fn renewal_due(&self, now: u64) -> bool {
        let renew_after = now + SIGNATURE_VALIDITY.as_secs() / 2;
        self.sigs.is_empty()
            || self
                .sigs
                .values()
                .flatten()
                .flat_map(|(_, _, sigs)| rdata_list(sigs).unwrap_or_default())
                .any(|sig| expiration(sig).is_some_and(|e| u64::from(e) <= renew_after))
    }
}

/// A digest of an RRset (lower-cased wire owner, type, TTL and RDATA in wire form): the same
/// across restarts and releases.
pub(crate) fn rrset_digest(owner: &[u8], set: RrSet<'_>) -> u64 {
    let mut all = Sha256::new();
    all.update(owner);
    all.update(u16::from(set.rtype).to_be_bytes());
    all.update(set.ttl().to_be_bytes());
    all.update(set.wire());
    let sum = all.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&sum[..8]);
    u64::from_be_bytes(first)
}

/// Records in DNS wire format, one after the other (names compressed within the buffer).
pub fn encode(records: &[Record]) -> Result<Vec<u8>, DnsError> {
    let mut out = Vec::new();
    let mut encoder = BinEncoder::new(&mut out);
    for record in records {
        record
            .emit(&mut encoder)
            .map_err(|e| DnsError::Dnssec(format!("{}: {e}", record.name)))?;
    }
    Ok(out)
}

/// The records of an [`encode`]d buffer.
pub fn decode(wire: &[u8]) -> Result<Vec<Record>, DnsError> {
    let mut decoder = BinDecoder::new(wire);
    let mut out = Vec::new();
    while !decoder.is_empty() {
        out.push(
            Record::read(&mut decoder)
                .map_err(|e| DnsError::Dnssec(format!("stored record: {e}")))?,
        );
    }
    Ok(out)
}

/// The stored form of a journal entry.
fn journal_row(d: &Difference) -> Result<JournalRow, DnsError> {
    Ok(JournalRow {
        from: d.from,
        to: d.to,
        removed: encode(&d.removed)?,
        added: encode(&d.added)?,
    })
}

/// An RRset whose signatures changed: wire owner name, type, [`rrset_digest`] and, for an
/// NSEC3 record, its link in the chain. The signatures are read from the signed zone when the
/// change is put in stored form, so that a signing does not hold them twice.
#[derive(Debug)]
pub struct Upsert {
    pub(crate) owner: Box<[u8]>,
    pub(crate) rtype: RecordType,
    pub(crate) digest: u64,
    pub(crate) link: Option<usize>,
}

/// What one signing changed, before it is put in stored form ([`Delta::into_change`]).
#[derive(Debug, Default)]
pub struct Delta {
    /// The new journal entry, if the serial moved.
    pub entry: Option<Arc<Difference>>,
    /// RRsets whose signatures are new.
    pub upserts: Vec<Upsert>,
    /// RRsets no longer signed: wire owner name and type.
    pub deletes: Vec<(Box<[u8]>, RecordType)>,
}

impl Delta {
    /// Whether the signing changed nothing the store keeps.
    pub fn is_empty(&self) -> bool {
        self.entry.is_none() && self.upserts.is_empty() && self.deletes.is_empty()
    }

    /// The change in stored form, for the zone `zone` of `view` signed under `serial` as
    /// `signed`.
    pub fn into_change(
        self,
        view: &str,
        zone: &Name,
        serial: u32,
        signed: &SignedZone,
    ) -> Result<SignedChange, DnsError> {
        Ok(SignedChange {
            view: view.to_owned(),
            zone: zone.to_lowercase().to_string(),
            serial,
            entry: self.entry.as_deref().map(journal_row).transpose()?,
            upserts: self
                .upserts
                .into_iter()
                .map(|u| SignatureRow {
                    owner: key_name(&u.owner).to_string(),
                    rtype: u16::from(u.rtype),
                    digest: u.digest,
                    rrsigs: signed.stored_sigs(&u.owner, u.rtype, u.link),
                })
                .collect(),
            deletes: self
                .deletes
                .into_iter()
                .map(|(owner, rtype)| (key_name(&owner).to_string(), u16::from(rtype)))
                .collect(),
        })
    }
}
