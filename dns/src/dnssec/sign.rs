//! Signing a loaded zone (RFC 4035 §2): an RRSIG per authoritative RRset from every active
//! key that signs it, and the signed NSEC3 chain. The previous signed version of the zone is the
//! cache: an RRset (or NSEC3 record) that did not change keeps its signatures until less than
//! half of their validity is left (RFC 6781 §4.4.2), so a reload or an UPDATE re-signs only
//! what changed, and nothing is stored twice. New signatures are made on every core.

use std::collections::HashSet;
use std::sync::Arc;

use hickory_proto::dnssec::rdata::{DNSSECRData, SigInput, RRSIG};
use hickory_proto::dnssec::TBS;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, SerialNumber};

use super::incremental::sign_change;
use super::journal::{bounded, difference, next_journal};
use super::keys::{Signer, ZoneKeys, SIGNATURE_VALIDITY};
use super::nsec3::{Chain, Hash};
use super::persist::{rrset_digest, Delta, Stored, Upsert};
use crate::error::DnsError;
use crate::journal::Difference;
use crate::zone::{key_name, rdata_wire, NameKey, NameMap, Node, RrSet, Zone};

/// Inception is backdated for resolvers whose clocks are behind (RFC 6781 §4.4.2.3).
const INCEPTION_SLACK: u64 = 3600;

/// A zone's signatures and NSEC3 chain, beside the zone they sign.
#[derive(Default)]
pub struct SignedZone {
    /// The RRSIGs by lower-cased wire owner name: a compact node whose RRsets are the
    /// signatures over each signed RRset, by type covered.
    pub(super) sigs: NameMap<Node>,
    pub(crate) chain: Chain,
    /// The differences between the signed versions served so far, oldest first (for IXFR).
    pub(super) journal: Vec<Arc<Difference>>,
    /// The earliest expiration of a signature (none without signatures); after a change, of
    /// the signatures before it too (a signature dropped may have been the earliest: renewal
    /// is then checked for early, and signing again renews nothing that is not due).
    pub(super) earliest: Option<u32>,
}

impl SignedZone {
    /// The RRSIGs over the RRset `source`/`rtype` (none when it is not signed), owned by
    /// `owner`: `source` itself, or the name a wildcard `source` was expanded to.
    pub fn sigs(&self, source: &Name, rtype: RecordType, owner: &Name) -> Vec<Record> {
        self.sig_set(source, rtype)
            .map_or_else(Vec::new, |s| s.records_as(owner, RecordType::RRSIG))
    }

