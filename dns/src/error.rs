//! Errors of the DNS crate.

use std::path::PathBuf;

/// Everything that can go wrong while configuring, loading or serving DNS.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// The `[dns]` configuration is invalid (bad address, unknown ACL or key, duplicate view...).
    #[error("dns config: {0}")]
    Config(String),
    /// A zone could not be loaded; the message carries `file:line` like named-checkzone.
    #[error("zone {zone}: {message}")]
    Zone {
        /// Zone origin, e.g. `example.test.`.
        zone: String,
        /// What went wrong, with its location.
        message: String,
    },
    /// Reading a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Binding a listener failed.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The requested address.
        addr: std::net::SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Watching the zone directory for changes failed.
    #[error("watching zone files: {0}")]
    Watch(#[from] notify::Error),
    /// A DNSSEC key could not be generated, read or used.
    #[error("DNSSEC: {0}")]
    Dnssec(String),
    /// A BIND9 configuration could not be parsed at all.
    #[error("named.conf line {line}: {message}")]
    BindConf {
        /// Line of the error (1-based).
        line: usize,
        /// What went wrong.
        message: String,
    },
}

impl DnsError {
    pub(crate) fn config(message: impl Into<String>) -> Self {
        DnsError::Config(message.into())
    }
}
