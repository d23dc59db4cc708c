//! The process-wide login limiter: a pure, in-memory policy with an injected clock, used by
//! [`crate::Store::login`] for every service (SMTP AUTH, IMAP LOGIN/AUTHENTICATE, the admin UI).
//!
//! Two rules, checked *before* a password is verified:
//!
//! 1. **Per client address** (an IPv4 address or an IPv6 /64): at most
//!    [`LoginConfig::failures_per_address`] verifications that did not succeed within
//!    [`LoginConfig::window_secs`], over all services together. A slot is *reserved* before the
//!    hash is checked and counts as a failure until the verification says otherwise, so parallel
//!    attempts can never exceed the limit; a success frees its slot (a success is not a failure),
//!    but does not forget the address's earlier failures, so logging in to one's own account
//!    between guesses buys nothing. Beyond the limit the attempt is refused unverified.
//! 2. **Per account**: attempts from addresses that have failures of their own and never logged in
//!    to this account successfully draw from a token bucket
//!    ([`LoginConfig::account_attempts_per_minute`], burst of the same size). An empty bucket
//!    *slows* the attempt (it waits for its token, at most [`LoginConfig::max_slowdown_secs`]);
//!    beyond that it is refused for now. The account is never locked: an address that logged in
//!    to it before, or any address without failures, is not subject to the bucket, so a third
//!    party cannot keep the real user out (OWASP Authentication Cheat Sheet, "account lockout").
//!
//! State is per process and bounded ([`MAX_KEYS`] keys per map); when a map is full of live
//! entries, new keys are admitted without being recorded rather than refusing everyone.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::config::LoginConfig;

/// Most keys kept per map (addresses, accounts, known-good pairs).
pub const MAX_KEYS: usize = 100_000;

/// The limiter's key for a client: IPv4 addresses as they are, IPv6 by their /64 prefix (one
/// customer network, RFC 6177), so an attacker cannot rotate through the host bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl From<IpAddr> for ClientKey {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => ClientKey(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey(IpAddr::V4(v4)),
                None => {
                    let mut o = v6.octets();
                    o[8..].fill(0);
                    ClientKey(IpAddr::V6(o.into()))
                }
            },
        }
    }
}

/// What the limiter decided for one attempt.
#[derive(Debug)]
pub enum Decision {
    /// Verify the password (after waiting `wait`, zero unless slowed); report the result with
    /// [`Limiter::success`] or [`Limiter::failure`] (or [`Limiter::release`] if no verdict).
    Allowed {
        /// The reserved slot.
        slot: Slot,
        /// How long to wait before verifying: non-zero when the account's bucket was empty.
        wait: Duration,
    },
    /// Refuse without verifying; the client may try again after this long.
    Throttled {
        /// Time until a new attempt could be allowed.
        retry_after: Duration,
        /// Which rule refused it.
        rule: Rule,
    },
}

/// The rule that refused an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The client address used up its failures for the window.
    Address,
    /// The account's bucket for unknown addresses is empty for longer than the longest wait.
    Account,
}

/// A reservation made by [`Limiter::reserve_at`]. It counts as a failure until reported
/// otherwise; dropping it unreported (a cancelled login) leaves it counted, which is the safe side.
#[derive(Debug)]
#[must_use = "report the verification's result to the limiter"]
pub struct Slot {
    id: u64,
    client: ClientKey,
    account: String,
    /// Whether a token was taken from the account's bucket (refunded on success).
    took_token: bool,
    /// The client had failures and is not known good for the account.
    suspect: bool,
}

