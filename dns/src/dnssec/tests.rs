//! Signing and signed answers through the sans-I/O query path: every RRSIG checked against
//! the zone's DNSKEY with hickory's verifier, the NSEC3 proofs per answer kind, the signature
//! cache, and UDP truncation of larger signed answers.

use std::collections::HashMap;

use hickory_proto::dnssec::rdata::{DNSSECRData, DNSKEY, RRSIG};
use hickory_proto::dnssec::Verifier;
use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};

use super::{generate, Basis, KeyRole, KeyState, ZoneKey, ECDSAP256SHA256, ED25519};
use crate::config::DnsConfig;
use crate::engine::{respond, Request, Transport};
use crate::state::{build, Inputs, OnZoneError, ServingState};
use crate::stats::DnsStats;

const ZONE: &str = "$TTL 300
@ SOA ns h 1 2 3 4 60
@ NS ns
ns A 192.0.2.1
www A 192.0.2.80
*.wild TXT \"wild\"
a.b.ent A 192.0.2.60
child NS ns.child
ns.child A 192.0.2.53
";

pub(super) fn key(algorithm: u8, role: KeyRole, state: KeyState) -> ZoneKey {
    let pkcs8 = generate(algorithm).expect("key");
    ZoneKey::new("t.test", algorithm, role, state, pkcs8).expect("zone key")
}

pub(super) fn signed_state(
    keys: Vec<ZoneKey>,
    zone: &str,
) -> (tempfile::TempDir, Inputs, ServingState) {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(dir.path().join("zones/v")).expect("mkdir");
    std::fs::write(dir.path().join("zones/v/t.test.zone"), zone).expect("write");
    let config: DnsConfig = toml::from_str(
        "[[view]]\nname = \"v\"\nmatch_clients = [\"any\"]\n[[view.zone]]\nname = \"t.test\"\ndnssec = true\n",
    )
    .expect("config");
    let mut inputs = Inputs::new(config, dir.path().to_path_buf());
    inputs.dnssec_keys = HashMap::from([(LowerName::from(name("t.test.")), keys)]);
    let (state, _) = build(&mut inputs, OnZoneError::Fail).expect("builds");
    (dir, inputs, state)
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).expect("name")
}

fn ask(state: &ServingState, qname: &str, qtype: RecordType, dnssec_ok: bool) -> Message {
    let mut msg = Message::query();
    msg.add_query(Query::query(name(qname), qtype));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    edns.set_dnssec_ok(dnssec_ok);
    msg.set_edns(edns);
    let packet = msg.to_vec().expect("encode");
    let out = respond(
        state,
        &DnsStats::default(),
        Request {
            packet: &packet,
            src: "127.0.0.1:5353".parse().expect("addr"),
            dst: "127.0.0.1:53".parse().expect("addr"),
            transport: Transport::Tcp,
            now: 1_800_000_000,
        },
    );
    Message::from_vec(&out[0]).expect("decodes")
}

fn dnskeys(state: &ServingState) -> Vec<DNSKEY> {
    ask(state, "t.test.", RecordType::DNSKEY, false)
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::DNSKEY(k)) => Some(k.clone()),
            _ => None,
        })
        .collect()
}

fn rrsig(r: &Record) -> Option<&RRSIG> {
    match &r.data {
        RData::DNSSEC(DNSSECRData::RRSIG(sig)) => Some(sig),
        _ => None,
    }
}

/// Checks every RRSIG in `records` against the RRset it covers; returns how many there were.
pub(super) fn verify_all(keys: &[DNSKEY], records: &[Record]) -> usize {
    let mut n = 0;
    for sig_record in records {
        let Some(sig) = rrsig(sig_record) else {
            continue;
        };
        let covered: Vec<&Record> = records
            .iter()
            .filter(|r| r.name == sig_record.name && r.record_type() == sig.input().type_covered)
            .collect();
        assert!(!covered.is_empty(), "RRSIG without its RRset: {sig_record}");
        let key = keys
            .iter()
            .find(|k| k.calculate_key_tag().ok() == Some(sig.input().key_tag))
            .expect("signing key published");
        key.verify_rrsig(&sig_record.name, DNSClass::IN, sig, covered.into_iter())
            .unwrap_or_else(|e| panic!("{sig_record}: {e}"));
        n += 1;
    }
    n
}

