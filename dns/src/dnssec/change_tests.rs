//! Differential test of signing a change ([`super::incremental`]) against signing the whole
//! zone from scratch: random sequences of changes (names and RRsets added and deleted, empty
//! non-terminals appearing and disappearing, delegations with and without DS and their glue,
//! wildcards, the apex) give the same signed RRsets and the same NSEC3 chain, every signature
//! verifies, the journal entry turns the previous signed version into the new one, and the
//! store's copy built from the changes alone is the one a restart signs from unchanged.

use std::collections::BTreeMap;

use hickory_proto::dnssec::rdata::DNSKEY;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::incremental::sign_change;
use super::tests::{apply, key, signed_records, signed_state, verify_all};
use super::{
    prepare_signing, sign_zone, Basis, KeyRole, KeyState, Previous, SignedZone, Stored,
    StoredSigned, ZoneKey, ZoneKeys, ECDSAP256SHA256, ED25519,
};
use crate::managed::ManagedRecord;
use crate::state::{build as build_state, OnZoneError};
use crate::zone::{parse::parse_text, Zone};

/// Owner names (relative to `t.test.`) and the types the changes put there.
const POOL: &[(&str, &[&str])] = &[
    ("@", &["TXT", "MX"]),
    ("www", &["A", "TXT"]),
    ("a", &["A"]),
    ("b.a", &["TXT"]),
    ("c.b.a", &["A", "TXT"]),
    ("e.d.c", &["A"]),
    ("*.w", &["TXT", "A"]),
    ("x.w", &["A"]),
    ("*", &["TXT"]),
    ("child", &["NS", "DS", "TXT"]),
    ("ns.child", &["A"]),
    ("deep.ns.child", &["A"]),
    ("sub", &["NS", "DS"]),
    ("x.sub", &["A", "TXT"]),
    ("y.x.sub", &["A"]),
    ("nodes", &["DS"]),
];

/// A deterministic pseudo-random sequence (xorshift64*).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

/// The zone's changeable records: (owner, type) to RDATA.
type Records = BTreeMap<(&'static str, &'static str), Vec<String>>;

fn rdata(rng: &mut Rng, owner: &str, rtype: &str) -> String {
    let n = rng.below(4);
    match rtype {
        "A" => format!("192.0.2.{}", 10 + n),
        "TXT" => format!("\"t{n}\""),
        "MX" => format!("{n} www"),
        "NS" if owner == "child" => ["ns.child", "ns2.example.net."][n % 2].to_owned(),
        "NS" => format!("ns{n}.example.net."),
        _ => format!("{} 13 2 {}", 1000 + n, "ab".repeat(32)),
    }
}

/// The zone text of `records` with serial `serial`, and the zone built from it with the
/// signing apex records, or `None` when the records do not make a zone.
fn build(records: &Records, serial: u32, keys: &[ZoneKey]) -> Option<(Zone, ZoneKeys)> {
    let mut text = format!("$TTL 300\n@ SOA ns h {serial} 2 3 4 60\n@ NS ns\nns A 192.0.2.1\n");
    for ((owner, rtype), data) in records {
        for d in data {
            text.push_str(&format!("{owner} {rtype} {d}\n"));
        }
    }
    let origin = Name::from_ascii("t.test.").expect("origin");
    let mut parsed = parse_text(&text, "t", &origin).expect("parses").records;
    let keys = prepare_signing(keys, &origin, &mut parsed).expect("keys");
    Zone::build(&origin, &parsed, 0).0.map(|zone| (zone, keys))
}

/// What must be the same whichever way a version was signed: every record but the RRSIGs as
/// text, and of each RRSIG its owner, type covered, key and original TTL (the signature
/// bytes differ by time and randomness).
fn shape(zone: &Zone, signed: &SignedZone) -> Vec<String> {
    let mut out: Vec<String> = zone
        .rrsets_for_transfer()
        .into_iter()
        .flat_map(|(owner, s)| s.records(&owner))
        .chain(signed.transfer_records())
        .map(|r| match &r.data {
            RData::DNSSEC(hickory_proto::dnssec::rdata::DNSSECRData::RRSIG(sig)) => {
                let input = sig.input();
                format!(
                    "{} RRSIG {} {} {} {}",
                    r.name.to_lowercase(),
                    input.type_covered,
                    input.key_tag,
                    input.original_ttl,
                    input.num_labels
                )
            }
            _ => format!("{r} ttl={}", r.ttl),
        })
        .collect();
    out.sort();
    out
}

