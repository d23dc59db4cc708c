//! The journal of a signed zone: what changed between the signed versions served, data,
//! RRSIG and NSEC3 records together, so that IXFR (RFC 1995 §4) sends a secondary exactly
//! the difference and its copy stays valid (RFC 4035 §2). Kept in memory beside the
//! signatures, and in the store ([`super::persist`]) so that it outlives a restart.

use std::sync::Arc;

use hickory_proto::rr::{Record, RecordType};

use hickory_proto::rr::Name;

use super::nsec3::Hash;
use super::sign::{Previous, SignedZone};
use crate::journal::Difference;
use crate::transfer::serial_lt;
use crate::zone::Zone;

/// The journal of the new signed version and its new entry: the previous journal with the
/// difference from the previous version appended (unchanged when the serial is), [`bounded`].
/// `difference` works the entry out: [`difference`] or, for a change, [`difference_at`].
pub(crate) fn next_journal(
    previous: Previous<'_>,
    zone: &Zone,
    signed: &SignedZone,
    max_changes: usize,
    difference: impl FnOnce() -> Difference,
) -> (Vec<Arc<Difference>>, Option<Arc<Difference>>) {
    let (from, to) = (previous.zone.serial(), zone.serial());
    if from == to {
        return (previous.signed.journal().to_vec(), None);
    }
    if !serial_lt(from, to) {
        return (Vec::new(), None);
    }
    let mut journal = previous.signed.journal().to_vec();
    let entry = Arc::new(difference());
    journal.push(entry.clone());
    (bounded(journal, zone, signed, max_changes), Some(entry))
}

/// The last `max_changes` entries of `journal` (all when 0), oldest dropped while the journal
/// holds more records than the signed zone (a bigger difference is better sent in full).
pub(crate) fn bounded(
    mut journal: Vec<Arc<Difference>>,
    zone: &Zone,
    signed: &SignedZone,
    max_changes: usize,
) -> Vec<Arc<Difference>> {
    if max_changes > 0 && journal.len() > max_changes {
        journal.drain(..journal.len() - max_changes);
    }
    let mut size: usize = journal.iter().map(|d| entry_size(d)).sum();
    if size <= zone.record_count() {
        return journal;
    }
    let limit = zone.record_count() + signed.record_count();
    while size > limit && !journal.is_empty() {
        size -= entry_size(&journal.remove(0));
    }
    journal
}

fn entry_size(d: &Difference) -> usize {
    d.removed.len() + d.added.len()
}

/// Every record of the previous version the new one lacks and the reverse; an RRset (or the
/// signatures over one, or an NSEC3 record with its signatures) that changed at all, TTL
/// included, is replaced whole. The SOA is left out: the difference sequence carries it.
pub(crate) fn difference(previous: Previous<'_>, zone: &Zone, signed: &SignedZone) -> Difference {
    let mut d = Difference {
        from: previous.zone.serial(),
        to: zone.serial(),
        removed: Vec::new(),
        added: Vec::new(),
    };
    for (name, node) in zone.nodes() {
        for set in node.rrsets().filter(|s| s.rtype != RecordType::SOA) {
            let before = previous.zone.node(&name).and_then(|n| n.get(set.rtype));
            if before != Some(set) {
                let before = before.map(|s| s.records(&previous.zone.owner(&name)));
                replace(&mut d, &before.unwrap_or_default(), &set.records(&name));
            }
        }
    }
    for (name, node) in previous.zone.nodes() {
        for set in node.rrsets().filter(|s| s.rtype != RecordType::SOA) {
            if zone.node(&name).and_then(|n| n.get(set.rtype)).is_none() {
                d.removed.extend(set.records(&name));
            }
        }
    }
    for (name, sigs) in signed.all_sigs() {
        if !signed.same_sigs(previous.signed, &name, sigs.rtype) {
            let before = previous.signed.sigs(&name, sigs.rtype, &name);
            replace(&mut d, &before, &sigs.records_as(&name, RecordType::RRSIG));
        }
    }
    for (name, sigs) in previous.signed.all_sigs() {
        if signed.sigs(&name, sigs.rtype, &name).is_empty() {
            d.removed.extend(sigs.records_as(&name, RecordType::RRSIG));
        }
    }
    let (before, after) = (&previous.signed.chain, &signed.chain);
    for (i, hash) in after.hashes().iter().enumerate() {
        let old = before.index(hash);
        if !old.is_some_and(|j| after.same_link(i, before, j)) {
            let removed = old.map(|j| before.records(j)).unwrap_or_default();
            replace(&mut d, &removed, &after.records(i));
        }
    }
    for (j, hash) in before.hashes().iter().enumerate() {
        if after.index(hash).is_none() {
            d.removed.extend(before.records(j));
        }
    }
    d
}

/// [`difference`] where only the nodes at `names` and the NSEC3 links of `links` (hashes,
/// in the chain before or after) can have changed: what a change costs is what it touched.
pub(crate) fn difference_at(
    previous: Previous<'_>,
    zone: &Zone,
    signed: &SignedZone,
    names: &[Name],
    links: &[Hash],
) -> Difference {
    let mut d = Difference {
        from: previous.zone.serial(),
        to: zone.serial(),
        removed: Vec::new(),
        added: Vec::new(),
    };
    for name in names {
        let (before, after) = (previous.zone.node(name), zone.node(name));
        let (old_owner, new_owner) = (previous.zone.owner(name), zone.owner(name));
        for set in after.into_iter().flat_map(|n| n.rrsets()) {
            let old = before.and_then(|n| n.get(set.rtype));
            if set.rtype != RecordType::SOA && old != Some(set) {
                let old = old.map(|s| s.records(&old_owner)).unwrap_or_default();
                replace(&mut d, &old, &set.records(&new_owner));
            }
        }
        for set in before.into_iter().flat_map(|n| n.rrsets()) {
            if set.rtype != RecordType::SOA && after.and_then(|n| n.get(set.rtype)).is_none() {
                d.removed.extend(set.records(&old_owner));
            }
        }
        let covered = |s: &SignedZone| s.covered(name);
        let mut types = covered(signed);
        types.extend(covered(previous.signed));
        types.sort_by_key(|t| u16::from(*t));
        types.dedup();
        // Signatures are transferred under the lower-cased owner ([`SignedZone::all_sigs`]).
        let lower = name.to_lowercase();
        for rtype in types {
            if !signed.same_sigs(previous.signed, name, rtype) {
                let old = previous.signed.sigs(name, rtype, &lower);
                replace(&mut d, &old, &signed.sigs(name, rtype, &lower));
            }
        }
    }
    let (before, after) = (&previous.signed.chain, &signed.chain);
    for hash in links {
        match (before.index(hash), after.index(hash)) {
            (Some(j), Some(i)) if after.same_link(i, before, j) => {}
            (old, new) => {
                let old = old.map(|j| before.records(j)).unwrap_or_default();
                let new = new.map(|i| after.records(i)).unwrap_or_default();
                replace(&mut d, &old, &new);
            }
        }
    }
    d
}

/// Records `before` as removed and `after` as added unless they are the same, TTLs included.
fn replace(d: &mut Difference, before: &[Record], after: &[Record]) {
    let same = before.len() == after.len()
        && before
            .iter()
            .zip(after)
            .all(|(a, b)| a == b && a.ttl == b.ttl);
    if !same {
        d.removed.extend(before.iter().cloned());
        d.added.extend(after.iter().cloned());
    }
}
