//! The `[net]` table of `postern.toml`: limits and timeouts shared by every TCP listener.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use crate::limits::{AtCapacity, Limits};
use crate::proxy::ProxyTrust;

/// Connection limits, timeouts and PROXY protocol sources; every key is optional.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetConfig {
    /// Most simultaneous connections from one client address (an IPv6 /64 counts as one address)
    /// to one listener; further connections from it are refused while others are served
    /// (Postfix `smtpd_client_connection_count_limit` is 50, mox allows 30).
    pub max_connections_per_client: usize,
    /// Seconds a TLS handshake (implicit TLS or STARTTLS) may take.
    pub tls_handshake_timeout_secs: u64,
    /// Seconds a client that has not logged in may stay silent before it is disconnected
    /// (IMAP before LOGIN, submission before AUTH); logged-in clients get the service's own,
    /// longer timeout (RFC 9051 §5.4: at least 30 minutes).
    pub preauth_idle_timeout_secs: u64,
    /// Per service (`smtp`, `submission`, `submissions`, `imap`, `imaps`, `managesieve`, `admin`,
    /// `dns`): the
    /// networks of load balancers allowed to speak the PROXY protocol (v1 or v2) on that
    /// service's listeners. A listener named here requires the header and refuses connections
    /// from any other source.
    pub proxy_protocol: BTreeMap<String, Vec<IpNet>>,
    /// Connections a listener may hold given the process's descriptor limit, set at start by
    /// [`crate::descriptor_share`]; caps larger than this are lowered to it.
    #[serde(skip)]
    pub descriptor_share: Option<usize>,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            max_connections_per_client: 30,
            tls_handshake_timeout_secs: 10,
            preauth_idle_timeout_secs: 60,
            proxy_protocol: BTreeMap::new(),
            descriptor_share: None,
        }
    }
}

impl NetConfig {
    /// [`NetConfig::tls_handshake_timeout_secs`] as a duration (at least one second).
    pub fn tls_handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.tls_handshake_timeout_secs.max(1))
    }

    /// [`NetConfig::preauth_idle_timeout_secs`] as a duration (at least one second).
    pub fn preauth_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.preauth_idle_timeout_secs.max(1))
    }

    /// The limits of one listener of `service`: at most `max` connections (lowered to the
    /// descriptor share), at most [`NetConfig::max_connections_per_client`] from one client.
    pub fn limits(&self, service: &'static str, max: usize, policy: AtCapacity) -> Arc<Limits> {
        let max = self.descriptor_share.map_or(max, |share| max.min(share));
        Limits::new(
            service,
            max.max(1),
            self.max_connections_per_client.max(1),
            policy,
        )
    }

    /// The trusted PROXY protocol sources of `service`, if it uses the protocol.
    pub fn proxy(&self, service: &str) -> Option<Arc<ProxyTrust>> {
        self.proxy_protocol
            .get(service)
            .map(|nets| Arc::new(ProxyTrust::new(nets.clone())))
    }

    /// Service names [`NetConfig::proxy_protocol`] may use.
    pub const SERVICES: [&'static str; 8] = [
        "smtp",
        "submission",
        "submissions",
        "imap",
        "imaps",
        "managesieve",
        "admin",
        "dns",
    ];
}
