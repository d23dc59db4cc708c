//! Login rate limiting shared by SMTP AUTH, IMAP LOGIN/AUTHENTICATE and the admin UI.
//!
//! Failures are counted per client address and per account within a window. After
//! `slow_after` failures a client is made to wait before each further answer; after the limit it
//! is locked out for `lockout`. The per-account limit is looser and never locks out a client
//! address that logged in to that account successfully before, so a stranger guessing a
//! password cannot lock the real user out. Successful logins are never counted as failures.
//! State is in memory, per node, and bounded.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Limits; the defaults suit a small server.
#[derive(Debug, Clone)]
pub struct LimitConfig {
    /// Failures per client address within `window` before lockout.
    pub per_address: u32,
    /// Failures per account (from addresses not known good) within `window` before lockout.
    pub per_account: u32,
    /// Failures after which every further answer is delayed.
    pub slow_after: u32,
    /// Delay added per failure beyond `slow_after`, capped at 10 s.
    pub delay_step: Duration,
    /// Window over which failures are counted.
    pub window: Duration,
    /// How long a lockout lasts.
    pub lockout: Duration,
    /// How long a successful (account, address) pair stays known good.
    pub known_good: Duration,
}

impl Default for LimitConfig {
    fn default() -> Self {
        LimitConfig {
            per_address: 10,
            per_account: 30,
            slow_after: 3,
            delay_step: Duration::from_secs(1),
            window: Duration::from_secs(15 * 60),
            lockout: Duration::from_secs(15 * 60),
            known_good: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// What to do with a login attempt before checking the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Check the password; wait this long first (zero when there were no recent failures).
    Allow(Duration),
    /// Refuse without checking the password, for this long still.
    Locked(Duration),
}

/// Most entries kept of each kind; beyond this the oldest are dropped.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    first: Instant,
    locked_until: Option<Instant>,
}

#[derive(Debug, Default)]
struct State {
    by_address: HashMap<IpAddr, Failures>,
    by_account: HashMap<String, Failures>,
    good: HashMap<(String, IpAddr), Instant>,
}

/// The shared limiter.
#[derive(Debug, Default)]
pub struct AuthLimiter {
    config: LimitConfig,
    state: Mutex<State>,
}

impl AuthLimiter {
    /// A limiter with the given limits.
    pub fn new(config: LimitConfig) -> AuthLimiter {
        AuthLimiter {
            config,
            state: Mutex::default(),
        }
    }

    /// Whether `address` may try to log in to `account` now, and after what delay.
    pub fn check(&self, address: IpAddr, account: &str) -> Verdict {
        self.check_at(address, account, Instant::now())
    }

    /// Records a failed login.
    pub fn failure(&self, address: IpAddr, account: &str) {
        self.failure_at(address, account, Instant::now())
    }

