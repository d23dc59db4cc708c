//! The checks named-checkzone makes on a zone being built: SOA and NS at the apex, data
//! occluded by a delegation, and NS/MX/SRV targets that are CNAMEs or have no address.

use std::collections::HashSet;

use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

use super::draft::DraftNodes;
use super::{Loc, Problem, Severity};

pub(super) fn check_apex<'a>(
    origin: &Name,
    lower_origin: &LowerName,
    nodes: &DraftNodes<'_>,
    loc_of: &impl Fn(&LowerName, RecordType) -> Option<&'a Loc>,
    problems: &mut Vec<Problem>,
) -> Option<Record> {
    let apex = nodes.get(lower_origin);
    let soa = apex.and_then(|n| n.get(RecordType::SOA));
    let soa = match soa {
        None => {
            problems.push(Problem::new(
                Severity::Error,
                None,
                format!("{origin}: has no SOA record (RFC 1035 §5.2)"),
            ));
            None
        }
        Some(set) if set.records.len() > 1 => {
            problems.push(Problem::new(
                Severity::Error,
                loc_of(lower_origin, RecordType::SOA),
                format!("{origin}: multiple SOA records"),
            ));
            None
        }
        Some(set) => set.records.first().map(|r| (*r).clone()),
    };
    if apex.and_then(|n| n.get(RecordType::NS)).is_none() {
        problems.push(Problem::new(
            Severity::Error,
            loc_of(lower_origin, RecordType::SOA),
            format!("{origin}: has no NS records (RFC 1034 §4.2.1)"),
        ));
    }
    soa
}

pub(super) fn below_cut(
    name: &LowerName,
    origin: &LowerName,
    cuts: &HashSet<LowerName>,
) -> Option<LowerName> {
    if cuts.is_empty() {
        return None;
    }
    let mut n = name.base_name();
    while origin.zone_of(&n) && n != *origin {
        if cuts.contains(&n) {
            return Some(n);
        }
        n = n.base_name();
    }
    None
}

pub(super) fn check_occluded<'a>(
    origin: &LowerName,
    nodes: &DraftNodes<'_>,
    cuts: &HashSet<LowerName>,
    loc_of: &impl Fn(&LowerName, RecordType) -> Option<&'a Loc>,
    problems: &mut Vec<Problem>,
) {
    let glue = |t: RecordType| matches!(t, RecordType::A | RecordType::AAAA);
    for (name, node) in nodes {
        let at_cut = cuts.contains(name);
        let below = below_cut(name, origin, cuts);
        for set in &node.rrsets {
            let message = match &below {
                Some(cut) if !glue(set.rtype) => {
                    Some(format!("occluded by the delegation at {cut}, never served"))
                }
                Some(_) => None,
                None if at_cut
                    && !glue(set.rtype)
                    && !matches!(set.rtype, RecordType::NS | RecordType::DS) =>
                {
                    Some("data at a delegation point is not authoritative".to_owned())
                }
                None => None,
            };
            if let Some(message) = message {
                problems.push(Problem::new(
                    Severity::Warning,
                    loc_of(name, set.rtype),
                    format!("{name} {}: {message}", set.rtype),
                ));
            }
        }
    }
}

pub(super) fn check_targets<'a>(
    origin: &LowerName,
    nodes: &DraftNodes<'_>,
    cuts: &HashSet<LowerName>,
    loc_of: &impl Fn(&LowerName, RecordType) -> Option<&'a Loc>,
    problems: &mut Vec<Problem>,
) {
    let has_address = |n: &LowerName| {
        nodes.get(n).is_some_and(|node| {
            node.get(RecordType::A).is_some() || node.get(RecordType::AAAA).is_some()
        })
    };
    let is_cname = |n: &LowerName| {
        nodes
            .get(n)
            .is_some_and(|node| node.get(RecordType::CNAME).is_some())
    };
    for (name, node) in nodes {
        if below_cut(name, origin, cuts).is_some() {
            continue;
        }
        for set in &node.rrsets {
            for record in &set.records {
                let (target, what) = match &record.data {
                    RData::NS(ns) => (&ns.0, "NS"),
                    RData::MX(mx) => (&mx.exchange, "MX"),
                    RData::SRV(srv) => (&srv.target, "SRV"),
                    _ => continue,
                };
                let lower = LowerName::new(target);
                if !origin.zone_of(&lower) || target.is_root() {
                    continue;
                }
                if is_cname(&lower) {
                    problems.push(Problem::new(
                        Severity::Warning,
                        loc_of(name, set.rtype),
                        format!("{name}: {what} '{target}' is a CNAME (illegal, RFC 2181 §10.3)"),
                    ));
                } else if what == "NS" && !has_address(&lower) {
                    let at_apex = name == origin;
                    problems.push(Problem::new(
                        if at_apex {
                            Severity::Error
                        } else {
                            Severity::Warning
                        },
                        loc_of(name, set.rtype),
                        format!("{name}: NS '{target}' has no address records (A or AAAA)"),
                    ));
                } else if what != "NS"
                    && below_cut(&lower, origin, cuts).is_none()
                    && !cuts.contains(&lower)
                    && !has_address(&lower)
                    && !nodes.contains_key(&lower)
                {
                    problems.push(Problem::new(
                        Severity::Warning,
                        loc_of(name, set.rtype),
                        format!("{name}: {what} '{target}' has no address records (A or AAAA)"),
                    ));
                }
            }
        }
    }
}
