//! A signed zone's state as the store keeps it, so that a restart (or another node on the same
//! database) serves the signed zone its secondaries hold and IXFR (RFC 1995 §4) still sends
//! them differences: the signatures of every RRset and NSEC3 record, each with a digest of the
//! records it covers (reused while they are the same and fresh), and the journal of
//! differences between the signed versions served. Records travel in DNS wire format.

use std::collections::HashMap;
use std::sync::Arc;

use hickory_proto::rr::{LowerName, Name, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};
use sha2::{Digest, Sha256};

use super::keys::SIGNATURE_VALIDITY;
use super::sign::rrsig;
use crate::error::DnsError;
use crate::journal::Difference;

/// The signatures over one RRset (or one NSEC3 record), as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureRow {
    /// Owner name, lower case, fully qualified.
    pub owner: String,
    /// Type of the RRset signed.
    pub rtype: u16,
    /// [`rrset_digest`] of the RRset the signatures cover.
    pub digest: u64,
    /// The RRSIG records, in wire format ([`encode`]).
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

/// The stored signatures of one zone, parsed, by RRset.
#[derive(Debug, Default)]
pub struct Stored {
    sigs: HashMap<(LowerName, RecordType), (u64, Vec<Record>)>,
    journal: Vec<Arc<Difference>>,
}

impl Stored {
    /// Parses what the store holds; a row that does not parse is left out (its RRset is
    /// signed again), a journal entry that does not parse ends the journal before it.
    pub fn parse(stored: &StoredSigned) -> Stored {
        let mut sigs = HashMap::with_capacity(stored.signatures.len());
        for row in &stored.signatures {
            let (Ok(owner), Ok(records)) = (Name::from_ascii(&row.owner), decode(&row.rrsigs))
            else {
                continue;
            };
            sigs.insert(
                (LowerName::new(&owner), RecordType::from(row.rtype)),
                (row.digest, records),
            );
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

    /// The stored signatures over `records` (the RRset `owner`/`rtype`), if they cover
    /// exactly these records.
    pub(crate) fn sigs(
        &self,
        owner: &LowerName,
        rtype: RecordType,
        records: &[Record],
    ) -> &[Record] {
        match self.sigs.get(&(owner.clone(), rtype)) {
            Some((digest, sigs)) if *digest == rrset_digest(records) => sigs,
            _ => &[],
        }
    }

    /// Every stored RRset key.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &(LowerName, RecordType)> {
        self.sigs.keys()
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
                .flat_map(|(_, s)| s)
                .filter_map(rrsig)
                .any(|sig| u64::from(sig.input().sig_expiration.get()) <= renew_after)
    }
}

/// A digest of an RRset's records (owner, type, class, TTL and RDATA in wire form): the same
/// across restarts and releases.
pub fn rrset_digest(records: &[Record]) -> u64 {
    let mut all = Sha256::new();
    for record in records {
        match record.to_bytes() {
            Ok(wire) => all.update(&wire),
            Err(_) => all.update(record.to_string().as_bytes()),
        }
    }
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

/// What one signing changed, before it is put in stored form ([`Delta::into_change`]).
#[derive(Debug, Default)]
pub struct Delta {
    /// The new journal entry, if the serial moved.
    pub entry: Option<Arc<Difference>>,
    /// RRsets whose signatures are new: owner, type, [`rrset_digest`] and the RRSIGs.
    pub upserts: Vec<(LowerName, RecordType, u64, Vec<Record>)>,
    /// RRsets no longer signed.
    pub deletes: Vec<(LowerName, RecordType)>,
}

impl Delta {
    /// Whether the signing changed nothing the store keeps.
    pub fn is_empty(&self) -> bool {
        self.entry.is_none() && self.upserts.is_empty() && self.deletes.is_empty()
    }

    /// The change in stored form, for the zone `zone` of `view` signed under `serial`.
    pub fn into_change(
        self,
        view: &str,
        zone: &Name,
        serial: u32,
    ) -> Result<SignedChange, DnsError> {
        Ok(SignedChange {
            view: view.to_owned(),
            zone: zone.to_lowercase().to_string(),
            serial,
            entry: self.entry.as_deref().map(journal_row).transpose()?,
            upserts: self
                .upserts
                .into_iter()
                .map(|(owner, rtype, digest, sigs)| {
                    Ok(SignatureRow {
                        owner: owner.to_string(),
                        rtype: u16::from(rtype),
                        digest,
                        rrsigs: encode(&sigs)?,
                    })
                })
                .collect::<Result<_, DnsError>>()?,
            deletes: self
                .deletes
                .into_iter()
                .map(|(owner, rtype)| (owner.to_string(), u16::from(rtype)))
                .collect(),
        })
    }
}
