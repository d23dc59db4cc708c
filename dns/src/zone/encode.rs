//! Turning a checked zone's draft into compact nodes ([`super::compact`]), a big zone's on
//! every core at once: each node is encoded on its own, from the draft alone.

use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

use super::draft::{DraftNode, DraftNodes};
use super::{NameKey, Node, NodeEncoder};

/// One owner name in compact form.
pub(super) struct Encoded {
    /// The lower-cased wire form of the name.
    pub key: Box<[u8]>,
    /// Its RRsets.
    pub node: Node,
    /// The name as first written, when that is in another case than the key's.
    pub cased: Option<Box<Name>>,
}

/// Owner names encoded by one thread at least: fewer are not worth a thread.
const PARALLEL_MIN: usize = 8_192;

/// Encodes every node of `nodes`, the SOA RRset as `soa` (the served one); a node that has
/// no wire form gives `name: reason`.
pub(super) fn encode_nodes(nodes: &DraftNodes<'_>, soa: &Record) -> Vec<Result<Encoded, String>> {
    let drafts: Vec<(&LowerName, &DraftNode<'_>)> = nodes.iter().collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = drafts.len().div_ceil(threads).max(PARALLEL_MIN);
    std::thread::scope(|scope| {
        let mut parts = drafts.chunks(chunk);
        let first = parts.next();
        let others: Vec<_> = parts
            .map(|part| scope.spawn(move || encode_part(part, &soa.data)))
            .collect();
        let mut out = first
            .map(|part| encode_part(part, &soa.data))
            .unwrap_or_default();
        for other in others {
            let mut part = other
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            out.append(&mut part);
        }
        out
    })
}

/// Encodes the nodes of one part, reusing one encoder's buffers.
fn encode_part(part: &[(&LowerName, &DraftNode<'_>)], soa: &RData) -> Vec<Result<Encoded, String>> {
    let mut encoder = NodeEncoder::default();
    part.iter()
        .map(|(name, draft)| {
            encode(&mut encoder, name, draft, soa).map_err(|e| format!("{name}: {e}"))
        })
        .collect()
}

/// One checked node in compact form, keeping the case its owner was first written in.
fn encode(
    encoder: &mut NodeEncoder,
    name: &LowerName,
    draft: &DraftNode<'_>,
    soa: &RData,
) -> Result<Encoded, String> {
    let key: Box<[u8]> = NameKey::new(name).as_bytes().into();
    let cased = draft
        .rrsets
        .first()
        .and_then(|s| s.records.first())
        .filter(|_| draft.cased)
        .map(|r| Box::new(r.name.clone()));
    let sets = draft.rrsets.iter().map(|set| {
        let ttl = set.records.first().map_or(0, |r| r.ttl);
        // Only the apex holds the SOA (checked): the served one, its serial moved on.
        let records = match set.rtype {
            RecordType::SOA => vec![soa],
            _ => set.records.iter().map(|r| &r.data).collect(),
        };
        (set.rtype, ttl, records)
    });
    let node = encoder.encode(sets, draft.cut)?;
    Ok(Encoded { key, node, cased })
}
