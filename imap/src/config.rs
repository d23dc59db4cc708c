//! The `[imap]` table of `postern.toml`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// IMAP settings; every key has a default, so the table may be absent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImapConfig {
    /// Largest message APPEND accepts, and largest literal of any command, in bytes. Larger
    /// literals are refused before they are read (RFC 7888 §4, RFC 9051 `TOOBIG`).
    pub max_message_size: u32,
    /// Bytes of large literals all connections together may hold in memory at once; a connection
    /// announcing more waits (its socket is not read, so the client is held back by TCP) until
    /// others finish. At least `max_message_size`. APPEND messages above 256 KiB do not count:
    /// they are streamed to a spool file and stored in chunks, never held in memory.
    pub literal_memory_budget: u64,
    /// Refuse LOGIN and AUTHENTICATE on port 143 until STARTTLS (RFC 3501 §6.2.3 LOGINDISABLED).
    pub login_disabled_without_tls: bool,
    /// How long an IDLE may last before the server ends the connection, in seconds (RFC 2177 §3:
    /// at least 30 minutes).
    pub idle_timeout_secs: u64,
    /// How long a connection may stay silent outside IDLE, in seconds (RFC 3501 §5.4: at least 30
    /// minutes for an authenticated client).
    pub inactivity_timeout_secs: u64,
    /// Most simultaneous connections; further ones are greeted with BYE.
    pub max_connections: usize,
    /// Directory for the spool files large APPEND literals are streamed into (not a key of the
    /// file: the binary sets `<data_dir>/spool`; the system's temporary directory if unset).
    #[serde(skip)]
    pub spool_dir: Option<PathBuf>,
}

impl Default for ImapConfig {
    fn default() -> Self {
        ImapConfig {
            max_message_size: 50 * 1024 * 1024,
            literal_memory_budget: 256 * 1024 * 1024,
            login_disabled_without_tls: true,
            idle_timeout_secs: 30 * 60,
            inactivity_timeout_secs: 30 * 60,
            max_connections: 1000,
            spool_dir: None,
        }
    }
}

impl ImapConfig {
    /// [`ImapConfig::idle_timeout_secs`] as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    /// [`ImapConfig::inactivity_timeout_secs`] as a duration.
    pub fn inactivity_timeout(&self) -> Duration {
        Duration::from_secs(self.inactivity_timeout_secs)
    }
}
