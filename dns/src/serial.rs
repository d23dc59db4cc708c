//! The served SOA serial: a zone whose content changed is never served under a serial that a
//! secondary already holds. Like Knot's `serial-policy`, the served serial is the file's serial
//! when that is newer than the last served one, and the last served serial plus one when the
//! content changed without a newer serial (RFC 1982 arithmetic): a change of the managed records
//! (admin, UPDATE, published mail records) moves the serial of the zones it changes by one, and
//! leaves the other zones alone. A zone that shrinks to less than half its records without a new serial is most
//! likely a file caught while being written, and is logged.

use std::collections::HashMap;

use hickory_proto::rr::{LowerName, Name, RData, Record};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use sha2::{Digest, Sha256};

use crate::transfer::serial_lt;
use crate::zone::SourceRecord;

/// What was last served for one zone of one view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServedSerial {
    /// The served SOA serial.
    pub serial: u32,
    /// A digest of the zone's records (the SOA's serial excluded).
    pub digest: u64,
}

/// The served serial of one zone in one view, as persisted between runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneSerial {
    /// The view owning the zone.
    pub view: String,
    /// The zone's origin, lower case, with a trailing dot.
    pub zone: String,
    /// Serial and content digest.
    pub served: ServedSerial,
}

/// In-process knowledge about the previous build of a zone, beside what is persisted.
#[derive(Debug, Clone, Copy)]
struct LastBuild {
    /// What was served.
    served: ServedSerial,
    /// The zone file's serial, if built in this process.
    candidate: Option<u32>,
    /// Number of records, if built in this process.
    records: Option<usize>,
}

/// The serial chosen for one build of a zone, to be recorded once the zone is built.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Choice {
    /// The serial to serve.
    pub serial: u32,
    /// What to add to the file's SOA serial to get it.
    pub offset: u32,
    candidate: u32,
    digest: u64,
    records: usize,
}

/// What every zone served last, and the served serials that changed since they were taken.
#[derive(Debug, Default)]
pub(crate) struct SerialBook {
    last: HashMap<(String, LowerName), LastBuild>,
    changed: Vec<ZoneSerial>,
}

impl SerialBook {
    /// Remembers serials served by an earlier run.
    pub fn remember(&mut self, serials: Vec<ZoneSerial>) {
        for s in serials {
            let Ok(origin) = Name::from_ascii(&s.zone) else {
                continue;
            };
            let last = LastBuild {
                served: s.served,
                candidate: None,
                records: None,
            };
            self.last.insert((s.view, LowerName::new(&origin)), last);
        }
    }

    /// The served serials that changed since the last call.
    pub fn take_changed(&mut self) -> Vec<ZoneSerial> {
        std::mem::take(&mut self.changed)
    }

    /// The serial for `records` (a zone's merged content) of `origin` in `view`, whose
    /// [`digest`] is `digest`, `renewing` when the build renews DNSSEC signatures (a change
    /// even if the records are the same); a suspicious shrink is logged.
    pub fn choose(
        &self,
        view: &str,
        origin: &Name,
        records: &[SourceRecord],
        digest: u64,
        renewing: bool,
    ) -> Choice {
        let candidate = source_serial(records).unwrap_or_default();
        let last = self.last.get(&(view.to_owned(), LowerName::new(origin)));
        if let Some(last) = last {
            if last.served.digest != digest && suspicious_shrink(last, candidate, records.len()) {
                tracing::warn!(
                    view,
                    zone = %origin,
                    records = records.len(),
                    before = last.records.unwrap_or_default(),
                    "zone lost most of its records without a new serial: was the file still being written?"
                );
            }
        }
        let serial = choose(candidate, digest, last.map(|l| l.served), renewing);
        Choice {
            serial,
            offset: serial.wrapping_sub(candidate),
            candidate,
            digest,
            records: records.len(),
        }
    }

    /// Records that the zone was built and is served as `choice` says.
    pub fn served(&mut self, view: &str, origin: &Name, choice: Choice) {
        let key = (view.to_owned(), LowerName::new(origin));
        let served = ServedSerial {
            serial: choice.serial,
            digest: choice.digest,
        };
        let before = self.last.get(&key).map(|l| l.served);
        if before != Some(served) {
            if before.is_some() && choice.serial != choice.candidate {
                tracing::info!(
                    view,
                    zone = %origin,
                    serial = choice.serial,
                    "zone content changed without a new serial: serving it with serial {}",
                    choice.serial
                );
            }
            self.changed.push(ZoneSerial {
                view: view.to_owned(),
                zone: origin.to_lowercase().to_string(),
                served,
            });
        }
        let last = LastBuild {
            served,
            candidate: Some(choice.candidate),
            records: Some(choice.records),
        };
        self.last.insert(key, last);
    }
}

/// The serial to serve for content `digest` when the sources ask for `candidate` and `last` was
/// served before: never lower than the last one, and higher when the content changed (or its
/// signatures are `renewing`).
pub fn choose(candidate: u32, digest: u64, last: Option<ServedSerial>, renewing: bool) -> u32 {
    match last {
        None => candidate,
        Some(last) if serial_lt(last.serial, candidate) => candidate,
        Some(last) if last.digest == digest && !renewing => last.serial,
        Some(last) => last.serial.wrapping_add(1),
    }
}

