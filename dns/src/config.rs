//! The `[dns]` section of `postern.toml`.
//!
//! ```toml
//! [dns]
//! zones_dir = "zones"
//!
//! [[dns.acl]]
//! name = "office"
//! match = ["192.168.0.0/16", "!192.168.99.0/24"]
//!
//! [[dns.tsig_key]]
//! name = "xfr-key"
//! algorithm = "hmac-sha256"
//! secret = "base64 secret"
//!
//! [[dns.view]]
//! name = "internal"
//! match_clients = ["office", "localhost"]
//!
//! [[dns.view.zone]]
//! name = "example.test"
//! file = "internal/example.test.zone"
//! allow_transfer = ["key:xfr-key"]
//! also_notify = ["192.168.1.53:53"]
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use crate::rrl::RrlConfig;
pub use crate::update::UpdateGrantConfig;

/// The `[dns]` table: zones directory, ACLs, TSIG keys and views.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// Directory of zone files; relative paths are resolved against the base directory.
    #[serde(default = "default_zones_dir")]
    pub zones_dir: PathBuf,
    /// Watch zone files with inotify and reload changed ones.
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub watch: bool,
    /// Milliseconds a changed zone file's size and modification time must stay the same before
    /// it is read, so that a file still being written is never served.
    #[serde(
        default = "default_zone_settle_ms",
        skip_serializing_if = "is_default_zone_settle_ms"
    )]
    pub zone_settle_ms: u64,
    /// Seconds an idle TCP connection is kept open (RFC 7766 §6.2.3).
    #[serde(
        default = "default_tcp_idle_timeout",
        skip_serializing_if = "is_default_tcp_idle_timeout"
    )]
    pub tcp_idle_timeout_secs: u64,
    /// Maximum number of concurrent TCP connections per listener.
    #[serde(
        default = "default_max_tcp_connections",
        skip_serializing_if = "is_default_max_tcp_connections"
    )]
    pub max_tcp_connections: usize,
    /// Maximum number of zone transfers sent at once (BIND's `transfers-out`); more are
    /// answered SERVFAIL, so that the secondary retries later.
    #[serde(
        default = "default_max_transfers",
        skip_serializing_if = "is_default_max_transfers"
    )]
    pub max_transfers: usize,
    /// Journal entries kept per signed zone and view for IXFR (RFC 1995), in memory and in the
    /// store (Knot's `journal-max-depth`); an older serial gets the full zone.
    #[serde(
        default = "default_journal_max_changes",
        skip_serializing_if = "is_default_journal_max_changes"
    )]
    pub journal_max_changes: usize,
    /// Bytes of journal kept in the store per signed zone and view, oldest entries pruned
    /// first (BIND's `max-journal-size`, Knot's `journal-max-usage`).
    #[serde(
        default = "default_journal_max_bytes",
        skip_serializing_if = "is_default_journal_max_bytes"
    )]
    pub journal_max_bytes: u64,
    /// Named address match lists, usable by name in any other list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acl: Vec<AclConfig>,
    /// TSIG keys (RFC 8945) for transfers and for `key:NAME` match elements.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tsig_key: Vec<TsigKeyConfig>,
    /// Views, tried in order; the first whose lists match answers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub view: Vec<ViewConfig>,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            zones_dir: default_zones_dir(),
            watch: true,
            zone_settle_ms: default_zone_settle_ms(),
            tcp_idle_timeout_secs: default_tcp_idle_timeout(),
            max_tcp_connections: default_max_tcp_connections(),
            max_transfers: default_max_transfers(),
            journal_max_changes: default_journal_max_changes(),
            journal_max_bytes: default_journal_max_bytes(),
            acl: Vec::new(),
            tsig_key: Vec::new(),
            view: Vec::new(),
        }
    }
}

/// One element of an address match list, as written in TOML.
///
/// Strings are `any`, `none`, `localhost`, `localnets`, an IP address, a CIDR prefix,
/// `key:NAME` (request signed with that TSIG key) or the name of an ACL; a leading `!`
/// negates. An array is a nested list. First match wins, like BIND9 address match lists.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum MatchElement {
    /// A single element.
    Item(String),
    /// A nested list; only a positive match inside it counts as a match.
    List(Vec<MatchElement>),
}

impl From<&str> for MatchElement {
    fn from(s: &str) -> Self {
        MatchElement::Item(s.to_owned())
    }
}

/// `[[dns.acl]]`: a named address match list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AclConfig {
    /// Name used to refer to this list.
    pub name: String,
    /// The elements.
    #[serde(rename = "match")]
    pub elements: Vec<MatchElement>,
}

/// `[[dns.tsig_key]]`: a shared TSIG secret (RFC 8945 §3).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TsigKeyConfig {
    /// Key name, e.g. `xfr-key` (used as a domain name on the wire).
    pub name: String,
    /// `hmac-sha256` (default), `hmac-sha384` or `hmac-sha512`.
    #[serde(default = "default_algorithm")]
    pub algorithm: String,
    /// The secret, base64.
    pub secret: String,
}

