//! The update section of an UPDATE (RFC 2136 §3.4): prescan, then the changes applied in
//! order to a working copy of the touched names, giving the new content of each changed
//! RRset.

use std::collections::HashMap;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, LowerName, RData, Record, RecordType};

use super::policy::{may_delete, Grant};
use super::RrsetChange;
use crate::state::FileRrsets;
use crate::zone::{rdata_text, Zone};

/// A journal line: (owner, TTL, type, RDATA).
pub type JournalRecord = (String, u32, String, String);

/// The changed RRsets, the records removed and the records added.
pub type Diff = (Vec<RrsetChange>, Vec<JournalRecord>, Vec<JournalRecord>);

/// Prescan (RFC 2136 §3.4.1): every update RR is in the zone (else NOTZONE) and well formed
/// for its class (else FORMERR): the zone class adds an RR of a real type; ANY deletes an
/// RRset or every RRset (TTL 0, no RDATA); NONE deletes one RR (TTL 0).
pub fn prescan(origin: &LowerName, updates: &[Record]) -> Result<(), ResponseCode> {
    for rr in updates {
        if !origin.zone_of(&LowerName::new(&rr.name)) {
            return Err(ResponseCode::NotZone);
        }
        let rtype = rr.record_type();
        let meta = matches!(
            rtype,
            RecordType::AXFR
                | RecordType::IXFR
                | RecordType::OPT
                | RecordType::TSIG
                | RecordType::Unknown(253 | 254)
        );
        let empty = matches!(rr.data, RData::Update0(_));
        let ok = match rr.dns_class {
            DNSClass::IN => !meta && rtype != RecordType::ANY && !empty,
            DNSClass::ANY => !meta && rr.ttl == 0 && empty,
            DNSClass::NONE => !meta && rtype != RecordType::ANY && rr.ttl == 0 && !empty,
            _ => false,
        };
        if !ok {
            return Err(ResponseCode::FormErr);
        }
    }
    Ok(())
}

/// The working copy: the RRsets of every touched name, loaded from the zone on first touch.
struct Working<'z> {
    zone: &'z Zone,
    names: HashMap<LowerName, Vec<(RecordType, Vec<Record>)>>,
    original: HashMap<(LowerName, RecordType), Vec<Record>>,
}

impl Working<'_> {
    fn node(&mut self, name: &LowerName) -> &mut Vec<(RecordType, Vec<Record>)> {
        let zone = self.zone;
        let original = &mut self.original;
        self.names.entry(name.clone()).or_insert_with(|| {
            let sets: Vec<(RecordType, Vec<Record>)> = zone
                .node(name)
                .map(|n| {
                    let owner = zone.owner(name);
                    n.rrsets().map(|s| (s.rtype, s.records(&owner))).collect()
                })
                .unwrap_or_default();
            for (rtype, records) in &sets {
                original.insert((name.clone(), *rtype), records.clone());
            }
            sets
        })
    }
}

