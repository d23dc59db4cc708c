//! Postern's split-horizon authoritative DNS.
//!
//! Views route each query by client (and local) address or TSIG key, first match wins
//! like BIND9 `match-clients`; each view answers authoritatively from its zones (zone files
//! plus records managed in the store) and refuses everything else. The query path is
//! sans-I/O ([`engine::respond`]); [`DnsServer`] adds UDP/TCP listeners, inotify reloads,
//! zone transfers and NOTIFY.

pub mod acl;
pub mod check;
pub mod config;
pub mod dnssec;
pub mod engine;
pub mod error;
pub mod import_bind;
pub mod journal;
mod load;
pub mod lookup;
pub mod managed;
mod memory;
pub mod notify;
pub mod rrl;
pub mod serial;
pub mod server;
pub mod state;
pub mod stats;
pub mod transfer;
pub mod tsig;
mod tsig_wire;
pub mod update;
pub mod validate;
mod watch;
pub(crate) mod wire;
pub mod zone;

pub use check::{check, CheckReport};
pub use config::{
    AclConfig, DnsConfig, MatchElement, RrlConfig, TsigKeyConfig, ViewConfig, ZoneConfig,
};
pub use error::DnsError;
pub use import_bind::import_bind;
pub use journal::JournalEntry;
pub use managed::{ManagedRecord, ServedRecord};
pub use memory::limit_allocator_arenas;
pub use serial::{ServedSerial, ZoneSerial};
pub use server::{DnsServer, Seed, SerialListener};
pub use state::Changes;
pub use stats::{describe_metrics, DnsCounters, DnsStats};
pub use update::{RrsetChange, UpdateHandler, ZoneUpdate};
pub use validate::{validate_managed, view_zones};
