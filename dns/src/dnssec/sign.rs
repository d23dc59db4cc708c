//! Signing a loaded zone (RFC 4035 §2): an RRSIG per authoritative RRset from every active
//! key that signs it, and the signed NSEC3 chain. Signatures are cached by RRset content, so
//! a reload or an UPDATE re-signs only what changed, and a signature is renewed once less
//! than half of its validity is left (RFC 6781 §4.4.2). New signatures are made on every core.

use std::collections::HashMap;

use hickory_proto::dnssec::rdata::{DNSSECRData, SigInput, RRSIG};
use hickory_proto::dnssec::TBS;
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType, SerialNumber};
use hickory_proto::serialize::binary::BinEncodable;

use super::keys::{Signer, ZoneKeys, SIGNATURE_VALIDITY};
use super::nsec3::Chain;
use crate::error::DnsError;
use crate::zone::Zone;

/// Inception is backdated for resolvers whose clocks are behind (RFC 6781 §4.4.2.3).
const INCEPTION_SLACK: u64 = 3600;

#[derive(Hash, PartialEq, Eq)]
struct CacheKey {
    owner: LowerName,
    rtype: RecordType,
    ttl: u32,
    tag: u16,
    rdata: Vec<u8>,
}

/// Signatures made by earlier builds, by RRset content and key.
#[derive(Default)]
pub struct SignatureCache {
    old: HashMap<CacheKey, Record>,
    new: HashMap<CacheKey, Record>,
}

impl SignatureCache {
    /// Ends a build: signatures no zone used in it are dropped.
    pub fn finish(&mut self) {
        self.old = std::mem::take(&mut self.new);
    }
}

/// A zone's signatures and NSEC3 chain, beside the zone they sign.
#[derive(Default)]
pub struct SignedZone {
    sigs: HashMap<(LowerName, RecordType), Vec<Record>>,
    pub(crate) chain: Chain,
}

impl SignedZone {
    /// The RRSIGs over the RRset `owner`/`rtype` (empty when it is not signed).
    pub fn sigs(&self, owner: &LowerName, rtype: RecordType) -> &[Record] {
        self.sigs
            .get(&(owner.clone(), rtype))
            .map_or(&[], Vec::as_slice)
    }

    /// Every RRSIG and NSEC3 record, for zone transfers.
    pub fn transfer_records(&self) -> impl Iterator<Item = &Record> {
        self.sigs.values().flatten().chain(self.chain.records())
    }
}

/// One RRset to sign: where its signatures go, its owner and its records.
struct Job<'z> {
    slot: Slot,
    owner: Name,
    records: &'z [Record],
}

/// Where a job's signatures go: the RRset map, or the NSEC3 link with that index.
#[derive(Clone)]
enum Slot {
    RrSet(LowerName, RecordType),
    Link(usize),
}

/// A signature the cache did not have: job, signer and cache key.
struct Missing {
    job: usize,
    signer: usize,
    key: CacheKey,
}

/// Signs `zone` with `keys` at time `now` (Unix seconds), reusing cached signatures; the
/// signatures the cache lacks are made on every core.
pub fn sign_zone(
    zone: &Zone,
    keys: &ZoneKeys,
    cache: &mut SignatureCache,
    now: u64,
) -> Result<SignedZone, DnsError> {
    let mut chain = Chain::build(zone);
    let nsec3: Vec<Record> = chain.links_mut().map(|l| l.records[0].clone()).collect();
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
    for (i, record) in nsec3.iter().enumerate() {
        jobs.push(Job {
            slot: Slot::Link(i),
            owner: record.name.clone(),
            records: std::slice::from_ref(record),
        });
    }

    // The cache first: what is fresh is reused, the rest is signed below.
    let renew_after = now + SIGNATURE_VALIDITY.as_secs() / 2;
    let mut sigs: Vec<Vec<Option<Record>>> = Vec::with_capacity(jobs.len());
    let mut missing = Vec::new();
    for (j, job) in jobs.iter().enumerate() {
        let mut slots = vec![None; keys.signers.len()];
        for (k, signer) in keys.signers.iter().enumerate() {
            let Some(key) = cache_key(job, signer) else {
                continue;
            };
            let fresh = cache
                .new
                .get(&key)
                .or_else(|| cache.old.get(&key))
                .filter(|r| expiration(r).is_some_and(|e| e > renew_after))
                .cloned();
            match fresh {
                Some(record) => {
                    cache.new.insert(key, record.clone());
                    slots[k] = Some(record);
                }
                None => missing.push(Missing {
                    job: j,
                    signer: k,
                    key,
                }),
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
        cache.new.insert(m.key, record.clone());
        sigs[m.job][m.signer] = Some(record);
    }

    let mut signed = SignedZone::default();
    let mut links: Vec<_> = chain.links_mut().collect();
    for (job, slots) in jobs.iter().zip(sigs) {
        let records = slots.into_iter().flatten();
        match &job.slot {
            Slot::RrSet(name, rtype) => {
                signed
                    .sigs
                    .insert((name.clone(), *rtype), records.collect());
            }
            Slot::Link(i) => links[*i].records.extend(records),
        }
    }
    drop(links);
    signed.chain = chain;
    Ok(signed)
}

/// The cache key of a job's signature by `signer`, or `None` when the signer does not sign
/// this type (entry-point keys sign DNSKEY, CDS and CDNSKEY; zone keys the rest).
fn cache_key(job: &Job<'_>, signer: &Signer) -> Option<CacheKey> {
    let first = job.records.first()?;
    let rtype = first.record_type();
    let key_set = matches!(
        rtype,
        RecordType::DNSKEY | RecordType::CDS | RecordType::CDNSKEY
    );
    let signs = if key_set {
        signer.signs_keys
    } else {
        signer.signs_data
    };
    if !signs {
        return None;
    }
    let mut rdata: Vec<Vec<u8>> = job
        .records
        .iter()
        .filter_map(|r| r.data.to_bytes().ok())
        .collect();
    rdata.sort();
    Some(CacheKey {
        owner: LowerName::new(&job.owner),
        rtype,
        ttl: first.ttl,
        tag: signer.tag,
        rdata: rdata.concat(),
    })
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

fn expiration(record: &Record) -> Option<u64> {
    match &record.data {
        RData::DNSSEC(DNSSECRData::RRSIG(sig)) => Some(u64::from(sig.input().sig_expiration.get())),
        _ => None,
    }
}
