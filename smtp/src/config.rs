//! The `[smtp]` table of `postern.toml`: limits, timeouts, the outbound queue's retry schedule, the
//! resolver used for MX lookups, MTA-STS and the MX's mail checks.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::Deserialize;

use crate::antivirus::AntivirusConfig;
use crate::crlf::BareLineEndings;
use crate::junk::JunkConfig;

/// SMTP settings; every key is optional.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    /// Largest message accepted, in bytes, advertised with SIZE (RFC 1870).
    pub max_message_size: usize,
    /// Most recipients per message (RFC 5321 §4.5.3.1.8 asks for at least 100).
    pub max_recipients: usize,
    /// Longest command line in bytes, CRLF included (RFC 5321 §4.5.3.1.4; AUTH needs more than 512).
    pub max_line_length: usize,
    /// Most concurrent sessions over all SMTP listeners; further clients get 421.
    pub max_connections: usize,
    /// Protocol errors tolerated per session before it is closed with 421.
    pub max_errors: u32,
    /// Seconds to wait for the next command or data chunk (RFC 5321 §4.5.3.2.7: at least 300).
    pub idle_timeout_secs: u64,
    /// Seconds a whole session may last.
    pub session_timeout_secs: u64,
    /// Refuse AUTH on connections without TLS (RFC 8314 §3; RFC 4954 §4).
    pub require_tls_for_auth: bool,
    /// Mail data with a bare CR or LF (RFC 5321 §2.3.8): `"normalize"` (default) stores it with
    /// CRLF line endings, `"reject"` refuses it with 550 5.5.2.
    pub bare_line_endings: BareLineEndings,
    /// Mailbox (an address) receiving mail for `postmaster` (RFC 5321 §4.5.1) and for
    /// `postmaster@` and `abuse@` (RFC 2142) of every hosted domain that has no user or alias of
    /// that name; catch-alls never take them. Unset: the first user created.
    pub postmaster: Option<String>,
    /// Address literals taken as local (RFC 5321 §4.1.3): this server's IP address mapped to the
    /// hosted domain whose users `user@[address]` reaches, e.g. `{ "192.0.2.1" = "example.org" }`
    /// (IPv6 as `"2001:db8::1"` for `[IPv6:2001:db8::1]`). Other literals are remote.
    pub address_literals: BTreeMap<IpAddr, String>,
    /// Seconds a queued message is retried before it bounces (RFC 5321 §4.5.4.1: 4–5 days).
    pub queue_lifetime_secs: u64,
    /// Seconds a queued message waits before its sender is told, once, that it is delayed
    /// (RFC 3464 action `delayed`; only if NOTIFY allows, RFC 3461 §4.1); 0: never.
    pub delay_warning_secs: u64,
    /// Seconds before the first retry; each further retry waits twice as long.
    pub retry_initial_secs: u64,
    /// Longest wait between two retries, in seconds.
    pub retry_max_secs: u64,
    /// Seconds between scans for queue entries whose retry time came (new entries wake the
    /// worker at once).
    pub queue_scan_secs: u64,
    /// Deliveries the queue worker runs at once.
    pub queue_concurrency: usize,
    /// DNS server for MX and address lookups, e.g. `127.0.0.1:53`; the system resolver if unset.
    pub resolver: Option<SocketAddr>,
    /// TCP port of remote mail exchangers (25; tests use a loopback sink).
    pub outbound_port: u16,
    /// Seconds allowed for connecting to and for each reply of a remote server (RFC 5321 §4.5.3.2).
    pub outbound_timeout_secs: u64,
    /// Honour the MTA-STS policies of recipient domains (RFC 8461): under `enforce`, deliver only
    /// to matching MX hosts over TLS with a valid certificate.
    pub mta_sts: bool,
    /// Use DANE (RFC 7672) for MX hosts whose TLSA records the resolver validated (AD bit): the
    /// resolver must be a DNSSEC-validating one on a trusted path (e.g. on this host).
    pub dane: bool,
    /// TCP port MTA-STS policies are fetched from (443; tests use a loopback server).
    pub mta_sts_port: u16,
    /// PEM file of extra CA certificates trusted for outbound TLS (policy fetches and validated
    /// MX connections), besides the Mozilla roots; for private PKIs.
    pub outbound_ca_file: Option<PathBuf>,
    /// Refuse mail failing DMARC (RFC 7489) whose domain publishes `p=reject` with 550 5.7.1 at
    /// the end of DATA; when false such mail goes to the recipients' `Junk` folder.
    pub dmarc_reject: bool,
    /// Seconds allowed for the SPF, DKIM and DMARC checks of one message; on timeout the
    /// message is delivered with `temperror` results.
    pub auth_timeout_secs: u64,
    /// DNS block lists (e.g. `zen.spamhaus.org`) asked about MX clients (RFC 5782); a listed
    /// client is refused with 554 5.7.1.
    pub dnsbl: Vec<String>,
    /// Also ask the block lists about loopback and private client addresses (for tests).
    pub dnsbl_check_private: bool,
    /// Recipient domains whose MX mail is greylisted (RFC 6647); `"*"` greylists every domain.
    pub greylist_domains: Vec<String>,
    /// Seconds a new (network, sender, recipient) triplet is deferred.
    pub greylist_delay_secs: u64,
    /// Seconds a triplet that passed stays known without being used.
    pub greylist_lifetime_secs: u64,
    /// Secret keying the SRS hashes of redirected mail's envelope senders; nodes that share the
    /// store must share it. Unset: a random one kept in `<data_dir>/srs-secret`.
    pub srs_secret: Option<String>,
    /// Virus scanning with clamd at the end of DATA (`[smtp.antivirus]`).
    pub antivirus: AntivirusConfig,
    /// The learning junk filter at delivery (`[smtp.junk]`).
    pub junk: JunkConfig,
    /// Directory for the spool files large messages are streamed into (not a key of the file:
    /// the binary sets `<data_dir>/spool`; the system's temporary directory if unset).
    #[serde(skip)]
    pub spool_dir: Option<PathBuf>,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            max_message_size: 25 << 20,
            max_recipients: 100,
            max_line_length: 4096,
            max_connections: 500,
            max_errors: 10,
            idle_timeout_secs: 300,
            session_timeout_secs: 1800,
            require_tls_for_auth: true,
            bare_line_endings: BareLineEndings::Normalize,
            postmaster: None,
            address_literals: BTreeMap::new(),
            queue_lifetime_secs: 5 * 24 * 3600,
            delay_warning_secs: 4 * 3600,
            retry_initial_secs: 300,
            retry_max_secs: 4 * 3600,
            queue_scan_secs: 60,
            queue_concurrency: 8,
            resolver: None,
            outbound_port: 25,
            outbound_timeout_secs: 60,
            mta_sts: true,
            dane: true,
            mta_sts_port: 443,
            outbound_ca_file: None,
            dmarc_reject: true,
            auth_timeout_secs: 30,
            dnsbl: Vec::new(),
            dnsbl_check_private: false,
            greylist_domains: Vec::new(),
            greylist_delay_secs: 300,
            greylist_lifetime_secs: 36 * 24 * 3600,
            srs_secret: None,
            antivirus: AntivirusConfig::default(),
            junk: JunkConfig::default(),
            spool_dir: None,
        }
    }
}

