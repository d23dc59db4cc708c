//! The `[login]` table of `postern.toml`: the one set of login limits for every service.

use std::time::Duration;

use serde::Deserialize;

/// Login limits shared by SMTP AUTH, IMAP and the admin web UI; every key is optional.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    /// Verifications that did not succeed, per client address (IPv6: per /64), within
    /// `window_secs`, over all services; further attempts are refused unverified.
    pub failures_per_address: u32,
    /// Seconds over which failures are counted (a failure is forgotten this long after it).
    pub window_secs: u64,
    /// Attempts per minute (and burst) on one account from addresses that have failures and never
    /// logged in to it; more are slowed down, never locked out.
    pub account_attempts_per_minute: u32,
    /// Longest wait imposed on a slowed attempt, in seconds; attempts that would wait longer are
    /// refused for now (SMTP 454 4.7.0, IMAP `NO [UNAVAILABLE]`, HTTP 429).
    pub max_slowdown_secs: u64,
    /// Seconds an (account, address) pair stays known good after a successful login.
    pub known_good_secs: u64,
}

impl Default for LoginConfig {
    fn default() -> Self {
        LoginConfig {
            failures_per_address: 10,
            window_secs: 15 * 60,
            account_attempts_per_minute: 6,
            max_slowdown_secs: 10,
            known_good_secs: 30 * 24 * 3600,
        }
    }
}

impl LoginConfig {
    /// [`LoginConfig::window_secs`] as a duration (at least one second).
    pub fn window(&self) -> Duration {
        Duration::from_secs(self.window_secs.max(1))
    }

    /// [`LoginConfig::max_slowdown_secs`] as a duration.
    pub fn max_slowdown(&self) -> Duration {
        Duration::from_secs(self.max_slowdown_secs)
    }

    /// [`LoginConfig::known_good_secs`] as a duration.
    pub fn known_good(&self) -> Duration {
        Duration::from_secs(self.known_good_secs)
    }

    /// The account bucket's refill rate in tokens per second.
    pub(crate) fn account_rate_per_sec(&self) -> f64 {
        f64::from(self.account_attempts_per_minute.max(1)) / 60.0
    }
}