/// Applies the update RRs in order (RFC 2136 §3.4.2) and returns the changed RRsets with
/// their new content, plus the records removed and added (for a journal).
///
/// As in the RFC: an SOA add or delete is ignored (the served serial is Postern's,
/// see [`crate::serial`]); deleting the apex NS RRset or its last NS is
/// ignored; a CNAME added where other data exists, or other data where a CNAME exists, is
/// ignored; re-adding an existing RR only updates the RRset's TTL. Deleting every RRset of
/// a name keeps the apex SOA and NS and removes only types the key may change. RRsets the
/// zone file holds cannot be changed: touching one is REFUSED.
pub fn apply(
    zone: &Zone,
    file_rrsets: &FileRrsets,
    grants: &[&Grant],
    updates: &[Record],
) -> Result<Diff, ResponseCode> {
    let apex = zone.lower_origin().clone();
    let mut w = Working {
        zone,
        names: HashMap::new(),
        original: HashMap::new(),
    };
    let from_file = |name: &LowerName, rtype| file_rrsets.contains(zone, name, rtype);
    for rr in updates {
        let name = LowerName::new(&rr.name);
        let rtype = rr.record_type();
        let is_apex = name == apex;
        match rr.dns_class {
            DNSClass::IN => {
                if rtype == RecordType::SOA {
                    continue;
                }
                let node = w.node(&name);
                let has_cname = node
                    .iter()
                    .any(|(t, r)| *t == RecordType::CNAME && !r.is_empty());
                let has_other = node
                    .iter()
                    .any(|(t, r)| *t != RecordType::CNAME && !r.is_empty());
                if (rtype == RecordType::CNAME && has_other)
                    || (rtype != RecordType::CNAME && has_cname)
                {
                    continue;
                }
                if from_file(&name, rtype) {
                    return Err(refuse_file(rr));
                }
                let mut record = rr.clone();
                record.name = rr.name.to_lowercase();
                match node.iter_mut().find(|(t, _)| *t == rtype) {
                    Some((_, records)) => {
                        if rtype == RecordType::CNAME {
                            records.clear();
                        }
                        records.retain(|r| r.data != record.data);
                        records.push(record);
                        let ttl = rr.ttl;
                        records.iter_mut().for_each(|r| r.ttl = ttl);
                    }
                    None => node.push((rtype, vec![record])),
                }
            }
            DNSClass::ANY if rtype == RecordType::ANY => {
                let node = w.node(&name);
                for (t, records) in node.iter_mut() {
                    let keep = (is_apex && matches!(*t, RecordType::SOA | RecordType::NS))
                        || from_file(&name, *t)
                        || !may_delete(grants, &name, *t);
                    if !keep {
                        records.clear();
                    }
                }
            }
            DNSClass::ANY => {
                if is_apex && matches!(rtype, RecordType::SOA | RecordType::NS) {
                    continue;
                }
                let node = w.node(&name);
                if let Some((_, records)) = node.iter_mut().find(|(t, _)| *t == rtype) {
                    if from_file(&name, rtype) {
                        return Err(refuse_file(rr));
                    }
                    records.clear();
                }
            }
            DNSClass::NONE => {
                if rtype == RecordType::SOA {
                    continue;
                }
                let node = w.node(&name);
                if let Some((_, records)) = node.iter_mut().find(|(t, _)| *t == rtype) {
                    if !records.iter().any(|r| r.data == rr.data) {
                        continue;
                    }
                    if is_apex && rtype == RecordType::NS && records.len() == 1 {
                        continue;
                    }
                    if from_file(&name, rtype) {
                        return Err(refuse_file(rr));
                    }
                    records.retain(|r| r.data != rr.data);
                }
            }
            _ => return Err(ResponseCode::FormErr),
        }
    }
    diff(w)
}

fn refuse_file(rr: &Record) -> ResponseCode {
    tracing::info!(name = %rr.name, rtype = %rr.record_type(), "UPDATE refused: the zone file holds this RRset");
    ResponseCode::Refused
}

/// Compares the working copy with the zone: every RRset whose records or TTL changed.
fn diff(w: Working<'_>) -> Result<Diff, ResponseCode> {
    let (mut changes, mut removed, mut added) = (Vec::new(), Vec::new(), Vec::new());
    let mut names: Vec<_> = w.names.into_iter().collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, sets) in names {
        for (rtype, records) in sets {
            let empty = Vec::new();
            let before = w.original.get(&(name.clone(), rtype)).unwrap_or(&empty);
            let same = before.len() == records.len()
                && before
                    .iter()
                    .all(|b| records.iter().any(|r| r.data == b.data && r.ttl == b.ttl));
            if same {
                continue;
            }
            let owner = name.to_string();
            let line = |r: &Record| -> Result<JournalRecord, ResponseCode> {
                Ok((
                    owner.clone(),
                    r.ttl,
                    rtype.to_string(),
                    rdata_text(&r.data).ok_or(ResponseCode::FormErr)?,
                ))
            };
            for b in before {
                if !records.iter().any(|r| r.data == b.data && r.ttl == b.ttl) {
                    removed.push(line(b)?);
                }
            }
            for r in &records {
                if !before.iter().any(|b| r.data == b.data && r.ttl == b.ttl) {
                    added.push(line(r)?);
                }
            }
            let records = records
                .iter()
                .map(|r| line(r).map(|(_, ttl, _, data)| (ttl, data)))
                .collect::<Result<Vec<_>, _>>()?;
            changes.push(RrsetChange {
                name: owner,
                rtype: rtype.to_string(),
                records,
            });
        }
    }
    Ok((changes, removed, added))
}
