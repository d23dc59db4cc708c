//! The NSEC3 chain of a zone (RFC 5155) with the parameters RFC 9276 §3.1 asks for: SHA-1,
//! no salt, no extra iterations, no opt-out. Every authoritative name and empty non-terminal
//! has an NSEC3 record; names below a delegation (glue) do not (RFC 5155 §7.1).

use hickory_proto::dnssec::rdata::{DNSSECRData, NSEC3, NSEC3PARAM};
use hickory_proto::dnssec::Nsec3HashAlgorithm;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::error::DnsError;
use crate::zone::{NameKey, Node, RrSet, Zone};

/// The NSEC3PARAM record data of every signed zone (RFC 9276 §3.1).
pub(crate) fn param() -> NSEC3PARAM {
    NSEC3PARAM::new(Nsec3HashAlgorithm::SHA1, false, 0, Vec::new())
}

/// A SHA-1 NSEC3 hash.
pub(crate) type Hash = [u8; 20];

/// The NSEC3 hash of a name (RFC 5155 §5), or `None` for a name that cannot be encoded.
pub(crate) fn hash(name: &Name) -> Option<Hash> {
    hash_key(NameKey::new(name).as_bytes())
}

/// The NSEC3 hash of a name given in lower-cased wire form, its canonical form (RFC 4034
/// §6.2): SHA-1 over the name and the empty salt, with no extra iterations (RFC 5155 §5).
pub(crate) fn hash_key(key: &[u8]) -> Option<Hash> {
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, key);
    digest.as_ref().try_into().ok()
}

/// The chain, sorted by hash: the hashes apart from the links, so that a lookup's binary
/// search reads one contiguous array. A link is a compact node holding its NSEC3 record (type
/// NSEC3) and, once signed, the RRSIGs over it (type RRSIG); its owner is `hash.origin`.
#[derive(Default, Clone)]
pub(crate) struct Chain {
    origin: Name,
    ttl: u32,
    hashes: Vec<Hash>,
    links: Vec<Node>,
}