/// Every record of a signed version, the SOA included (for the signature check).
fn all_records(zone: &Zone, signed: &SignedZone) -> Vec<Record> {
    let soa = zone.soa().clone();
    zone.rrsets_for_transfer()
        .into_iter()
        .flat_map(|(owner, s)| s.records(&owner))
        .chain(std::iter::once(soa))
        .chain(signed.transfer_records())
        .collect()
}

fn dnskeys(keys: &[ZoneKey]) -> Vec<DNSKEY> {
    keys.iter().map(|k| k.dnskey().expect("dnskey")).collect()
}

/// One random change of one to three operations; returns the owners it touched.
fn change(rng: &mut Rng, records: &mut Records) -> Vec<&'static str> {
    let mut touched = Vec::new();
    for _ in 0..=rng.below(3) {
        let (owner, types) = POOL[rng.below(POOL.len())];
        let rtype = types[rng.below(types.len())];
        match rng.below(5) {
            0 | 1 => {
                let data = rdata(rng, owner, rtype);
                let set = records.entry((owner, rtype)).or_default();
                if !set.contains(&data) {
                    set.push(data);
                }
            }
            2 => {
                records.remove(&(owner, rtype));
            }
            3 => records.retain(|(o, _), _| *o != owner),
            _ => {
                let data = rdata(rng, owner, rtype);
                records.insert((owner, rtype), vec![data]);
            }
        }
        touched.push(owner);
    }
    touched
}

fn absolute(owner: &str) -> Name {
    let text = if owner == "@" {
        "t.test.".to_owned()
    } else {
        format!("{owner}.t.test.")
    };
    Name::from_ascii(text).expect("name")
}

fn run(seed: u64, keys: &[ZoneKey], steps: usize) {
    let mut rng = Rng(seed);
    let mut records = Records::new();
    let t0 = 1_800_000_000;
    let (mut zone, signing) = build(&records, 1, keys).expect("base zone");
    let dnskeys = dnskeys(keys);
    let kept = Basis {
        changes: true,
        ..Basis::default()
    };
    let (mut signed, delta) = sign_zone(&zone, &signing, kept, t0).expect("signs");
    let origin = zone.origin().clone();
    let mut stored = StoredSigned::default();
    apply(
        &mut stored,
        delta
            .into_change("v", &origin, 1, &signed)
            .expect("encodes"),
    );
    let mut serial = 1;
    let mut applied = 0;
    for step in 0..steps {
        let mut next = records.clone();
        let touched: Vec<Name> = change(&mut rng, &mut next)
            .into_iter()
            .map(absolute)
            .collect();
        let Some((new_zone, signing)) = build(&next, serial + 1, keys) else {
            continue;
        };
        records = next;
        serial += 1;
        let now = t0 + 60 * step as u64;
        let previous = Previous {
            zone: &zone,
            signed: &signed,
        };
        let basis = Basis {
            previous: Some(previous),
            touched: Some(&touched),
            ..kept
        };
        let (changed, delta) = sign_change(&new_zone, &signing, previous, &touched, &basis, now)
            .expect("signs")
            .expect("a change is signed as one");
        let (scratch, _) = sign_zone(&new_zone, &signing, Basis::default(), now).expect("signs");
        let context = format!("seed {seed} step {step}: {records:?}");
        assert_eq!(
            shape(&new_zone, &changed),
            shape(&new_zone, &scratch),
            "{context}"
        );
        let all = all_records(&new_zone, &changed);
        let rrsigs = all
            .iter()
            .filter(|r| r.record_type() == RecordType::RRSIG)
            .count();
        assert_eq!(verify_all(&dnskeys, &all), rrsigs, "{context}");
        assert!(!changed.renewal_due(now), "{context}: fresh signatures");
        assert!(
            changed.renewal_due(now + 8 * 86400),
            "{context}: past half the validity"
        );

        // The journal entry turns the previous signed version into this one.
        let [.., entry] = changed.journal() else {
            panic!("{context}: no journal entry");
        };
        assert_eq!((entry.from, entry.to), (serial - 1, serial));
        let text = |r: &Record| format!("{r} ttl={}", r.ttl);
        let mut patched = signed_records(&zone, &signed);
        let removed: Vec<String> = entry.removed.iter().map(text).collect();
        assert!(
            removed.iter().all(|r| patched.contains(r)),
            "{context}: removes only what was there"
        );
        patched.retain(|r| !removed.contains(r));
        patched.extend(entry.added.iter().map(text));
        patched.sort();
        assert_eq!(patched, signed_records(&new_zone, &changed), "{context}");

        apply(
            &mut stored,
            delta
                .into_change("v", &origin, serial, &changed)
                .expect("encodes"),
        );
        zone = new_zone;
        signed = changed;
        applied += 1;
    }
    assert!(
        applied * 2 > steps,
        "seed {seed}: {applied} of {steps} changes built"
    );

    // The store holds exactly the served signatures: a restart reuses every one.
    let parsed = Stored::parse(stored);
    let (signing_keys, _) = (ZoneKeys::new(keys.to_vec()).expect("keys"), ());
    let basis = Basis {
        stored: Some(&parsed),
        ..kept
    };
    let now = t0 + 60 * steps as u64;
    let (again, delta) = sign_zone(&zone, &signing_keys, basis, now).expect("signs");
    assert!(delta.is_empty(), "seed {seed}: {delta:?}");
    assert_eq!(
        signed_records(&zone, &again),
        signed_records(&zone, &signed)
    );
}

