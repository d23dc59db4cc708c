//! Postern's admin web UI (server-rendered HTML, assets embedded in the binary) and JSON API under
//! `/api/v1` (documented by `openapi.yaml`), plus `/metrics` in Prometheus text format and a
//! self-service page where mail users change their password.
//!
//! Pages and API call the same store operations; the binary supplies what lives elsewhere (the DNS
//! views and record validation, the metrics text) through [`Services`].

mod api;
mod auth;
mod autoconfig;
mod config;
mod error;
mod pages;
mod server;
mod state;

pub use autoconfig::ClientSettings;
pub use config::AdminConfig;
pub use error::AdminError;
pub use server::AdminServer;
pub use state::{DnsAdmin, DnsView, Services, Status};
