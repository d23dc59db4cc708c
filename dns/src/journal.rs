//! The journal of dynamic updates, fed from the store, from which IXFR (RFC 1995) builds
//! incremental transfers: a chain of entries from the client's serial to the served one.

use std::borrow::Borrow;

use hickory_proto::rr::{Name, RData, Record};

use crate::managed::ManagedRecord;
use crate::transfer::serial_lt;

/// One journal entry as stored: what changed in a zone between two served serials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// Zone origin, e.g. `example.test.`.
    pub zone: String,
    /// Served serial before the change.
    pub from: u32,
    /// Served serial after the change.
    pub to: u32,
    /// Records removed.
    pub removed: Vec<ManagedRecord>,
    /// Records added.
    pub added: Vec<ManagedRecord>,
}

/// A journal entry with its records parsed, attached to the zone it belongs to.
#[derive(Debug, Clone)]
pub struct Difference {
    /// Served serial before.
    pub from: u32,
    /// Served serial after.
    pub to: u32,
    /// Records removed.
    pub removed: Vec<Record>,
    /// Records added.
    pub added: Vec<Record>,
}

/// Parses the entries of one zone; an entry with a record that does not parse breaks the
/// chain there (IXFR across it falls back to a full transfer).
pub(crate) fn differences(view: &str, origin: &Name, entries: &[JournalEntry]) -> Vec<Difference> {
    let mut out = Vec::new();
    let ours = entries.iter().filter(|e| {
        Name::from_ascii(&e.zone).is_ok_and(|z| z.to_lowercase() == origin.to_lowercase())
    });
    for entry in ours {
        let parse = |list: &[ManagedRecord]| -> Option<Vec<Record>> {
            list.iter()
                .map(|m| m.parse(view, origin).ok().map(|s| s.record))
                .collect()
        };
        match (parse(&entry.removed), parse(&entry.added)) {
            (Some(removed), Some(added)) => out.push(Difference {
                from: entry.from,
                to: entry.to,
                removed,
                added,
            }),
            _ => {
                tracing::warn!(view, zone = %origin, from = entry.from, "journal entry does not parse; IXFR across it sends the full zone");
                out.clear();
            }
        }
    }
    out
}

/// The entries leading from `from` to `current` without a gap (RFC 1995 §4), if the journal
/// covers that span; the latest entry starting at a serial wins.
pub(crate) fn chain<D: Borrow<Difference>>(
    journal: &[D],
    from: u32,
    current: u32,
) -> Option<Vec<&Difference>> {
    let mut out = Vec::new();
    let mut serial = from;
    while serial != current {
        let next = journal
            .iter()
            .rev()
            .map(Borrow::borrow)
            .find(|d: &&Difference| d.from == serial && serial_lt(d.from, d.to))?;
        out.push(next);
        serial = next.to;
        if out.len() > journal.len() {
            return None;
        }
    }
    Some(out)
}

/// The zone's SOA with another serial: the SOA that opens or closes a difference sequence.
pub(crate) fn soa_with_serial(soa: &Record, serial: u32) -> Record {
    let mut soa = soa.clone();
    if let RData::SOA(data) = &mut soa.data {
        data.serial = serial;
    }
    soa
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(from: u32, to: u32) -> Difference {
        Difference {
            from,
            to,
            removed: Vec::new(),
            added: Vec::new(),
        }
    }

    #[test]
    fn chains_without_gaps() {
        let journal = vec![diff(10, 11), diff(11, 12), diff(13, 14)];
        let c = chain(&journal, 10, 12).expect("covered");
        assert_eq!(c.iter().map(|d| d.to).collect::<Vec<_>>(), [11, 12]);
        assert!(chain(&journal, 10, 14).is_none(), "12 -> 13 is missing");
        assert!(chain(&journal, 9, 12).is_none());
        assert!(chain(&journal, 12, 12).expect("empty").is_empty());
    }
}
