//! UPDATE evaluation against a real zone: prerequisites, permissions, the §3.4.2 rules, and
//! the TSIG handling of the engine.

use std::str::FromStr;

use base64::Engine;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::rdata::{A, CNAME, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigner};

use super::*;
use crate::config::DnsConfig;
use crate::engine::{respond_full, Outcome, Request, Transport};
use crate::managed::ManagedRecord;
use crate::state::{build, Inputs, OnZoneError};

const SECRET: &[u8] = b"dynamic-update-secret-0123456789";
const NOW: u64 = 1_800_000_000;

fn state(managed: Vec<ManagedRecord>) -> (tempfile::TempDir, ServingState) {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(dir.path().join("zones/v")).expect("mkdir");
    std::fs::write(
        dir.path().join("zones/v/t.test.zone"),
        "$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.80\n",
    )
    .expect("write");
    let secret = base64::engine::general_purpose::STANDARD.encode(SECRET);
    let config: DnsConfig = toml::from_str(&format!(
        r#"
[[tsig_key]]
name = "ddns-key"
secret = "{secret}"
[[tsig_key]]
name = "admin-key"
secret = "{secret}"
[[view]]
name = "v"
match_clients = ["127.0.0.0/8"]
[[view.update_policy]]
key = "ddns-key"
name = "dyn.t.test"
types = ["A", "AAAA", "TXT", "CNAME"]
[[view.update_policy]]
key = "admin-key"
name = "t.test"
[[view.zone]]
name = "t.test"
"#
    ))
    .expect("config");
    let mut inputs = Inputs::new(config, dir.path().to_path_buf());
    inputs.managed.insert("v".into(), managed);
    let (state, _) = build(&mut inputs, OnZoneError::Fail).expect("builds");
    (dir, state)
}

fn name(s: &str) -> Name {
    Name::from_str(s).expect("name")
}

fn a(owner: &str, ip: [u8; 4]) -> Record {
    Record::from_rdata(
        name(owner),
        300,
        RData::A(A::new(ip[0], ip[1], ip[2], ip[3])),
    )
}

fn class(mut r: Record, c: DNSClass, ttl: u32) -> Record {
    r.dns_class = c;
    r.ttl = ttl;
    r
}

fn empty(owner: &str, rtype: RecordType, c: DNSClass) -> Record {
    class(Record::update0(name(owner), 0, rtype), c, 0)
}

fn message(zone: &str, prereqs: Vec<Record>, updates: Vec<Record>) -> Message {
    let mut msg = Message::new(7, MessageType::Query, OpCode::Update);
    msg.add_query(Query::query(name(zone), RecordType::SOA));
    msg.answers = prereqs;
    msg.authorities = updates;
    msg
}

fn send(state: &ServingState, mut msg: Message, key: Option<(&str, &[u8])>) -> Outcome {
    if let Some((key, secret)) = key {
        let signer = TSigner::new(
            secret.to_vec(),
            TsigAlgorithm::HmacSha256,
            name(&format!("{key}.")),
            300,
        )
        .expect("signer");
        msg.finalize(&signer, NOW).expect("sign");
    }
    let packet = msg.to_vec().expect("encode");
    respond_full(
        state,
        &DnsStats::default(),
        Request {
            packet: &packet,
            src: "127.0.0.9:5300".parse().expect("addr"),
            dst: "127.0.0.1:53".parse().expect("addr"),
            transport: Transport::Udp,
            now: NOW,
        },
    )
}

fn evaluate(state: &ServingState, msg: Message, key: &str) -> Result<ZoneUpdate, ResponseCode> {
    match send(state, msg, Some((key, SECRET))) {
        Outcome::Update(u) => u.evaluate(state),
        Outcome::Reply(_) | Outcome::Transfer(_) => panic!("not handed to the shell"),
    }
}

fn ddns(
    state: &ServingState,
    prereqs: Vec<Record>,
    updates: Vec<Record>,
) -> Result<ZoneUpdate, ResponseCode> {
    evaluate(state, message("t.test.", prereqs, updates), "ddns-key")
}

#[test]
fn adds_a_record_under_the_granted_name() {
    let (_d, state) = state(Vec::new());
    let u = ddns(&state, vec![], vec![a("h1.dyn.t.test.", [192, 0, 2, 7])]).expect("ok");
    assert_eq!(
        (u.view.as_str(), u.zone.as_str(), u.key.as_str()),
        ("v", "t.test.", "ddns-key.")
    );
    assert_eq!(
        u.rrsets,
        vec![RrsetChange {
            name: "h1.dyn.t.test.".into(),
            rtype: "A".into(),
            records: vec![(300, "192.0.2.7".into())],
        }]
    );
    assert_eq!(u.added.len(), 1);
    assert!(u.removed.is_empty());
}