/// A digest of the records independent of their order, with SOA serials left out: SHA-256
/// over the sorted hashes of each record's wire form (owner lower-cased), so that it stays the
/// same across restarts and upgrades.
pub fn digest(records: &[SourceRecord]) -> u64 {
    let mut each = vec![[0u8; 32]; records.len()];
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // A big zone's records are hashed on every core at once, in chunks (each its own slots).
    let chunk = records.len().div_ceil(threads).max(PARALLEL_MIN);
    std::thread::scope(|scope| {
        let mut parts = records.chunks(chunk).zip(each.chunks_mut(chunk));
        let first = parts.next();
        for (from, to) in parts {
            scope.spawn(move || hash_records(from, to));
        }
        if let Some((from, to)) = first {
            hash_records(from, to);
        }
    });
    each.sort_unstable();
    let mut all = Sha256::new();
    for h in &each {
        all.update(h);
    }
    let sum = all.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&sum[..8]);
    u64::from_be_bytes(first)
}

/// Records hashed by one thread of [`digest`] at least: fewer are not worth a thread.
const PARALLEL_MIN: usize = 16_384;

/// Writes the SHA-256 of each record's normalised wire form (owner lower-cased, SOA serial
/// zero) to the slot of the same index.
fn hash_records(records: &[SourceRecord], out: &mut [[u8; 32]]) {
    let mut wire = Vec::new();
    for (r, slot) in records.iter().zip(out) {
        let lower = !r.record.name.iter().flatten().any(u8::is_ascii_uppercase);
        let as_is = lower && !matches!(r.record.data, RData::SOA(_));
        // Most records are hashed as they are; the others are copied to be normalised.
        let normalised;
        let record = if as_is {
            &r.record
        } else {
            let mut record = r.record.clone();
            if let RData::SOA(soa) = &mut record.data {
                soa.serial = 0;
            }
            record.name = record.name.to_lowercase();
            normalised = record;
            &normalised
        };
        // What `to_bytes` gives, written into one buffer for all the records.
        wire.clear();
        if !address_record_wire(record, &mut wire)
            && record.emit(&mut BinEncoder::new(&mut wire)).is_err()
        {
            wire.clear();
            wire.extend_from_slice(format!("{record}").as_bytes());
        }
        *slot = Sha256::digest(&wire).into();
    }
}

/// Writes an A or AAAA record (most of a big zone) with an absolute owner as hickory's
/// `Record::emit` does (RFC 1035 §4.1.3: owner, type, class, TTL, RDLENGTH, RDATA), without
/// its encoder; false, writing nothing, for any other record.
fn address_record_wire(record: &Record, out: &mut Vec<u8>) -> bool {
    let v4;
    let v6;
    let data: &[u8] = match &record.data {
        RData::A(a) => {
            v4 = a.0.octets();
            &v4
        }
        RData::AAAA(a) => {
            v6 = a.0.octets();
            &v6
        }
        _ => return false,
    };
    if !record.name.is_fqdn() {
        return false;
    }
    for label in record.name.iter() {
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
    out.extend_from_slice(&u16::from(record.record_type()).to_be_bytes());
    out.extend_from_slice(&u16::from(record.dns_class).to_be_bytes());
    out.extend_from_slice(&record.ttl.to_be_bytes());
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
    true
}

/// The SOA serial written in the records, if they hold an SOA.
fn source_serial(records: &[SourceRecord]) -> Option<u32> {
    records.iter().find_map(|r| match &r.record.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    })
}