#[test]
fn a_signed_change_equals_signing_from_scratch() {
    let csk = vec![key(ECDSAP256SHA256, KeyRole::Csk, KeyState::Active)];
    for seed in [1, 7, 42, 1234] {
        run(seed, &csk, 60);
    }
    let split = vec![
        key(ED25519, KeyRole::Ksk, KeyState::Active),
        key(ED25519, KeyRole::Zsk, KeyState::Active),
    ];
    run(99, &split, 60);
}

/// Through the serving state: the managed records (admin records, dynamic updates) change at
/// random, only their owners are signed again, and what is served is what signing the served
/// zone from scratch gives.
#[test]
fn managed_record_changes_are_signed_like_the_whole_zone() {
    let keys = vec![key(ECDSAP256SHA256, KeyRole::Csk, KeyState::Active)];
    let zone = "$TTL 300\n@ SOA ns h 1 2 3 4 60\n@ NS ns\nns A 192.0.2.1\nfile A 192.0.2.2\n";
    let (_dir, mut inputs, mut state) = signed_state(keys.clone(), zone);
    let dnskeys = dnskeys(&keys);
    let signing = ZoneKeys::new(keys).expect("keys");
    let mut rng = Rng(5);
    let mut records = Records::new();
    let origin = Name::from_ascii("t.test.").expect("origin");
    for step in 0..40 {
        change(&mut rng, &mut records);
        let managed = records
            .iter()
            .flat_map(|((owner, rtype), data)| {
                data.iter().map(|d| ManagedRecord {
                    name: absolute(owner).to_string(),
                    ttl: 300,
                    rtype: (*rtype).to_owned(),
                    data: d.clone(),
                    synthesised: false,
                })
            })
            .collect();
        inputs.managed.insert("v".into(), managed);
        let (next, _) = build_state(&mut inputs, OnZoneError::KeepOld(&state)).expect("builds");
        state = next;
        let served = state.views[0].find_zone(&origin).expect("zone").clone();
        let signed = served.signed.as_ref().expect("signed");
        let now = super::super::server::unix_now();
        let (scratch, _) = sign_zone(&served.zone, &signing, Basis::default(), now).expect("signs");
        let context = format!("step {step}: {records:?}");
        assert_eq!(
            shape(&served.zone, signed),
            shape(&served.zone, &scratch),
            "{context}"
        );
        let all = all_records(&served.zone, signed);
        let rrsigs = all
            .iter()
            .filter(|r| r.record_type() == RecordType::RRSIG)
            .count();
        assert_eq!(verify_all(&dnskeys, &all), rrsigs, "{context}");
    }
}