/// The types in a node's NSEC3 bitmap: at a delegation only NS and DS (RFC 5155 §7.1), RRSIG
/// wherever a signed RRset is.
pub(super) fn bitmap(node: &Node) -> Vec<RecordType> {
    let cut = node.is_cut();
    let mut types: Vec<RecordType> = node
        .rrsets()
        .map(|s| s.rtype)
        .filter(|t| !cut || matches!(t, RecordType::NS | RecordType::DS))
        .collect();
    let signed = if cut {
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
    /// Builds the unsigned chain of a zone; [`Chain::set_sigs`] then adds each link's RRSIGs.
    pub(crate) fn build(zone: &Zone) -> Result<Chain, DnsError> {
        let mut links: Vec<(Hash, Vec<RecordType>)> = zone
            .nodes()
            .filter(|(name, _)| zone.authoritative_name(name))
            .filter_map(|(name, node)| Some((hash(&name)?, bitmap(node))))
            .collect();
        links.sort_by_key(|l| l.0);
        let mut chain = Chain {
            origin: zone.origin().clone(),
            ttl: zone.negative_ttl(),
            hashes: Vec::with_capacity(links.len()),
            links: Vec::with_capacity(links.len()),
        };
        for (i, (hashed, types)) in links.iter().enumerate() {
            let next = &links[(i + 1) % links.len()].0;
            chain.hashes.push(*hashed);
            let node = chain.link_node(next, types.iter().copied())?;
            chain.links.push(node);
        }
        Ok(chain)
    }

    /// An unsigned link: its NSEC3 record with the next hashed owner `next` and the types
    /// `types` in its bitmap (RFC 5155 §3).
    fn link_node(
        &self,
        next: &Hash,
        types: impl IntoIterator<Item = RecordType>,
    ) -> Result<Node, DnsError> {
        let nsec3 = RData::DNSSEC(DNSSECRData::NSEC3(NSEC3::new(
            Nsec3HashAlgorithm::SHA1,
            false,
            0,
            Vec::new(),
            next.to_vec(),
            types,
        )));
        Node::encode([(RecordType::NSEC3, self.ttl, vec![&nsec3])], false).map_err(DnsError::Dnssec)
    }

    /// Puts the link of `hashed` with the bitmap `types` in the chain, unsigned, replacing the
    /// one there; its next hashed owner is set by [`Chain::relink`].
    pub(super) fn put(&mut self, hashed: Hash, types: Vec<RecordType>) -> Result<(), DnsError> {
        let node = self.link_node(&hashed, types)?;
        match self.hashes.binary_search(&hashed) {
            Ok(i) => self.links[i] = node,
            Err(i) => {
                self.hashes.insert(i, hashed);
                self.links.insert(i, node);
            }
        }
        Ok(())
    }

    /// Takes the link of `hashed` out of the chain; false when there was none.
    pub(super) fn remove(&mut self, hashed: &Hash) -> bool {
        match self.hashes.binary_search(hashed) {
            Ok(i) => {
                self.hashes.remove(i);
                self.links.remove(i);
                true
            }
            Err(_) => false,
        }
    }

    /// The link before the position of `hashed` (present or not), wrapping around.
    pub(super) fn predecessor(&self, hashed: &Hash) -> Option<usize> {
        let i = match self.hashes.binary_search(hashed) {
            Ok(i) | Err(i) => i,
        };
        (i + self.len())
            .checked_sub(1)
            .map(|p| p % self.len().max(1))
    }

    /// Points link `i`'s NSEC3 record at the next link's hash (RFC 5155 §3.1.7), keeping its
    /// bitmap; the link is then unsigned unless it already pointed there.
    pub(super) fn relink(&mut self, i: usize) -> Result<(), DnsError> {
        let Some(next) = self.hashes.get((i + 1) % self.len().max(1)).copied() else {
            return Ok(());
        };
        let data = self.nsec3(i).and_then(|set| set.data().next());
        let Some(RData::DNSSEC(DNSSECRData::NSEC3(nsec3))) = data else {
            return Err(DnsError::Dnssec("NSEC3 link does not decode".into()));
        };
        if nsec3.next_hashed_owner_name() != next {
            self.links[i] = self.link_node(&next, nsec3.type_bit_maps())?;
        }
        Ok(())
    }

    /// The number of links.
    pub(crate) fn len(&self) -> usize {
        self.links.len()
    }

    /// The NSEC3 RRset (one record) of a link.
    pub(crate) fn nsec3(&self, link: usize) -> Option<RrSet<'_>> {
        self.links.get(link)?.get(RecordType::NSEC3)
    }

    /// The RRSIGs over a link's NSEC3 record.
    pub(crate) fn sigs(&self, link: usize) -> Option<RrSet<'_>> {
        self.links.get(link)?.get(RecordType::RRSIG)
    }

    /// Sets the RRSIGs (wire-form RDATA) over a link's NSEC3 record.
    pub(crate) fn set_sigs(&mut self, link: usize, sigs: Vec<&[u8]>) -> Result<(), DnsError> {
        let Some(nsec3) = self.nsec3(link) else {
            return Ok(());
        };
        let node = Node::from_wire([
            (RecordType::NSEC3, nsec3.ttl(), nsec3.rdata().collect()),
            (RecordType::RRSIG, nsec3.ttl(), sigs),
        ])
        .map_err(DnsError::Dnssec)?;
        self.links[link] = node;
        Ok(())
    }

    /// The owner name of a link: `base32hex(hash).origin`.
    pub(crate) fn owner(&self, link: usize) -> Option<Name> {
        owner_name(self.hashes.get(link)?, &self.origin).ok()
    }

    /// A link's hash and node (its NSEC3 record, then the RRSIGs over it).
    pub(crate) fn link(&self, link: usize) -> Option<(&Hash, &Node)> {
        Some((self.hashes.get(link)?, self.links.get(link)?))
    }

    /// A link's NSEC3 record and its signatures.
    pub(crate) fn records(&self, link: usize) -> Vec<Record> {
        let (Some(owner), Some(node)) = (self.owner(link), self.links.get(link)) else {
            return Vec::new();
        };
        node.rrsets().flat_map(|s| s.records(&owner)).collect()
    }

    /// Every NSEC3 record and signature, for zone transfers.
    pub(crate) fn all_records(&self) -> impl Iterator<Item = Record> + '_ {
        (0..self.len()).flat_map(|i| self.records(i))
    }

    /// The link with this hash, if the chain has one.
    pub(crate) fn index(&self, hash: &Hash) -> Option<usize> {
        self.hashes.binary_search(hash).ok()
    }

    /// True when link `i` of `self` and link `j` of `other` are the same, signatures included.
    pub(crate) fn same_link(&self, i: usize, other: &Chain, j: usize) -> bool {
        self.links
            .get(i)
            .is_some_and(|a| other.links.get(j) == Some(a))
    }

    /// The link with this hash if its NSEC3 record is `nsec3`.
    pub(crate) fn link_of(&self, hash: &Hash, nsec3: RrSet<'_>) -> Option<usize> {
        self.index(hash).filter(|&i| self.nsec3(i) == Some(nsec3))
    }

    /// The hashes, in chain order.
    pub(crate) fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// The link whose owner is the hash of `name` (RFC 5155 §7.2.3).
    pub(crate) fn matching(&self, name: &Name) -> Option<usize> {
        self.matching_key(NameKey::new(name).as_bytes())
    }

    /// [`Chain::matching`] for a name in lower-cased wire form.
    pub(crate) fn matching_key(&self, key: &[u8]) -> Option<usize> {
        self.index(&hash_key(key)?)
    }

    /// The link whose span covers the hash of `name`, which is not in the chain (RFC 5155
    /// §7.2.1): the last hash before it, wrapping around to the last link.
    pub(crate) fn covering(&self, name: &Name) -> Option<usize> {
        self.covering_key(NameKey::new(name).as_bytes())
    }

    /// [`Chain::covering`] for a name in lower-cased wire form.
    pub(crate) fn covering_key(&self, key: &[u8]) -> Option<usize> {
        let h = hash_key(key)?;
        match self.hashes.binary_search(&h) {
            Ok(_) => None,
            Err(0) => self.len().checked_sub(1),
            Err(i) => Some(i - 1),
        }
    }
}

/// `base32hex(hash)` in lower case: the first label of a link's owner (RFC 5155 §3).
pub(crate) fn hash_label(hashed: &Hash) -> [u8; 32] {
    let mut label = [0u8; 32];
    data_encoding::BASE32HEX_NOPAD.encode_mut(hashed, &mut label);
    label.make_ascii_lowercase();
    label
}

/// `base32hex(hash).origin` (RFC 5155 §3).
pub(super) fn owner_name(hashed: &Hash, origin: &Name) -> Result<Name, hickory_proto::ProtoError> {
    let label = hash_label(hashed);
    Name::from_labels([&label[..]])?.append_domain(origin)
}
