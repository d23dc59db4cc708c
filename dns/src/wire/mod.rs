//! The common answer written straight from the query's octets and the zone's wire-form
//! RRsets, with no message decoded or record built: a standard query in class IN with at most
//! an OPT record, answered from a zone with a positive answer (with the addresses of NS, MX
//! and SRV targets, RFC 1035 §3.3.9, RFC 2782), NODATA or NXDOMAIN (with the SOA, RFC 2308
//! §3), with their DNSSEC records when asked for ([`dnssec`]). What else a query needs (TSIG,
//! transfers, UPDATE, referrals, CNAME and DNAME, wildcards, ANY, DS, response-rate limiting,
//! errors) goes through [`crate::engine::respond_full`], which this path answers exactly as.

mod dnssec;
mod query;
#[cfg(test)]
mod tests;
mod writer;

use hickory_proto::rr::RecordType;

use crate::dnssec::SignedZone;
use crate::engine::{Request, Transport, CLASSIC_UDP, MAX_UDP_PAYLOAD};
use crate::state::ServingState;
use crate::stats::{Counter, DnsStats};
use crate::zone::{NameKey, RrSet, Zone};
use query::WireQuery;
pub(crate) use writer::Writer;

/// QCLASS IN.
const CLASS_IN: u16 = 1;
/// Length of our OPT record (RFC 6891 §6.1.2, no options).
const OPT_LEN: usize = 11;

/// Header flags: QR, AA, TC and RD (third octet), CD (fourth).
const QR: u16 = 0x8000;
const AA: u16 = 0x0400;
const TC: u16 = 0x0200;
const RD: u16 = 0x0100;
const CD: u16 = 0x0010;
/// RCODE NXDOMAIN (RFC 1035 §4.1.1).
const NXDOMAIN: u16 = 3;

/// What the answer to a query holds.
enum Plan<'z> {
    /// The RRset of the query type at the query name.
    Positive(RrSet<'z>),
    /// The name exists without the type: the SOA in authority.
    NoData,
    /// The name does not exist: the SOA in authority. Its closest encloser (RFC 4592
    /// §3.3.1) starts at this offset of the name.
    NxDomain(usize),
}

/// Answers `req` into `out` and returns true when it is of the form answered here; false
/// leaves everything (counters included) untouched for the full path.
pub(crate) fn respond(
    state: &ServingState,
    stats: &DnsStats,
    req: &Request<'_>,
    out: &mut Writer,
) -> bool {
    let Some(query) = query::read(req.packet) else {
        return false;
    };
    if query.qclass != CLASS_IN {
        return false;
    }
    let Some(view) = state.route(req.src, req.dst, None) else {
        return false;
    };
    if req.transport == Transport::Udp && view.rrl().is_some() {
        return false;
    }
    let key = query.key.as_bytes();
    let Some((served, origin_at)) = view.find_zone_key(key) else {
        return false;
    };
    let dnssec_ok = query.edns.is_some_and(|e| e.dnssec_ok);
    let signed = served.signed.as_deref().filter(|_| dnssec_ok);
    let Some(plan) = plan(&served.zone, key, origin_at, query.qtype) else {
        return false;
    };
    stats.bump(Counter::Query);
    stats.routed(Some(view));
    let limit = match (req.transport, query.edns) {
        (Transport::Tcp, _) => usize::from(u16::MAX),
        (Transport::Udp, None) => CLASSIC_UDP,
        (Transport::Udp, Some(edns)) => usize::from(edns.payload.clamp(512, MAX_UDP_PAYLOAD)),
    };
    let answer = Answer {
        zone: &served.zone,
        signed,
        key,
        origin_at,
    };
    answer.render(stats, &query, plan, limit, out);
    true
}

/// Works out the answer of the common cases, or `None` for the full lookup
/// ([`crate::lookup::lookup`]): a delegation at or above the name, a DNAME above it, a CNAME,
/// a wildcard, ANY, DS and transfers.
fn plan<'z>(zone: &'z Zone, key: &[u8], origin_at: usize, qtype: u16) -> Option<Plan<'z>> {
    let rtype = RecordType::from(qtype);
    if matches!(
        rtype,
        RecordType::DS | RecordType::ANY | RecordType::AXFR | RecordType::IXFR
    ) {
        return None;
    }
    let here = zone.node_key(key);
    // The name and its ancestors below the apex (RFC 1034 §4.3.2 step 3b, RFC 6672 §3.2).
    let mut encloser = origin_at;
    let mut at = 0;
    while at < origin_at {
        let node = if at == 0 {
            here
        } else {
            zone.node_key(&key[at..])
        };
        if let Some(node) = node {
            if node.is_cut() || (at > 0 && node.get(RecordType::DNAME).is_some()) {
                return None;
            }
            if at > 0 && encloser == origin_at {
                encloser = at;
            }
        }
        at += 1 + usize::from(key[at]);
    }
    if origin_at > 0
        && zone
            .node_key(&key[origin_at..])
            .is_some_and(|apex| apex.get(RecordType::DNAME).is_some())
    {
        return None;
    }
    match here {
        Some(node) => match node.get(rtype) {
            Some(set) => Some(Plan::Positive(set)),
            None if node.get(RecordType::CNAME).is_some() => None,
            None => Some(Plan::NoData),
        },
        // The source of synthesis `*.<closest encloser>` (RFC 4592 §3.3.1).
        None => {
            let mut buf = [0u8; 258];
            let exists = wildcard_key(&key[encloser..], &mut buf)
                .is_some_and(|wildcard| zone.node_key(wildcard).is_some());
            (!exists).then_some(Plan::NxDomain(encloser))
        }
    }
}

