//! Shared state of every request, and the interfaces through which the binary supplies DNS and
//! metrics.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use postern_store::Store;

use crate::config::AdminConfig;

/// A DNS view as the admin UI shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DnsView {
    /// The view's name.
    pub name: String,
    /// Origins of the zones it serves, without trailing dot.
    pub zones: Vec<String>,
}

/// A record a DNS view serves, in zone-file syntax.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServedRecord {
    /// Owner name, absolute with a trailing dot.
    pub name: String,
    /// TTL in seconds.
    pub ttl: u32,
    /// Type mnemonic.
    pub rtype: String,
    /// RDATA in presentation format.
    pub data: String,
    /// True when the RRset comes from a zone file (a file wins over the store per RRset).
    pub from_file: bool,
}

/// What the admin UI needs from the DNS service.
pub trait DnsAdmin: Send + Sync {
    /// The configured views, in match order.
    fn views(&self) -> Vec<DnsView>;
    /// Every record `view` serves now: zone files, admin records, and the records published
    /// for hosted mail domains, after precedence.
    fn served(&self, view: &str) -> Vec<ServedRecord>;
    /// Checks a record for a view before it is stored: the owner must lie in one of the view's
    /// zones, the data must parse as RDATA of the type, and the record must be served as given
    /// next to the zone file and the view's stored records. The error is shown to the admin.
    fn validate<'a>(
        &'a self,
        view: &'a str,
        name: &'a str,
        rtype: &'a str,
        ttl: u32,
        data: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;
}

/// A boxed future, for the async methods of the traits the binary implements.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Records per DNS view (`None`: not tied to a view), each a zone-file line.
pub type RecordsByView = Vec<(Option<String>, Vec<String>)>;

/// The records a hosted mail domain needs in DNS (MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT, SRV,
/// autoconfig), as `postern dns records` prints them: to publish elsewhere when another server
/// holds the zone.
pub trait MailRecords: Send + Sync {
    /// Per view named in `[mail.views]` (or one entry without a view), `domain`'s records as
    /// zone-file lines.
    fn for_domain<'a>(
        &'a self,
        domain: &'a str,
    ) -> BoxFuture<'a, Result<RecordsByView, postern_store::StoreError>>;
}

/// The running services and recent warnings, for the dashboard.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Status {
    /// Bound addresses per service name.
    pub listeners: std::collections::BTreeMap<String, Vec<std::net::SocketAddr>>,
    /// The latest warnings and errors logged, newest last.
    pub recent_events: Vec<String>,
}

/// What the binary hands to the admin server.
#[derive(Clone)]
pub struct Services {
    /// The store.
    pub store: Store,
    /// DNS views and record validation; `None` when the DNS service is off.
    pub dns: Option<Arc<dyn DnsAdmin>>,
    /// Renders every counter in Prometheus text format.
    pub metrics: Arc<dyn Fn() -> String + Send + Sync>,
    /// Service status for the dashboard.
    pub status: Arc<dyn Fn() -> Status + Send + Sync>,
    /// What mail clients are told (autoconfig, autodiscover, MTA-STS), read on every request
    /// from the snapshot the DNS publishes from too, so both change together on reload; `None`
    /// publishes nothing.
    pub client: Option<Arc<dyn Fn() -> Arc<crate::autoconfig::ClientSettings> + Send + Sync>>,
    /// The DNS records each hosted domain needs, for the domain page.
    pub mail_records: Arc<dyn MailRecords>,
}

/// Per-process state shared by all requests.
pub(crate) struct AppState {
    pub services: Services,
    pub config: AdminConfig,
    /// Whether the listener speaks HTTPS (cookies then get `Secure`).
    pub https: bool,
    pub started: Instant,
}

pub(crate) type Shared = Arc<AppState>;