fn types(records: &[Record]) -> Vec<RecordType> {
    records.iter().map(Record::record_type).collect()
}

#[test]
fn answers_carry_valid_signatures_and_proofs() {
    let (_d, _i, state) = signed_state(
        vec![key(ECDSAP256SHA256, KeyRole::Csk, KeyState::Active)],
        ZONE,
    );
    let keys = dnskeys(&state);
    assert_eq!(keys.len(), 1);
    let dnskey = ask(&state, "t.test.", RecordType::DNSKEY, true);
    assert_eq!(verify_all(&keys, &dnskey.answers), 1);

    let www = ask(&state, "WWW.t.test.", RecordType::A, true);
    assert_eq!(types(&www.answers), [RecordType::A, RecordType::RRSIG]);
    assert_eq!(
        verify_all(&keys, &www.answers),
        1,
        "owner case does not matter"
    );
    let plain = ask(&state, "www.t.test.", RecordType::A, false);
    assert_eq!(types(&plain.answers), [RecordType::A], "no DO, no RRSIG");

    // NXDOMAIN: closest encloser, next closer and wildcard NSEC3s, all signed.
    let nx = ask(&state, "nope.t.test.", RecordType::A, true);
    assert_eq!(nx.response_code, ResponseCode::NXDomain);
    let nsec3 = nx
        .authorities
        .iter()
        .filter(|r| r.record_type() == RecordType::NSEC3)
        .count();
    assert!((2..=3).contains(&nsec3), "{:?}", types(&nx.authorities));
    assert_eq!(
        verify_all(&keys, &nx.authorities),
        1 + nsec3,
        "SOA and NSEC3s signed"
    );

    // NODATA at a name and at an empty non-terminal: one matching NSEC3.
    for qname in ["www.t.test.", "ent.t.test."] {
        let nodata = ask(&state, qname, RecordType::MX, true);
        assert!(nodata.answers.is_empty());
        assert_eq!(
            types(&nodata.authorities),
            [
                RecordType::SOA,
                RecordType::RRSIG,
                RecordType::NSEC3,
                RecordType::RRSIG
            ]
        );
        verify_all(&keys, &nodata.authorities);
    }

    // A wildcard answer: the wildcard's signature (labels 3) and the next closer's NSEC3.
    let wild = ask(&state, "x.y.wild.t.test.", RecordType::TXT, true);
    let sig = wild.answers.iter().find_map(rrsig).expect("signed");
    assert_eq!(sig.input().num_labels, 3);
    assert_eq!(
        types(&wild.authorities),
        [RecordType::NSEC3, RecordType::RRSIG]
    );

    // An insecure delegation: NS and the NSEC3 proving no DS, no signature over NS.
    let referral = ask(&state, "host.child.t.test.", RecordType::A, true);
    assert!(!referral.authoritative);
    assert_eq!(
        types(&referral.authorities),
        [RecordType::NS, RecordType::NSEC3, RecordType::RRSIG]
    );
    // Glue below the cut is neither signed nor in the chain.
    let ds = ask(&state, "child.t.test.", RecordType::DS, true);
    assert!(ds.authoritative && ds.answers.is_empty());
}

