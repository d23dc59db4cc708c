//! The answers written from octets against the full path's hickory-built answers, for a
//! corpus of queries: same header, question, records (owner names compared with their case),
//! OPT and counters, and never longer.

use hickory_proto::op::{Edns, Message, Query};
use std::collections::HashMap;

use hickory_proto::rr::{LowerName, Name, RecordType};

use super::writer::Writer;
use super::*;
use crate::config::DnsConfig;
use crate::dnssec::{generate, KeyRole, KeyState, ZoneKey, ECDSAP256SHA256};
use crate::engine::respond_full;
use crate::engine::Outcome;
use crate::state::{build, Inputs, OnZoneError};

const ZONE: &str = "$TTL 300
@ SOA ns1 hostmaster 7 3600 600 86400 60
@ NS ns1
@ NS ns2.other.example.
ns1 A 192.0.2.1
ns1 AAAA 2001:db8::1
@ MX 10 Mail
@ MX 20 mail
@ MX 30 mx.other.example.
@ MX 40 CaseD
Mail A 192.0.2.25
CaseD A 192.0.2.30
www A 192.0.2.10
www AAAA 2001:db8::10
www TXT \"v=spf1 -all\" \"two\"
_sip._tcp SRV 0 5 5060 www
_sip._tcp SRV 1 5 5060 Mail
alias CNAME www
*.wild TXT \"wild\"
a.b.ent A 192.0.2.60
child NS ns.child
ns.child A 192.0.2.53
old DNAME new
ptr PTR www
raw TYPE65280 \\# 4 0a000001
hinfo HINFO \"cpu\" \"os\"
";

fn state() -> (tempfile::TempDir, ServingState) {
    state_with(false)
}

/// The test zone, signed (ECDSA P-256 CSK, NSEC3) when `dnssec`.
fn state_with(dnssec: bool) -> (tempfile::TempDir, ServingState) {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(dir.path().join("zones/v")).expect("mkdir");
    let mut zone = String::from(ZONE);
    for i in 0..40 {
        zone.push_str(&format!("many A 192.0.2.{}\n", i + 10));
        zone.push_str(&format!("bigmx MX {i} host{i}\nhost{i} A 198.51.100.{i}\n"));
        zone.push_str(&format!("host{i} AAAA 2001:db8::1:{i:x}\n"));
    }
    std::fs::write(dir.path().join("zones/v/Example.Test.zone"), zone).expect("write");
    let config: DnsConfig = toml::from_str(&format!(
        "[[view]]\nname = \"v\"\nmatch_clients = [\"127.0.0.0/8\"]\n\
         [[view.zone]]\nname = \"Example.Test\"\ndnssec = {dnssec}\n",
    ))
    .expect("config");
    let mut inputs = Inputs::new(config, dir.path().to_path_buf());
    if dnssec {
        let pkcs8 = generate(ECDSAP256SHA256).expect("key");
        let key = ZoneKey::new(
            "Example.Test",
            ECDSAP256SHA256,
            KeyRole::Csk,
            KeyState::Active,
            pkcs8,
        )
        .expect("zone key");
        let origin = LowerName::from(Name::from_ascii("example.test.").expect("name"));
        inputs.dnssec_keys = HashMap::from([(origin, vec![key])]);
    }
    let (state, _) = build(&mut inputs, OnZoneError::Fail).expect("builds");
    (dir, state)
}

/// Every section of a message as text, owner names with their case.
fn text(msg: &Message) -> String {
    let records = |rs: &[hickory_proto::rr::Record]| {
        rs.iter()
            .map(|r| format!("{} {} {} {}", r.name, r.ttl, r.record_type(), r.data))
            .collect::<Vec<_>>()
    };
    format!(
        "header {:?}\nquestion {:?}\nanswer {:?}\nauthority {:?}\nadditional {:?}\nedns {:?}",
        msg.metadata,
        msg.queries
            .iter()
            .map(|q| format!("{} {} {}", q.name(), q.query_type(), q.query_class()))
            .collect::<Vec<_>>(),
        records(&msg.answers),
        records(&msg.authorities),
        records(&msg.additionals),
        msg.edns
    )
}

/// Asks both paths; `None` when the wire path leaves the query to the full path.
fn both(state: &ServingState, packet: &[u8], transport: Transport) -> Option<(Vec<u8>, Vec<u8>)> {
    let req = Request {
        packet,
        src: "127.0.0.1:1000".parse().expect("addr"),
        dst: "127.0.0.1:53".parse().expect("addr"),
        transport,
        now: 1_800_000_000,
    };
    let (fast_stats, full_stats) = (DnsStats::default(), DnsStats::default());
    let mut w = Writer::default();
    if !respond(state, &fast_stats, &req, &mut w) {
        assert_eq!(fast_stats.snapshot(), DnsStats::default().snapshot());
        return None;
    }
    let Outcome::Reply(mut full) = respond_full(state, &full_stats, req) else {
        panic!("a reply");
    };
    assert_eq!(full.len(), 1);
    assert_eq!(fast_stats.snapshot(), full_stats.snapshot(), "counters");
    Some((w.message().to_vec(), full.remove(0)))
}

