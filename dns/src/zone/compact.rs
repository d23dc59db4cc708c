//! Compact storage of zone data: every RRset of an owner name in one allocation, as wire-form
//! RDATA (RFC 1035 §3.2.1; names uncompressed, in the case they were written), and owner names
//! as lower-cased wire form (RFC 4343 §3: names compare case-insensitively). A hickory
//! `Record` is several hundred bytes with its owner name; a small record here is its RDATA
//! plus ten octets. Records are decoded back only for the answers that carry them.

use std::collections::HashMap;

use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{
    BinDecodable, BinDecoder, BinEncodable, BinEncoder, NameEncoding, Restrict,
};
use hickory_proto::ProtoError;

/// The longest name in wire form (RFC 1035 §3.1).
const MAX_NAME: usize = 255;

/// Bit of a node's first octet: the node is a delegation point.
const CUT: u8 = 1;

/// A table by lower-cased wire name. Every query looks names up here, so the hash is a fast
/// one (foldhash, randomly seeded per process); what is inserted comes from zone data.
pub(crate) type NameMap<V> = HashMap<Box<[u8]>, V, foldhash::fast::RandomState>;

/// A name lower-cased in wire form, on the stack: the key nodes are found by.
pub(crate) struct NameKey {
    bytes: [u8; MAX_NAME + 1],
    len: usize,
}

impl NameKey {
    /// The lower-cased wire form of `name` (always fully qualified).
    pub(crate) fn new(name: &Name) -> NameKey {
        let mut key = NameKey {
            bytes: [0; MAX_NAME + 1],
            len: 0,
        };
        for label in name.iter() {
            // A Name never holds more than 255 octets of labels; stop short of overflow anyway.
            if key.len + label.len() + 2 > key.bytes.len() {
                break;
            }
            key.bytes[key.len] = label.len() as u8;
            for (i, b) in label.iter().enumerate() {
                key.bytes[key.len + 1 + i] = b.to_ascii_lowercase();
            }
            key.len += 1 + label.len();
        }
        key.bytes[key.len] = 0;
        key.len += 1;
        key
    }

    /// The lower-cased copy of a name given in uncompressed wire form (validated by the
    /// caller: labels of at most 63 octets, 255 in all, ending with the root).
    pub(crate) fn from_wire(wire: &[u8]) -> NameKey {
        let mut key = NameKey {
            bytes: [0; MAX_NAME + 1],
            len: wire.len().min(MAX_NAME + 1),
        };
        for (to, from) in key.bytes.iter_mut().zip(wire) {
            // Length octets are at most 63, below b'A': lower-casing leaves them alone.
            *to = from.to_ascii_lowercase();
        }
        key
    }

    /// The key's octets.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// The name a wire-form key stands for.
pub(crate) fn key_name(key: &[u8]) -> Name {
    Name::read(&mut BinDecoder::new(key)).unwrap_or_else(|_| Name::root())
}

/// The data of one owner name: its RRsets in one buffer, each as type, TTL, record count and
/// the records' length-prefixed RDATA. An empty node is an empty non-terminal (RFC 4592 §2.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    data: Box<[u8]>,
}

/// Type (2), TTL (4) and record count (2) before an RRset's records.
const SET_HEADER: usize = 8;

impl Node {
    /// Encodes RRsets, each given as type, TTL and records' data; `cut` marks a delegation
    /// point. Data that has no wire form (a TXT string over 255 octets, say) is an error.
    pub(crate) fn encode<'r>(
        sets: impl IntoIterator<Item = (RecordType, u32, Vec<&'r RData>)>,
        cut: bool,
    ) -> Result<Node, String> {
        NodeEncoder::default().encode(sets, cut)
    }

    /// A node of RRsets whose records are given in wire form: type (for signatures, the type
    /// covered), TTL and each record's RDATA.
    pub(crate) fn from_wire<'r>(
        sets: impl IntoIterator<Item = (RecordType, u32, Vec<&'r [u8]>)>,
    ) -> Result<Node, String> {
        let mut out = NodeEncoder::default();
        out.data.push(0);
        for (rtype, ttl, records) in sets {
            out.set(rtype, ttl, records.len())?;
            for rdata in records {
                out.push_wire(rtype, rdata)?;
            }
        }
        Ok(out.finish())
    }

    /// True for a delegation point: NS records below the apex (RFC 1034 §4.2.1).
    pub fn is_cut(&self) -> bool {
        self.data.first().is_some_and(|f| f & CUT != 0)
    }

    /// True for an empty non-terminal.
    pub fn is_empty(&self) -> bool {
        self.data.len() <= 1
    }

