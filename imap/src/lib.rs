//! Postern's IMAP server (RFC 3501 IMAP4rev1 with IDLE, UIDPLUS, MOVE, CONDSTORE, QRESYNC, QUOTA,
//! ENABLE, LIST-EXTENDED, LIST-STATUS, SPECIAL-USE, ESEARCH, ESORT, SORT, THREAD, MULTIAPPEND,
//! BINARY, SEARCHRES, CATENATE, COMPRESS=DEFLATE, CONTEXT=SEARCH, CONTEXT=SORT, NOTIFY, URLAUTH
//! and URLAUTH=BINARY).
//!
//! Protocol logic lives in [`Session`], a state machine fed parsed commands (imap-codec) that returns
//! responses and the next step for the connection; it reaches the store only through the narrow
//! [`MailStore`] trait (implemented by [`postern_store::Store`]), the time through a [`Clock`] and
//! the store's change bus through a [`ChangeFeed`] the shell lends it, and never a socket, so it
//! is unit-tested without a database. [`ImapServer`] owns listeners, TLS (implicit and
//! STARTTLS), framing with literal limits, IDLE and timeouts; `stream` diverts large APPEND literals
//! to a spool file so they are never held in memory, and `compress` runs DEFLATE after COMPRESS.

mod bodystructure;
mod commands;
mod compress;
mod config;
mod decode;
mod envelope;
mod error;
mod esearch;
mod ext_command;
mod imap_url;
mod list_extended;
mod mail_store;
pub mod mutf7;
mod response;
mod search_program;
mod searchres;
mod server;
mod session;
mod stream;
mod telemetry;

pub use config::ImapConfig;
pub use error::ImapError;
pub use mail_store::{Clock, MailStore};
pub use server::{ImapServer, ImapSettings};
pub use session::{ChangeFeed, Extras, Next, Reply, Session};
pub use telemetry::describe_metrics;
