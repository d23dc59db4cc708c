//! Errors of the admin server.

/// Starting the admin server failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}
