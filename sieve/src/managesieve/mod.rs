//! ManageSieve (RFC 5804): users upload, check, activate, fetch, rename and delete their Sieve
//! scripts over port 4190.
//!
//! `frame` splits client input into commands within fixed memory limits, `session` decides
//! every answer (no socket, TLS or clock: it is fed framed commands and reads and writes scripts
//! through the store), and [`ManageSieveServer`] is the thin
//! shell on the shared network edge. Logins go through the process's one login path
//! (`Store::login`, service `managesieve`), so the shared limiter counts them with IMAP's and
//! SMTP's.

mod config;
mod frame;
mod response;
mod server;
mod session;
#[cfg(test)]
mod tests;

pub use config::ManageSieveConfig;
pub use server::{ManageSieveError, ManageSieveServer};
