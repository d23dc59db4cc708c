//! The `[admin]` configuration table.

use serde::Deserialize;

/// Settings of the admin UI and API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// How long a browser login lasts, in seconds.
    pub session_ttl: i64,
    /// Serve HTTPS with the server certificate even when it is self-signed (HTTPS is always used
    /// when `[tls]` names a certificate).
    pub https_with_self_signed: bool,
    /// Most simultaneous connections per admin listener; further ones get 503.
    pub max_connections: usize,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            session_ttl: 8 * 3600,
            https_with_self_signed: false,
            max_connections: 256,
        }
    }
}
