//! The crate's error type.

/// Errors starting or running the SMTP services.
#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Socket I/O failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] postern_store::StoreError),
    /// The DNS resolver could not be set up.
    #[error("DNS resolver: {0}")]
    Resolver(String),
    /// Outbound TLS could not be set up (e.g. an unreadable CA file).
    #[error("outbound TLS: {0}")]
    Tls(String),
}
