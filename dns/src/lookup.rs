//! The authoritative lookup of one question in one zone (RFC 1034 §4.3.2), with negative
//! answers per RFC 2308, wildcards per RFC 4592, minimal ANY per RFC 8482 and CNAME chains
//! followed inside the zone (RFC 6604 for the final RCODE), and DNAME redirection with a
//! synthesized CNAME (RFC 6672 §3).

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::CNAME;
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use crate::zone::{Node, RrSet, Zone};

/// Longest CNAME chain followed inside a zone before giving up.
const MAX_CHAIN: usize = 16;

/// The sections of an authoritative answer.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Answer {
    /// RCODE: NOERROR or NXDOMAIN.
    pub rcode: ResponseCode,
    /// The AA bit: false for referrals (RFC 1034 §4.3.2 step 3b).
    pub authoritative: bool,
    /// Answer section.
    pub answers: Vec<Record>,
    /// Authority section (SOA for negative answers, NS for referrals).
    pub authorities: Vec<Record>,
    /// Additional section (glue and addresses of NS/MX/SRV targets).
    pub additionals: Vec<Record>,
    /// True when the additional section holds glue a referral needs (RFC 9471).
    pub required_glue: bool,
}

/// Answers `qname`/`qtype` from `zone`; `minimal_any` gives one RRset for ANY (RFC 8482 §4.1).
pub fn lookup(zone: &Zone, qname: &Name, qtype: RecordType, minimal_any: bool) -> Answer {
    let mut answer = Answer {
        authoritative: true,
        ..Answer::default()
    };
    let mut name = qname.clone();
    // The names of the chain so far: a few at most, where a hash set would cost each query.
    let mut seen: Vec<LowerName> = Vec::new();
    loop {
        let exclude = qtype == RecordType::DS && answer.answers.is_empty();
        if let Some((cut_name, cut)) = zone.find_cut(&name, exclude) {
            referral(zone, &cut_name, cut, &mut answer);
            return answer;
        }
        let lower = LowerName::new(&name);
        if seen.contains(&lower) || seen.len() >= MAX_CHAIN {
            return answer;
        }
        seen.push(lower);
        if let Some((owner, set)) = dname_above(zone, &name) {
            match synthesize(set, &owner, &name) {
                Some((cname, target)) => {
                    push_set(&mut answer.answers, Some(set), &owner);
                    answer.answers.push(cname);
                    if zone.lower_origin().zone_of(&LowerName::new(&target)) {
                        name = target;
                        continue;
                    }
                }
                None => {
                    push_set(&mut answer.answers, Some(set), &owner);
                    answer.rcode = ResponseCode::YXDomain;
                }
            }
            return answer;
        }
        let node = match zone.node(&name) {
            Some(node) => node,
            None => match wildcard(zone, &name) {
                Some(node) => node,
                None => {
                    answer.rcode = ResponseCode::NXDomain;
                    answer.authorities.push(negative_soa(zone));
                    return answer;
                }
            },
        };
        if qtype == RecordType::ANY && !node.is_empty() {
            if minimal_any {
                let first = node.rrsets().min_by_key(|s| u16::from(s.rtype));
                push_set(&mut answer.answers, first, &name);
            } else {
                for set in node.rrsets() {
                    push_set(&mut answer.answers, Some(set), &name);
                }
            }
            add_additional(zone, &mut answer);
            return answer;
        }
        if let Some(set) = node.get(qtype) {
            push_set(&mut answer.answers, Some(set), &name);
            add_additional(zone, &mut answer);
            return answer;
        }
        if let Some(cname) = node.get(RecordType::CNAME) {
            push_set(&mut answer.answers, Some(cname), &name);
            let target = cname.data().find_map(|d| match d {
                RData::CNAME(c) => Some(c.0),
                _ => None,
            });
            match target {
                Some(target) if zone.lower_origin().zone_of(&LowerName::new(&target)) => {
                    name = target;
                    continue;
                }
                _ => return answer,
            }
        }
        // NODATA: the name exists (possibly as an empty non-terminal) but not the type.
        answer.authorities.push(negative_soa(zone));
        return answer;
    }
}

