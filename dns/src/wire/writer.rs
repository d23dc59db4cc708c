//! Writes a response message octet by octet (RFC 1035 §4.1) into a reused buffer, with name
//! compression (RFC 1035 §4.1.4): a name, or its longest suffix written before, becomes a
//! pointer. Suffixes match octet for octet, case included, so every name decompresses to
//! exactly the octets given (the query name's case is echoed, a zone's as written).

use hickory_proto::rr::Name;

/// Header length (RFC 1035 §4.1.1).
pub(crate) const HEADER: usize = 12;
/// Offsets above this cannot be the target of a pointer (14 bits).
const MAX_POINTER: usize = 0x3FFF;
/// Names remembered as compression targets per message; later ones are written in full.
const MAX_TARGETS: usize = 64;

/// RR types whose RDATA holds names: those of RFC 1035 may be compressed (RFC 3597 §4).
mod rtype {
    pub(super) const NS: u16 = 2;
    pub(super) const CNAME: u16 = 5;
    pub(super) const SOA: u16 = 6;
    pub(super) const PTR: u16 = 12;
    pub(super) const MX: u16 = 15;
    /// Not compressed (RFC 2782), but later names may point into its target.
    pub(super) const SRV: u16 = 33;
}

/// A response being written; its buffers are kept from one message to the next.
#[derive(Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
    /// Written name suffixes: their offset in the message and where their uncompressed octets
    /// (without the root label) are in `suffixes`.
    targets: Vec<(usize, usize, usize)>,
    suffixes: Vec<u8>,
}

impl Writer {
    /// Starts a message with the header given (counts are set by [`Writer::set_counts`]).
    pub(crate) fn start(&mut self, id: u16, flags: u16) {
        self.buf.clear();
        self.targets.clear();
        self.suffixes.clear();
        self.buf.extend_from_slice(&id.to_be_bytes());
        self.buf.extend_from_slice(&flags.to_be_bytes());
        self.buf.extend_from_slice(&[0; 8]);
    }

    /// The message, to send.
    pub(crate) fn message(&self) -> &[u8] {
        &self.buf
    }

    /// The current length, to cut back to with [`Writer::truncate`].
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// Drops everything written after `len`, and the compression targets within it.
    pub(crate) fn truncate(&mut self, len: usize) {
        self.buf.truncate(len);
        self.targets.retain(|&(offset, _, _)| offset < len);
    }

    /// Sets the header's flag octets.
    pub(crate) fn set_flags(&mut self, flags: u16) {
        self.buf[2..4].copy_from_slice(&flags.to_be_bytes());
    }

    /// Sets the four section counts (question, answer, authority, additional).
    pub(crate) fn set_counts(&mut self, counts: [u16; 4]) {
        for (i, count) in counts.into_iter().enumerate() {
            self.buf[4 + 2 * i..6 + 2 * i].copy_from_slice(&count.to_be_bytes());
        }
    }

    /// Writes a name given in uncompressed wire form (valid: labels of at most 63 octets
    /// ending with the root label), compressed against the names written before.
    pub(crate) fn name(&mut self, name: &[u8]) {
        let starts = label_starts(name);
        let end = name.len().saturating_sub(1);
        for (i, &start) in starts.iter().enumerate() {
            let suffix = &name[start..end];
            if let Some(offset) = self.find(suffix) {
                self.remember_and_write(name, &starts[..i], start, end);
                self.buf.push(0xC0 | (offset >> 8) as u8);
                self.buf.push(offset as u8);
                return;
            }
        }
        self.remember_and_write(name, &starts, end, end);
        self.buf.push(0);
    }

    /// Writes a [`Name`] as [`Writer::name`] does.
    pub(crate) fn hickory_name(&mut self, name: &Name) {
        let mut wire = [0u8; 256];
        let len = name_wire(name, &mut wire);
        self.name(&wire[..len]);
    }

    /// Writes the labels of `name` from the first of `starts` up to `upto`, remembering each
    /// as a compression target for the suffix that ends at `end` (before the root label).
    fn remember_and_write(&mut self, name: &[u8], starts: &[usize], upto: usize, end: usize) {
        let Some(&first) = starts.first() else {
            return;
        };
        let base = self.buf.len();
        for &start in starts {
            let offset = base + start - first;
            if offset <= MAX_POINTER && self.targets.len() < MAX_TARGETS {
                let from = self.suffixes.len();
                self.suffixes.extend_from_slice(&name[start..end]);
                self.targets.push((offset, from, end - start));
            }
        }
        self.buf.extend_from_slice(&name[first..upto]);
    }

    /// The offset of a name written before with exactly these octets (without the root).
    fn find(&self, suffix: &[u8]) -> Option<usize> {
        self.targets
            .iter()
            .find(|&&(_, from, len)| self.suffixes.get(from..from + len) == Some(suffix))
            .map(|&(offset, _, _)| offset)
    }

