//! Replaced by the imap implementation.