    /// The RRsets, in order of first appearance.
    pub fn rrsets(&self) -> RrSets<'_> {
        RrSets {
            rest: self.data.get(1..).unwrap_or_default(),
        }
    }

    /// The RRset of a type, if present.
    pub fn get(&self, rtype: RecordType) -> Option<RrSet<'_>> {
        self.rrsets().find(|s| s.rtype == rtype)
    }

    /// Octets held.
    pub(crate) fn size(&self) -> usize {
        self.data.len()
    }
}

/// Encodes nodes, reusing its buffers from one node to the next.
#[derive(Default)]
pub(crate) struct NodeEncoder {
    data: Vec<u8>,
    /// One record's RDATA being encoded (an encoder writes at most 65535 octets).
    scratch: Vec<u8>,
}

impl NodeEncoder {
    /// Encodes RRsets as [`Node::encode`] does.
    pub(crate) fn encode<'r>(
        &mut self,
        sets: impl IntoIterator<Item = (RecordType, u32, Vec<&'r RData>)>,
        cut: bool,
    ) -> Result<Node, String> {
        self.data.clear();
        self.data.push(u8::from(cut));
        for (rtype, ttl, records) in sets {
            self.set(rtype, ttl, records.len())?;
            for rdata in records {
                self.push_data(rtype, rdata)?;
            }
        }
        Ok(self.finish())
    }

    /// Starts an RRset of `count` records.
    fn set(&mut self, rtype: RecordType, ttl: u32, count: usize) -> Result<(), String> {
        let count =
            u16::try_from(count).map_err(|_| format!("{rtype}: more than 65535 records"))?;
        self.data.extend_from_slice(&u16::from(rtype).to_be_bytes());
        self.data.extend_from_slice(&ttl.to_be_bytes());
        self.data.extend_from_slice(&count.to_be_bytes());
        Ok(())
    }

    /// Appends one record's RDATA with its length.
    fn push_data(&mut self, rtype: RecordType, rdata: &RData) -> Result<(), String> {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        emit_rdata(&mut scratch, rdata).map_err(|e| format!("{rtype}: {e}"))?;
        self.push_wire(rtype, &scratch)?;
        self.scratch = scratch;
        Ok(())
    }

    /// Appends one record's RDATA given in wire form.
    fn push_wire(&mut self, rtype: RecordType, rdata: &[u8]) -> Result<(), String> {
        let len =
            u16::try_from(rdata.len()).map_err(|_| format!("{rtype}: RDATA over 65535 octets"))?;
        self.data.extend_from_slice(&len.to_be_bytes());
        self.data.extend_from_slice(rdata);
        Ok(())
    }

    fn finish(&self) -> Node {
        Node {
            data: self.data.as_slice().into(),
        }
    }
}

/// Appends a record's data in wire form (RFC 1035 §3.2.1), names uncompressed and as written.
fn emit_rdata(out: &mut Vec<u8>, rdata: &RData) -> Result<(), ProtoError> {
    // Addresses, most of a big zone's records, are their octets: no encoder needed.
    match rdata {
        RData::A(a) => out.extend_from_slice(&a.0.octets()),
        RData::AAAA(a) => out.extend_from_slice(&a.0.octets()),
        _ => {
            let mut encoder = BinEncoder::new(out);
            encoder.set_name_encoding(NameEncoding::Uncompressed);
            return rdata.emit(&mut encoder);
        }
    }
    Ok(())
}

/// A record's data in wire form, names uncompressed and as written.
pub(crate) fn rdata_wire(rdata: &RData) -> Result<Box<[u8]>, ProtoError> {
    let mut out = Vec::new();
    emit_rdata(&mut out, rdata)?;
    Ok(out.into_boxed_slice())
}

/// The RRsets of a node.
#[derive(Clone)]
pub struct RrSets<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for RrSets<'a> {
    type Item = RrSet<'a>;

    fn next(&mut self) -> Option<RrSet<'a>> {
        let header = self.rest.get(..SET_HEADER)?;
        let rtype = RecordType::from(u16::from_be_bytes([header[0], header[1]]));
        let ttl = u32::from_be_bytes([header[2], header[3], header[4], header[5]]);
        let count = usize::from(u16::from_be_bytes([header[6], header[7]]));
        let mut end = SET_HEADER;
        for _ in 0..count {
            let len = self
                .rest
                .get(end..end + 2)
                .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))?;
            end += 2 + len;
        }
        let data = self.rest.get(SET_HEADER..end)?;
        self.rest = self.rest.get(end..).unwrap_or_default();
        Some(RrSet {
            rtype,
            ttl,
            count,
            data,
        })
    }
}

/// The records of one type at one name (RFC 2181 §5: one TTL per RRset), as stored.
#[derive(Debug, Clone, Copy)]
pub struct RrSet<'a> {
    /// The type (for a node of signatures, the type covered).
    pub rtype: RecordType,
    ttl: u32,
    count: usize,
    data: &'a [u8],
}

