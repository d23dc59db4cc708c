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

/// What the admin UI needs from the DNS service.
pub trait DnsAdmin: Send + Sync {
    /// The configured views, in match order.
    fn views(&self) -> Vec<DnsView>;
    /// Checks a record for a view before it is stored: the owner must lie in one of the view's
    /// zones and the data must parse as RDATA of the type. The error is shown to the admin.
    fn validate(
        &self,
        view: &str,
        name: &str,
        rtype: &str,
        ttl: u32,
        data: &str,
    ) -> Result<(), String>;
}

/// One counter's or gauge's current value, read from the metrics recorder.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric's name, e.g. `postern_smtp_outbound_total`.
    pub name: String,
    /// Its labels, in the order they were given.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

impl Sample {
    /// The value of label `key`, if the sample has it.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// What the admin UI needs from the metrics recorder.
pub trait MetricsSource: Send + Sync {
    /// Every metric in the Prometheus text format, for `/metrics`; gauges read from the store
    /// (the queue) are refreshed first.
    fn render(&self) -> Pin<Box<dyn Future<Output = String> + Send + '_>>;
    /// The current value of every counter and gauge, for the dashboard and the status API.
    fn samples(&self) -> Vec<Sample>;
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
    /// The metrics recorder: `/metrics` and the dashboard's counters.
    pub metrics: Arc<dyn MetricsSource>,
    /// Service status for the dashboard.
    pub status: Arc<dyn Fn() -> Status + Send + Sync>,
    /// What mail clients are told (autoconfig, autodiscover, MTA-STS); `None` publishes nothing.
    pub client: Option<crate::autoconfig::ClientSettings>,
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
