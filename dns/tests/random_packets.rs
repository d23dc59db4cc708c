//! A deterministic stand-in for `cargo fuzz` (which needs nightly Rust, not available here):
//! tens of thousands of random and mutated packets go through the sans-I/O query path over
//! both transports. Every packet must give either nothing (dropped) or well-formed
//! responses with the request's ID that respect the UDP size limit; nothing may panic.

use std::net::SocketAddr;
use std::path::Path;

use hickory_proto::op::{Edns, Message, OpCode, Query};
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigner};
use postern_dns::engine::{respond, Request, Transport};
use postern_dns::state::{build, Inputs, OnZoneError, ServingState};
use postern_dns::{DnsConfig, DnsStats};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;

const NOW: u64 = 1_800_000_000;

#[derive(Deserialize)]
struct File {
    dns: DnsConfig,
}

fn state() -> ServingState {
    let zones = Path::new(env!("CARGO_MANIFEST_DIR")).join("../zones");
    let text = std::fs::read_to_string(zones.join("dns.example.toml")).expect("config");
    let mut config = toml::from_str::<File>(&text).expect("parses").dns;
    config.watch = false;
    let mut inputs = Inputs::new(config, zones);
    build(&mut inputs, OnZoneError::Fail).expect("zones load").0
}

const NAMES: &[&str] = &[
    "example.test.",
    "www.example.test.",
    "WWW.EXAMPLE.TEST.",
    "webmail.example.test.",
    "x.apps.example.test.",
    "exists.apps.example.test.",
    "lab.example.test.",
    "host.dev.example.test.",
    "dev.example.test.",
    "big.example.test.",
    "nope.example.test.",
    "example.org.",
    ".",
];

fn seed_queries(rng: &mut StdRng) -> Vec<Vec<u8>> {
    let key = TSigner::new(
        b"postern-example-tsig-key-01234567"[..].to_vec(),
        TsigAlgorithm::HmacSha256,
        Name::from_ascii("xfr-key.").expect("name"),
        300,
    )
    .expect("signer");
    let types = [
        RecordType::A,
        RecordType::AAAA,
        RecordType::TXT,
        RecordType::ANY,
        RecordType::AXFR,
        RecordType::IXFR,
        RecordType::DS,
        RecordType::NS,
        RecordType::SOA,
        RecordType::CNAME,
    ];
    let mut out = Vec::new();
    for name in NAMES {
        for rtype in types {
            let mut msg = Message::query();
            msg.metadata.id = rng.random();
            msg.add_query(Query::query(Name::from_ascii(name).expect("name"), rtype));
            if rng.random_bool(0.5) {
                let mut edns = Edns::new();
                edns.set_max_payload(rng.random_range(0..5000));
                msg.set_edns(edns);
            }
            if rtype == RecordType::IXFR {
                let soa = hickory_proto::rr::rdata::SOA::new(
                    Name::root(),
                    Name::root(),
                    rng.random(),
                    1,
                    1,
                    1,
                    1,
                );
                msg.add_authority(Record::from_rdata(
                    Name::from_ascii(name).expect("name"),
                    0,
                    RData::SOA(soa),
                ));
            }
            if rng.random_bool(0.3) {
                msg.finalize(&key, NOW).expect("sign");
            }
            out.push(msg.to_vec().expect("encode"));
        }
    }
    let mut notify = Message::query();
    notify.metadata.op_code = OpCode::Notify;
    notify.add_query(Query::query(
        Name::from_ascii("example.test.").expect("n"),
        RecordType::SOA,
    ));
    out.push(notify.to_vec().expect("encode"));
    let mut two = Message::query();
    two.add_query(Query::query(Name::root(), RecordType::A));
    two.add_query(Query::query(Name::root(), RecordType::A));
    out.push(two.to_vec().expect("encode"));
    let mut chaos = Message::query();
    let mut q = Query::query(
        Name::from_ascii("version.bind.").expect("n"),
        RecordType::TXT,
    );
    q.set_query_class(DNSClass::CH);
    chaos.add_query(q);
    out.push(chaos.to_vec().expect("encode"));
    out
}

fn mutate(rng: &mut StdRng, seed: &[u8]) -> Vec<u8> {
    let mut p = seed.to_vec();
    for _ in 0..rng.random_range(1..6) {
        match rng.random_range(0..7) {
            0 if !p.is_empty() => {
                let i = rng.random_range(0..p.len());
                p[i] ^= 1 << rng.random_range(0..8);
            }
            1 if !p.is_empty() => {
                let i = rng.random_range(0..p.len());
                p[i] = rng.random();
            }
            2 => p.truncate(rng.random_range(0..=p.len())),
            3 if p.len() > 4 => {
                let a = rng.random_range(0..p.len());
                let b = rng.random_range(a..p.len());
                let slice = p[a..b].to_vec();
                let at = rng.random_range(0..=p.len());
                p.splice(at..at, slice);
            }
            4 if p.len() >= 12 => {
                // Random section counts.
                let i = rng.random_range(2..6) * 2;
                p[i] = rng.random();
                p[i + 1] = rng.random();
            }
            5 if p.len() > 13 => {
                // A compression pointer somewhere, possibly forward or to itself.
                let i = rng.random_range(12..p.len() - 1);
                p[i] = 0xC0 | rng.random_range(0..0x40);
                p[i + 1] = rng.random();
            }
            _ => p.push(rng.random()),
        }
    }
    p
}

fn check(state: &ServingState, stats: &DnsStats, packet: &[u8]) {
    let src: SocketAddr = "127.0.0.3:5353".parse().expect("addr");
    let dst: SocketAddr = "127.0.0.1:53".parse().expect("addr");
    for transport in [Transport::Udp, Transport::Tcp] {
        let out = respond(
            state,
            stats,
            Request {
                packet,
                src,
                dst,
                transport,
                now: NOW,
            },
        );
        for response in &out {
            let msg = Message::from_vec(response).unwrap_or_else(|e| {
                panic!("unparsable response {e} to {packet:02x?}: {response:02x?}")
            });
            assert_eq!(&response[..2], &packet[..2], "response ID is the request's");
            if transport == Transport::Udp {
                let limit = match Message::from_vec(packet).ok().and_then(|m| m.edns) {
                    Some(_) => 1232,
                    None => 512,
                };
                assert!(
                    response.len() <= limit,
                    "{} bytes over UDP (limit {limit}) for {packet:02x?}",
                    response.len()
                );
                assert_eq!(out.len(), 1, "one UDP response");
            }
            assert!(!msg.recursion_available, "never recursion");
        }
    }
}

#[test]
fn random_and_mutated_packets_never_panic() {
    let state = state();
    let stats = DnsStats::default();
    let mut rng = StdRng::seed_from_u64(0x5052_4e53);
    let seeds = seed_queries(&mut rng);
    for seed in &seeds {
        check(&state, &stats, seed);
    }
    let mut buf = vec![0u8; 700];
    for _ in 0..20_000 {
        let len = rng.random_range(0..buf.len());
        rng.fill(&mut buf[..len]);
        check(&state, &stats, &buf[..len]);
    }
    for _ in 0..100_000 {
        let seed = &seeds[rng.random_range(0..seeds.len())];
        let packet = mutate(&mut rng, seed);
        check(&state, &stats, &packet);
    }
    let counters = stats.snapshot();
    assert!(counters.queries > 40_000, "{counters:?}");
    assert!(
        counters.formerr > 0 && counters.refused > 0 && counters.nxdomain > 0,
        "{counters:?}"
    );
}
