//! Postern's one data layer: every protocol reads and writes through [`Store`], whose methods are domain
//! operations (deliver, append, resolve a recipient, enqueue, ...) on SQLite or PostgreSQL.
//!
//! All queries are written once in the SQL subset both databases share and run through sqlx's `Any`
//! driver; each backend has its own migrations folder. Writes that acknowledge mail commit before the
//! method returns, so a protocol that answers OK after `await` has made the data durable.

mod account_settings;
mod address;
mod admin;
mod aliases;
pub mod backup;
mod blobs;
mod changes;
mod counts;
mod db;
mod deferred_text;
mod delivery;
mod dns;
mod dns_serials;
mod dns_signed;
mod dnssec;
mod domains;
mod envelope_address;
mod error;
mod group_commit;
mod header_blocks;
mod imported;
pub mod junk;
mod listing;
pub mod login;
mod mail_auth;
mod mailboxes;
mod messages;
mod parsed;
pub mod password;
mod queue;
pub mod sasl;
mod search_index;
mod send_as;
mod sieve;
mod spool;
mod subscriptions;
#[cfg(feature = "testing")]
pub mod testing;
mod tokens;
mod urlauth;
mod users;

pub use account_settings::{
    AccountSettings, DeliveryFilters, MAX_FORWARD_DESTINATIONS, MAX_REPLY_BODY_BYTES,
    MAX_REPLY_SUBJECT_CHARS,
};
pub use address::{normalize_address, normalize_domain, Address};
pub use admin::{Admin, AdminSession, SessionKind, UserSession};
pub use aliases::{Alias, Resolution, UserSpace, ROLE_LOCAL_PARTS};
pub use blobs::{BlobSource, StoredBytes, BLOB_CHUNK_SIZE};
pub use changes::{Change, MailboxEvent};
pub use counts::{Counts, QueueCounts};
pub use db::{Backend, Store};
pub use delivery::{Accepted, DeliveryOutcome, Incoming, LocalCopy, NewMessage};
pub use dns::{DnsJournal, DnsRecord, DnsRrset, MANAGED_TYPES};
pub use dns_serials::{ZoneSerial, ZoneSerialRow};
pub use dns_signed::{
    DnsSignatureRow, DnsSignedChange, DnsSignedEntry, DnsSignedZone, JournalLimits,
};
pub use dnssec::{DnssecKey, DnssecKeyState, DnssecRole};
pub use domains::Domain;
pub use error::{Result, StoreError};
pub use imported::{FlagSync, ImportBytes, ImportItem, ImportOutcome};
pub use junk::{JunkClass, JunkTraining, Tokens};
pub use listing::Page;
pub use login::{LoginAttempt, LoginConfig, LoginOutcome, Service};
pub use mail_auth::{DkimAlgorithm, DkimKey, DkimState, Greylist};
pub use mailboxes::{Mailbox, DEFAULT_MAILBOXES, MAX_MAILBOX_DEPTH, MAX_MAILBOX_NAME_BYTES};
pub use messages::{FlagOp, Flags, MessageDetails, MessageMeta};
pub use parsed::{BodyPart, Content, Envelope, EnvelopeAddress, ParsedMessage, SearchFields};
pub use queue::{DsnRequest, QueueEntry};
pub use search_index::{fold, TextKey};
pub use sieve::{
    check_sieve_name, SieveScript, MAX_SIEVE_NAME_BYTES, MAX_SIEVE_SCRIPTS, MAX_SIEVE_SCRIPT_BYTES,
    MAX_VACATION_PERIOD_SECS,
};
pub use spool::{release_pages, Spool, SpoolFile};
pub use tokens::{parse_lifetime, token_id, ApiToken, TokenScope, TOUCH_INTERVAL};
pub use users::{parse_quota, User};

/// Current time as Unix seconds, the unit of every timestamp column.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
