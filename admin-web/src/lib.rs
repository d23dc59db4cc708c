//! Postern's admin web UI (server-rendered HTML, assets embedded in the binary) and JSON API under
//! `/api/v1` (documented by `openapi.yaml`), plus `/metrics` in Prometheus text format and a
//! self-service page where mail users change their password.
//!
//! Pages and API call the same store operations; the binary supplies what lives elsewhere (the DNS
//! views and record validation, the metrics recorder) through [`Services`].

// Handlers and their helpers return axum's `Response` as the error value (a rejection page or JSON
// error); boxing it would only add an allocation on the error path.
#![allow(clippy::result_large_err)]

mod api;
mod api_account;
mod api_send_as;
mod api_tokens;
mod auth;
mod autoconfig;
mod config;
mod csrf;
mod error;
mod headers;
mod json;
mod pages;
mod probes;
mod server;
mod state;
mod unread_body;

pub use autoconfig::ClientSettings;
pub use config::AdminConfig;
pub use error::AdminError;
pub use server::AdminServer;
pub use state::{
    BoxFuture, DnsAdmin, DnsView, MailRecords, MetricsSource, RecordsByView, Sample, ServedRecord,
    Services, Status,
};
