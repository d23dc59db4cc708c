//! Lookups by lower-cased wire-form name ([`NameKey`]), for the answer path that works on
//! the query's octets (`crate::wire`, see [`super::NameKey`]): an ancestor's key is a suffix of the name's key, so
//! walking up a name costs no allocation.

use hickory_proto::rr::Name;

use super::{Node, Zone};

impl Zone {
    /// The node whose lower-cased wire name is `key`.
    pub(crate) fn node_key(&self, key: &[u8]) -> Option<&Node> {
        self.nodes.get(key)
    }

    /// The owner name of the node `key` as first written, when written in another case than
    /// the key's (see [`Zone::owner`]).
    pub(crate) fn cased_key(&self, key: &[u8]) -> Option<&Name> {
        self.cased.get(key)
    }

    /// The served SOA's RDATA in wire form (names uncompressed).
    pub(crate) fn soa_wire(&self) -> &[u8] {
        &self.soa_wire
    }
}