impl SmtpConfig {
    /// Whether mail for `domain` is greylisted.
    pub fn greylists(&self, domain: &str) -> bool {
        self.greylist_domains
            .iter()
            .any(|d| d == "*" || d.trim_end_matches('.').eq_ignore_ascii_case(domain))
    }

    /// How long to wait before retry number `attempts + 1`: exponential backoff from
    /// `retry_initial_secs`, capped at `retry_max_secs`.
    pub fn retry_delay(&self, attempts: i64) -> u64 {
        let shift = attempts.clamp(0, 30) as u32;
        self.retry_initial_secs
            .max(1)
            .saturating_mul(1u64 << shift)
            .min(self.retry_max_secs.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_backoff_doubles_up_to_the_cap() {
        let c = SmtpConfig {
            retry_initial_secs: 60,
            retry_max_secs: 600,
            ..SmtpConfig::default()
        };
        let delays: Vec<u64> = (0..6).map(|a| c.retry_delay(a)).collect();
        assert_eq!(delays, [60, 120, 240, 480, 600, 600]);
        assert_eq!(c.retry_delay(1000), 600);
    }

    #[test]
    fn greylisted_domains() {
        let c = SmtpConfig {
            greylist_domains: vec!["Example.test.".into()],
            ..SmtpConfig::default()
        };
        assert!(c.greylists("example.test"));
        assert!(!c.greylists("other.test"));
        let all = SmtpConfig {
            greylist_domains: vec!["*".into()],
            ..SmtpConfig::default()
        };
        assert!(all.greylists("other.test"));
        assert!(!SmtpConfig::default().greylists("example.test"));
    }
}
