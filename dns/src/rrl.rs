//! Response-rate limiting (RRL) for UDP, after BIND9's `rate-limit` and Knot's `rrl` module
//! (the design of Vixie and Schryver, "DNS Response Rate Limiting", 2012).
//!
//! A spoofed-source flood turns an authoritative server into an amplifier; RRL counts the
//! responses each client network gets per kind of response and stops answering once a
//! token bucket is empty. Every `slip`-th limited response is still sent, truncated (TC=1,
//! no records), so that a real client behind a spoofed address retries over TCP (RFC 7766),
//! where no limit applies. The decision is pure: [`RateLimiter::check`] takes the time as an
//! argument, so the engine stays sans-I/O and the tests drive the clock.
//!
//! Buckets are keyed like BIND's "identical responses": the client prefix (IPv4 /24 and
//! IPv6 /56 by default), the response kind, and for answers the query name and type; for
//! NXDOMAIN the zone (a random-subdomain flood is one bucket); for referrals the delegation.
//! Memory is bounded: the table holds at most `max_entries` buckets (in 16 separately
//! locked shards), and when a shard is full its idle buckets, then its least recently used
//! ones, are evicted.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::net::IpAddr;
use std::sync::Mutex;

use hickory_proto::rr::{Name, RecordType};
use serde::{Deserialize, Serialize};

/// `[[dns.view]] rrl = { ... }`: rate limits for the view's UDP responses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RrlConfig {
    /// Identical responses per second per client prefix (BIND `responses-per-second`).
    pub responses_per_second: u32,
    /// NXDOMAIN responses per second per prefix and zone; default `responses_per_second`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nxdomains_per_second: Option<u32>,
    /// Error responses (REFUSED, FORMERR, SERVFAIL...) per second per prefix; default
    /// `responses_per_second`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors_per_second: Option<u32>,
    /// Seconds over which a client's excess is remembered: a bucket goes at most
    /// `window × rate` into debt (BIND `window`, default 15).
    #[serde(default = "default_window")]
    pub window: u32,
    /// Every `slip`-th limited response is sent truncated instead of dropped; 0 drops all,
    /// 1 truncates all (BIND `slip`, default 2).
    #[serde(default = "default_slip")]
    pub slip: u32,
    /// Prefix length that groups IPv4 clients (BIND `ipv4-prefix-length`, default 24).
    #[serde(default = "default_v4_prefix")]
    pub ipv4_prefix_length: u8,
    /// Prefix length that groups IPv6 clients (BIND `ipv6-prefix-length`, default 56).
    #[serde(default = "default_v6_prefix")]
    pub ipv6_prefix_length: u8,
    /// Most buckets kept (BIND `max-table-size`); the oldest are evicted beyond it.
    #[serde(default = "default_max_entries")]
    pub max_entries: usize,
}

fn default_window() -> u32 {
    15
}
fn default_slip() -> u32 {
    2
}
fn default_v4_prefix() -> u8 {
    24
}
fn default_v6_prefix() -> u8 {
    56
}
fn default_max_entries() -> usize {
    100_000
}

impl RrlConfig {
    /// Checks the ranges (BIND's: window 1..=3600, slip 0..=10, prefixes within the family).
    pub fn validate(&self) -> Result<(), String> {
        if self.responses_per_second == 0 {
            return Err("responses_per_second must be at least 1".into());
        }
        if !(1..=3600).contains(&self.window) {
            return Err("window must be 1 to 3600 seconds".into());
        }
        if self.slip > 10 {
            return Err("slip must be 0 to 10".into());
        }
        if self.ipv4_prefix_length > 32 || self.ipv6_prefix_length > 128 {
            return Err("prefix lengths are at most 32 (IPv4) and 128 (IPv6)".into());
        }
        if self.max_entries == 0 {
            return Err("max_entries must be at least 1".into());
        }
        Ok(())
    }
}

/// What kind of response is being limited (RRL's response classes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseKind {
    /// A positive answer or NODATA: keyed by query name and type.
    Answer,
    /// NXDOMAIN: keyed by the zone, so random subdomains share one bucket.
    NxDomain,
    /// A referral: keyed by the delegation point.
    Referral,
    /// An error RCODE: keyed by the client prefix only.
    Error,
}

/// The decision for one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send it.
    Send,
    /// Limited: send nothing.
    Drop,
    /// Limited, but send a truncated (TC=1) response so a real client retries over TCP.
    Slip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    prefix: u128,
    v6: bool,
    kind: ResponseKind,
    name: u64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Responses that may still be sent; negative is debt.
    balance: i64,
    /// Second of the last refill.
    last: u64,
    /// Limited responses so far (for `slip`).
    limited: u32,
}

/// Independently locked parts of the table, so that UDP workers rarely wait for each other.
const SHARDS: usize = 16;

/// One view's rate limiter: its config and bucket table.
#[derive(Debug)]
pub struct RateLimiter {
    config: RrlConfig,
    hasher: RandomState,
    /// Buckets per shard: `max_entries` spread over the shards.
    shard_cap: usize,
    shards: Box<[Mutex<HashMap<Key, Bucket>>]>,
}