#[test]
fn prerequisites_give_their_rcodes() {
    let (_d, state) = state(Vec::new());
    let add = || vec![a("h.dyn.t.test.", [192, 0, 2, 7])];
    let www = "www.t.test.";
    let cases = [
        (
            empty(www, RecordType::ANY, DNSClass::NONE),
            ResponseCode::YXDomain,
        ),
        (
            empty("nope.t.test.", RecordType::ANY, DNSClass::ANY),
            ResponseCode::NXDomain,
        ),
        (
            empty(www, RecordType::MX, DNSClass::ANY),
            ResponseCode::NXRRSet,
        ),
        (
            empty(www, RecordType::A, DNSClass::NONE),
            ResponseCode::YXRRSet,
        ),
        (
            class(a(www, [192, 0, 2, 81]), DNSClass::IN, 0),
            ResponseCode::NXRRSet,
        ),
        (
            empty("x.other.test.", RecordType::A, DNSClass::ANY),
            ResponseCode::NotZone,
        ),
        (
            class(empty(www, RecordType::A, DNSClass::ANY), DNSClass::ANY, 5),
            ResponseCode::FormErr,
        ),
    ];
    for (prereq, rcode) in cases {
        assert_eq!(
            ddns(&state, vec![prereq.clone()], add()),
            Err(rcode),
            "{prereq:?}"
        );
    }
    // Satisfied: name in use, RRset exists, value-dependent match, name not in use.
    let ok = vec![
        empty(www, RecordType::ANY, DNSClass::ANY),
        empty(www, RecordType::A, DNSClass::ANY),
        class(a(www, [192, 0, 2, 80]), DNSClass::IN, 0),
        empty("h.dyn.t.test.", RecordType::ANY, DNSClass::NONE),
    ];
    assert!(ddns(&state, ok, add()).is_ok());
}

#[test]
fn permissions_and_tsig() {
    let (_d, state) = state(Vec::new());
    // Outside the granted name, or a type not granted: REFUSED (RFC 2136 §3.3).
    assert_eq!(
        ddns(&state, vec![], vec![a("elsewhere.t.test.", [192, 0, 2, 7])]),
        Err(ResponseCode::Refused)
    );
    let mx = Record::from_rdata(
        name("dyn.t.test."),
        300,
        RData::MX(hickory_proto::rr::rdata::MX::new(10, name("mx.t.test."))),
    );
    assert_eq!(ddns(&state, vec![], vec![mx]), Err(ResponseCode::Refused));
    // DNSSEC records are the signer's, even for a key allowed every type (RFC 3007 §4.3).
    let param = Record::from_rdata(
        name("t.test."),
        0,
        RData::DNSSEC(hickory_proto::dnssec::rdata::DNSSECRData::NSEC3PARAM(
            hickory_proto::dnssec::rdata::NSEC3PARAM::new(
                hickory_proto::dnssec::Nsec3HashAlgorithm::SHA1,
                false,
                0,
                Vec::new(),
            ),
        )),
    );
    assert_eq!(
        evaluate(&state, message("t.test.", vec![], vec![param]), "admin-key"),
        Err(ResponseCode::Refused)
    );
    // A zone not served: NOTAUTH (§3.1.1).
    assert_eq!(
        evaluate(&state, message("other.test.", vec![], vec![]), "ddns-key"),
        Err(ResponseCode::NotAuth)
    );
    // Unsigned: REFUSED by the engine itself (never handed to the shell).
    let unsigned = message("t.test.", vec![], vec![a("h.dyn.t.test.", [192, 0, 2, 7])]);
    let Outcome::Reply(reply) = send(&state, unsigned, None) else {
        panic!("refused by the engine");
    };
    let reply = Message::from_vec(&reply[0]).expect("decodes");
    assert_eq!(reply.response_code, ResponseCode::Refused);
    // A wrong secret: NOTAUTH with BADSIG in the TSIG record, answered by the engine itself.
    let forged = message("t.test.", vec![], vec![a("h.dyn.t.test.", [192, 0, 2, 7])]);
    let Outcome::Reply(reply) = send(&state, forged, Some(("ddns-key", b"wrong"))) else {
        panic!("refused by the engine");
    };
    let reply = Message::from_vec(&reply[0]).expect("decodes");
    assert_eq!(reply.response_code, ResponseCode::NotAuth);
    assert_eq!(reply.op_code, OpCode::Update);
    let tsig = reply.signature().expect("TSIG record");
    assert_eq!(u16::from(tsig.data.error.expect("error")), 16, "BADSIG");
}

