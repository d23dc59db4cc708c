//! Postern's SMTP: inbound MX (RFC 5321), authenticated submission (RFC 6409, RFC 8314), durable
//! local delivery through the store, and the outbound queue with MX lookup, retries and bounces.
//!
//! The protocol lives in the sans-I/O [`session`] state machine; [`SmtpServer`] owns sockets, TLS,
//! timeouts and limits; [`QueueWorker`] delivers queued mail.

pub mod antivirus;
mod auth;
mod backend;
mod config;
mod crlf;
mod dane;
pub mod dsn;
mod error;
pub mod junk;
mod local;
mod message;
pub mod mta_sts;
mod outbound;
mod policy;
mod queue;
mod reply;
mod resolver;
mod server;
pub mod session;
mod srs;
mod telemetry;

pub use config::SmtpConfig;
pub use crlf::BareLineEndings;
pub use error::SmtpError;
pub use queue::QueueWorker;
pub use reply::Reply;
pub use server::{SmtpAddrs, SmtpLimits, SmtpServer};
pub use session::Listener;
pub use telemetry::describe_metrics;
