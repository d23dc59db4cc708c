//! The `[managesieve]` table of `postern.toml`.

use std::time::Duration;

use serde::Deserialize;

/// ManageSieve settings; every key has a default, so the table may be absent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ManageSieveConfig {
    /// Most simultaneous connections; further ones are answered `BYE` and closed.
    pub max_connections: usize,
    /// Refuse AUTHENTICATE until STARTTLS (as IMAP's `login_disabled_without_tls` and SMTP's
    /// `require_tls_for_auth`); the SASL capability is empty until then (RFC 5804 §1.7).
    pub require_tls_for_auth: bool,
    /// How long a logged-in client may stay silent, in seconds (before login, `[net]
    /// preauth_idle_timeout_secs` applies).
    pub inactivity_timeout_secs: u64,
}

impl Default for ManageSieveConfig {
    fn default() -> Self {
        ManageSieveConfig {
            max_connections: 200,
            require_tls_for_auth: true,
            inactivity_timeout_secs: 30 * 60,
        }
    }
}

impl ManageSieveConfig {
    /// [`ManageSieveConfig::inactivity_timeout_secs`] as a duration (at least one second).
    pub fn inactivity_timeout(&self) -> Duration {
        Duration::from_secs(self.inactivity_timeout_secs.max(1))
    }
}
