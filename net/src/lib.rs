//! Postern's one network edge, shared by every TCP service (SMTP, submission, IMAP, the admin
//! server and DNS over TCP): binding happens in the services, everything after `accept` happens
//! here — accept with back-off, a connection cap per listener and per client address, optional
//! PROXY protocol from trusted load balancers, the implicit-TLS handshake with one timeout, the
//! STARTTLS upgrade, the connection span (with the user once known) and the task tracker that
//! shutdown waits on. Protocol crates keep only their read/write loop.
//!
//! A refused client never costs the others anything: refusals happen before a task is spawned
//! (or right after the PROXY header), a plaintext listener answers them with the protocol's
//! one-line refusal, and an implicit-TLS listener closes the connection instead of writing
//! plaintext into a TLS client.

mod config;
mod fd;
mod idle;
mod limits;
mod listener;
mod proxy;
mod stream;
mod telemetry;

pub use config::NetConfig;
pub use fd::{descriptor_share, raise_fd_limit};
pub use idle::IdleTimeout;
pub use limits::{Activity, AtCapacity, Limits, Slot};
pub use listener::{Connection, Edge, ListenerSpec};
pub use proxy::ProxyTrust;
pub use stream::NetStream;
pub use telemetry::{describe_metrics, SessionGauge};