fn packet(name: &str, rtype: RecordType, edns: Option<(u16, bool)>) -> Vec<u8> {
    let mut msg = Message::query();
    msg.metadata.id = 0xBEEF;
    msg.metadata.recursion_desired = name.len().is_multiple_of(2);
    msg.metadata.checking_disabled = name.len().is_multiple_of(3);
    msg.add_query(Query::query(Name::from_ascii(name).expect("name"), rtype));
    if let Some((payload, dnssec_ok)) = edns {
        let mut e = Edns::new();
        e.set_max_payload(payload);
        e.set_dnssec_ok(dnssec_ok);
        msg.set_edns(e);
    }
    msg.to_vec().expect("encodes")
}

#[test]
fn answers_match_the_full_path() {
    let (_dir, state) = state();
    assert!(compare(&state) > 400, "answered from octets");
}

#[test]
fn signed_answers_match_the_full_path() {
    let (_dir, state) = state_with(true);
    assert!(compare(&state) > 400, "answered from octets");
    let types = |name: &str, rtype| {
        let query = packet(name, rtype, Some((1232, true)));
        let (fast, _) = both(&state, &query, Transport::Udp).expect("answered");
        let msg = Message::from_vec(&fast).expect("decodes");
        let types = |rs: &[hickory_proto::rr::Record]| {
            rs.iter().map(|r| r.record_type()).collect::<Vec<_>>()
        };
        (
            msg.response_code,
            types(&msg.answers),
            types(&msg.authorities),
        )
    };
    let (_, answers, _) = types("www.example.test.", RecordType::A);
    assert_eq!(answers, [RecordType::A, RecordType::RRSIG]);
    let (rcode, _, authorities) = types("nope.example.test.", RecordType::A);
    assert_eq!(rcode, hickory_proto::op::ResponseCode::NXDomain);
    let nsec3 = authorities
        .iter()
        .filter(|t| **t == RecordType::NSEC3)
        .count();
    assert!(nsec3 >= 2, "{authorities:?}");
    let (_, _, authorities) = types("www.example.test.", RecordType::MX);
    assert_eq!(
        authorities,
        [
            RecordType::SOA,
            RecordType::RRSIG,
            RecordType::NSEC3,
            RecordType::RRSIG
        ]
    );
}

/// Compares both paths' answers to a corpus of queries; returns how many the wire path
/// answered.
fn compare(state: &ServingState) -> usize {
    let names = [
        "example.test.",
        "EXAMPLE.test.",
        "www.example.test.",
        "WwW.ExAmPlE.TeSt.",
        "mail.example.test.",
        "cased.example.test.",
        "ns1.example.test.",
        "_sip._tcp.example.test.",
        "many.example.test.",
        "bigmx.example.test.",
        "nope.example.test.",
        "NoPe.deeper.example.test.",
        "b.ent.example.test.",
        "x.b.ent.example.test.",
        "ptr.example.test.",
        "raw.example.test.",
        "hinfo.example.test.",
        "alias.example.test.",
        "foo.wild.example.test.",
        "host.child.example.test.",
        "child.example.test.",
        "www.old.example.test.",
        "old.example.test.",
        "other.test.",
    ];
    let types = [
        RecordType::A,
        RecordType::AAAA,
        RecordType::MX,
        RecordType::NS,
        RecordType::TXT,
        RecordType::SRV,
        RecordType::SOA,
        RecordType::PTR,
        RecordType::CNAME,
        RecordType::HINFO,
        RecordType::Unknown(65280),
        RecordType::ANY,
        RecordType::DS,
        RecordType::DNAME,
    ];
    let edns = [
        None,
        Some((512, false)),
        Some((1232, true)),
        Some((4096, false)),
    ];
    let mut handled = 0;
    for name in names {
        for rtype in types {
            for edns in edns {
                for transport in [Transport::Udp, Transport::Tcp] {
                    let query = packet(name, rtype, edns);
                    let Some((fast, full)) = both(state, &query, transport) else {
                        continue;
                    };
                    handled += 1;
                    let (f, h) = (
                        Message::from_vec(&fast).expect("decodes"),
                        Message::from_vec(&full).expect("decodes"),
                    );
                    let what = format!("{name} {rtype} {edns:?} {transport:?}");
                    assert_eq!(text(&f), text(&h), "{what}");
                    assert!(fast.len() <= full.len(), "{what}: longer");
                }
            }
        }
    }
    handled
}