impl PartialEq for RrSet<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.rtype == other.rtype && self.ttl == other.ttl && self.data == other.data
    }
}

impl<'a> RrSet<'a> {
    /// The RRset's TTL.
    pub fn ttl(&self) -> u32 {
        self.ttl
    }

    /// The number of records.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when the set has no records.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The records as stored: each record's RDATA after its length (two octets).
    pub(crate) fn wire(&self) -> &'a [u8] {
        self.data
    }

    /// Each record's RDATA in wire form.
    pub fn rdata(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let mut rest = self.data;
        std::iter::from_fn(move || {
            let len = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
            let rdata = rest.get(2..2 + len)?;
            rest = &rest[2 + len..];
            Some(rdata)
        })
    }

    /// The records' data, decoded as records of type `rtype` (the set's own type, or RRSIG
    /// for a node of signatures).
    pub fn data_as(&self, rtype: RecordType) -> impl Iterator<Item = RData> + 'a {
        self.rdata().filter_map(move |bytes| decode(rtype, bytes))
    }

    /// The records' data.
    pub fn data(&self) -> impl Iterator<Item = RData> + 'a {
        self.data_as(self.rtype)
    }

    /// The records, owned by `owner`.
    pub fn records(&self, owner: &Name) -> Vec<Record> {
        self.records_as(owner, self.rtype)
    }

    /// The records, owned by `owner`, decoded as records of type `rtype`.
    pub fn records_as(&self, owner: &Name, rtype: RecordType) -> Vec<Record> {
        let ttl = self.ttl;
        self.data_as(rtype)
            .map(|data| Record::from_rdata(owner.clone(), ttl, data))
            .collect()
    }
}

/// The RDATA of records in the form of [`RrSet::wire`], or `None` if `wire` is not exactly a
/// list of length-prefixed RDATA.
pub(crate) fn rdata_list(wire: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut rest = wire;
    while !rest.is_empty() {
        let len = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
        out.push(rest.get(2..2 + len)?);
        rest = &rest[2 + len..];
    }
    Some(out)
}

/// Decodes RDATA stored by [`Node::encode`]; it was encoded by the same library, so this only
/// fails for a bug, which is logged.
fn decode(rtype: RecordType, bytes: &[u8]) -> Option<RData> {
    let len = u16::try_from(bytes.len()).ok()?;
    match RData::read(&mut BinDecoder::new(bytes), rtype, Restrict::new(len)) {
        Ok(data) => Some(data),
        Err(e) => {
            tracing::error!("stored {rtype} RDATA does not decode: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, MX, TXT};

    #[test]
    fn node_round_trip() {
        let mx = RData::MX(MX::new(
            10,
            Name::from_ascii("Mail.Example.").expect("name"),
        ));
        let a1 = RData::A(A::new(192, 0, 2, 1));
        let a2 = RData::A(A::new(192, 0, 2, 2));
        let txt = RData::TXT(TXT::new(vec!["a b".into(), String::new()]));
        let node = Node::encode(
            [
                (RecordType::MX, 60, vec![&mx]),
                (RecordType::A, 300, vec![&a1, &a2]),
                (RecordType::TXT, 5, vec![&txt]),
            ],
            true,
        )
        .expect("encodes");
        assert!(node.is_cut() && !node.is_empty());
        let types: Vec<RecordType> = node.rrsets().map(|s| s.rtype).collect();
        assert_eq!(types, [RecordType::MX, RecordType::A, RecordType::TXT]);
        let owner = Name::from_ascii("WWW.example.").expect("name");
        let a = node.get(RecordType::A).expect("A");
        assert_eq!((a.ttl(), a.len()), (300, 2));
        let records = a.records(&owner);
        assert_eq!(records[1], Record::from_rdata(owner.clone(), 300, a2));
        let mx_back = node.get(RecordType::MX).expect("MX").data().next();
        assert_eq!(mx_back.map(|d| d.to_string()), Some(mx.to_string()));
        assert_eq!(
            node.get(RecordType::TXT).expect("TXT").data().next(),
            Some(txt)
        );
        let ent = Node::encode([], false).expect("encodes");
        assert!(ent.is_empty() && !ent.is_cut() && ent.rrsets().next().is_none());
    }

    #[test]
    fn keys_are_lower_case_wire_names() {
        let key = NameKey::new(&Name::from_ascii("WwW.Example.").expect("name"));
        assert_eq!(key.as_bytes(), b"\x03www\x07example\x00");
        assert_eq!(key_name(key.as_bytes()).to_string(), "www.example.");
        assert_eq!(NameKey::new(&Name::root()).as_bytes(), b"\x00");
    }
}
