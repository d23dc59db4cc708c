//! Errors of the IMAP server that reach its caller.

/// Why the IMAP server could not start or a connection failed.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    /// Binding or accepting on a listener failed.
    #[error("imap listener {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// Socket I/O failed.
    #[error("imap connection: {0}")]
    Io(#[from] std::io::Error),
}