/// The closest DNAME RRset strictly above `name` in the zone, with its owner as written
/// (RFC 6672 §3.2).
pub(crate) fn dname_above<'z>(zone: &'z Zone, name: &Name) -> Option<(Name, RrSet<'z>)> {
    (zone.origin().num_labels()..name.num_labels()).find_map(|labels| {
        let owner = name.trim_to(usize::from(labels));
        let set = zone.node(&owner)?.get(RecordType::DNAME)?;
        Some((zone.owner(&owner), set))
    })
}

/// The target of a DNAME record: its RDATA is one uncompressed name (RFC 6672 §2.1).
fn dname_target(rdata: &[u8]) -> Option<Name> {
    Name::read(&mut BinDecoder::new(rdata)).ok()
}

/// The CNAME synthesized from a DNAME for `name` and its target: `name` with the owner's
/// suffix replaced by the DNAME target, TTL of the DNAME (RFC 6672 §3.3); `None` when the
/// result would be longer than 255 octets (YXDOMAIN, RFC 6672 §2.2).
fn synthesize(set: RrSet<'_>, owner: &Name, name: &Name) -> Option<(Record, Name)> {
    let target = dname_target(set.rdata().next()?)?;
    let prefix = Name::from_labels(
        name.iter()
            .take(usize::from(name.num_labels() - owner.num_labels())),
    )
    .ok()?;
    let new = prefix.append_domain(&target).ok()?;
    let mut cname = Record::from_rdata(name.clone(), set.ttl(), RData::CNAME(CNAME(new.clone())));
    cname.dns_class = DNSClass::IN;
    Some((cname, new))
}

/// The source of synthesis for a name that does not exist: `*.<closest encloser>`
/// (RFC 4592 §3.3.1). The closest encloser always exists (empty non-terminals are nodes).
pub(crate) fn wildcard<'z>(zone: &'z Zone, name: &Name) -> Option<&'z Node> {
    let source = closest_encloser(zone, name).prepend_label("*").ok()?;
    zone.node(&source)
}

/// The closest encloser of a name that does not exist: its longest existing ancestor
/// (RFC 4592 §3.3.1, RFC 5155 §7.2.1).
pub(crate) fn closest_encloser(zone: &Zone, name: &Name) -> Name {
    let mut encloser = name.base_name();
    while encloser.num_labels() > zone.origin().num_labels() && zone.node(&encloser).is_none() {
        encloser = encloser.base_name();
    }
    encloser
}

fn push_set(out: &mut Vec<Record>, set: Option<RrSet<'_>>, owner: &Name) {
    if let Some(set) = set {
        out.extend(set.records(owner));
    }
}

/// The SOA for the authority section of a negative answer, with TTL
/// min(SOA TTL, SOA MINIMUM) (RFC 2308 §3).
fn negative_soa(zone: &Zone) -> Record {
    let mut soa = zone.soa().clone();
    soa.ttl = zone.negative_ttl();
    soa
}

/// A referral: the delegation's NS RRset in authority, glue in additional, AA clear.
fn referral(zone: &Zone, cut_name: &Name, cut: &Node, answer: &mut Answer) {
    if answer.answers.is_empty() {
        answer.authoritative = false;
    }
    let Some(ns) = cut.get(RecordType::NS) else {
        return;
    };
    let records = ns.records(&zone.owner(cut_name));
    let cut_lower = LowerName::new(cut_name);
    for record in &records {
        if let RData::NS(target) = &record.data {
            let target = LowerName::new(&target.0);
            if cut_lower.zone_of(&target) {
                answer.required_glue |= addresses(zone, &target, &mut answer.additionals);
            } else {
                addresses(zone, &target, &mut answer.additionals);
            }
        }
    }
    answer.authorities.extend(records);
}

/// Adds A/AAAA records of a name in the zone to `out`; true if any were added.
fn addresses(zone: &Zone, name: &LowerName, out: &mut Vec<Record>) -> bool {
    let Some(node) = zone.node(name) else {
        return false;
    };
    let mut added = false;
    for rtype in [RecordType::A, RecordType::AAAA] {
        if let Some(set) = node.get(rtype) {
            for record in set.records(&zone.owner(name)) {
                if !out.contains(&record) {
                    out.push(record);
                    added = true;
                }
            }
        }
    }
    added
}