#[test]
fn file_rrsets_stay_authoritative_and_apex_rules_hold() {
    let (_d, state) = state(Vec::new());
    let admin = |updates| evaluate(&state, message("t.test.", vec![], updates), "admin-key");
    assert_eq!(
        admin(vec![a("www.t.test.", [10, 0, 0, 1])]),
        Err(ResponseCode::Refused),
        "the file's www A"
    );
    let txt = Record::from_rdata(
        name("www.t.test."),
        60,
        RData::TXT(TXT::new(vec!["x".into()])),
    );
    assert_eq!(admin(vec![txt]).expect("new RRset").rrsets.len(), 1);
    // SOA and NS are not granted by default: REFUSED.
    assert_eq!(
        admin(vec![empty("t.test.", RecordType::NS, DNSClass::ANY)]),
        Err(ResponseCode::Refused)
    );
    // Deleting every RRset at the apex keeps SOA and NS (§3.4.2.3) and the file's data.
    let ignored = admin(vec![empty("t.test.", RecordType::ANY, DNSClass::ANY)]).expect("ok");
    assert!(ignored.rrsets.is_empty(), "{ignored:?}");
    // A CNAME where other data exists is ignored (§3.4.2.2).
    let cname = Record::from_rdata(
        name("www.t.test."),
        60,
        RData::CNAME(CNAME(name("ns.t.test."))),
    );
    assert!(admin(vec![cname]).expect("ok").rrsets.is_empty());
}

#[test]
fn deletes_rr_rrset_and_name() {
    let managed = |n: &str, t: &str, d: &str| ManagedRecord {
        name: n.into(),
        ttl: 300,
        rtype: t.into(),
        data: d.into(),
        synthesised: false,
    };
    let (_d, state) = state(vec![
        managed("h.dyn.t.test.", "A", "192.0.2.7"),
        managed("h.dyn.t.test.", "A", "192.0.2.8"),
        managed("h.dyn.t.test.", "TXT", "\"hello\""),
        managed("h.dyn.t.test.", "MX", "10 mx.t.test."),
    ]);
    let h = "h.dyn.t.test.";
    let one = ddns(
        &state,
        vec![],
        vec![class(a(h, [192, 0, 2, 7]), DNSClass::NONE, 0)],
    )
    .expect("delete RR");
    assert_eq!(one.rrsets[0].records, vec![(300, "192.0.2.8".into())]);
    assert_eq!(
        one.removed,
        vec![(h.into(), 300, "A".into(), "192.0.2.7".into())]
    );
    let set = ddns(&state, vec![], vec![empty(h, RecordType::A, DNSClass::ANY)]).expect("RRset");
    assert_eq!(set.rrsets.len(), 1);
    assert!(set.rrsets[0].records.is_empty());
    assert_eq!(set.removed.len(), 2);
    // Delete all RRsets: only the types this key may change (MX stays).
    let all = ddns(
        &state,
        vec![],
        vec![empty(h, RecordType::ANY, DNSClass::ANY)],
    )
    .expect("all");
    let mut types: Vec<&str> = all.rrsets.iter().map(|r| r.rtype.as_str()).collect();
    types.sort();
    assert_eq!(types, ["A", "TXT"]);
    // Adding an RR already present with another TTL changes the RRset's TTL.
    let mut again = a(h, [192, 0, 2, 8]);
    again.ttl = 60;
    let ttl = ddns(&state, vec![], vec![again]).expect("ttl");
    assert_eq!(
        ttl.rrsets[0].records,
        vec![(60, "192.0.2.7".into()), (60, "192.0.2.8".into())]
    );
}

#[test]
fn without_a_shell_update_is_refused() {
    let (_d, state) = state(Vec::new());
    let msg = message("t.test.", vec![], vec![a("h.dyn.t.test.", [192, 0, 2, 7])]);
    let packet = msg.to_vec().expect("encode");
    let reply = crate::engine::respond(
        &state,
        &DnsStats::default(),
        Request {
            packet: &packet,
            src: "127.0.0.9:5300".parse().expect("addr"),
            dst: "127.0.0.1:53".parse().expect("addr"),
            transport: Transport::Udp,
            now: NOW,
        },
    );
    let reply = Message::from_vec(&reply[0]).expect("decodes");
    assert_eq!(reply.response_code, ResponseCode::Refused);
    assert_eq!(reply.op_code, OpCode::Update);
    assert_eq!(reply.id, 7);
}