#[test]
fn signatures_are_cached_until_half_their_validity() {
    let keys = vec![key(ED25519, KeyRole::Csk, KeyState::Active)];
    let (_d, mut inputs, first) = signed_state(keys.clone(), ZONE);
    let sig =
        |state: &ServingState| ask(state, "www.t.test.", RecordType::A, true).answers[1].clone();
    let (again, _) = build(&mut inputs, OnZoneError::Fail).expect("builds");
    assert_eq!(sig(&first), sig(&again), "unchanged RRset, same signature");
    let dnskeys = dnskeys(&again);
    assert_eq!(
        verify_all(
            &dnskeys,
            &ask(&again, "www.t.test.", RecordType::A, true).answers
        ),
        1
    );

    // The same, at chosen times: renewed once less than half the validity is left.
    let origin = name("t.test.");
    let parsed = crate::zone::parse::parse_text(ZONE, "t", &origin).expect("parses");
    let zone = crate::zone::Zone::build(&origin, &parsed.records, 0)
        .0
        .expect("zone");
    let keys = super::ZoneKeys::new(keys).expect("keys");
    let www = LowerName::from(name("www.t.test."));
    let t0 = 1_800_000_000;
    let (fresh, delta) = super::sign_zone(&zone, &keys, Basis::default(), t0).expect("signs");
    assert!(
        delta.is_empty(),
        "no store, no changes worked out: {delta:?}"
    );
    assert!(!fresh.renewal_due(t0 + 6 * 86400), "nothing to renew yet");
    assert!(
        fresh.renewal_due(t0 + 8 * 86400),
        "renewal due: a new serial"
    );
    let mut last: Option<super::SignedZone> = None;
    let mut sign_at = |now: u64| {
        let previous = last.as_ref().map(|signed| super::Previous {
            zone: &zone,
            signed,
        });
        let basis = Basis {
            previous,
            ..Basis::default()
        };
        let (signed, _) = super::sign_zone(&zone, &keys, basis, now).expect("signs");
        let sigs = signed.sigs(&www, RecordType::A, &www);
        last = Some(signed);
        sigs
    };
    let at_start = sign_at(t0);
    assert_eq!(
        sign_at(t0 + 6 * 86400),
        at_start,
        "more than half left: cached"
    );
    let renewed = sign_at(t0 + 8 * 86400);
    assert_ne!(renewed, at_start, "less than half left: renewed");
    let expiration = rrsig(&renewed[0])
        .expect("RRSIG")
        .input()
        .sig_expiration
        .get();
    assert_eq!(u64::from(expiration), t0 + 8 * 86400 + 14 * 86400);
}

#[test]
fn ksk_and_zsk_split_the_work() {
    let (_d, _i, state) = signed_state(
        vec![
            key(ECDSAP256SHA256, KeyRole::Ksk, KeyState::Active),
            key(ECDSAP256SHA256, KeyRole::Zsk, KeyState::Active),
            key(ECDSAP256SHA256, KeyRole::Zsk, KeyState::Published),
        ],
        ZONE,
    );
    let keys = dnskeys(&state);
    assert_eq!(keys.len(), 3, "the published ZSK is in the DNSKEY RRset");
    let ksk_tag = keys
        .iter()
        .find(|k| k.secure_entry_point())
        .and_then(|k| k.calculate_key_tag().ok())
        .expect("KSK");
    let tags = |m: &Message| -> Vec<u16> {
        m.answers
            .iter()
            .filter_map(rrsig)
            .map(|s| s.input().key_tag)
            .collect()
    };
    let dnskey = ask(&state, "t.test.", RecordType::DNSKEY, true);
    assert_eq!(tags(&dnskey), [ksk_tag], "only the KSK signs DNSKEY");
    let www = ask(&state, "www.t.test.", RecordType::A, true);
    let data_tags = tags(&www);
    assert_eq!(data_tags.len(), 1, "only the active ZSK signs data");
    assert_ne!(data_tags[0], ksk_tag);
    verify_all(&keys, &www.answers);
    let cds = ask(&state, "t.test.", RecordType::CDS, false);
    assert_eq!(cds.answers.len(), 1, "CDS for the KSK only");
}

