//! The store's error type.

/// Everything that can go wrong in a store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database rejected or failed a query.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// Schema migration failed at start.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// `database_url` names no supported backend.
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    /// A unique name (domain, address, alias, mailbox, record) is taken.
    #[error("{0} already exists")]
    Exists(String),
    /// The named object does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// An argument failed validation; `reason` says why in words an operator understands.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What was being validated ("address", "domain", ...).
        what: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// Delivery would take the user over their quota (RFC 5321 §4.5.3.1.10: 552/452).
    #[error("mailbox of {0} is over quota")]
    OverQuota(String),
    /// Writing or mapping a spool file failed.
    #[error("spool file: {0}")]
    Spool(#[from] std::io::Error),
    /// A backup could not be written, read or restored; the message names the file, row or
    /// table.
    #[error("backup: {0}")]
    Backup(String),
    /// Hashing a password failed (should not happen with valid parameters).
    #[error("password hashing failed")]
    PasswordHash,
    /// A write whose COMMIT failed or was never answered: it may or may not be stored, so it
    /// must not be reported as done (and is not written again, which could store it twice).
    #[error("outcome of the commit unknown: {0}")]
    CommitUnknown(String),
}

/// Result alias for store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        StoreError::Invalid {
            what,
            reason: reason.into(),
        }
    }
}

/// Maps a unique-constraint violation to [`StoreError::Exists`] naming `what`.
pub(crate) fn unique_as_exists(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match e.as_database_error() {
        Some(db) if db.is_unique_violation() => StoreError::Exists(what.into()),
        _ => StoreError::Db(e),
    }
}