    /// The stored RRSIGs over the RRset `owner`/`rtype`.
    fn sig_set(&self, owner: &Name, rtype: RecordType) -> Option<RrSet<'_>> {
        self.sig_set_key(NameKey::new(owner).as_bytes(), rtype)
    }

    /// The stored RRSIGs over the RRset of `rtype` at the lower-cased wire name `key`.
    pub(crate) fn sig_set_key(&self, key: &[u8], rtype: RecordType) -> Option<RrSet<'_>> {
        self.sigs.get(key)?.get(rtype)
    }

    /// Whether signing again at `now` would renew signatures (some have less than half their
    /// validity left): the zone then changes, and must be served under a new serial so that
    /// secondaries transfer the new signatures before the old ones expire.
    pub fn renewal_due(&self, now: u64) -> bool {
        let renew_after = now + SIGNATURE_VALIDITY.as_secs() / 2;
        self.earliest.is_some_and(|e| u64::from(e) <= renew_after)
    }

    /// The earliest expiration of all its signatures.
    fn earliest_expiration(&self) -> Option<u32> {
        let links = (0..self.chain.len()).filter_map(|i| self.chain.sigs(i));
        self.sigs
            .values()
            .flat_map(Node::rrsets)
            .chain(links)
            .flat_map(|set| set.rdata())
            .filter_map(expiration)
            .min()
    }

    /// The differences between the signed versions served so far, oldest first, with their
    /// signature and NSEC3 changes: what IXFR sends (RFC 1995 §4).
    pub fn journal(&self) -> &[Arc<Difference>] {
        &self.journal
    }

    /// The RRSIGs of every signed RRset: owner, type covered and signatures.
    pub(crate) fn all_sigs(&self) -> impl Iterator<Item = (Name, RrSet<'_>)> {
        self.sigs
            .iter()
            .flat_map(|(key, node)| node.rrsets().map(move |set| (key_name(key), set)))
    }

    /// Every signed RRset: wire owner name and type covered.
    fn sig_keys(&self) -> impl Iterator<Item = (&[u8], RecordType)> {
        self.sigs
            .iter()
            .flat_map(|(key, node)| node.rrsets().map(move |set| (&key[..], set.rtype)))
    }

    /// The signatures over the RRset `owner`/`rtype` (or over NSEC3 link `link`) in stored
    /// form ([`super::SignatureRow::rrsigs`]).
    pub(crate) fn stored_sigs(
        &self,
        owner: &[u8],
        rtype: RecordType,
        link: Option<usize>,
    ) -> Vec<u8> {
        let set = match link {
            Some(i) => self.chain.sigs(i),
            None => self.sigs.get(owner).and_then(|n| n.get(rtype)),
        };
        set.map_or_else(Vec::new, |s| s.wire().to_vec())
    }

    /// The types covered by the signatures at `owner`.
    pub(crate) fn covered(&self, owner: &Name) -> Vec<RecordType> {
        self.sigs
            .get(NameKey::new(owner).as_bytes())
            .map_or_else(Vec::new, |n| n.rrsets().map(|s| s.rtype).collect())
    }

    /// Whether the RRset with wire owner name `owner` and type `rtype` is signed.
    fn signs_key(&self, owner: &[u8], rtype: RecordType) -> bool {
        self.sigs.get(owner).is_some_and(|n| n.get(rtype).is_some())
    }

    /// The RRSIGs over `owner`/`rtype` in `other` are the same as in `self`.
    pub(crate) fn same_sigs(&self, other: &SignedZone, owner: &Name, rtype: RecordType) -> bool {
        self.sig_set(owner, rtype) == other.sig_set(owner, rtype)
    }

    /// Every RRSIG and NSEC3 record, for zone transfers.
    pub fn transfer_records(&self) -> impl Iterator<Item = Record> + '_ {
        self.all_sigs()
            .flat_map(|(owner, set)| set.records_as(&owner, RecordType::RRSIG))
            .chain(self.chain.all_records())
    }

    /// The number of RRSIG and NSEC3 records.
    pub(crate) fn record_count(&self) -> usize {
        let links = (0..self.chain.len())
            .map(|i| 1 + self.chain.sigs(i).map_or(0, |s| s.len()))
            .sum::<usize>();
        self.sigs
            .values()
            .flat_map(Node::rrsets)
            .map(|s| s.len())
            .sum::<usize>()
            + links
    }
}

/// The signatures over one RRset: type covered, TTL and RRSIGs in wire form.
type WireSet<'a> = (RecordType, u32, Vec<&'a [u8]>);

/// The signatures of one job: one slot per signer, `None` where it does not sign the job.
pub(super) type JobSigs = Vec<Option<Box<[u8]>>>;

/// The signatures (wire RDATA) over the NSEC3 record of a link, by link.
pub(super) type LinkSigs<'a> = (usize, Vec<&'a [u8]>);

/// One RRset to sign: where its signatures go, its owner and its records.
pub(super) struct Job<'z> {
    pub(super) slot: Slot<'z>,
    pub(super) owner: Name,
    pub(super) set: RrSet<'z>,
}

/// Where a job's signatures go: the signatures of the owner's RRset of that type, or the NSEC3
/// link with that index and hash.
pub(super) enum Slot<'z> {
    RrSet(RecordType),
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
    /// The signatures (wire RDATA) over the job's RRset if it has not changed since.
    pub(super) fn sigs(self, job: &Job<'_>) -> Vec<&'a [u8]> {
        let set = match &job.slot {
            Slot::RrSet(rtype) => {
                let unchanged = self
                    .zone
                    .node(&job.owner)
                    .and_then(|n| n.get(*rtype))
                    .is_some_and(|set| set == job.set);
                unchanged
                    .then(|| self.signed.sig_set(&job.owner, *rtype))
                    .flatten()
            }
            Slot::Link(_, hash) => self
                .signed
                .chain
                .link_of(hash, job.set)
                .and_then(|i| self.signed.chain.sigs(i)),
        };
        set.map_or_else(Vec::new, |s| s.rdata().collect())
    }
}

