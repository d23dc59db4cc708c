//! The served SOA serial: a zone whose content changed is never served under a serial that a
//! secondary already holds. Like Knot's `serial-policy`, the served serial is the file's serial
//! (plus the managed-records generation) when that is newer than the last served one, and the
//! last served serial plus one when the content changed without a newer serial (RFC 1982
//! arithmetic). A zone that shrinks to less than half its records without a new serial is most
//! likely a file caught while being written, and is logged.

use std::hash::{DefaultHasher, Hash, Hasher};

use hickory_proto::rr::RData;

use crate::zone::SourceRecord;

/// What was last served for one zone of one view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServedSerial {
    /// The served SOA serial.
    pub serial: u32,
    /// A digest of the zone's records (the SOA's serial excluded).
    pub digest: u64,
}

/// In-process knowledge about the previous build of a zone, beside what is persisted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LastBuild {
    /// What was served.
    pub served: ServedSerial,
    /// The serial the sources asked for (file serial plus generation), if built in this process.
    pub candidate: Option<u32>,
    /// Number of records, if built in this process.
    pub records: Option<usize>,
}

/// `a` is greater than `b` in serial number arithmetic (RFC 1982 §3.2); the undefined case
/// (a distance of exactly 2^31) counts as not greater.
pub fn serial_gt(a: u32, b: u32) -> bool {
    a != b && (a.wrapping_sub(b) as i32) > 0
}

/// The serial to serve for content `digest` when the sources ask for `candidate` and `last` was
/// served before: never lower than the last one, and higher when the content changed.
pub fn choose(candidate: u32, digest: u64, last: Option<ServedSerial>) -> u32 {
    match last {
        None => candidate,
        Some(last) if serial_gt(candidate, last.serial) => candidate,
        Some(last) if last.digest == digest => last.serial,
        Some(last) => last.serial.wrapping_add(1),
    }
}

/// A digest of the records independent of their order, with SOA serials left out.
pub fn digest(records: &[SourceRecord]) -> u64 {
    let mut each: Vec<u64> = records
        .iter()
        .map(|r| {
            let mut record = r.record.clone();
            if let RData::SOA(soa) = &mut record.data {
                soa.serial = 0;
            }
            let mut h = DefaultHasher::new();
            record.name.to_lowercase().to_ascii().hash(&mut h);
            record.ttl.hash(&mut h);
            record.data.hash(&mut h);
            h.finish()
        })
        .collect();
    each.sort_unstable();
    let mut h = DefaultHasher::new();
    each.hash(&mut h);
    h.finish()
}

/// The SOA serial written in the records, if they hold an SOA.
pub(crate) fn source_serial(records: &[SourceRecord]) -> Option<u32> {
    records.iter().find_map(|r| match &r.record.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    })
}

/// True when the content shrank to less than half without a newer serial from the sources.
pub(crate) fn suspicious_shrink(last: &LastBuild, candidate: u32, records: usize) -> bool {
    match (last.candidate, last.records) {
        (Some(before), Some(count)) => !serial_gt(candidate, before) && records * 2 < count,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1982_comparison() {
        assert!(serial_gt(2, 1));
        assert!(!serial_gt(1, 2));
        assert!(!serial_gt(5, 5));
        assert!(serial_gt(0, u32::MAX), "wraps");
        assert!(serial_gt(10, u32::MAX - 10));
        assert!(!serial_gt(1 << 31, 0), "undefined distance is not greater");
    }

    #[test]
    fn serial_policy() {
        let last = Some(ServedSerial {
            serial: 10,
            digest: 1,
        });
        assert_eq!(
            choose(7, 9, None),
            7,
            "first build serves the file's serial"
        );
        assert_eq!(choose(10, 1, last), 10, "unchanged");
        assert_eq!(
            choose(10, 2, last),
            11,
            "content changed, serial not: bumped"
        );
        assert_eq!(choose(8, 1, last), 10, "never goes back");
        assert_eq!(choose(8, 2, last), 11);
        assert_eq!(choose(20, 2, last), 20, "a newer file serial wins");
        let high = Some(ServedSerial {
            serial: u32::MAX,
            digest: 1,
        });
        assert_eq!(choose(3, 2, high), 3, "3 is after u32::MAX (RFC 1982)");
        assert_eq!(choose(u32::MAX, 2, high), 0, "the bump wraps");
    }
}
