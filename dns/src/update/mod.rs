//! Dynamic UPDATE (RFC 2136), authenticated with TSIG (RFC 8945).
//!
//! The engine recognises an UPDATE and hands the shell an [`UpdateRequest`]. The shell
//! serialises updates (RFC 2136 §3.7), evaluates the request against the state being served
//! ([`UpdateRequest::evaluate`]: zone section §3.1, prerequisites §3.2 in [`prereq`], the
//! key's permissions §3.3, prescan and update §3.4 in [`apply`]), passes the resulting
//! [`ZoneUpdate`] to the [`UpdateHandler`] (the binary stores it, so it survives restarts and
//! every node sees it) and answers with [`UpdateRequest::reply`]. This crate never stores
//! anything itself.
//!
//! Only TSIG-signed updates are accepted, and only for names and types an
//! `[[dns.view.update_policy]]` grant gives the key (like BIND `update-policy` / Knot ACLs).
//! A zone file stays authoritative: RRsets it holds cannot be changed by UPDATE (REFUSED),
//! everything else lands in the store and is merged into the zone like admin records.

pub mod apply;
pub mod policy;
pub mod prereq;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, LowerName, RecordType};

use crate::engine::{base_response, encode};
use crate::state::ServingState;
use crate::stats::{Counter, DnsStats};
use crate::tsig::Signed;

pub use policy::{Grant, GrantMatch, UpdateGrantConfig};

/// One RRset as it must be stored after an update (empty: delete it from the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrsetChange {
    /// Owner name, lower-case, fully qualified.
    pub name: String,
    /// Type mnemonic, e.g. `A`.
    pub rtype: String,
    /// The records of the RRset: (TTL, RDATA in presentation format).
    pub records: Vec<(u32, String)>,
}

/// The validated effect of one UPDATE message on the store (RFC 2136 §3.4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneUpdate {
    /// The view whose store records change (the zone's owner view).
    pub view: String,
    /// The zone origin, e.g. `example.test.`.
    pub zone: String,
    /// The TSIG key that signed the update.
    pub key: String,
    /// The zone's served serial the update was evaluated against; applied alone, it moves
    /// the serial to `serial + 1` (the content changed, see [`crate::serial`]), the span of its journal entry.
    pub serial: u32,
    /// Every RRset the update changed, with its new content.
    pub rrsets: Vec<RrsetChange>,
    /// Records removed, for a journal: (owner, TTL, type, RDATA).
    pub removed: Vec<(String, u32, String, String)>,
    /// Records added, for a journal: (owner, TTL, type, RDATA).
    pub added: Vec<(String, u32, String, String)>,
}

/// Where validated updates go: implemented by the binary over the store.
pub trait UpdateHandler: Send + Sync {
    /// Makes the update durable and served (RFC 2136 §3.5: before the response is sent);
    /// an error answers SERVFAIL and must leave nothing changed.
    fn apply(
        &self,
        update: ZoneUpdate,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>>;
}

/// A parsed UPDATE message (RFC 2136 §2) with its TSIG verification, waiting for the shell.
pub struct UpdateRequest {
    msg: Message,
    signed: Option<Signed>,
    src: SocketAddr,
    dst: SocketAddr,
    now: u64,
}

impl UpdateRequest {
    pub(crate) fn new(
        msg: Message,
        signed: Option<Signed>,
        src: SocketAddr,
        dst: SocketAddr,
        now: u64,
    ) -> Self {
        UpdateRequest {
            msg,
            signed,
            src,
            dst,
            now,
        }
    }

    /// The client address.
    pub fn src(&self) -> SocketAddr {
        self.src
    }

    /// Checks the update against `state` and computes its effect, or the RCODE to answer:
    /// FORMERR, NOTAUTH (zone not served here, RFC 2136 §3.1.1), REFUSED (unsigned, or not
    /// permitted, §3.3), the prerequisite RCODEs (§3.2.5) or NOTZONE (§3.2, §3.4.1.3).
    pub fn evaluate(&self, state: &ServingState) -> Result<ZoneUpdate, ResponseCode> {
        // §3.1.1: exactly one zone, of type SOA; class IN is all we serve.
        let [zone_q] = self.msg.queries.as_slice() else {
            return Err(ResponseCode::FormErr);
        };
        if zone_q.query_type() != RecordType::SOA {
            return Err(ResponseCode::FormErr);
        }
        let Some(signed) = &self.signed else {
            tracing::info!(client = %self.src, "unsigned UPDATE refused");
            return Err(ResponseCode::Refused);
        };
        let key = signed.key();
        let view = state
            .route(self.src, self.dst, Some(key))
            .ok_or(ResponseCode::Refused)?;
        if zone_q.query_class() != DNSClass::IN {
            return Err(ResponseCode::NotAuth);
        }
        let served = view
            .find_zone(zone_q.name())
            .filter(|z| z.zone.lower_origin() == &LowerName::new(zone_q.name()))
            .ok_or(ResponseCode::NotAuth)?;
        let grants: Vec<&Grant> = view.update_grants(key, served.zone.lower_origin());
        if grants.is_empty() {
            tracing::info!(client = %self.src, key = %key, zone = %served.zone.origin(), "UPDATE refused: no grant for this key and zone");
            return Err(ResponseCode::Refused);
        }
        prereq::check(&served.zone, &self.msg.answers)?;
        for rr in &self.msg.authorities {
            if !policy::permits(&grants, rr) {
                tracing::info!(client = %self.src, key = %key, name = %rr.name, rtype = %rr.record_type(), "UPDATE refused by update_policy");
                return Err(ResponseCode::Refused);
            }
        }
        apply::prescan(served.zone.lower_origin(), &self.msg.authorities)?;
        let (rrsets, removed, added) = apply::apply(
            &served.zone,
            &served.file_rrsets,
            &grants,
            &self.msg.authorities,
        )?;
        Ok(ZoneUpdate {
            view: served.owner_view.clone(),
            zone: served.zone.origin().to_string(),
            key: key.to_string(),
            serial: served.zone.serial(),
            rrsets,
            removed,
            added,
        })
    }

    /// The response with `rcode`, signed when the request was (RFC 8945 §5.3).
    pub fn reply(&self, stats: &DnsStats, rcode: ResponseCode) -> Vec<Vec<u8>> {
        match rcode {
            ResponseCode::NoError => stats.bump(Counter::Update),
            ResponseCode::Refused => stats.bump(Counter::Refused),
            ResponseCode::FormErr => stats.bump(Counter::FormErr),
            _ => {}
        }
        let mut resp = base_response(&self.msg);
        resp.metadata.response_code = rcode;
        let Some(bytes) = encode(&resp) else {
            return Vec::new();
        };
        let mut out = vec![bytes];
        if let Some(signed) = &self.signed {
            if let Err(e) = signed.sign_all(&mut out, self.now) {
                tracing::warn!("cannot sign UPDATE response: {e}");
                return Vec::new();
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