/// Additional section processing for NS, MX and SRV targets (RFC 1035 §3.3.9, RFC 2782):
/// addresses of in-zone, non-occluded targets.
fn add_additional(zone: &Zone, answer: &mut Answer) {
    let targets: Vec<Name> = answer
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::NS(ns) => Some(ns.0.clone()),
            RData::MX(mx) => Some(mx.exchange.clone()),
            RData::SRV(srv) => Some(srv.target.clone()),
            _ => None,
        })
        .collect();
    for target in targets {
        let lower = LowerName::new(&target);
        if zone.lower_origin().zone_of(&lower) && zone.find_cut(&target, false).is_none() {
            addresses(zone, &lower, &mut answer.additionals);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::parse::parse_text;

    const ZONE: &str = "$TTL 300
@ SOA ns1 hostmaster 7 3600 600 86400 60
@ NS ns1
ns1 A 192.0.2.1
www A 192.0.2.10
www AAAA 2001:db8::10
@ MX 10 mail
mail A 192.0.2.25
alias CNAME www
alias2 CNAME alias
loop1 CNAME loop2
loop2 CNAME loop1
dangling CNAME nothere
outside CNAME www.example.org.
*.wild TXT \"wild\"
exists.wild A 192.0.2.50
a.b.ent A 192.0.2.60
child NS ns.child
child NS ns.elsewhere.example.org.
ns.child A 192.0.2.53
_sip._tcp SRV 0 5 5060 www
old DNAME new
www.new A 192.0.2.70
away DNAME example.org.
big DNAME aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example.org.
";

    fn zone() -> Zone {
        let origin = Name::from_ascii("example.test.").expect("name");
        let parsed = parse_text(ZONE, "t", &origin).expect("parses");
        let (zone, problems) = Zone::build(&origin, &parsed.records, 0);
        assert!(problems.is_empty(), "{problems:?}");
        zone.expect("zone")
    }

    fn q(name: &str, qtype: RecordType) -> Answer {
        lookup(&zone(), &Name::from_ascii(name).expect("name"), qtype, true)
    }

    fn types(records: &[Record]) -> Vec<RecordType> {
        records.iter().map(Record::record_type).collect()
    }

    #[test]
    fn positive_answer_keeps_query_case() {
        let a = q("WwW.Example.TEST.", RecordType::A);
        assert!(a.authoritative);
        assert_eq!(a.rcode, ResponseCode::NoError);
        assert_eq!(a.answers.len(), 1);
        assert_eq!(a.answers[0].name.to_string(), "WwW.Example.TEST.");
        assert!(a.authorities.is_empty());
    }

    #[test]
    fn nxdomain_and_nodata_carry_soa_with_negative_ttl() {
        let nx = q("nope.example.test.", RecordType::A);
        assert_eq!(nx.rcode, ResponseCode::NXDomain);
        assert!(nx.authoritative);
        assert_eq!(types(&nx.authorities), vec![RecordType::SOA]);
        assert_eq!(nx.authorities[0].ttl, 60);
        let nodata = q("www.example.test.", RecordType::MX);
        assert_eq!(nodata.rcode, ResponseCode::NoError);
        assert!(nodata.answers.is_empty());
        assert_eq!(types(&nodata.authorities), vec![RecordType::SOA]);
        let ent = q("b.ent.example.test.", RecordType::A);
        assert_eq!(
            ent.rcode,
            ResponseCode::NoError,
            "empty non-terminal is NODATA"
        );
        assert!(ent.answers.is_empty());
    }

    #[test]
    fn wildcards() {
        let w = q("Foo.wild.example.test.", RecordType::TXT);
        assert_eq!(w.answers.len(), 1);
        assert_eq!(w.answers[0].name.to_string(), "Foo.wild.example.test.");
        let deeper = q("a.b.wild.example.test.", RecordType::TXT);
        assert_eq!(deeper.answers.len(), 1, "wildcard matches several labels");
        let exists = q("exists.wild.example.test.", RecordType::TXT);
        assert!(
            exists.answers.is_empty(),
            "existing name blocks the wildcard"
        );
        assert_eq!(exists.rcode, ResponseCode::NoError);
        let nodata = q("x.wild.example.test.", RecordType::A);
        assert!(nodata.answers.is_empty());
        assert_eq!(nodata.rcode, ResponseCode::NoError);
        let below_exists = q("x.exists.wild.example.test.", RecordType::TXT);
        assert_eq!(
            below_exists.rcode,
            ResponseCode::NXDomain,
            "closest encloser has no wildcard"
        );
        let no_parent_wildcard = q("x.www.example.test.", RecordType::TXT);
        assert_eq!(no_parent_wildcard.rcode, ResponseCode::NXDomain);
    }

    #[test]
    fn cname_chains() {
        let c = q("alias2.example.test.", RecordType::A);
        assert_eq!(
            types(&c.answers),
            vec![RecordType::CNAME, RecordType::CNAME, RecordType::A]
        );
        assert_eq!(c.answers[2].name.to_string(), "www.example.test.");
        let direct = q("alias.example.test.", RecordType::CNAME);
        assert_eq!(types(&direct.answers), vec![RecordType::CNAME]);
        let dangling = q("dangling.example.test.", RecordType::A);
        assert_eq!(dangling.rcode, ResponseCode::NXDomain, "RFC 6604");
        assert_eq!(types(&dangling.answers), vec![RecordType::CNAME]);
        let looped = q("loop1.example.test.", RecordType::A);
        assert_eq!(
            types(&looped.answers),
            vec![RecordType::CNAME, RecordType::CNAME]
        );
        let out = q("outside.example.test.", RecordType::A);
        assert_eq!(types(&out.answers), vec![RecordType::CNAME]);
        assert!(out.authorities.is_empty());
    }

    #[test]
    fn referral_with_glue_and_no_aa() {
        let r = q("host.child.example.test.", RecordType::A);
        assert!(!r.authoritative);
        assert_eq!(r.rcode, ResponseCode::NoError);
        assert!(r.answers.is_empty());
        assert_eq!(types(&r.authorities), vec![RecordType::NS, RecordType::NS]);
        assert_eq!(types(&r.additionals), vec![RecordType::A]);
        assert!(r.required_glue);
        let at_cut = q("child.example.test.", RecordType::NS);
        assert!(!at_cut.authoritative);
        let ds = q("child.example.test.", RecordType::DS);
        assert!(ds.authoritative, "DS is answered by the parent");
        assert_eq!(types(&ds.authorities), vec![RecordType::SOA]);
    }

    #[test]
    fn additional_and_any() {
        let mx = q("example.test.", RecordType::MX);
        assert_eq!(types(&mx.additionals), vec![RecordType::A]);
        let srv = q("_sip._tcp.example.test.", RecordType::SRV);
        assert_eq!(
            types(&srv.additionals),
            vec![RecordType::A, RecordType::AAAA]
        );
        let any = q("example.test.", RecordType::ANY);
        assert_eq!(types(&any.answers), vec![RecordType::NS]);
        let full = lookup(
            &zone(),
            &Name::from_ascii("www.example.test.").expect("n"),
            RecordType::ANY,
            false,
        );
        assert_eq!(types(&full.answers), vec![RecordType::A, RecordType::AAAA]);
    }

    #[test]
    fn dname_synthesizes_a_cname() {
        let out = q("www.Old.example.test.", RecordType::A);
        assert_eq!(
            types(&out.answers),
            vec![RecordType::DNAME, RecordType::CNAME, RecordType::A]
        );
        let RData::CNAME(target) = &out.answers[1].data else {
            panic!("cname")
        };
        assert_eq!(target.0.to_string(), "www.new.example.test.");
        assert_eq!(out.answers[1].name.to_string(), "www.Old.example.test.");
        assert_eq!(out.answers[0].name.to_string(), "old.example.test.");
        let outside = q("x.away.example.test.", RecordType::A);
        assert_eq!(
            types(&outside.answers),
            vec![RecordType::DNAME, RecordType::CNAME]
        );
        assert_eq!(outside.rcode, ResponseCode::NoError);
        let at_owner = q("old.example.test.", RecordType::DNAME);
        assert_eq!(types(&at_owner.answers), vec![RecordType::DNAME]);
        let long = format!("{}.big.example.test.", "b".repeat(63));
        let out = q(&long, RecordType::A);
        assert_eq!(out.rcode, ResponseCode::YXDomain, "RFC 6672 §2.2");
        assert_eq!(types(&out.answers), vec![RecordType::DNAME]);
    }
}