/// What a signing starts from: the previous signed version in memory or, after a restart, what
/// the store kept of it; and how many journal entries to keep.
#[derive(Clone, Copy, Default)]
pub struct Basis<'a> {
    /// The previous signed version, in this process.
    pub previous: Option<Previous<'a>>,
    /// The signatures and journal kept in the store: preferred over the previous version's
    /// where they cover the same records (another node's version is adopted).
    pub stored: Option<&'a Stored>,
    /// Journal entries kept at most (0: no limit but the zone's size).
    pub max_changes: usize,
    /// Whether to work out the signatures made and dropped, for the store ([`Delta`]).
    pub changes: bool,
    /// The only names whose data differs from the previous version's (besides the SOA
    /// serial), when the caller knows them: the change is then signed in proportion to its
    /// size ([`super::incremental`]).
    pub touched: Option<&'a [Name]>,
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
    if let (Some(previous), None, Some(touched)) = (previous, basis.stored, basis.touched) {
        if let Some(signed) = sign_change(zone, keys, previous, touched, &basis, now)? {
            return Ok(signed);
        }
    }
    let mut chain = Chain::build(zone)?;
    let link_sets = signing_jobs_of_chain(&chain);
    let mut jobs = Vec::new();
    for (name, node) in zone.nodes() {
        if zone.authoritative_name(&name) {
            push_rrset_jobs(&mut jobs, &name, node);
        }
    }
    jobs.extend(link_sets);

    let (sigs, kept) = sign_jobs(&jobs, keys, zone.origin(), now, basis.changes, |job| {
        let stored = basis.stored.map_or_else(Vec::new, |stored| {
            stored.sigs(NameKey::new(&job.owner).as_bytes(), job.set)
        });
        match previous {
            Some(p) if stored.is_empty() => p.sigs(job),
            _ => stored,
        }
    })?;

    let mut signed = SignedZone::default();
    let mut delta = Delta::default();
    let by_link = signed.put_sigs(&jobs, &sigs, kept, &mut delta)?;
    signed.sigs.shrink_to_fit();
    drop(jobs);
    for (i, records) in by_link {
        chain.set_sigs(i, records)?;
    }
    signed.chain = chain;
    signed.earliest = signed.earliest_expiration();
    if basis.changes {
        delta.deletes = dropped(&basis, &signed);
    }
    match (previous, basis.stored) {
        (Some(previous), _) => {
            let (journal, entry) = next_journal(previous, zone, &signed, basis.max_changes, || {
                difference(previous, zone, &signed)
            });
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

/// The signatures of each job, one slot per signer (`None` where the signer does not sign
/// it), and per job whether they are exactly its `old` ones (always true without `changes`):
/// an old signature by the same key with more than half its validity left is reused
/// (RFC 6781 §4.4.2), the missing ones are made on every core.
pub(super) fn sign_jobs<'a>(
    jobs: &[Job<'_>],
    keys: &ZoneKeys,
    origin: &Name,
    now: u64,
    changes: bool,
    old_sigs: impl Fn(&Job<'_>) -> Vec<&'a [u8]>,
) -> Result<(Vec<JobSigs>, Vec<bool>), DnsError> {
    let renew_after = now + SIGNATURE_VALIDITY.as_secs() / 2;
    let mut sigs: Vec<JobSigs> = Vec::with_capacity(jobs.len());
    let mut missing = Vec::new();
    let mut kept = Vec::with_capacity(jobs.len());
    for (j, job) in jobs.iter().enumerate() {
        let old = old_sigs(job);
        let mut slots: Vec<Option<Box<[u8]>>> = vec![None; keys.signers.len()];
        for (k, signer) in keys.signers.iter().enumerate() {
            if !signs(job, signer) {
                continue;
            }
            let fresh = old.iter().find(|sig| {
                key_tag(sig) == Some(signer.tag)
                    && algorithm(sig) == Some(u8::from(signer.signer.key().algorithm()))
                    && expiration(sig).is_some_and(|e| u64::from(e) > renew_after)
            });
            match fresh {
                Some(sig) => slots[k] = Some(Box::from(*sig)),
                None => missing.push(Missing { job: j, signer: k }),
            }
        }
        let made = missing.last().is_some_and(|m: &Missing| m.job == j);
        let reused = slots.iter().flatten().map(|sig| &**sig);
        kept.push(!changes || (!made && reused.eq(old.iter().copied())));
        sigs.push(slots);
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = missing.len().div_ceil(threads).max(64);
    let made: Vec<Result<Vec<Box<[u8]>>, DnsError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = missing
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|m| sign(&jobs[m.job], &keys.signers[m.signer], origin, now))
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
        let sig = made
            .next()
            .ok_or_else(|| DnsError::Dnssec("signature missing".into()))?;
        sigs[m.job][m.signer] = Some(sig);
    }
    Ok((sigs, kept))
}

/// Adds a job for each RRset of `node` that is signed: every one, but at a delegation point
/// only the DS RRset (RFC 4035 §2.2).
pub(super) fn push_rrset_jobs<'z>(jobs: &mut Vec<Job<'z>>, owner: &Name, node: &'z Node) {
    for set in node.rrsets() {
        if !node.is_cut() || set.rtype == RecordType::DS {
            jobs.push(Job {
                slot: Slot::RrSet(set.rtype),
                owner: owner.clone(),
                set,
            });
        }
    }
}

/// The earliest expiration of the signatures made or kept for jobs.
pub(super) fn earliest_of(sigs: &[JobSigs]) -> Option<u32> {
    sigs.iter()
        .flatten()
        .flatten()
        .filter_map(|sig| expiration(sig))
        .min()
}

/// The RRset of a job whose signatures changed, for the store.
fn upsert(job: &Job<'_>) -> Upsert {
    let owner: Box<[u8]> = NameKey::new(&job.owner).as_bytes().into();
    Upsert {
        digest: rrset_digest(&owner, job.set),
        owner,
        rtype: job.set.rtype,
        link: match job.slot {
            Slot::Link(i, _) => Some(i),
            Slot::RrSet(_) => None,
        },
    }
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

/// The RRsets (and NSEC3 records) the basis had signatures for and `signed` has not: wire
/// owner name and type.
fn dropped(basis: &Basis<'_>, signed: &SignedZone) -> Vec<(Box<[u8]>, RecordType)> {
    let mut out: Vec<(Box<[u8]>, RecordType)> = Vec::new();
    match (basis.previous, basis.stored) {
        (Some(previous), _) => {
            out.extend(
                previous
                    .signed
                    .sig_keys()
                    .filter(|(owner, rtype)| !signed.signs_key(owner, *rtype))
                    .map(|(owner, rtype)| (owner.into(), rtype)),
            );
            // NSEC3 records whose hash is no longer in the chain.
            let before = &previous.signed.chain;
            for (j, hash) in before.hashes().iter().enumerate() {
                if signed.chain.index(hash).is_none() {
                    if let Some(owner) = before.owner(j) {
                        out.push((NameKey::new(&owner).as_bytes().into(), RecordType::NSEC3));
                    }
                }
            }
        }
        (None, Some(stored)) => {
            let links: HashSet<Box<[u8]>> = (0..signed.chain.len())
                .filter_map(|i| Some(NameKey::new(&signed.chain.owner(i)?).as_bytes().into()))
                .collect();
            out.extend(
                stored
                    .keys()
                    .filter(|(owner, rtype)| {
                        if *rtype == RecordType::NSEC3 {
                            !links.contains(*owner)
                        } else {
                            !signed.signs_key(owner, *rtype)
                        }
                    })
                    .map(|(owner, rtype)| (owner.into(), rtype)),
            );
        }
        (None, None) => {}
    }
    out
}

/// One signing job per link of the NSEC3 chain.
fn signing_jobs_of_chain(chain: &Chain) -> Vec<Job<'_>> {
    chain
        .hashes()
        .iter()
        .enumerate()
        .filter_map(|(i, hash)| {
            Some(Job {
                slot: Slot::Link(i, hash),
                owner: chain.owner(i)?,
                set: chain.nsec3(i)?,
            })
        })
        .collect()
}

impl SignedZone {
    /// Stores the signatures of the RRset jobs (those of one owner's RRsets are made by
    /// consecutive jobs: one node per owner) and records in `delta` the jobs whose signatures
    /// are not `kept`; returns the signatures of the NSEC3 links, by link.
    pub(super) fn put_sigs<'j>(
        &mut self,
        jobs: &[Job<'_>],
        sigs: &'j [JobSigs],
        kept: Vec<bool>,
        delta: &mut Delta,
    ) -> Result<Vec<LinkSigs<'j>>, DnsError> {
        let mut by_link = Vec::new();
        let mut owner: Option<(&Name, Vec<WireSet<'_>>)> = None;
        for ((job, slots), kept) in jobs.iter().zip(sigs).zip(kept) {
            if !kept {
                delta.upserts.push(upsert(job));
            }
            let records: Vec<&[u8]> = slots.iter().flatten().map(|sig| &sig[..]).collect();
            match &job.slot {
                Slot::RrSet(rtype) => {
                    if owner.as_ref().is_some_and(|(o, _)| **o != job.owner) {
                        self.insert_sigs(owner.take())?;
                    }
                    let sets = &mut owner.get_or_insert_with(|| (&job.owner, Vec::new())).1;
                    sets.push((*rtype, job.set.ttl(), records));
                }
                Slot::Link(i, _) => by_link.push((*i, records)),
            }
        }
        self.insert_sigs(owner)?;
        Ok(by_link)
    }

    /// Stores the signatures of one owner's RRsets, if any were made.
    fn insert_sigs(&mut self, owner: Option<(&Name, Vec<WireSet<'_>>)>) -> Result<(), DnsError> {
        let Some((owner, sets)) = owner else {
            return Ok(());
        };
        let sets: Vec<_> = sets.into_iter().filter(|s| !s.2.is_empty()).collect();
        if sets.is_empty() {
            return Ok(());
        }
        let node = Node::from_wire(sets).map_err(DnsError::Dnssec)?;
        self.sigs
            .insert(NameKey::new(owner).as_bytes().into(), node);
        Ok(())
    }
}

/// The key tag of an RRSIG in wire form (RFC 4034 §3.1).
fn key_tag(sig: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*sig.get(16)?, *sig.get(17)?]))
}

