//! Signing a change to a signed zone in proportion to the change (RFC 4035 §2, RFC 5155 §7.1):
//! given the names whose data changed, only the nodes there, their ancestors (empty
//! non-terminals appear and disappear with them) and, where a delegation point appeared or
//! went, the names below it (glue leaves or joins the authoritative data) are looked at. Their
//! RRsets are signed again (fresh signatures of unchanged RRsets are kept), their NSEC3 links
//! put in or taken out of the chain, the links before them pointed at their new successors and
//! signed again, and the journal entry and the store's changes are worked out from them alone.
//! The result is the one [`super::sign_zone`] reaches from scratch, signature bytes aside.

use std::collections::BTreeSet;

use hickory_proto::rr::{Name, RecordType};

use super::journal::{difference_at, next_journal};
use super::keys::ZoneKeys;
use super::nsec3::{bitmap, hash_key, owner_name, Hash};
use super::persist::Delta;
use super::sign::{
    earliest_of, push_rrset_jobs, sign_jobs, Basis, Job, Previous, SignedZone, Slot,
};
use crate::error::DnsError;
use crate::zone::{NameKey, NameMap, Node, Zone};

/// Signs `zone`, which differs from `previous.zone` only at the names `touched` (and in its
/// SOA serial), from the previous signed version. `None` when a change reaches further than
/// those names (the negative TTL of every NSEC3 record, another origin): the caller signs the
/// whole zone.
pub(super) fn sign_change(
    zone: &Zone,
    keys: &ZoneKeys,
    previous: Previous<'_>,
    touched: &[Name],
    basis: &Basis<'_>,
    now: u64,
) -> Result<Option<(SignedZone, Delta)>, DnsError> {
    let origin = zone.origin();
    if previous.zone.origin() != origin || previous.zone.negative_ttl() != zone.negative_ttl() {
        return Ok(None);
    }
    let names = affected(zone, previous.zone, touched);

    // The chain: links of the names put, replaced or taken out, then their predecessors
    // pointed at their successors.
    let mut chain = previous.signed.chain.clone();
    let mut put: Vec<Hash> = Vec::new();
    let mut gone: Vec<Hash> = Vec::new();
    for (key, name) in &names {
        let Some(hashed) = hash_key(key) else {
            continue;
        };
        match zone.node(name).filter(|_| zone.authoritative_name(name)) {
            Some(node) => {
                chain.put(hashed, bitmap(node))?;
                put.push(hashed);
            }
            None => {
                if chain.remove(&hashed) {
                    gone.push(hashed);
                }
            }
        }
    }
    let mut relinked: BTreeSet<Hash> = put.iter().copied().collect();
    for hashed in put.iter().chain(&gone) {
        if let Some(p) = chain.predecessor(hashed) {
            relinked.extend(chain.hashes().get(p).copied());
        }
    }
    for hashed in &relinked {
        if let Some(i) = chain.index(hashed) {
            chain.relink(i)?;
        }
    }

    // The jobs: the RRsets at the affected names, then the links that may have changed.
    let mut jobs = Vec::new();
    for name in names.values() {
        let Some(node) = zone.node(name).filter(|_| zone.authoritative_name(name)) else {
            continue;
        };
        push_rrset_jobs(&mut jobs, &zone.owner(name), node);
    }
    for hashed in &relinked {
        let Some(i) = chain.index(hashed) else {
            continue;
        };
        if let (Some(owner), Some(set), Some(hash)) =
            (chain.owner(i), chain.nsec3(i), chain.hashes().get(i))
        {
            jobs.push(Job {
                slot: Slot::Link(i, hash),
                owner,
                set,
            });
        }
    }
    let (sigs, kept) = sign_jobs(&jobs, keys, origin, now, basis.changes, |job| {
        previous.sigs(job)
    })?;

    let earliest = [previous.signed.earliest, earliest_of(&sigs)];
    let mut signed = SignedZone {
        sigs: previous.signed.sigs.clone(),
        earliest: earliest.into_iter().flatten().min(),
        ..SignedZone::default()
    };
    let mut delta = Delta::default();
    for key in names.keys() {
        signed.sigs.remove(key);
    }
    let by_link = signed.put_sigs(&jobs, &sigs, kept, &mut delta)?;
    drop(jobs);
    for (i, records) in by_link {
        chain.set_sigs(i, records)?;
    }
    signed.chain = chain;

    if basis.changes {
        for name in names.values() {
            let now_signed = signed.covered(name);
            for rtype in previous.signed.covered(name) {
                if !now_signed.contains(&rtype) {
                    delta
                        .deletes
                        .push((NameKey::new(name).as_bytes().into(), rtype));
                }
            }
        }
        for hashed in &gone {
            if let Ok(owner) = owner_name(hashed, origin) {
                delta
                    .deletes
                    .push((NameKey::new(&owner).as_bytes().into(), RecordType::NSEC3));
            }
        }
    }
    let names: Vec<Name> = names.into_values().collect();
    let links: Vec<Hash> = relinked.into_iter().chain(gone).collect();
    let (journal, entry) = next_journal(previous, zone, &signed, basis.max_changes, || {
        difference_at(previous, zone, &signed, &names, &links)
    });
    signed.journal = journal;
    delta.entry = entry;
    Ok(Some((signed, delta)))
}

/// The names whose node, signatures or NSEC3 link a change at `touched` can alter, by
/// lower-cased wire name: the apex (its SOA), each touched name in the zone and its ancestors
/// (empty non-terminals), and every name below a touched name that is a delegation point in
/// one version and not in the other (RFC 4035 §2.2: below a cut nothing is signed).
fn affected(zone: &Zone, before: &Zone, touched: &[Name]) -> NameMap<Name> {
    let origin = zone.origin();
    let mut names: NameMap<Name> = NameMap::default();
    let mut add = |name: &Name| {
        names
            .entry(NameKey::new(name).as_bytes().into())
            .or_insert_with(|| name.to_lowercase());
    };
    add(origin);
    for name in touched.iter().filter(|t| origin.zone_of(t)) {
        let mut up = name.clone();
        while up.iter().count() > origin.iter().count() {
            add(&up);
            up = up.base_name();
        }
        let cut = |z: &Zone| z.node(name).is_some_and(Node::is_cut);
        if cut(zone) != cut(before) {
            for (below, _) in zone.nodes().chain(before.nodes()) {
                if name.zone_of(&below) {
                    add(&below);
                }
            }
        }
    }
    names
}
