//! Signing a loaded zone (RFC 4035 §2): an RRSIG per authoritative RRset from every active
//! key that signs it, and the signed NSEC3 chain. The previous signed version of the zone is the
//! cache: an RRset (or NSEC3 record) that did not change keeps its signatures until less than
//! half of their validity is left (RFC 6781 §4.4.2), so a reload or an UPDATE re-signs only
//! what changed, and nothing is stored twice. New signatures are made on every core.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use hickory_proto::dnssec::rdata::{DNSSECRData, SigInput, RRSIG};
use hickory_proto::dnssec::TBS;
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType, SerialNumber};

use super::journal::{bounded, next_journal};
use super::keys::{Signer, ZoneKeys, SIGNATURE_VALIDITY};
use super::nsec3::{Chain, Hash};
use super::persist::{rrset_digest, Delta, Stored};
use crate::error::DnsError;
use crate::journal::Difference;
use crate::zone::Zone;

/// Inception is backdated for resolvers whose clocks are behind (RFC 6781 §4.4.2.3).
const INCEPTION_SLACK: u64 = 3600;

/// A zone's signatures and NSEC3 chain, beside the zone they sign.
#[derive(Default)]
pub struct SignedZone {
    sigs: HashMap<(LowerName, RecordType), Vec<Record>>,
    pub(crate) chain: Chain,
    /// The differences between the signed versions served so far, oldest first (for IXFR).
    journal: Vec<Arc<Difference>>,
}

impl SignedZone {
    /// The RRSIGs over the RRset `owner`/`rtype` (empty when it is not signed).
    pub fn sigs(&self, owner: &LowerName, rtype: RecordType) -> &[Record] {
        self.sigs
            .get(&(owner.clone(), rtype))
            .map_or(&[], Vec::as_slice)
    }

    /// Whether signing again at `now` would renew signatures (some have less than half their
    /// validity left): the zone then changes, and must be served under a new serial so that
    /// secondaries transfer the new signatures before the old ones expire.
    pub fn renewal_due(&self, now: u64) -> bool {
        let renew_after = now + SIGNATURE_VALIDITY.as_secs() / 2;
        self.sigs
            .values()
            .flatten()
            .filter_map(rrsig)
            .any(|sig| u64::from(sig.input().sig_expiration.get()) <= renew_after)
    }

    /// The differences between the signed versions served so far, oldest first, with their
    /// signature and NSEC3 changes: what IXFR sends (RFC 1995 §4).
    pub fn journal(&self) -> &[Arc<Difference>] {
        &self.journal
    }

    /// The RRSIGs of every signed RRset, by owner and type covered.
    pub(crate) fn all_sigs(
        &self,
    ) -> impl Iterator<Item = (&(LowerName, RecordType), &Vec<Record>)> {
        self.sigs.iter()
    }

    /// Every RRSIG and NSEC3 record, for zone transfers.
    pub fn transfer_records(&self) -> impl Iterator<Item = &Record> {
        self.sigs.values().flatten().chain(self.chain.records())
    }
}

/// One RRset to sign: where its signatures go, its owner and its records.
struct Job<'z> {
    slot: Slot<'z>,
    owner: Name,
    records: &'z [Record],
}

impl Job<'_> {
    /// The RRset's key in the store: owner and type (NSEC3 for a link).
    fn key(&self) -> (LowerName, RecordType) {
        match &self.slot {
            Slot::RrSet(name, rtype) => (name.clone(), *rtype),
            Slot::Link(..) => (LowerName::new(&self.owner), RecordType::NSEC3),
        }
    }
}

/// Where a job's signatures go: the RRset map, or the NSEC3 link with that index and hash.
enum Slot<'z> {
    RrSet(LowerName, RecordType),
    Link(usize, &'z Hash),
}

/// A signature the previous version did not have: job and signer.
struct Missing {
    job: usize,
    signer: usize,
}

/// The previous signed version of a zone, whose signatures are reused while they are fresh.
#[derive(Clone, Copy)]
pub struct Previous<'a> {
    /// The zone as it was signed.
    pub zone: &'a Zone,
    /// Its signatures.
    pub signed: &'a SignedZone,
}

impl<'a> Previous<'a> {
    /// The signatures over the job's RRset if it has not changed since.
    fn sigs(self, job: &Job<'_>) -> &'a [Record] {
        match &job.slot {
            Slot::RrSet(name, rtype) => {
                let unchanged = self
                    .zone
                    .node(name)
                    .and_then(|n| n.get(*rtype))
                    .is_some_and(|set| set.records.as_slice() == job.records);
                if unchanged {
                    self.signed.sigs(name, *rtype)
                } else {
                    &[]
                }
            }
            Slot::Link(_, hash) => self
                .signed
                .chain
                .link_of(hash, &job.records[0])
                .map_or(&[], |l| &l.records[1..]),
        }
    }
}

/// What a signing starts from: the previous signed version in memory or, after a restart, what
/// the store kept of it; and how many journal entries to keep.
#[derive(Clone, Copy, Default)]
pub struct Basis<'a> {
    /// The previous signed version, in this process.
    pub previous: Option<Previous<'a>>,
    /// The signatures and journal kept in the store, used when there is no previous version.
    pub stored: Option<&'a Stored>,
    /// Journal entries kept at most (0: no limit but the zone's size).
    pub max_changes: usize,
}