/// The algorithm of an RRSIG in wire form (RFC 4034 §3.1).
fn algorithm(sig: &[u8]) -> Option<u8> {
    sig.get(2).copied()
}

/// The signature expiration of an RRSIG in wire form (RFC 4034 §3.1).
pub(crate) fn expiration(sig: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(sig.get(8..12)?.try_into().ok()?))
}

/// True when `signer` signs the job's RRset: entry-point keys sign DNSKEY, CDS and CDNSKEY,
/// zone keys the rest.
fn signs(job: &Job<'_>, signer: &Signer) -> bool {
    let key_set = matches!(
        job.set.rtype,
        RecordType::DNSKEY | RecordType::CDS | RecordType::CDNSKEY
    );
    if key_set {
        signer.signs_keys
    } else {
        signer.signs_data
    }
}

/// Makes one RRSIG (RFC 4034 §3, RFC 4035 §2.2), returned as wire-form RDATA.
fn sign(job: &Job<'_>, signer: &Signer, zone: &Name, now: u64) -> Result<Box<[u8]>, DnsError> {
    let owner = &job.owner;
    let rtype = job.set.rtype;
    let records = job.set.records(owner);
    if records.is_empty() {
        return Err(DnsError::Dnssec(format!("{owner}: empty RRset")));
    }
    let ttl = job.set.ttl();
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
    let rdata = RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, sig)));
    rdata_wire(&rdata).map_err(|e| failed(&e))
}

/// RRSIG times are 32-bit serial numbers of Unix seconds (RFC 4034 §3.1.5).
fn serial_time(t: u64) -> u32 {
    (t & u64::from(u32::MAX)) as u32
}
