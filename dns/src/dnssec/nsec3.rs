//! The NSEC3 chain of a zone (RFC 5155) with the parameters RFC 9276 §3.1 asks for: SHA-1,
//! no salt, no extra iterations, no opt-out. Every authoritative name and empty non-terminal
//! has an NSEC3 record; names below a delegation (glue) do not (RFC 5155 §7.1).

use hickory_proto::dnssec::rdata::{DNSSECRData, NSEC3, NSEC3PARAM};
use hickory_proto::dnssec::Nsec3HashAlgorithm;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::zone::{Node, Zone};

/// The NSEC3PARAM record data of every signed zone (RFC 9276 §3.1).
pub(crate) fn param() -> NSEC3PARAM {
    NSEC3PARAM::new(Nsec3HashAlgorithm::SHA1, false, 0, Vec::new())
}

/// A SHA-1 NSEC3 hash.
pub(crate) type Hash = [u8; 20];

/// The NSEC3 hash of a name (RFC 5155 §5), or `None` for a name that cannot be encoded.
pub(crate) fn hash(name: &Name) -> Option<Hash> {
    let digest = Nsec3HashAlgorithm::SHA1.hash(&[], name, 0).ok()?;
    digest.as_ref().try_into().ok()
}

/// One link of the chain: its NSEC3 record followed by its RRSIGs.
pub(crate) struct Link {
    /// The NSEC3 record, then its signatures.
    pub(crate) records: Vec<Record>,
}

/// The chain, sorted by hash: the hashes apart from the links, so that a lookup's binary
/// search reads one contiguous array.
#[derive(Default)]
pub(crate) struct Chain {
    hashes: Vec<Hash>,
    links: Vec<Link>,
}

/// The types in a node's NSEC3 bitmap: at a delegation only NS and DS (RFC 5155 §7.1), RRSIG
/// wherever a signed RRset is.
fn bitmap(node: &Node) -> Vec<RecordType> {
    let mut types: Vec<RecordType> = node
        .rrsets
        .iter()
        .map(|s| s.rtype)
        .filter(|t| !node.cut || matches!(t, RecordType::NS | RecordType::DS))
        .collect();
    let signed = if node.cut {
        types.contains(&RecordType::DS)
    } else {
        !types.is_empty()
    };
    if signed {
        types.push(RecordType::RRSIG);
    }
    types
}

impl Chain {
    /// Builds the unsigned chain of a zone; `sign` then adds each link's RRSIGs.
    pub(crate) fn build(zone: &Zone) -> Chain {
        let mut links: Vec<(Hash, Vec<RecordType>)> = zone
            .nodes()
            .filter(|(name, _)| zone.authoritative_name(name))
            .filter_map(|(name, node)| Some((hash(&Name::from(name))?, bitmap(node))))
            .collect();
        links.sort_by_key(|l| l.0);
        let ttl = zone.negative_ttl();
        let mut chain = Chain::default();
        for (i, (hashed, types)) in links.iter().enumerate() {
            let next = links[(i + 1) % links.len()].0.to_vec();
            let Ok(owner) = owner_name(hashed, zone.origin()) else {
                continue;
            };
            let nsec3 = NSEC3::new(
                Nsec3HashAlgorithm::SHA1,
                false,
                0,
                Vec::new(),
                next,
                types.iter().copied(),
            );
            chain.hashes.push(*hashed);
            chain.links.push(Link {
                records: vec![Record::from_rdata(
                    owner,
                    ttl,
                    RData::DNSSEC(DNSSECRData::NSEC3(nsec3)),
                )],
            });
        }
        chain
    }

    /// The links, to sign and to transfer.
    pub(crate) fn links_mut(&mut self) -> impl Iterator<Item = &mut Link> {
        self.links.iter_mut()
    }

    /// Every NSEC3 record and signature, for zone transfers.
    /// The links in hash order.
    pub(crate) fn links(&self) -> impl Iterator<Item = &Link> {
        self.links.iter()
    }

    pub(crate) fn records(&self) -> impl Iterator<Item = &Record> {
        self.links.iter().flat_map(|l| l.records.iter())
    }

    /// The link with this hash if its NSEC3 record is `nsec3`.
    pub(crate) fn link_of(&self, hash: &Hash, nsec3: &Record) -> Option<&Link> {
        self.hashes
            .binary_search(hash)
            .ok()
            .map(|i| &self.links[i])
            .filter(|l| l.records[0] == *nsec3)
    }

    /// The hashes, in chain order.
    pub(crate) fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// The link whose owner is the hash of `name` (RFC 5155 §7.2.3).
    pub(crate) fn matching(&self, name: &Name) -> Option<&Link> {
        let h = hash(name)?;
        self.hashes.binary_search(&h).ok().map(|i| &self.links[i])
    }

    /// The link whose span covers the hash of `name`, which is not in the chain (RFC 5155
    /// §7.2.1): the last hash before it, wrapping around to the last link.
    pub(crate) fn covering(&self, name: &Name) -> Option<&Link> {
        let h = hash(name)?;
        match self.hashes.binary_search(&h) {
            Ok(_) => None,
            Err(0) => self.links.last(),
            Err(i) => self.links.get(i - 1),
        }
    }
}

/// `base32hex(hash).origin` (RFC 5155 §3).
fn owner_name(hashed: &[u8], origin: &Name) -> Result<Name, hickory_proto::ProtoError> {
    let label = data_encoding::BASE32HEX_NOPAD
        .encode(hashed)
        .to_ascii_lowercase();
    Name::from_ascii(&label)?.append_domain(origin)
}