#[test]
fn signed_answers_too_big_for_udp_are_truncated() {
    let mut zone = String::from(ZONE);
    for i in 0..28 {
        zone.push_str(&format!("many A 192.0.2.{}\n", i + 100));
    }
    let (_d, _i, state) = signed_state(
        vec![key(ECDSAP256SHA256, KeyRole::Csk, KeyState::Active)],
        &zone,
    );
    let udp = |dnssec_ok: bool| {
        let mut msg = Message::query();
        msg.add_query(Query::query(name("many.t.test."), RecordType::A));
        let mut edns = Edns::new();
        edns.set_max_payload(512);
        edns.set_dnssec_ok(dnssec_ok);
        msg.set_edns(edns);
        let packet = msg.to_vec().expect("encode");
        let out = respond(
            &state,
            &DnsStats::default(),
            Request {
                packet: &packet,
                src: "127.0.0.1:5353".parse().expect("addr"),
                dst: "127.0.0.1:53".parse().expect("addr"),
                transport: Transport::Udp,
                now: 1_800_000_000,
            },
        );
        Message::from_vec(&out[0]).expect("decodes")
    };
    let plain = udp(false);
    assert!(
        !plain.truncation && plain.answers.len() == 28,
        "fits without RRSIG"
    );
    let signed = udp(true);
    assert!(
        signed.truncation && signed.answers.is_empty(),
        "with it: TC=1 (RFC 4035 §3.1.1)"
    );
}

/// Every record of a signed version but the SOA, as text, sorted.
pub(super) fn signed_records(zone: &crate::zone::Zone, signed: &super::SignedZone) -> Vec<String> {
    let mut out: Vec<String> = zone
        .rrsets_for_transfer()
        .into_iter()
        .flat_map(|(owner, s)| s.records(&owner))
        .chain(signed.transfer_records())
        .map(|r| format!("{r} ttl={}", r.ttl))
        .collect();
    out.sort();
    out
}

/// The zone `t.test.` of `text`, built.
fn build_zone(text: &str) -> crate::zone::Zone {
    let origin = name("t.test.");
    let parsed = crate::zone::parse::parse_text(text, "t", &origin).expect("parses");
    crate::zone::Zone::build(&origin, &parsed.records, 0)
        .0
        .expect("zone")
}

#[test]
fn journal_holds_the_signed_difference() {
    let keys =
        super::ZoneKeys::new(vec![key(ED25519, KeyRole::Csk, KeyState::Active)]).expect("keys");
    let t0 = 1_800_000_000;
    let v1 = build_zone(ZONE);
    let (s1, _) = super::sign_zone(&v1, &keys, Basis::default(), t0).expect("signs");
    assert!(s1.journal().is_empty());
    let changed = ZONE
        .replace("SOA ns h 1 ", "SOA ns h 2 ")
        .replace("www A 192.0.2.80", "www A 192.0.2.81\nnew A 192.0.2.99");
    let v2 = build_zone(&changed);
    let previous = super::Previous {
        zone: &v1,
        signed: &s1,
    };
    let (s2, _) = super::sign_zone(&v2, &keys, after(previous), t0 + 60).expect("signs");
    let [d] = s2.journal() else {
        panic!("one difference: {}", s2.journal().len());
    };
    assert_eq!((d.from, d.to), (1, 2));
    let added = types(&d.added);
    for t in [RecordType::A, RecordType::RRSIG, RecordType::NSEC3] {
        assert!(added.contains(&t), "{t} added: {added:?}");
    }
    assert!(
        d.added.len() + d.removed.len() < 20,
        "only what changed: {} records",
        d.added.len() + d.removed.len()
    );
    // Applying the difference to the first version gives the second.
    let text = |r: &Record| format!("{r} ttl={}", r.ttl);
    let mut applied = signed_records(&v1, &s1);
    let removed: Vec<String> = d.removed.iter().map(text).collect();
    applied.retain(|r| !removed.contains(r));
    applied.extend(d.added.iter().map(text));
    applied.sort();
    assert_eq!(applied, signed_records(&v2, &s2));

    let (s3, _) = super::sign_zone(
        &v2,
        &keys,
        after(super::Previous {
            zone: &v2,
            signed: &s2,
        }),
        t0 + 120,
    )
    .expect("signs");
    assert_eq!(s3.journal().len(), 1, "same serial: the journal is kept");
}

