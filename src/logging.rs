//! Logging to stderr with `tracing`, with a filter that SIGHUP can change without a restart.

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

use crate::events::RecentEvents;

/// Changes the log filter of the running process.
#[derive(Clone)]
pub struct LogHandle(reload::Handle<EnvFilter, Registry>);

impl LogHandle {
    /// Replaces the filter (`info`, `debug,postern_dns=trace`, ...). Invalid filters are refused.
    pub fn set_filter(&self, filter: &str) -> anyhow::Result<()> {
        let f = EnvFilter::try_new(filter)?;
        self.0.reload(f)?;
        Ok(())
    }
}

/// Installs the global subscriber with `filter` (the `RUST_LOG` variable wins when set); warnings
/// and errors are also kept in `recent`. Colours (ANSI escapes) only when stderr is a terminal, so
/// log files, journald and pipes get plain text.
pub fn init(filter: &str, recent: RecentEvents) -> LogHandle {
    let f = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (layer, handle) = reload::Layer::new(f);
    tracing_subscriber::registry()
        .with(layer)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .with(recent)
        .init();
    LogHandle(handle)
}
