//! Signing a loaded zone (RFC 4035 §2): an RRSIG per authoritative RRset from every active
//! key that signs it, and the signed NSEC3 chain. Signatures are cached by RRset content, so
//! a reload or an UPDATE re-signs only what changed, and a signature is renewed once less
//! than half of its validity is left (RFC 6781 §4.4.2).

use std::collections::HashMap;

use hickory_proto::dnssec::rdata::{DNSSECRData, SigInput, RRSIG};
use hickory_proto::dnssec::TBS;
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType, SerialNumber};
use hickory_proto::serialize::binary::BinEncodable;

use super::keys::{ZoneKeys, SIGNATURE_VALIDITY};
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

/// Signs `zone` with `keys` at time `now` (Unix seconds), reusing cached signatures.
pub fn sign_zone(
    zone: &Zone,
    keys: &ZoneKeys,
    cache: &mut SignatureCache,
    now: u64,
) -> Result<SignedZone, DnsError> {
    let mut signed = SignedZone::default();
    for (name, node) in zone.nodes() {
        if !zone.authoritative_name(name) {
            continue;
        }
        let owner = Name::from(name);
        for set in &node.rrsets {
            if node.cut && set.rtype != RecordType::DS {
                continue;
            }
            let sigs = sign_rrset(keys, cache, zone.origin(), &owner, &set.records, now)?;
            signed.sigs.insert((name.clone(), set.rtype), sigs);
        }
    }
    let mut chain = Chain::build(zone);
    for link in chain.links_mut() {
        let nsec3 = link.records[..1].to_vec();
        let owner = nsec3[0].name.clone();
        let sigs = sign_rrset(keys, cache, zone.origin(), &owner, &nsec3, now)?;
        link.records.extend(sigs);
    }
    signed.chain = chain;
    Ok(signed)
}

/// The RRSIGs of one RRset, from the cache when still fresh.
fn sign_rrset(
    keys: &ZoneKeys,
    cache: &mut SignatureCache,
    zone: &Name,
    owner: &Name,
    records: &[Record],
    now: u64,
) -> Result<Vec<Record>, DnsError> {
    let Some(first) = records.first() else {
        return Ok(Vec::new());
    };
    let rtype = first.record_type();
    let ttl = first.ttl;
    let key_set = matches!(
        rtype,
        RecordType::DNSKEY | RecordType::CDS | RecordType::CDNSKEY
    );
    let mut rdata: Vec<Vec<u8>> = records
        .iter()
        .filter_map(|r| r.data.to_bytes().ok())
        .collect();
    rdata.sort();
    let rdata = rdata.concat();
    let renew_after = now + SIGNATURE_VALIDITY.as_secs() / 2;
    let mut out = Vec::new();
    for signer in &keys.signers {
        if !(if key_set {
            signer.signs_keys
        } else {
            signer.signs_data
        }) {
            continue;
        }
        let key = CacheKey {
            owner: LowerName::new(owner),
            rtype,
            ttl,
            tag: signer.tag,
            rdata: rdata.clone(),
        };
        let cached = cache
            .new
            .get(&key)
            .or_else(|| cache.old.get(&key))
            .filter(|r| expiration(r).is_some_and(|e| e > renew_after))
            .cloned();
        let record = match cached {
            Some(record) => record,
            None => {
                let input = SigInput {
                    type_covered: rtype,
                    algorithm: signer.signer.key().algorithm(),
                    num_labels: owner.num_labels(),
                    original_ttl: ttl,
                    sig_expiration: SerialNumber::new(serial_time(
                        now + SIGNATURE_VALIDITY.as_secs(),
                    )),
                    sig_inception: SerialNumber::new(serial_time(
                        now.saturating_sub(INCEPTION_SLACK),
                    )),
                    key_tag: signer.tag,
                    signer_name: zone.clone(),
                };
                let tbs = TBS::from_input(owner, DNSClass::IN, &input, records.iter())
                    .map_err(|e| DnsError::Dnssec(format!("{owner} {rtype}: {e}")))?;
                let sig = signer
                    .signer
                    .sign(&tbs)
                    .map_err(|e| DnsError::Dnssec(format!("{owner} {rtype}: {e}")))?;
                Record::from_rdata(
                    owner.clone(),
                    ttl,
                    RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, sig))),
                )
            }
        };
        cache.new.insert(key, record.clone());
        out.push(record);
    }
    Ok(out)
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
