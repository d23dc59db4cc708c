//! Prerequisites of an UPDATE (RFC 2136 §3.2), checked against the zone as served.

use std::collections::HashMap;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, LowerName, RData, Record, RecordType};

use crate::zone::Zone;

/// Checks every prerequisite RR (the message's answer section, RFC 2136 §2.4) in order and
/// returns the first failure's RCODE (§3.2.5):
/// - class ANY, type ANY: "name is in use" (§2.4.4), else NXDOMAIN;
/// - class ANY, type T: "RRset exists (value independent)" (§2.4.1), else NXRRSET;
/// - class NONE, type ANY: "name is not in use" (§2.4.5), else YXDOMAIN;
/// - class NONE, type T: "RRset does not exist" (§2.4.3), else YXRRSET;
/// - zone class: "RRset exists (value dependent)" (§2.4.2), all such RRs of one
///   (name, type) together must equal the zone's RRset, else NXRRSET.
///
/// A non-zero TTL, RDATA where none belongs or another class is FORMERR (§3.2.1); a name
/// outside the zone is NOTZONE.
pub fn check(zone: &Zone, prereqs: &[Record]) -> Result<(), ResponseCode> {
    let origin = zone.lower_origin();
    let mut value_dependent: HashMap<(LowerName, RecordType), Vec<&RData>> = HashMap::new();
    for rr in prereqs {
        if rr.ttl != 0 {
            return Err(ResponseCode::FormErr);
        }
        let name = LowerName::new(&rr.name);
        if !origin.zone_of(&name) {
            return Err(ResponseCode::NotZone);
        }
        let rtype = rr.record_type();
        let empty = matches!(rr.data, RData::Update0(_));
        match rr.dns_class {
            DNSClass::ANY => {
                if !empty {
                    return Err(ResponseCode::FormErr);
                }
                if rtype == RecordType::ANY {
                    if !in_use(zone, &name) {
                        return Err(ResponseCode::NXDomain);
                    }
                } else if rrset(zone, &name, rtype).is_none() {
                    return Err(ResponseCode::NXRRSet);
                }
            }
            DNSClass::NONE => {
                if !empty {
                    return Err(ResponseCode::FormErr);
                }
                if rtype == RecordType::ANY {
                    if in_use(zone, &name) {
                        return Err(ResponseCode::YXDomain);
                    }
                } else if rrset(zone, &name, rtype).is_some() {
                    return Err(ResponseCode::YXRRSet);
                }
            }
            DNSClass::IN => {
                if empty || matches!(rtype, RecordType::ANY | RecordType::AXFR | RecordType::IXFR) {
                    return Err(ResponseCode::FormErr);
                }
                value_dependent
                    .entry((name, rtype))
                    .or_default()
                    .push(&rr.data);
            }
            _ => return Err(ResponseCode::FormErr),
        }
    }
    // §3.2.3: the collected RRsets must match the zone's exactly (order and TTL aside).
    for ((name, rtype), wanted) in value_dependent {
        let Some(have) = rrset(zone, &name, rtype) else {
            return Err(ResponseCode::NXRRSet);
        };
        let same = have.len() == dedup_len(&wanted)
            && have.iter().all(|r| wanted.contains(&r))
            && wanted.iter().all(|w| have.contains(w));
        if !same {
            return Err(ResponseCode::NXRRSet);
        }
    }
    Ok(())
}

fn dedup_len(data: &[&RData]) -> usize {
    let mut seen: Vec<&RData> = Vec::new();
    for d in data {
        if !seen.contains(d) {
            seen.push(d);
        }
    }
    seen.len()
}

/// A name is in use when it owns at least one RR (an empty non-terminal owns none; RFC 2136
/// §2.4.4 "at least one RR ... exists").
fn in_use(zone: &Zone, name: &LowerName) -> bool {
    zone.node(name).is_some_and(|n| !n.is_empty())
}

/// The data of the RRset `name`/`rtype`, if the zone has it.
fn rrset(zone: &Zone, name: &LowerName, rtype: RecordType) -> Option<Vec<RData>> {
    zone.node(name)
        .and_then(|n| n.get(rtype))
        .filter(|s| !s.is_empty())
        .map(|s| s.data().collect())
}