/// Signs `zone` with `keys` at time `now` (Unix seconds), reusing the fresh signatures of the
/// previous version (or the stored ones covering the same records); the missing ones are made
/// on every core. Returns the signed zone and what changed since the basis, for the store.
pub fn sign_zone(
    zone: &Zone,
    keys: &ZoneKeys,
    basis: Basis<'_>,
    now: u64,
) -> Result<(SignedZone, Delta), DnsError> {
    let previous = basis.previous;
    let mut chain = Chain::build(zone);
    let nsec3: Vec<Record> = chain.links_mut().map(|l| l.records[0].clone()).collect();
    let hashes: Vec<Hash> = chain.hashes().to_vec();
    let mut jobs = Vec::new();
    for (name, node) in zone.nodes() {
        if !zone.authoritative_name(name) {
            continue;
        }
        for set in &node.rrsets {
            if !node.cut || set.rtype == RecordType::DS {
                jobs.push(Job {
                    slot: Slot::RrSet(name.clone(), set.rtype),
                    owner: Name::from(name),
                    records: &set.records,
                });
            }
        }
    }
    for (i, (record, hash)) in nsec3.iter().zip(&hashes).enumerate() {
        jobs.push(Job {
            slot: Slot::Link(i, hash),
            owner: record.name.clone(),
            records: std::slice::from_ref(record),
        });
    }

    // The previous version first: what is fresh is reused, the rest is signed below.
    let renew_after = now + SIGNATURE_VALIDITY.as_secs() / 2;
    let mut sigs: Vec<Vec<Option<Record>>> = Vec::with_capacity(jobs.len());
    let mut missing = Vec::new();
    let mut olds: Vec<&[Record]> = Vec::with_capacity(jobs.len());
    for (j, job) in jobs.iter().enumerate() {
        // Stored signatures first: another node's version of the same records is adopted.
        let stored = basis.stored.map_or(&[][..], |stored| {
            let (owner, rtype) = job.key();
            stored.sigs(&owner, rtype, job.records)
        });
        let old = match previous {
            Some(p) if stored.is_empty() => p.sigs(job),
            _ => stored,
        };
        olds.push(old);
        let mut slots = vec![None; keys.signers.len()];
        for (k, signer) in keys.signers.iter().enumerate() {
            if !signs(job, signer) {
                continue;
            }
            let fresh = old.iter().find(|r| {
                rrsig(r).is_some_and(|sig| {
                    sig.input().key_tag == signer.tag
                        && sig.input().algorithm == signer.signer.key().algorithm()
                        && u64::from(sig.input().sig_expiration.get()) > renew_after
                })
            });
            match fresh {
                Some(record) => slots[k] = Some(record.clone()),
                None => missing.push(Missing { job: j, signer: k }),
            }
        }
        sigs.push(slots);
    }

    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = missing.len().div_ceil(threads).max(64);
    let made: Vec<Result<Vec<Record>, DnsError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = missing
            .chunks(chunk)
            .map(|part| {
                let jobs = &jobs;
                scope.spawn(move || {
                    part.iter()
                        .map(|m| sign(&jobs[m.job], &keys.signers[m.signer], zone.origin(), now))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(DnsError::Dnssec("signing thread panicked".into())))
            })
            .collect()
    });
    let mut made = made
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten();
    for m in missing {
        let record = made
            .next()
            .ok_or_else(|| DnsError::Dnssec("signature missing".into()))?;
        sigs[m.job][m.signer] = Some(record);
    }

    let mut signed = SignedZone::default();
    let mut delta = Delta::default();
    let mut links: Vec<_> = chain.links_mut().collect();
    for ((job, slots), old) in jobs.iter().zip(sigs).zip(olds) {
        let records: Vec<Record> = slots.into_iter().flatten().collect();
        if records.as_slice() != old {
            let (owner, rtype) = job.key();
            delta
                .upserts
                .push((owner, rtype, rrset_digest(job.records), records.clone()));
        }
        match &job.slot {
            Slot::RrSet(name, rtype) => {
                signed.sigs.insert((name.clone(), *rtype), records);
            }
            Slot::Link(i, _) => links[*i].records.extend(records),
        }
    }
    drop(links);
    signed.chain = chain;
    delta.deletes = dropped(&basis, &signed);
    match (previous, basis.stored) {
        (Some(previous), _) => {
            let (journal, entry) = next_journal(previous, zone, &signed, basis.max_changes);
            signed.journal = journal;
            delta.entry = entry;
        }
        (None, Some(stored)) => {
            signed.journal = bounded(stored.journal().to_vec(), zone, &signed, basis.max_changes);
        }
        (None, None) => {}
    }
    if let (Some(_), Some(stored)) = (previous, basis.stored) {
        adopt_entries(&mut signed.journal, stored.journal());
    }
    Ok((signed, delta))
}