impl RateLimiter {
    /// A limiter with an empty table.
    pub fn new(config: RrlConfig) -> Self {
        RateLimiter {
            shard_cap: config.max_entries.div_ceil(SHARDS).max(1),
            config,
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// The config it was built from (a reload with the same config keeps the table).
    pub fn config(&self) -> &RrlConfig {
        &self.config
    }

    /// Number of buckets held.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    /// True when no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts one response of `kind` about `name`/`qtype` to `client` at second `now` and
    /// decides whether it is sent, dropped or slipped.
    pub fn check(
        &self,
        client: IpAddr,
        kind: ResponseKind,
        name: &Name,
        qtype: RecordType,
        now: u64,
    ) -> Decision {
        let key = self.key(client, kind, name, qtype);
        let rate = i64::from(match kind {
            ResponseKind::NxDomain => self
                .config
                .nxdomains_per_second
                .unwrap_or(self.config.responses_per_second),
            ResponseKind::Error => self
                .config
                .errors_per_second
                .unwrap_or(self.config.responses_per_second),
            ResponseKind::Answer | ResponseKind::Referral => self.config.responses_per_second,
        });
        if rate == 0 {
            return Decision::Send;
        }
        let shard = (key.name ^ key.prefix as u64 ^ (key.prefix >> 64) as u64) as usize % SHARDS;
        let mut table = self.shards[shard].lock().unwrap_or_else(|e| e.into_inner());
        if table.len() >= self.shard_cap && !table.contains_key(&key) {
            self.evict(&mut table, now);
        }
        let bucket = table.entry(key).or_insert(Bucket {
            balance: rate,
            last: now,
            limited: 0,
        });
        let elapsed = now.saturating_sub(bucket.last);
        if elapsed > 0 {
            let refill = i64::try_from(elapsed)
                .unwrap_or(i64::MAX)
                .saturating_mul(rate);
            bucket.balance = bucket.balance.saturating_add(refill).min(rate);
            bucket.last = now;
        }
        bucket.balance -= 1;
        if bucket.balance >= 0 {
            return Decision::Send;
        }
        let floor = -rate.saturating_mul(i64::from(self.config.window));
        bucket.balance = bucket.balance.max(floor);
        bucket.limited = bucket.limited.wrapping_add(1);
        let slip = self.config.slip;
        if slip > 0 && bucket.limited.is_multiple_of(slip) {
            Decision::Slip
        } else {
            Decision::Drop
        }
    }

    fn key(&self, client: IpAddr, kind: ResponseKind, name: &Name, qtype: RecordType) -> Key {
        let (prefix, v6) = match client {
            IpAddr::V4(v4) => (
                u128::from(mask32(u32::from(v4), self.config.ipv4_prefix_length)),
                false,
            ),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => (
                    u128::from(mask32(u32::from(v4), self.config.ipv4_prefix_length)),
                    false,
                ),
                None => (
                    mask128(u128::from(v6), self.config.ipv6_prefix_length),
                    true,
                ),
            },
        };
        let name = match kind {
            ResponseKind::Error => 0,
            _ => {
                // The wire form, lower-cased on the stack (at most 255 bytes, RFC 1035 §3.1).
                let mut buf = [0u8; 256];
                let mut len = 0;
                for label in name.iter() {
                    for &b in label.iter().take(63) {
                        if len < buf.len() {
                            buf[len] = b.to_ascii_lowercase();
                            len += 1;
                        }
                    }
                    if len < buf.len() {
                        buf[len] = b'.';
                        len += 1;
                    }
                }
                let mut h = self.hasher.build_hasher();
                h.write(&buf[..len]);
                if kind == ResponseKind::Answer {
                    h.write_u16(u16::from(qtype));
                }
                h.finish()
            }
        };
        Key {
            prefix,
            v6,
            kind,
            name,
        }
    }

    /// Makes room: drops buckets idle for longer than the window (they would be full
    /// again), and if that frees too little, the least recently used eighth.
    fn evict(&self, table: &mut HashMap<Key, Bucket>, now: u64) {
        let window = u64::from(self.config.window);
        table.retain(|_, b| now.saturating_sub(b.last) <= window);
        let max = self.shard_cap;
        if table.len() < max.saturating_sub(max / 8).max(1) {
            return;
        }
        let mut ages: Vec<u64> = table.values().map(|b| b.last).collect();
        let cut = (ages.len() / 8).max(1).min(ages.len() - 1);
        let (_, threshold, _) = ages.select_nth_unstable(cut);
        let threshold = *threshold;
        table.retain(|_, b| b.last > threshold);
        // Ties at the threshold may have kept everything; never stay over the cap.
        while table.len() >= max {
            let Some(k) = table.keys().next().copied() else {
                break;
            };
            table.remove(&k);
        }
    }
}

fn mask32(v: u32, len: u8) -> u32 {
    match len {
        0 => 0,
        l if l >= 32 => v,
        l => v & (u32::MAX << (32 - u32::from(l))),
    }
}

fn mask128(v: u128, len: u8) -> u128 {
    match len {
        0 => 0,
        l if l >= 128 => v,
        l => v & (u128::MAX << (128 - u32::from(l))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rps: u32, slip: u32) -> RateLimiter {
        RateLimiter::new(RrlConfig {
            responses_per_second: rps,
            nxdomains_per_second: None,
            errors_per_second: None,
            window: 2,
            slip,
            ipv4_prefix_length: 24,
            ipv6_prefix_length: 56,
            max_entries: 1000,
        })
    }

    fn name(s: &str) -> Name {
        Name::from_ascii(s).expect("name")
    }

    fn run(l: &RateLimiter, ip: &str, n: usize, now: u64) -> Vec<Decision> {
        let ip: IpAddr = ip.parse().expect("ip");
        (0..n)
            .map(|_| {
                l.check(
                    ip,
                    ResponseKind::Answer,
                    &name("www.t.test."),
                    RecordType::A,
                    now,
                )
            })
            .collect()
    }

    #[test]
    fn limits_then_slips_every_nth_and_refills() {
        let l = limiter(5, 2);
        let d = run(&l, "192.0.2.1", 11, 100);
        assert!(d[..5].iter().all(|d| *d == Decision::Send));
        assert_eq!(
            &d[5..],
            &[
                Decision::Drop,
                Decision::Slip,
                Decision::Drop,
                Decision::Slip,
                Decision::Drop,
                Decision::Slip
            ]
        );
        // Same /24, same answer: same bucket.
        assert_ne!(run(&l, "192.0.2.200", 1, 100)[0], Decision::Send);
        // Another /24 has its own bucket.
        assert_eq!(run(&l, "192.0.3.1", 1, 100)[0], Decision::Send);
        // Debt is bounded by window × rate (-10): 6 s later the bucket is full again.
        assert_eq!(run(&l, "192.0.2.1", 5, 106), vec![Decision::Send; 5]);
        assert_ne!(run(&l, "192.0.2.1", 1, 106)[0], Decision::Send);
    }

    #[test]
    fn kinds_and_names_are_separate_buckets() {
        let l = limiter(1, 0);
        let ip: IpAddr = "2001:db8:1:ff::1".parse().expect("ip");
        let n = name("a.t.test.");
        assert_eq!(
            l.check(ip, ResponseKind::Answer, &n, RecordType::A, 1),
            Decision::Send
        );
        assert_eq!(
            l.check(ip, ResponseKind::Answer, &n, RecordType::A, 1),
            Decision::Drop,
            "slip 0 drops everything"
        );
        assert_eq!(
            l.check(ip, ResponseKind::Answer, &n, RecordType::AAAA, 1),
            Decision::Send
        );
        assert_eq!(
            l.check(
                ip,
                ResponseKind::Answer,
                &name("A.T.TEST."),
                RecordType::A,
                1
            ),
            Decision::Drop,
            "names compare case-insensitively"
        );
        // Same /56: limited together.
        let neighbour: IpAddr = "2001:db8:1:aa::9".parse().expect("ip");
        assert_eq!(
            l.check(neighbour, ResponseKind::Answer, &n, RecordType::A, 1),
            Decision::Drop
        );
        assert_eq!(
            l.check(
                ip,
                ResponseKind::NxDomain,
                &name("t.test."),
                RecordType::A,
                1
            ),
            Decision::Send
        );
        assert_eq!(
            l.check(
                ip,
                ResponseKind::NxDomain,
                &name("t.test."),
                RecordType::MX,
                1
            ),
            Decision::Drop,
            "NXDOMAIN is keyed by zone, not by type"
        );
        assert_eq!(
            l.check(ip, ResponseKind::Error, &name("x."), RecordType::A, 1),
            Decision::Send
        );
        assert_eq!(
            l.check(ip, ResponseKind::Error, &name("y."), RecordType::A, 1),
            Decision::Drop,
            "errors are keyed by prefix only"
        );
    }

    #[test]
    fn table_is_bounded() {
        let mut config = limiter(1, 2).config.clone();
        config.max_entries = 64;
        config.ipv4_prefix_length = 32;
        let l = RateLimiter::new(config);
        for i in 0..10_000u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            l.check(
                ip,
                ResponseKind::Answer,
                &name("t.test."),
                RecordType::A,
                u64::from(i / 100),
            );
            assert!(l.len() <= 64, "{} buckets", l.len());
        }
        // The most recent client is still remembered (not evicted first).
        let last = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + 9_999));
        assert_eq!(
            l.check(
                last,
                ResponseKind::Answer,
                &name("t.test."),
                RecordType::A,
                99
            ),
            Decision::Drop
        );
    }

    #[test]
    fn config_ranges() {
        let mut c = limiter(1, 2).config.clone();
        assert!(c.validate().is_ok());
        c.slip = 11;
        assert!(c.validate().is_err());
        c.slip = 2;
        c.window = 0;
        assert!(c.validate().is_err());
        assert_eq!(mask32(0xC000_0201, 24), 0xC000_0200);
        assert_eq!(mask32(0xC000_0201, 0), 0);
    }
}
