//! Who may update what (RFC 2136 §3.3): per view, grants of names and types to TSIG keys,
//! like BIND's `update-policy { grant KEY name|subdomain NAME TYPES; }` or Knot's ACL
//! `update-owner`/`update-type`.
//!
//! ```toml
//! [[dns.view.update_policy]]
//! key = "ddns-key"
//! name = "dyn.example.test"
//! match = "subdomain"        # or "name": exactly that owner
//! types = ["A", "AAAA", "TXT"]   # empty: every type but SOA and NS
//! ```

use std::collections::HashSet;

use hickory_proto::rr::{LowerName, Name, Record, RecordType};
use serde::{Deserialize, Serialize};

use crate::acl::key_name;
use crate::error::DnsError;
use crate::zone::parse::parse_type;

/// `[[dns.view.update_policy]]`: one grant of a TSIG key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateGrantConfig {
    /// The TSIG key (a `[[dns.tsig_key]]` name) that must sign the update.
    pub key: String,
    /// The owner name the grant is about.
    pub name: String,
    /// `subdomain` (default: the name and every name below it) or `name` (exactly it).
    #[serde(default, rename = "match")]
    pub match_: GrantMatch,
    /// Types the key may change; empty means every type except SOA and NS.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
}

/// How a grant's name is matched (BIND `name` and `subdomain` rule types).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GrantMatch {
    /// The owner must equal the name.
    Name,
    /// The owner must be the name or below it.
    #[default]
    Subdomain,
}

/// A compiled grant.
#[derive(Debug, Clone)]
pub struct Grant {
    /// Lower-case key name.
    pub key: Name,
    /// The granted name.
    pub name: LowerName,
    /// How `name` is matched.
    pub match_: GrantMatch,
    /// Permitted types; `None` is every type except SOA and NS.
    pub types: Option<HashSet<RecordType>>,
}

impl Grant {
    /// Compiles a grant, checking that the key exists.
    pub fn compile(config: &UpdateGrantConfig, keys: &HashSet<Name>) -> Result<Grant, DnsError> {
        let key = key_name(&config.key)?;
        if !keys.contains(&key) {
            return Err(DnsError::config(format!(
                "update_policy: unknown tsig_key `{}`",
                config.key
            )));
        }
        let mut name = Name::from_ascii(config.name.trim()).map_err(|e| {
            DnsError::config(format!("update_policy: bad name `{}`: {e}", config.name))
        })?;
        name.set_fqdn(true);
        let types = if config.types.is_empty() {
            None
        } else {
            let parsed: Result<HashSet<RecordType>, String> =
                config.types.iter().map(|t| parse_type(t)).collect();
            Some(parsed.map_err(|e| DnsError::config(format!("update_policy: {e}")))?)
        };
        Ok(Grant {
            key,
            name: LowerName::new(&name),
            match_: config.match_,
            types,
        })
    }

    /// True when the grant covers names in the zone `origin` (either is below the other).
    pub fn touches_zone(&self, origin: &LowerName) -> bool {
        origin.zone_of(&self.name) || self.name.zone_of(origin)
    }

    /// True when the grant covers this owner name.
    pub fn covers_name(&self, owner: &LowerName) -> bool {
        match self.match_ {
            GrantMatch::Name => *owner == self.name,
            GrantMatch::Subdomain => self.name.zone_of(owner),
        }
    }

    /// True when the grant covers this type (ANY stands for "every type the grant allows").
    /// DNSSEC records other than DS are made by the signer and never updated (RFC 3007 §4.3,
    /// RFC 4035 §2).
    pub fn covers_type(&self, rtype: RecordType) -> bool {
        if rtype.is_dnssec() && rtype != RecordType::DS {
            return false;
        }
        match &self.types {
            _ if rtype == RecordType::ANY => true,
            Some(types) => types.contains(&rtype),
            None => !matches!(rtype, RecordType::SOA | RecordType::NS),
        }
    }
}

/// True when some grant permits the update RR (its owner and type; RFC 2136 §3.3.1).
pub fn permits(grants: &[&Grant], rr: &Record) -> bool {
    let owner = LowerName::new(&rr.name);
    grants
        .iter()
        .any(|g| g.covers_name(&owner) && g.covers_type(rr.record_type()))
}

/// True when a delete-all-RRsets at `owner` may remove an RRset of `rtype`: only the types
/// the key could delete one by one.
pub fn may_delete(grants: &[&Grant], owner: &LowerName, rtype: RecordType) -> bool {
    rtype != RecordType::ANY
        && grants
            .iter()
            .any(|g| g.covers_name(owner) && g.covers_type(rtype))
}