/// True when the content shrank to less than half without a newer serial from the sources.
fn suspicious_shrink(last: &LastBuild, candidate: u32, records: usize) -> bool {
    match (last.candidate, last.records) {
        (Some(before), Some(count)) => !serial_lt(before, candidate) && records * 2 < count,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`digest_is_stable_across_versions`]' zone as digested by the releases that stored it.
    const PINNED: u64 = 0x6164_9a2e_bb8a_86b1;

    #[test]
    fn serial_policy() {
        let last = Some(ServedSerial {
            serial: 10,
            digest: 1,
        });
        assert_eq!(
            choose(7, 9, None, false),
            7,
            "first build serves the file's serial"
        );
        assert_eq!(choose(10, 1, last, false), 10, "unchanged");
        assert_eq!(
            choose(10, 2, last, false),
            11,
            "content changed, serial not: bumped"
        );
        assert_eq!(choose(8, 1, last, false), 10, "never goes back");
        assert_eq!(choose(8, 2, last, false), 11);
        assert_eq!(choose(20, 2, last, false), 20, "a newer file serial wins");
        let high = Some(ServedSerial {
            serial: u32::MAX,
            digest: 1,
        });
        assert_eq!(
            choose(3, 2, high, false),
            3,
            "3 is after u32::MAX (RFC 1982)"
        );
        assert_eq!(choose(u32::MAX, 2, high, false), 0, "the bump wraps");
        assert_eq!(
            choose(10, 1, last, true),
            11,
            "same records, renewed signatures: bumped"
        );
        assert_eq!(choose(20, 1, last, true), 20, "a newer file serial wins");
    }

    #[test]
    fn digest_ignores_order_case_and_serial() {
        let origin = hickory_proto::rr::Name::from_ascii("d.test.").unwrap();
        let parse = |text: &str| {
            let dir = std::env::temp_dir().join(format!("postern-serial-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let file = dir.join(format!("{}.zone", text.len()));
            std::fs::write(&file, text).unwrap();
            crate::zone::parse::parse_file(&file, "z", &origin)
                .unwrap()
                .records
        };
        let soa = |serial: u32| format!("@ 60 IN SOA ns h {serial} 1 1 1 1\n");
        let a = parse(&format!(
            "{}a 60 IN A 10.0.0.1\nb 60 IN A 10.0.0.2\n",
            soa(1)
        ));
        let b = parse(&format!(
            "{}B 60 IN A 10.0.0.2\na 60 IN A 10.0.0.1\n",
            soa(9)
        ));
        let c = parse(&format!(
            "{}a 60 IN A 10.0.0.1\nb 60 IN A 10.0.0.3\n",
            soa(1)
        ));
        assert_eq!(digest(&a), digest(&b));
        assert_ne!(digest(&a), digest(&c));
    }

    /// The shortcut for address records writes what hickory's encoder writes, and is taken
    /// for address records only.
    #[test]
    fn address_records_written_as_hickory_does() {
        let origin = hickory_proto::rr::Name::from_ascii("d.test.").unwrap();
        let long = "x".repeat(63);
        let text = format!(
            "$TTL 60\n@ SOA ns h 7 1 1 1 1\n@ NS ns\nns A 192.0.2.1\nHoSt 0 AAAA ::\n\
             * 4294967295 AAAA 2001:db8::ffff:1\nx.{long}.{long}.{long} A 255.255.255.255\n\
             a\\.b\\000 A 10.0.0.1\nm MX 1 ns\nt TXT a\nu TYPE1 \\# 4 0a000002\n"
        );
        let corpus = include_str!("../../tests/fixtures/fidelity/corpus.zone");
        let fidelity = hickory_proto::rr::Name::from_ascii("fidelity.test.").unwrap();
        let records = crate::zone::parse::parse_text(&text, "z", &origin)
            .unwrap()
            .records
            .into_iter()
            .chain(
                crate::zone::parse::parse_text(corpus, "corpus.zone", &fidelity)
                    .unwrap()
                    .records,
            );
        let mut addresses = 0;
        for r in records {
            let mut fast = Vec::new();
            let mut slow = Vec::new();
            r.record.emit(&mut BinEncoder::new(&mut slow)).unwrap();
            if address_record_wire(&r.record, &mut fast) {
                assert_eq!(fast, slow, "{}", r.record);
                addresses += 1;
            } else {
                assert!(fast.is_empty());
                assert!(!matches!(r.record.data, RData::A(_) | RData::AAAA(_)));
            }
        }
        assert!(addresses >= 6, "{addresses}");
    }

    /// The digest is kept in the store and compared after an upgrade: it must not change.
    #[test]
    fn digest_is_stable_across_versions() {
        let origin = hickory_proto::rr::Name::from_ascii("d.test.").unwrap();
        let text = "$TTL 60\n@ SOA ns h 7 1 1 1 1\n@ NS ns\nns A 192.0.2.1\nMx MX 10 ns.d.test.\n\
                    t TXT \"v=spf1 -all\" \"\\255\"\n*.w AAAA 2001:db8::1\n";
        let records = crate::zone::parse::parse_text(text, "z", &origin)
            .unwrap()
            .records;
        assert_eq!(digest(&records), PINNED, "{:#x}", digest(&records));
    }

    #[test]
    fn a_big_zone_hashed_in_parallel_has_the_same_digest() {
        let origin = hickory_proto::rr::Name::from_ascii("d.test.").unwrap();
        let mut text = String::from("@ 60 IN SOA ns h 1 1 1 1 1\n");
        for i in 0..3 * PARALLEL_MIN + 7 {
            text.push_str(&format!(
                "Host{i} 60 IN A 10.{}.{}.{}\n",
                i >> 16,
                (i >> 8) & 255,
                i & 255
            ));
        }
        let records = crate::zone::parse::parse_text(&text, "z", &origin)
            .unwrap()
            .records;
        // The same as hashing every record on one thread.
        let mut each = vec![[0u8; 32]; records.len()];
        hash_records(&records, &mut each);
        each.sort_unstable();
        let mut all = Sha256::new();
        for h in &each {
            all.update(h);
        }
        let sum = all.finalize();
        let expected = u64::from_be_bytes(sum[..8].try_into().unwrap());
        assert_eq!(digest(&records), expected);
        let mut reversed = records.clone();
        reversed.reverse();
        assert_eq!(digest(&reversed), expected);
    }
}
