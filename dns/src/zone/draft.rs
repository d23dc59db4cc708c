//! A zone being built: its records grouped by owner name and type, borrowed from the parsed
//! records (nothing is copied), checked like named-checkzone (SOA and NS at the apex, CNAME
//! exclusivity, out-of-zone and occluded data), then encoded into a [`Zone`]. The serial
//! offset is only needed at the end, so the content digest can be worked out meanwhile.

use std::collections::HashSet;

use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use indexmap::IndexMap;
use smallvec::{smallvec, SmallVec};

use super::check::{check_apex, check_occluded, check_targets};
use super::encode::encode_nodes;
use super::{rdata_wire, Loc, NameMap, Problem, Severity, SourceRecord, Zone};

/// The records of one type at one name while a zone is built and checked.
pub(super) struct DraftSet<'r> {
    /// The RRset's type.
    pub rtype: RecordType,
    /// The records, the first one's TTL being the RRset's (RFC 2181 §5.2); most RRsets of a
    /// big zone hold one, kept without an allocation of its own.
    pub records: SmallVec<[&'r Record; 1]>,
    /// Where the RRset was first written.
    pub loc: &'r Loc,
}

/// The owner names of a zone being built, in order of first appearance (a fast hash: every
/// record looks its name up). The table holds indices only and the nodes lie in file order, so
/// that the passes over a big zone's nodes read its records in the order they were parsed
/// (mostly sequential memory) instead of at random.
pub(super) type DraftNodes<'r> = IndexMap<LowerName, DraftNode<'r>, foldhash::fast::RandomState>;

/// One owner name while a zone is built and checked.
#[derive(Default)]
pub(super) struct DraftNode<'r> {
    /// The RRsets, in order of first appearance (most names have one or two).
    pub rrsets: SmallVec<[DraftSet<'r>; 2]>,
    /// A delegation point: NS records below the apex (RFC 1034 §4.2.1).
    pub cut: bool,
    /// The name was first written with upper-case letters (its first record's owner).
    pub cased: bool,
}

impl<'r> DraftNode<'r> {
    /// The RRset of a type.
    pub fn get(&self, rtype: RecordType) -> Option<&DraftSet<'r>> {
        self.rrsets.iter().find(|s| s.rtype == rtype)
    }
}

/// A zone grouped and checked, not yet encoded.
pub(crate) struct Draft<'r> {
    origin: Name,
    lower_origin: LowerName,
    nodes: DraftNodes<'r>,
    /// The apex SOA, when there is exactly one.
    soa: Option<Record>,
    problems: Vec<Problem>,
    record_count: usize,
}

