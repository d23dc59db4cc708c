//! An authoritative zone in memory, built from parsed records and checked like
//! named-checkzone (SOA and NS at the apex, CNAME exclusivity, out-of-zone and occluded data).

mod check;
mod compact;
mod dnssec_text;
mod draft;
mod encode;
mod keyed;
mod loc;
mod mnemonic;
pub mod parse;
mod rdata;
mod svcb;
mod text;
mod token;

use std::fmt;

use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

pub(crate) use compact::{key_name, rdata_list, rdata_wire, NameKey, NameMap, NodeEncoder};
pub use compact::{Node, RrSet, RrSets};
pub(crate) use draft::Draft;
pub use parse::{Loc, ParseError, SourceRecord};
pub use text::{character_strings, rdata_text};
pub(crate) use token::name as token_name;

/// How serious a finding is: errors stop the zone from loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The zone loads; the data is suspicious or was ignored.
    Warning,
    /// The zone does not load.
    Error,
}

/// One finding about a zone, printed like named-checkzone: `file:line: name: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// Source location, when the finding is about one record.
    pub loc: Option<Loc>,
    /// The description.
    pub message: String,
}

impl Problem {
    fn new(severity: Severity, loc: Option<&Loc>, message: String) -> Self {
        Problem {
            severity,
            loc: loc.cloned(),
            message,
        }
    }

    pub(crate) fn from_parse(e: ParseError) -> Self {
        Problem {
            severity: Severity::Error,
            loc: Some(e.loc),
            message: e.message,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        match &self.loc {
            Some(loc) => write!(f, "{loc}: {level}: {}", self.message),
            None => write!(f, "{level}: {}", self.message),
        }
    }
}

/// A loaded zone, ready to answer from: nodes by lower-cased wire name ([`compact`]).
#[derive(Debug)]
pub struct Zone {
    origin: Name,
    lower_origin: LowerName,
    nodes: NameMap<Node>,
    /// The owner names written in another case than their key's, as first written.
    cased: NameMap<Name>,
    soa: Record,
    /// The SOA's RDATA in wire form, for answers written from octets.
    soa_wire: Box<[u8]>,
    record_count: usize,
}

impl Zone {
    /// Builds and checks a zone; `serial_offset` is added to the SOA serial (managed records'
    /// generation). Returns the zone (if no error was found) and every finding.
    pub fn build(
        origin: &Name,
        records: &[SourceRecord],
        serial_offset: u32,
    ) -> (Option<Zone>, Vec<Problem>) {
        Draft::new(origin, records).finish(serial_offset)
    }

    /// The zone's origin.
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// The origin, lower-cased for lookups.
    pub fn lower_origin(&self) -> &LowerName {
        &self.lower_origin
    }

    /// The served SOA record (serial includes the managed-records generation).
    pub fn soa(&self) -> &Record {
        &self.soa
    }

    /// The served SOA serial.
    pub fn serial(&self) -> u32 {
        match &self.soa.data {
            RData::SOA(soa) => soa.serial,
            _ => 0,
        }
    }

    /// The negative-caching TTL: min(SOA TTL, SOA MINIMUM) (RFC 2308 §3 and §5).
    pub fn negative_ttl(&self) -> u32 {
        match &self.soa.data {
            RData::SOA(soa) => self.soa.ttl.min(soa.minimum),
            _ => self.soa.ttl,
        }
    }

    /// Number of records loaded.
    pub fn record_count(&self) -> usize {
        self.record_count
    }

    /// The node at a name (including empty non-terminals), found case-insensitively.
    pub fn node(&self, name: &Name) -> Option<&Node> {
        self.nodes.get(NameKey::new(name).as_bytes())
    }

    /// The closest delegation point at or above `name` (strictly below the apex).
    /// With `exclude_name`, a cut at `name` itself is ignored (DS is answered by the parent,
    /// RFC 4035 §3.1.4.1).
    pub fn find_cut(&self, name: &Name, exclude_name: bool) -> Option<(Name, &Node)> {
        let apex_labels = self.origin.num_labels();
        let labels = name.num_labels();
        let last = if exclude_name {
            labels.saturating_sub(1)
        } else {
            labels
        };
        for n in (apex_labels + 1)..=last {
            let candidate = name.trim_to(usize::from(n));
            if let Some(node) = self.node(&candidate) {
                if node.is_cut() {
                    return Some((candidate, node));
                }
            }
        }
        None
    }