impl Slot {
    /// Whether the attempt comes from an address with failures that never logged in to this
    /// account: its verification then waits in the low-priority lane of the hashing pool, so
    /// that attempts from clean addresses are not queued behind a guesser's.
    pub fn suspect(&self) -> bool {
        self.suspect
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    id: u64,
    at: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    /// Reserved and failed slots per client, in reservation order.
    by_client: HashMap<ClientKey, VecDeque<Entry>>,
    buckets: HashMap<String, Bucket>,
    /// (account, client) pairs that logged in successfully, and when last.
    good: HashMap<(String, ClientKey), Instant>,
}

/// The login limiter; one per process, owned by the [`crate::Store`].
#[derive(Debug)]
pub struct Limiter {
    config: LoginConfig,
    state: Mutex<State>,
}

impl Limiter {
    /// A limiter enforcing `config`.
    pub fn new(config: LoginConfig) -> Limiter {
        Limiter {
            config,
            state: Mutex::default(),
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &LoginConfig {
        &self.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps inconsistent in a harmful way.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves a verification for `client` logging in to `account` at `now`, or refuses it.
    /// `account` should already be normalised (case-folded); the caller waits `wait` itself.
    pub fn reserve_at(&self, client: IpAddr, account: &str, now: Instant) -> Decision {
        let cfg = &self.config;
        let window = cfg.window();
        let client = ClientKey::from(client);
        let mut s = self.lock();
        let s = &mut *s;
        let failures = match s.by_client.get_mut(&client) {
            Some(q) => {
                q.retain(|e| now.saturating_duration_since(e.at) < window);
                q.len()
            }
            None => 0,
        };
        if failures >= cfg.failures_per_address.max(1) as usize {
            // Failures are re-dated when reported, so the deque is not strictly ordered.
            let oldest = s
                .by_client
                .get(&client)
                .and_then(|q| q.iter().map(|e| e.at).min());
            let retry_after =
                oldest.map_or(window, |t| (t + window).saturating_duration_since(now));
            return Decision::Throttled {
                retry_after: retry_after.max(Duration::from_secs(1)),
                rule: Rule::Address,
            };
        }
        let known_good = s
            .good
            .get(&(account.to_owned(), client))
            .is_some_and(|t| now.saturating_duration_since(*t) < cfg.known_good());
        let mut wait = Duration::ZERO;
        let mut took_token = false;
        let suspect = failures > 0 && !known_good;
        if suspect {
            match take_token(&mut s.buckets, account, cfg, now) {
                Ok(w) => {
                    wait = w;
                    took_token = true;
                }
                Err(retry_after) => {
                    return Decision::Throttled {
                        retry_after,
                        rule: Rule::Account,
                    }
                }
            }
        }
        s.next_id += 1;
        let id = s.next_id;
        if s.by_client.len() >= MAX_KEYS && !s.by_client.contains_key(&client) {
            s.by_client.retain(|_, q| {
                q.back()
                    .is_some_and(|e| now.saturating_duration_since(e.at) < window)
            });
        }
        if s.by_client.len() < MAX_KEYS || s.by_client.contains_key(&client) {
            s.by_client
                .entry(client)
                .or_default()
                .push_back(Entry { id, at: now });
        } else {
            tracing::warn!("login limiter full: an attempt is not recorded");
        }
        Decision::Allowed {
            slot: Slot {
                id,
                client,
                account: account.to_owned(),
                took_token,
                suspect,
            },
            wait,
        }
    }

    /// The password was right: the slot is freed, the bucket token refunded, and the (account,
    /// address) pair becomes known good.
    pub fn success_at(&self, slot: Slot, now: Instant) {
        let mut s = self.lock();
        remove_slot(&mut s, &slot);
        if slot.took_token {
            refund(&mut s.buckets, &slot.account, &self.config);
        }
        let key = (slot.account, slot.client);
        if s.good.len() >= MAX_KEYS && !s.good.contains_key(&key) {
            let keep = self.config.known_good();
            s.good
                .retain(|_, t| now.saturating_duration_since(*t) < keep);
        }
        if s.good.len() < MAX_KEYS || s.good.contains_key(&key) {
            s.good.insert(key, now);
        }
    }

    /// The password was wrong (or the account unknown or disabled): the slot stays as a failure,
    /// dated `now`.
    pub fn failure_at(&self, slot: Slot, now: Instant) {
        let mut s = self.lock();
        if let Some(e) = s
            .by_client
            .get_mut(&slot.client)
            .and_then(|q| q.iter_mut().find(|e| e.id == slot.id))
        {
            e.at = now;
        }
    }

    /// No verdict (the store failed): the slot is freed and the token refunded, nothing learnt.
    pub fn release(&self, slot: Slot) {
        let mut s = self.lock();
        remove_slot(&mut s, &slot);
        if slot.took_token {
            refund(&mut s.buckets, &slot.account, &self.config);
        }
    }

    /// [`Limiter::reserve_at`] now.
    pub fn reserve(&self, client: IpAddr, account: &str) -> Decision {
        self.reserve_at(client, account, Instant::now())
    }

    /// [`Limiter::success_at`] now.
    pub fn success(&self, slot: Slot) {
        self.success_at(slot, Instant::now())
    }

    /// [`Limiter::failure_at`] now.
    pub fn failure(&self, slot: Slot) {
        self.failure_at(slot, Instant::now())
    }
}

fn remove_slot(s: &mut State, slot: &Slot) {
    if let Some(q) = s.by_client.get_mut(&slot.client) {
        q.retain(|e| e.id != slot.id);
        if q.is_empty() {
            s.by_client.remove(&slot.client);
        }
    }
}

/// Takes one token from `account`'s bucket, going into debt by at most `max_slowdown` worth of
/// tokens: `Ok(wait)` until the token is really there, or `Err(retry_after)` if that is too long.
fn take_token(
    buckets: &mut HashMap<String, Bucket>,
    account: &str,
    cfg: &LoginConfig,
    now: Instant,
) -> Result<Duration, Duration> {
    let rate = cfg.account_rate_per_sec();
    let burst = f64::from(cfg.account_attempts_per_minute.max(1));
    if buckets.len() >= MAX_KEYS && !buckets.contains_key(account) {
        // A bucket that has refilled completely carries no information.
        buckets.retain(|_, b| {
            b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst
        });
        if buckets.len() >= MAX_KEYS {
            return Ok(Duration::ZERO);
        }
    }
    let b = buckets.entry(account.to_owned()).or_insert(Bucket {
        tokens: burst,
        at: now,
    });
    let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
    let tokens = (b.tokens + elapsed * rate).min(burst);
    let after = tokens - 1.0;
    let wait = if after >= 0.0 { 0.0 } else { -after / rate };
    let max_wait = cfg.max_slowdown().as_secs_f64();
    if wait > max_wait {
        b.tokens = tokens;
        b.at = now;
        let retry = Duration::from_secs_f64(wait - max_wait);
        return Err(retry.max(Duration::from_secs(1)));
    }
    b.tokens = after;
    b.at = now;
    Ok(Duration::from_secs_f64(wait))
}

fn refund(buckets: &mut HashMap<String, Bucket>, account: &str, cfg: &LoginConfig) {
    let burst = f64::from(cfg.account_attempts_per_minute.max(1));
    if let Some(b) = buckets.get_mut(account) {
        b.tokens = (b.tokens + 1.0).min(burst);
    }
}

#[cfg(test)]
mod tests;