/// `[[dns.view]]`: a set of zones answered to the clients its lists match.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ViewConfig {
    /// View name; zone files live under `zones_dir/<name>/` by convention.
    pub name: String,
    /// Source addresses (or TSIG keys) this view answers; default `any`.
    #[serde(default = "any_list")]
    pub match_clients: Vec<MatchElement>,
    /// Local addresses the query must have arrived on; default `any`.
    #[serde(default = "any_list", skip_serializing_if = "is_any_list")]
    pub match_destinations: Vec<MatchElement>,
    /// Who may transfer the view's zones (AXFR/IXFR); default `none`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_transfer: Vec<MatchElement>,
    /// Which TSIG keys may change which names by dynamic UPDATE (RFC 2136); none: REFUSED.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub update_policy: Vec<UpdateGrantConfig>,
    /// Response-rate limiting of the view's UDP answers; off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rrl: Option<RrlConfig>,
    /// The zones of the view.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zone: Vec<ZoneConfig>,
}

/// `[[dns.view.zone]]`: one zone of a view.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    /// Zone origin, e.g. `example.test`.
    pub name: String,
    /// Zone file, relative to `zones_dir`; default `<view>/<name>.zone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Serve the same zone object as this other (earlier) view (BIND `in-view`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_view: Option<String>,
    /// Overrides the view's `allow_transfer` for this zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_transfer: Option<Vec<MatchElement>>,
    /// Secondaries sent a NOTIFY (RFC 1996) when the serial changes: `ip` or `ip:port`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_notify: Vec<String>,
    /// Sign the zone online with its keys from the store (RFC 4033-4035); `in_view` copies
    /// share the owner's signatures.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dnssec: bool,
}

impl ZoneConfig {
    /// The parsed `also_notify` targets (port 53 when none is given).
    pub fn notify_targets(&self) -> Result<Vec<SocketAddr>, String> {
        self.also_notify
            .iter()
            .map(|s| parse_socket_addr(s, 53))
            .collect()
    }
}

/// Parses `ip`, `ip:port`, `[v6]:port` or a bare IPv6 address.
pub(crate) fn parse_socket_addr(s: &str, default_port: u16) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    s.parse::<std::net::IpAddr>()
        .map(|ip| SocketAddr::new(ip, default_port))
        .map_err(|_| format!("`{s}` is not an address or address:port"))
}

fn default_zones_dir() -> PathBuf {
    PathBuf::from("zones")
}

fn default_true() -> bool {
    true
}

fn is_true(v: &bool) -> bool {
    *v
}

fn default_zone_settle_ms() -> u64 {
    1000
}

fn is_default_zone_settle_ms(v: &u64) -> bool {
    *v == default_zone_settle_ms()
}

fn default_tcp_idle_timeout() -> u64 {
    30
}

fn is_default_tcp_idle_timeout(v: &u64) -> bool {
    *v == default_tcp_idle_timeout()
}

fn default_max_tcp_connections() -> usize {
    1024
}

fn is_default_max_tcp_connections(v: &usize) -> bool {
    *v == default_max_tcp_connections()
}

fn default_journal_max_changes() -> usize {
    100
}

fn is_default_journal_max_changes(v: &usize) -> bool {
    *v == default_journal_max_changes()
}

fn default_journal_max_bytes() -> u64 {
    32 << 20
}

fn is_default_journal_max_bytes(v: &u64) -> bool {
    *v == default_journal_max_bytes()
}

fn default_max_transfers() -> usize {
    10
}

fn is_default_max_transfers(v: &usize) -> bool {
    *v == default_max_transfers()
}

fn default_algorithm() -> String {
    "hmac-sha256".to_owned()
}

fn any_list() -> Vec<MatchElement> {
    vec![MatchElement::Item("any".to_owned())]
}

fn is_any_list(v: &[MatchElement]) -> bool {
    v == any_list().as_slice()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct File {
        dns: DnsConfig,
    }

    #[test]
    fn parses_full_example() {
        let text = r#"
            [dns]
            zones_dir = "zones"
            [[dns.acl]]
            name = "office"
            match = ["10.0.0.0/8", ["!10.1.0.0/16", "any"]]
            [[dns.tsig_key]]
            name = "xfr"
            secret = "c2VjcmV0"
            [[dns.view]]
            name = "internal"
            match_clients = ["office"]
            [[dns.view.zone]]
            name = "example.test"
            also_notify = ["127.0.0.1:5300", "::1"]
        "#;
        let f: File = toml::from_str(text).expect("parses");
        assert_eq!(f.dns.tsig_key[0].algorithm, "hmac-sha256");
        assert_eq!(f.dns.view[0].match_destinations, any_list());
        assert_eq!(
            f.dns.view[0].zone[0].notify_targets().expect("addresses")[1],
            "[::1]:53".parse().expect("addr")
        );
        assert!(matches!(f.dns.acl[0].elements[1], MatchElement::List(_)));
    }

    #[test]
    fn rejects_unknown_fields() {
        let err = toml::from_str::<File>("[dns]\nzone_dir = 'x'\n").err();
        assert!(err.expect("error").to_string().contains("zone_dir"));
    }
}