    /// The owner name of a node in the case it was written in (an empty non-terminal's in
    /// lower case).
    pub fn owner(&self, name: &Name) -> Name {
        let key = NameKey::new(name);
        match self.cased.get(key.as_bytes()) {
            Some(written) => written.clone(),
            None => name.to_lowercase(),
        }
    }

    /// Every node (owner names, as written, and empty non-terminals), in no particular order.
    pub fn nodes(&self) -> impl Iterator<Item = (Name, &Node)> {
        self.nodes.iter().map(|(key, node)| {
            let name = match self.cased.get(key) {
                Some(written) => written.clone(),
                None => key_name(key),
            };
            (name, node)
        })
    }

    /// True unless `name` is strictly below a delegation point (glue or occluded data), where
    /// nothing is signed or in the NSEC3 chain (RFC 4035 §2.2).
    pub fn authoritative_name(&self, name: &Name) -> bool {
        self.find_cut(name, true).is_none()
    }

    /// All RRsets but the SOA, with their owners, in canonical name order (RFC 4034 §6.1), for
    /// zone transfers.
    pub fn rrsets_for_transfer(&self) -> Vec<(Name, RrSet<'_>)> {
        let mut nodes: Vec<(LowerName, Name, &Node)> = self
            .nodes()
            .map(|(name, node)| (LowerName::new(&name), name, node))
            .collect();
        nodes.sort_by(|a, b| a.0.cmp(&b.0));
        nodes
            .into_iter()
            .flat_map(|(_, name, node)| node.rrsets().map(move |s| (name.clone(), s)))
            .filter(|(_, s)| s.rtype != RecordType::SOA)
            .collect()
    }