    /// Writes a resource record of class IN (RFC 1035 §4.1.3); names in the RDATA of the RFC
    /// 1035 types are compressed.
    pub(crate) fn record(&mut self, owner: &[u8], rtype: u16, ttl: u32, rdata: &[u8]) {
        self.name(owner);
        self.record_body(rtype, ttl, rdata);
    }

    /// The part of a record after its owner name.
    pub(crate) fn record_body(&mut self, rtype: u16, ttl: u32, rdata: &[u8]) {
        self.buf.extend_from_slice(&rtype.to_be_bytes());
        self.buf.extend_from_slice(&1u16.to_be_bytes());
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        let length_at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        match rtype {
            rtype::NS | rtype::CNAME | rtype::PTR => self.names(rdata, 1),
            rtype::MX => {
                let (preference, rest) = rdata.split_at(rdata.len().min(2));
                self.buf.extend_from_slice(preference);
                self.names(rest, 1);
            }
            rtype::SOA => self.names(rdata, 2),
            rtype::SRV => {
                let (fixed, target) = rdata.split_at(rdata.len().min(6));
                self.buf.extend_from_slice(fixed);
                if name_len(target) == Some(target.len()) {
                    let starts = label_starts(target);
                    let end = target.len() - 1;
                    self.remember_and_write(target, &starts, end, end);
                    self.buf.push(0);
                } else {
                    self.buf.extend_from_slice(target);
                }
            }
            _ => self.buf.extend_from_slice(rdata),
        }
        let length = (self.buf.len() - length_at - 2) as u16;
        self.buf[length_at..length_at + 2].copy_from_slice(&length.to_be_bytes());
    }

    /// Writes `count` names from the start of `rdata`, compressed, then the rest as it is.
    /// Data whose names do not parse is copied unchanged.
    fn names(&mut self, rdata: &[u8], count: usize) {
        let mut rest = rdata;
        let mut lengths = [0usize; 2];
        for length in lengths.iter_mut().take(count) {
            match name_len(rest) {
                Some(len) => {
                    *length = len;
                    rest = &rest[len..];
                }
                None => {
                    self.buf.extend_from_slice(rdata);
                    return;
                }
            }
        }
        let mut at = 0;
        for &len in lengths.iter().take(count) {
            self.name(&rdata[at..at + len]);
            at += len;
        }
        self.buf.extend_from_slice(&rdata[at..]);
    }

    /// Writes the OPT pseudo-record (RFC 6891 §6.1.2): our UDP payload size, EDNS version 0,
    /// the DO bit echoed (RFC 3225 §3), no options.
    pub(crate) fn opt(&mut self, payload: u16, dnssec_ok: bool) {
        self.buf.push(0);
        self.buf.extend_from_slice(&41u16.to_be_bytes());
        self.buf.extend_from_slice(&payload.to_be_bytes());
        let flags: u32 = if dnssec_ok { 0x8000 } else { 0 };
        self.buf.extend_from_slice(&flags.to_be_bytes());
        self.buf.extend_from_slice(&[0, 0]);
    }

    /// Appends octets as they are (the question section, copied from the query).
    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }
}

/// Writes `name` uncompressed into `out`, in the case it was written; returns the length.
pub(crate) fn name_wire(name: &Name, out: &mut [u8; 256]) -> usize {
    let mut len = 0;
    for label in name.iter() {
        // A Name never holds more than 255 octets; stop short of overflow anyway.
        if len + 2 + label.len() > out.len() {
            break;
        }
        out[len] = label.len() as u8;
        out[len + 1..len + 1 + label.len()].copy_from_slice(label);
        len += 1 + label.len();
    }
    out[len] = 0;
    len + 1
}

/// Where each label of an uncompressed wire name starts (the root label excluded).
fn label_starts(name: &[u8]) -> LabelStarts {
    let mut out = LabelStarts::default();
    let mut at = 0;
    while let Some(&len) = name.get(at) {
        if len == 0 || len > 63 || out.len == out.starts.len() {
            break;
        }
        out.starts[out.len] = at;
        out.len += 1;
        at += 1 + usize::from(len);
    }
    out
}

/// Label offsets of one name (a name has at most 127 labels).
struct LabelStarts {
    starts: [usize; 128],
    len: usize,
}

impl Default for LabelStarts {
    fn default() -> Self {
        LabelStarts {
            starts: [0; 128],
            len: 0,
        }
    }
}

impl std::ops::Deref for LabelStarts {
    type Target = [usize];

    fn deref(&self) -> &[usize] {
        &self.starts[..self.len]
    }
}

/// The length of the uncompressed wire name at the start of `bytes`, root label included.
pub(crate) fn name_len(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let len = usize::from(*bytes.get(at)?);
        if len > 63 {
            return None;
        }
        at += 1 + len;
        if len == 0 {
            return (at <= 255).then_some(at);
        }
    }
}