    /// Records a successful login: the address's failures are forgotten and the pair is known good.
    pub fn success(&self, address: IpAddr, account: &str) {
        let mut s = self.lock();
        s.by_address.remove(&address);
        let now = Instant::now();
        if s.good.len() >= MAX_ENTRIES {
            let keep = self.config.known_good;
            s.good.retain(|_, t| now.duration_since(*t) < keep);
        }
        if s.good.len() < MAX_ENTRIES {
            s.good.insert((account.to_lowercase(), address), now);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check_at(&self, address: IpAddr, account: &str, now: Instant) -> Verdict {
        let s = self.lock();
        let account = account.to_lowercase();
        let known_good = s
            .good
            .get(&(account.clone(), address))
            .is_some_and(|t| now.duration_since(*t) < self.config.known_good);
        let addr = s.by_address.get(&address).copied();
        let acct = if known_good {
            None
        } else {
            s.by_account.get(&account).copied()
        };
        let mut delay = Duration::ZERO;
        for f in [addr, acct].into_iter().flatten() {
            if let Some(until) = f.locked_until.filter(|u| *u > now) {
                return Verdict::Locked(until - now);
            }
            if now.duration_since(f.first) < self.config.window && f.count > self.config.slow_after
            {
                let steps = f.count - self.config.slow_after;
                delay = delay.max((self.config.delay_step * steps).min(Duration::from_secs(10)));
            }
        }
        Verdict::Allow(delay)
    }

    fn failure_at(&self, address: IpAddr, account: &str, now: Instant) {
        let cfg = &self.config;
        let mut s = self.lock();
        let account = account.to_lowercase();
        let known_good = s
            .good
            .get(&(account.clone(), address))
            .is_some_and(|t| now.duration_since(*t) < cfg.known_good);
        bump(&mut s.by_address, address, cfg.per_address, cfg, now);
        if !known_good {
            bump(&mut s.by_account, account, cfg.per_account, cfg, now);
        }
    }
}

fn bump<K: std::hash::Hash + Eq>(
    map: &mut HashMap<K, Failures>,
    key: K,
    limit: u32,
    cfg: &LimitConfig,
    now: Instant,
) {
    if map.len() >= MAX_ENTRIES {
        map.retain(|_, f| {
            now.duration_since(f.first) < cfg.window || f.locked_until.is_some_and(|u| u > now)
        });
        if map.len() >= MAX_ENTRIES {
            return;
        }
    }
    let f = map.entry(key).or_insert(Failures {
        count: 0,
        first: now,
        locked_until: None,
    });
    let expired =
        now.duration_since(f.first) >= cfg.window && f.locked_until.is_none_or(|u| u <= now);
    if expired {
        *f = Failures {
            count: 0,
            first: now,
            locked_until: None,
        };
    }
    f.count += 1;
    if f.count >= limit {
        f.locked_until = Some(now + cfg.lockout);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn limiter() -> AuthLimiter {
        AuthLimiter::new(LimitConfig {
            per_address: 5,
            per_account: 8,
            slow_after: 2,
            ..LimitConfig::default()
        })
    }

    #[test]
    fn slows_then_locks_an_address() {
        let l = limiter();
        let t = Instant::now();
        let a = ip("192.0.2.1");
        assert_eq!(l.check_at(a, "alice", t), Verdict::Allow(Duration::ZERO));
        for _ in 0..3 {
            l.failure_at(a, "alice", t);
        }
        assert_eq!(
            l.check_at(a, "alice", t),
            Verdict::Allow(Duration::from_secs(1))
        );
        l.failure_at(a, "bob", t);
        l.failure_at(a, "carol", t);
        assert!(
            matches!(l.check_at(a, "dave", t), Verdict::Locked(_)),
            "locked for any account"
        );
        assert_eq!(
            l.check_at(ip("192.0.2.2"), "dave", t),
            Verdict::Allow(Duration::ZERO),
            "other addresses unaffected"
        );
        let later = t + Duration::from_secs(15 * 60 + 1);
        assert_eq!(
            l.check_at(a, "dave", later),
            Verdict::Allow(Duration::ZERO),
            "lockout expires"
        );
    }

    #[test]
    fn account_lockout_spares_known_good_addresses() {
        let l = limiter();
        let t = Instant::now();
        let home = ip("198.51.100.7");
        l.success(home, "alice");
        // A distributed guesser: one failure each from many addresses.
        for i in 0..8 {
            l.failure_at(ip(&format!("203.0.113.{i}")), "Alice", t);
        }
        assert!(matches!(
            l.check_at(ip("203.0.113.200"), "alice", t),
            Verdict::Locked(_)
        ));
        assert_eq!(
            l.check_at(home, "alice", t),
            Verdict::Allow(Duration::ZERO),
            "the real user still gets in"
        );
        // The real user's own typos do not count against the account.
        l.failure_at(home, "alice", t);
        assert_eq!(l.check_at(home, "alice", t), Verdict::Allow(Duration::ZERO));
    }

    #[test]
    fn success_clears_address_failures() {
        let l = limiter();
        let a = ip("2001:db8::1");
        for _ in 0..4 {
            l.failure(a, "alice");
        }
        l.success(a, "alice");
        assert_eq!(l.check(a, "bob"), Verdict::Allow(Duration::ZERO));
    }
}