    /// Octets of zone data held (RDATA and owner names, without the tables' own overhead).
    pub fn data_size(&self) -> usize {
        self.nodes.iter().map(|(k, n)| k.len() + n.size()).sum()
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

    use super::*;

    fn build(text: &str) -> (Option<Zone>, Vec<Problem>) {
        let origin = Name::from_ascii("example.test.").expect("name");
        let parsed = parse::parse_text(text, "t.zone", &origin).expect("parses");
        Zone::build(&origin, &parsed.records, 0)
    }

    const HEAD: &str =
        "$TTL 300\n@ SOA ns1 hostmaster 7 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.1\n";

    #[test]
    fn good_zone_has_ents_and_cuts() {
        let (zone, problems) = build(&format!(
            "{HEAD}a.b.c A 192.0.2.2\nsub NS ns.sub\nns.sub A 192.0.2.3\n*.w TXT x\n"
        ));
        assert!(problems.is_empty(), "{problems:?}");
        let zone = zone.expect("zone");
        assert_eq!(zone.serial(), 7);
        assert_eq!(zone.negative_ttl(), 60);
        let ent = LowerName::from(Name::from_ascii("b.c.example.test.").expect("n"));
        assert!(zone.node(&ent).expect("ent").is_empty());
        let above_wildcard = Name::from_ascii("w.example.test.").expect("n");
        assert!(zone.node(&above_wildcard).expect("ent").is_empty());
        let below = Name::from_ascii("x.ns.sub.example.test.").expect("n");
        assert_eq!(
            zone.find_cut(&below, false).expect("cut").0.to_string(),
            "sub.example.test."
        );
    }

    #[test]
    fn named_checkzone_like_problems() {
        let (zone, problems) = build(
            "$TTL 300\n@ SOA ns1 hostmaster 7 3600 600 86400 60\nwww CNAME a\nwww A 192.0.2.1\n\
             other.zone. A 192.0.2.1\n",
        );
        assert!(zone.is_none());
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert!(text.iter().any(|p| p.contains("has no NS")), "{text:?}");
        assert!(
            text.iter()
                .any(|p| p.starts_with("t.zone:3: error") && p.contains("CNAME and other data")),
            "{text:?}"
        );
        assert!(text
            .iter()
            .any(|p| p.starts_with("t.zone:5: warning") && p.contains("out-of-zone")));
        let (zone, problems) = build(&format!("{HEAD}sub NS ns.sub\nx.sub TXT hidden\n"));
        assert!(zone.is_some());
        assert!(
            problems.iter().any(|p| p.message.contains("occluded")),
            "{problems:?}"
        );
        assert!(problems
            .iter()
            .any(|p| p.message.contains("'ns.sub.example.test.' has no address")));
        let (zone, _) = build("$TTL 300\n@ SOA ns1 h 1 1 1 1 1\n@ NS ns1\n");
        assert!(
            zone.is_none(),
            "in-zone NS without address is an error, like BIND"
        );
    }

    #[test]
    fn serial_offset_and_duplicates() {
        let origin = Name::from_ascii("example.test.").expect("name");
        let parsed = parse::parse_text(
            &format!("{HEAD}www A 192.0.2.5\nwww 60 A 192.0.2.5\nwww 60 A 192.0.2.6\n"),
            "t",
            &origin,
        )
        .expect("parses");
        let (zone, problems) = Zone::build(&origin, &parsed.records, u32::MAX);
        let zone = zone.expect("zone");
        assert_eq!(zone.serial(), 6, "wraps");
        assert_eq!(problems.len(), 1, "{problems:?}");
        let www = LowerName::from(Name::from_ascii("www.example.test.").expect("n"));
        let set = zone
            .node(&www)
            .and_then(|n| n.get(RecordType::A))
            .expect("set");
        assert_eq!(set.len(), 2);
        assert_eq!(set.ttl(), 300);
        let soa = zone
            .node(&origin)
            .and_then(|n| n.get(RecordType::SOA))
            .expect("SOA RRset")
            .records(&origin);
        assert!(
            matches!(&soa[..], [r] if matches!(&r.data, RData::SOA(s) if s.serial == 6)),
            "the apex serves the SOA with the offset: {soa:?}"
        );
    }

    /// Owners keep the case they were first written in; names written in lower case only
    /// are not kept twice.
    #[test]
    fn owners_keep_their_case() {
        let (zone, problems) = build(&format!(
            "{HEAD}WwW A 192.0.2.5
www AAAA 2001:db8::5
low A 192.0.2.6
LOW AAAA 2001:db8::6
"
        ));
        let zone = zone.unwrap_or_else(|| panic!("{problems:?}"));
        let owner = |text: &str| {
            zone.owner(&Name::from_ascii(text).expect("name"))
                .to_string()
        };
        assert_eq!(owner("www.example.test."), "WwW.example.test.");
        assert_eq!(owner("LOW.example.test."), "low.example.test.");
        assert_eq!(zone.cased.len(), 1, "only the name written with capitals");
    }

    /// Differential test against the record-object zone this compact form replaced, which
    /// answered with the parsed records themselves: for every record of the fidelity corpus
    /// (every type Postern reads, escapes, RFC 3597 data), the zone serves a record with the
    /// same owner, type and TTL whose RDATA goes on the wire octet for octet as the parsed
    /// record's did, and no record more.
    #[test]
    fn served_records_are_the_parsed_records() {
        let origin = Name::from_ascii("fidelity.test.").expect("name");
        let text = include_str!("../../../tests/fixtures/fidelity/corpus.zone");
        let parsed = parse::parse_text(text, "corpus.zone", &origin).expect("parses");
        let source: Vec<Record> = parsed.records.iter().map(|r| r.record.clone()).collect();
        let (zone, problems) = Zone::build(&origin, &parsed.records, 0);
        let zone = zone.unwrap_or_else(|| panic!("{problems:?}"));
        let wire = |data: &RData| rdata_wire(data).expect("encodes");
        let mut expected = 0;
        for record in &source {
            // The compact form's shortcuts write what hickory's encoder writes.
            let mut encoded = Vec::new();
            let mut encoder = BinEncoder::new(&mut encoded);
            encoder.set_name_encoding(NameEncoding::Uncompressed);
            record.data.emit(&mut encoder).expect("emits");
            assert_eq!(&wire(&record.data)[..], &encoded[..], "{record}");
            let node = zone.node(&record.name).expect("node");
            let set = node.get(record.record_type()).expect("RRset");
            let served = set.records(&zone.owner(&record.name));
            let same = served.iter().find(|r| wire(&r.data) == wire(&record.data));
            let same = same.unwrap_or_else(|| panic!("{record} not served: {served:?}"));
            assert_eq!(
                same.name.to_string(),
                record.name.to_string(),
                "owner as written"
            );
            assert_eq!(same.ttl, set.ttl());
            assert_eq!(same.data.to_string(), record.data.to_string(), "{record}");
            expected += 1;
        }
        let served: usize = zone
            .nodes()
            .flat_map(|(_, node)| node.rrsets().map(|s| s.len()))
            .sum();
        assert!(expected >= 70, "the corpus has {expected} records");
        assert_eq!(served, expected, "no record more");
        assert_eq!(served, zone.record_count());
    }
}