/// Replaces the entries of `journal` by the stored ones of the same step.
fn adopt_entries(journal: &mut [Arc<Difference>], stored: &[Arc<Difference>]) {
    for entry in journal.iter_mut() {
        if let Some(theirs) = stored
            .iter()
            .find(|s| (s.from, s.to) == (entry.from, entry.to))
        {
            *entry = theirs.clone();
        }
    }
}

/// The RRsets (and NSEC3 records) the basis had signatures for and `signed` has not.
fn dropped(basis: &Basis<'_>, signed: &SignedZone) -> Vec<(LowerName, RecordType)> {
    let mut out = Vec::new();
    let unsigned = |key: &(LowerName, RecordType)| !signed.sigs.contains_key(key);
    match (basis.previous, basis.stored) {
        (Some(previous), _) => {
            out.extend(previous.signed.sigs.keys().filter(|k| unsigned(k)).cloned());
            // NSEC3 records whose hash is no longer in the chain.
            let now: HashSet<&Hash> = signed.chain.hashes().iter().collect();
            for (hash, link) in previous
                .signed
                .chain
                .hashes()
                .iter()
                .zip(previous.signed.chain.links())
            {
                if !now.contains(hash) {
                    if let Some(nsec3) = link.records.first() {
                        out.push((LowerName::new(&nsec3.name), RecordType::NSEC3));
                    }
                }
            }
        }
        (None, Some(stored)) => {
            let links: HashSet<LowerName> = signed
                .chain
                .links()
                .filter_map(|l| Some(LowerName::new(&l.records.first()?.name)))
                .collect();
            out.extend(
                stored
                    .keys()
                    .filter(|k| {
                        if k.1 == RecordType::NSEC3 {
                            !links.contains(&k.0)
                        } else {
                            unsigned(k)
                        }
                    })
                    .cloned(),
            );
        }
        (None, None) => {}
    }
    out
}

/// True when `signer` signs the job's RRset: entry-point keys sign DNSKEY, CDS and CDNSKEY,
/// zone keys the rest.
fn signs(job: &Job<'_>, signer: &Signer) -> bool {
    let key_set = job.records.first().is_some_and(|r| {
        matches!(
            r.record_type(),
            RecordType::DNSKEY | RecordType::CDS | RecordType::CDNSKEY
        )
    });
    if key_set {
        signer.signs_keys
    } else {
        signer.signs_data
    }
}

/// Makes one RRSIG (RFC 4034 §3, RFC 4035 §2.2).
fn sign(job: &Job<'_>, signer: &Signer, zone: &Name, now: u64) -> Result<Record, DnsError> {
    let (owner, records) = (&job.owner, job.records);
    let rtype = records
        .first()
        .map(Record::record_type)
        .ok_or_else(|| DnsError::Dnssec(format!("{owner}: empty RRset")))?;
    let ttl = records[0].ttl;
    let input = SigInput {
        type_covered: rtype,
        algorithm: signer.signer.key().algorithm(),
        num_labels: owner.num_labels(),
        original_ttl: ttl,
        sig_expiration: SerialNumber::new(serial_time(now + SIGNATURE_VALIDITY.as_secs())),
        sig_inception: SerialNumber::new(serial_time(now.saturating_sub(INCEPTION_SLACK))),
        key_tag: signer.tag,
        signer_name: zone.clone(),
    };
    let failed = |e: &dyn std::fmt::Display| DnsError::Dnssec(format!("{owner} {rtype}: {e}"));
    let tbs =
        TBS::from_input(owner, DNSClass::IN, &input, records.iter()).map_err(|e| failed(&e))?;
    let sig = signer.signer.sign(&tbs).map_err(|e| failed(&e))?;
    Ok(Record::from_rdata(
        owner.clone(),
        ttl,
        RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, sig))),
    ))
}

/// RRSIG times are 32-bit serial numbers of Unix seconds (RFC 4034 §3.1.5).
fn serial_time(t: u64) -> u32 {
    (t & u64::from(u32::MAX)) as u32
}

/// The RRSIG data of a record, if it is one.
pub(crate) fn rrsig(record: &Record) -> Option<&RRSIG> {
    match &record.data {
        RData::DNSSEC(DNSSECRData::RRSIG(sig)) => Some(sig),
        _ => None,
    }
}