/// Signing after `previous`, without a journal limit, working out the changes for a store.
fn after(previous: super::Previous<'_>) -> Basis<'_> {
    Basis {
        previous: Some(previous),
        changes: true,
        ..Basis::default()
    }
}

/// The store's copy after applying `change` to `stored` (what the binary's writer does).
pub(super) fn apply(stored: &mut super::StoredSigned, change: super::SignedChange) {
    let gone: Vec<(String, u16)> = change
        .upserts
        .iter()
        .map(|r| (r.owner.clone(), r.rtype))
        .chain(change.deletes)
        .collect();
    stored
        .signatures
        .retain(|r| !gone.contains(&(r.owner.clone(), r.rtype)));
    stored.signatures.extend(change.upserts);
    stored.journal.extend(change.entry);
}

/// A restart signs from what the store kept: the same signatures (so the secondaries' copy is
/// the served one), the journal of the run before, and nothing new to store.
#[test]
fn stored_signatures_and_journal_survive_a_restart() {
    let origin = name("t.test.");
    // ECDSA signatures differ every time they are made: only reuse gives the same ones.
    let keys = super::ZoneKeys::new(vec![key(ECDSAP256SHA256, KeyRole::Csk, KeyState::Active)])
        .expect("keys");
    let t0 = 1_800_000_000;
    let mut stored = super::StoredSigned::default();
    let v1 = build_zone(ZONE);
    let kept = Basis {
        changes: true,
        ..Basis::default()
    };
    let (s1, delta) = super::sign_zone(&v1, &keys, kept, t0).expect("signs");
    let first = delta.into_change("main", &origin, 1, &s1).expect("encodes");
    assert!(first.entry.is_none() && first.deletes.is_empty());
    let signed_sets = s1.all_sigs().count() + s1.chain.len();
    assert_eq!(
        first.upserts.len(),
        signed_sets,
        "every RRset and NSEC3 record"
    );
    apply(&mut stored, first);
    let changed = ZONE
        .replace("SOA ns h 1 ", "SOA ns h 2 ")
        .replace("www A 192.0.2.80", "www A 192.0.2.81\nnew A 192.0.2.99");
    let v2 = build_zone(&changed);
    let (s2, delta) = super::sign_zone(
        &v2,
        &keys,
        after(super::Previous {
            zone: &v1,
            signed: &s1,
        }),
        t0 + 60,
    )
    .expect("signs");
    let change = delta.into_change("main", &origin, 1, &s2).expect("encodes");
    assert!(
        change.upserts.len() < 10,
        "only the changed RRsets and NSEC3 records: {}",
        change.upserts.len()
    );
    apply(&mut stored, change);

    // The restart: nothing in memory, the store's rows parsed back.
    let parsed = super::Stored::parse(stored.clone());
    assert!(!parsed.renewal_due(t0 + 120));
    let basis = Basis {
        stored: Some(&parsed),
        ..kept
    };
    let (again, delta) = super::sign_zone(&v2, &keys, basis, t0 + 120).expect("signs");
    assert_eq!(signed_records(&v2, &again), signed_records(&v2, &s2));
    assert!(delta.is_empty(), "{delta:?}");
    let [d] = again.journal() else {
        panic!("the stored entry: {}", again.journal().len());
    };
    assert_eq!((d.from, d.to), (1, 2));
    let text = |r: &Record| format!("{r} ttl={}", r.ttl);
    let mut applied = signed_records(&v1, &s1);
    let removed: Vec<String> = d.removed.iter().map(text).collect();
    applied.retain(|r| !removed.contains(r));
    applied.extend(d.added.iter().map(text));
    applied.sort();
    assert_eq!(applied, signed_records(&v2, &again));

    // A name removed while stopped: its signatures and NSEC3 record are deleted from the store.
    let v3 = build_zone(&changed.replace("new A 192.0.2.99", ""));
    let (_, delta) = super::sign_zone(&v3, &keys, basis, t0 + 180).expect("signs");
    let deleted: Vec<RecordType> = delta.deletes.iter().map(|(_, t)| *t).collect();
    assert!(
        deleted.contains(&RecordType::A) && deleted.contains(&RecordType::NSEC3),
        "{deleted:?}"
    );
}