/// The lower-cased wire name `*.<parent>` in `buf`, or `None` when longer than a name may be
/// (RFC 1035 §3.1).
fn wildcard_key<'b>(parent: &[u8], buf: &'b mut [u8; 258]) -> Option<&'b [u8]> {
    let len = parent.len() + 2;
    if len > 255 {
        return None;
    }
    buf[..2].copy_from_slice(b"\x01*");
    buf[2..len].copy_from_slice(parent);
    Some(&buf[..len])
}

/// Where an answer comes from.
struct Answer<'a> {
    zone: &'a Zone,
    /// The zone's signatures, when the query asked for them.
    signed: Option<&'a SignedZone>,
    /// The query name, lower-cased.
    key: &'a [u8],
    /// Where the zone's origin starts in `key`.
    origin_at: usize,
}

impl Answer<'_> {
    /// Writes the response: header, question, the plan's records, additional addresses, OPT;
    /// fits it into `limit` as [`crate::engine`] does (additional data dropped first, RFC 2181
    /// §9, then TC with empty sections, RFC 1035 §4.2.1).
    fn render(
        &self,
        stats: &DnsStats,
        query: &WireQuery<'_>,
        plan: Plan<'_>,
        limit: usize,
        w: &mut Writer,
    ) {
        let zone = self.zone;
        let mut flags = QR | AA;
        if query.rd {
            flags |= RD;
        }
        if query.cd {
            flags |= CD;
        }
        if matches!(plan, Plan::NxDomain(_)) {
            flags |= NXDOMAIN;
            stats.bump(Counter::NxDomain);
        }
        w.start(query.id, flags);
        w.name(query.qname);
        w.raw(&query.question[query.qname.len()..]);
        let question_end = w.len();
        let mut counts = [1, 0, 0, 0];
        let opt = query.edns.map_or(0, |_| OPT_LEN);
        match plan {
            Plan::Positive(set) => {
                let rtype = u16::from(set.rtype);
                for rdata in set.rdata() {
                    w.record(query.qname, rtype, set.ttl(), rdata);
                }
                counts[1] = set.len() as u16;
                if let Some(signed) = self.signed {
                    counts[1] += dnssec::sigs(w, signed, self.key, set.rtype, query.qname);
                }
                let answers_end = w.len();
                counts[3] = additional(zone, &self.key[self.origin_at..], set, w);
                if counts[3] > 0 && w.len() + opt > limit {
                    w.truncate(answers_end);
                    counts[3] = 0;
                }
            }
            Plan::NoData | Plan::NxDomain(_) => {
                w.hickory_name(&zone.soa().name);
                w.record_body(
                    u16::from(RecordType::SOA),
                    zone.negative_ttl(),
                    zone.soa_wire(),
                );
                counts[2] = 1;
                if let Some(signed) = self.signed {
                    let nxdomain = match plan {
                        Plan::NxDomain(encloser) => Some(encloser),
                        _ => None,
                    };
                    counts[2] +=
                        dnssec::denial(w, zone, signed, self.key, self.origin_at, nxdomain);
                }
            }
        }
        if w.len() + opt > limit {
            stats.bump(Counter::Truncated);
            w.truncate(question_end);
            w.set_flags(flags | TC);
            counts = [1, 0, 0, 0];
        }
        if let Some(edns) = query.edns {
            w.opt(MAX_UDP_PAYLOAD, edns.dnssec_ok);
            counts[3] += 1;
        }
        w.set_counts(counts);
    }
}

/// Writes the A and AAAA records of the NS, MX and SRV targets of `set` that are in the zone
/// and not below a delegation (RFC 1035 §3.3.9, RFC 2782), each target once; returns how many.
fn additional(zone: &Zone, origin: &[u8], set: RrSet<'_>, w: &mut Writer) -> u16 {
    let skip = match set.rtype {
        RecordType::NS => 0,
        RecordType::MX => 2,
        RecordType::SRV => 6,
        _ => return 0,
    };
    let target = |rdata: &[u8]| {
        let name = rdata.get(skip..)?;
        let len = writer::name_len(name)?;
        Some(NameKey::from_wire(&name[..len]))
    };
    let mut count = 0;
    for (i, rdata) in set.rdata().enumerate() {
        let Some(key) = target(rdata) else { continue };
        let key = key.as_bytes();
        let seen = set
            .rdata()
            .take(i)
            .any(|earlier| target(earlier).is_some_and(|k| k.as_bytes() == key));
        if seen || !below_apex_unoccluded(zone, key, origin) {
            continue;
        }
        let Some(node) = zone.node_key(key) else {
            continue;
        };
        for rtype in [RecordType::A, RecordType::AAAA] {
            let Some(addresses) = node.get(rtype) else {
                continue;
            };
            for rdata in addresses.rdata() {
                match zone.cased_key(key) {
                    Some(written) => {
                        w.hickory_name(written);
                        w.record_body(u16::from(rtype), addresses.ttl(), rdata);
                    }
                    None => w.record(key, u16::from(rtype), addresses.ttl(), rdata),
                }
                count += 1;
            }
        }
    }
    count
}

/// True when the lower-cased name `key` is at or below the zone's `origin` and not at or below
/// a delegation point.
fn below_apex_unoccluded(zone: &Zone, key: &[u8], origin: &[u8]) -> bool {
    let mut at = 0;
    while key.len() - at > origin.len() {
        if zone.node_key(&key[at..]).is_some_and(|n| n.is_cut()) {
            return false;
        }
        at += 1 + usize::from(key[at]);
    }
    key.len() - at == origin.len() && &key[at..] == origin
}