#[test]
fn what_is_left_to_the_full_path() {
    let (_dir, state) = state();
    let left = [
        ("alias.example.test.", RecordType::A),
        ("foo.wild.example.test.", RecordType::TXT),
        ("host.child.example.test.", RecordType::A),
        ("child.example.test.", RecordType::NS),
        ("www.old.example.test.", RecordType::A),
        ("www.example.test.", RecordType::ANY),
        ("child.example.test.", RecordType::DS),
        ("example.test.", RecordType::AXFR),
        ("other.test.", RecordType::A),
    ];
    for (name, rtype) in left {
        let query = packet(name, rtype, None);
        assert!(
            both(&state, &query, Transport::Udp).is_none(),
            "{name} {rtype}"
        );
    }
    let mut tsig_like = packet("www.example.test.", RecordType::A, Some((1232, false)));
    tsig_like.extend_from_slice(b"\x00\x00\x01\x00\x01\x00\x00\x00\x00\x00\x00");
    tsig_like[11] = 2;
    assert!(
        both(&state, &tsig_like, Transport::Udp).is_none(),
        "two additional records"
    );
    let mut edns1 = packet("www.example.test.", RecordType::A, Some((1232, false)));
    let version = edns1.len() - 5;
    edns1[version] = 1;
    assert!(both(&state, &edns1, Transport::Udp).is_none(), "BADVERS");
    let mut chaos = packet("www.example.test.", RecordType::A, None);
    let class = chaos.len() - 1;
    chaos[class] = 3;
    assert!(both(&state, &chaos, Transport::Udp).is_none(), "class CH");
}

#[test]
fn truncation_and_additional_data() {
    let (_dir, state) = state();
    let plain = packet("many.example.test.", RecordType::A, None);
    let (fast, _) = both(&state, &plain, Transport::Udp).expect("answered");
    let msg = Message::from_vec(&fast).expect("decodes");
    assert!(
        msg.truncation && msg.answers.is_empty(),
        "40 A over 512 octets"
    );
    assert_eq!(msg.queries[0].name().to_string(), "many.example.test.");
    let edns = packet("many.example.test.", RecordType::A, Some((1232, false)));
    let (fast, _) = both(&state, &edns, Transport::Udp).expect("answered");
    let msg = Message::from_vec(&fast).expect("decodes");
    assert!(!msg.truncation && msg.answers.len() == 40);
    let mx = packet("bigmx.example.test.", RecordType::MX, Some((1232, false)));
    let (fast, _) = both(&state, &mx, Transport::Udp).expect("answered");
    let msg = Message::from_vec(&fast).expect("decodes");
    assert!(
        !msg.truncation,
        "additional data is dropped first (RFC 2181 §9)"
    );
    assert_eq!((msg.answers.len(), msg.additionals.len()), (40, 0));
    assert!(msg.edns.is_some());
    let (fast, _) = both(&state, &mx, Transport::Tcp).expect("answered");
    let msg = Message::from_vec(&fast).expect("decodes");
    assert_eq!((msg.answers.len(), msg.additionals.len()), (40, 80));
}

#[test]
fn names_are_compressed_and_keep_their_case() {
    let (_dir, state) = state();
    let query = packet("WwW.Example.TEST.", RecordType::A, None);
    let (fast, _) = both(&state, &query, Transport::Udp).expect("answered");
    // Header, question (name of 18 octets, type, class), then the answer's owner: a pointer
    // to the question name.
    assert_eq!(&fast[12..30], b"\x03WwW\x07Example\x04TEST\x00");
    assert_eq!(&fast[34..36], &[0xC0, 12]);
    let mx = packet("example.test.", RecordType::MX, None);
    let (fast, _) = both(&state, &mx, Transport::Udp).expect("answered");
    let msg = Message::from_vec(&fast).expect("decodes");
    let owners: Vec<String> = msg.additionals.iter().map(|r| r.name.to_string()).collect();
    assert_eq!(
        owners,
        ["Mail.Example.Test.", "CaseD.Example.Test."],
        "as written"
    );
    let mut w = Writer::default();
    w.start(1, 0);
    w.name(b"\x01a\x07example\x04test\x00");
    w.name(b"\x01b\x07EXAMPLE\x04test\x00");
    w.name(b"\x01c\x07example\x04test\x00");
    let bytes = w.message();
    assert_eq!(&bytes[12..28], b"\x01a\x07example\x04test\x00");
    assert_eq!(&bytes[28..32], b"\x01b\x07E", "no pointer to another case");
    assert_eq!(&bytes[bytes.len() - 4..], &[1, b'c', 0xC0, 14]);
}