impl<'r> Draft<'r> {
    /// Groups and checks `records` of the zone `origin`.
    pub(crate) fn new(origin: &Name, records: &'r [SourceRecord]) -> Draft<'r> {
        let mut problems = Vec::new();
        let lower_origin = LowerName::new(origin);
        let mut nodes = DraftNodes::with_capacity_and_hasher(records.len(), Default::default());
        let mut record_count = 0;
        for SourceRecord { record, loc } in records {
            let name = LowerName::new(&record.name);
            if !lower_origin.zone_of(&name) {
                problems.push(Problem::new(
                    Severity::Warning,
                    Some(loc),
                    format!("ignoring out-of-zone data ({})", record.name),
                ));
                continue;
            }
            let rtype = record.record_type();
            let node = nodes.entry(name).or_insert_with(|| DraftNode {
                cased: record.name.iter().flatten().any(u8::is_ascii_uppercase),
                ..DraftNode::default()
            });
            match node.rrsets.iter_mut().find(|s| s.rtype == rtype) {
                Some(set) => {
                    if set.records.iter().any(|r| r.data == record.data) {
                        continue;
                    }
                    // The RRset keeps its first record's TTL.
                    let ttl = set.records[0].ttl;
                    if record.ttl != ttl {
                        problems.push(Problem::new(
                            Severity::Warning,
                            Some(loc),
                            format!(
                                "{} {rtype}: TTL set to prior TTL ({ttl}) (RFC 2181 §5.2)",
                                record.name
                            ),
                        ));
                    }
                    set.records.push(record);
                }
                None => node.rrsets.push(DraftSet {
                    rtype,
                    records: smallvec![record],
                    loc,
                }),
            }
            record_count += 1;
        }
        let soa = check(origin, &lower_origin, &mut nodes, &mut problems);
        add_empty_non_terminals(&lower_origin, &mut nodes);
        Draft {
            origin: origin.clone(),
            lower_origin,
            nodes,
            soa,
            problems,
            record_count,
        }
    }

    /// The zone, with `serial_offset` added to its SOA serial (managed records'
    /// generation), if no error was found; and every finding.
    pub(crate) fn finish(self, serial_offset: u32) -> (Option<Zone>, Vec<Problem>) {
        let Draft {
            origin,
            lower_origin,
            nodes,
            soa,
            mut problems,
            record_count,
        } = self;
        if problems.iter().any(|p| p.severity == Severity::Error) {
            return (None, problems);
        }
        let Some(mut soa) = soa else {
            return (None, problems);
        };
        if let RData::SOA(data) = &mut soa.data {
            data.serial = data.serial.wrapping_add(serial_offset);
        }
        let soa_wire = match rdata_wire(&soa.data) {
            Ok(wire) => wire,
            Err(e) => {
                problems.push(Problem::new(Severity::Error, None, format!("SOA: {e}")));
                return (None, problems);
            }
        };
        let mut zone = Zone {
            origin,
            lower_origin,
            nodes: NameMap::with_capacity_and_hasher(nodes.len(), Default::default()),
            cased: NameMap::default(),
            soa,
            soa_wire,
            record_count,
        };
        for encoded in encode_nodes(&nodes, &zone.soa) {
            match encoded {
                Ok(encoded) => {
                    if let Some(cased) = encoded.cased {
                        zone.cased.insert(encoded.key.clone(), *cased);
                    }
                    zone.nodes.insert(encoded.key, encoded.node);
                }
                Err(message) => problems.push(Problem::new(Severity::Error, None, message)),
            }
        }
        zone.nodes.shrink_to_fit();
        zone.cased.shrink_to_fit();
        let has_error = problems.iter().any(|p| p.severity == Severity::Error);
        (if has_error { None } else { Some(zone) }, problems)
    }
}

/// The checks on the grouped records; marks the delegation points. Returns the apex SOA.
fn check(
    origin: &Name,
    lower_origin: &LowerName,
    nodes: &mut DraftNodes<'_>,
    problems: &mut Vec<Problem>,
) -> Option<Record> {
    let loc_of = |name: &LowerName, rtype| Some(nodes.get(name)?.get(rtype)?.loc);
    let soa = check_apex(origin, lower_origin, nodes, &loc_of, problems);
    for (name, node) in nodes.iter() {
        if node.get(RecordType::SOA).is_some() && name != lower_origin {
            problems.push(Problem::new(
                Severity::Error,
                loc_of(name, RecordType::SOA),
                format!("{name}: SOA record not at top of zone"),
            ));
        }
        if let Some(cname) = node.get(RecordType::CNAME) {
            if cname.records.len() > 1 {
                problems.push(Problem::new(
                    Severity::Error,
                    loc_of(name, RecordType::CNAME),
                    format!("{name}: more than one CNAME record (RFC 1034 §3.6.2)"),
                ));
            }
            if node.rrsets.iter().any(|s| {
                !matches!(
                    s.rtype,
                    RecordType::CNAME | RecordType::RRSIG | RecordType::NSEC
                )
            }) {
                problems.push(Problem::new(
                    Severity::Error,
                    loc_of(name, RecordType::CNAME),
                    format!("{name}: CNAME and other data (RFC 1034 §3.6.2)"),
                ));
            }
        }
    }
    let cuts: HashSet<LowerName> = nodes
        .iter()
        .filter(|(n, node)| *n != lower_origin && node.get(RecordType::NS).is_some())
        .map(|(n, _)| n.clone())
        .collect();
    check_occluded(lower_origin, nodes, &cuts, &loc_of, problems);
    check_targets(lower_origin, nodes, &cuts, &loc_of, problems);
    for cut in &cuts {
        if let Some(node) = nodes.get_mut(cut) {
            node.cut = true;
        }
    }
    soa
}

/// Empty non-terminals: every ancestor of an owner name up to the apex exists. A name one
/// label below the apex has the apex as its parent, which holds the SOA. (Labels counted
/// with `iter`: `num_labels` leaves out a leading `*`.)
fn add_empty_non_terminals(lower_origin: &LowerName, nodes: &mut DraftNodes<'_>) {
    let origin_labels = lower_origin.iter().count();
    let names: Vec<LowerName> = nodes
        .keys()
        .filter(|n| n.iter().count() > origin_labels + 1)
        .cloned()
        .collect();
    for name in names {
        let mut parent = name.base_name();
        while lower_origin.zone_of(&parent) && parent != name {
            if nodes.contains_key(&parent) {
                break;
            }
            nodes.insert(parent.clone(), DraftNode::default());
            if parent == *lower_origin {
                break;
            }
            parent = parent.base_name();
        }
    }
}
