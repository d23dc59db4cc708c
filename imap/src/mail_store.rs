//! What the IMAP session needs of the mail store, and nothing more: [`MailStore`], implemented
//! for [`Store`] by delegation and by an in-memory fake in the session's unit tests, which then
//! need neither a database nor a password hash. The session also reads the time only through a
//! [`Clock`] its shell hands it.

use std::collections::{BTreeSet, HashSet};
use std::future::Future;
use std::ops::Range;

use postern_store::{
    FlagOp, Flags, JunkClass, LoginAttempt, LoginOutcome, Mailbox, MessageDetails, MessageMeta,
    NewMessage, Result, Spool, Store, TextKey, User,
};

/// The current time in Unix seconds (APPEND's default INTERNALDATE, RFC 3501 §6.3.11; URLAUTH
/// expiry, RFC 4467 §3): [`postern_store::unix_now`] in the server, a fixed time in tests.
pub type Clock = fn() -> i64;

/// The store operations an IMAP session performs, each one domain operation of [`Store`] (see
/// the method of the same name there for its rules). Futures are `Send`, so a session can run on
/// any worker.
pub trait MailStore: Clone + Send + Sync + 'static {
    /// Checks a login with the store's one login service (limiter, password hash, metrics).
    fn login(&self, attempt: LoginAttempt<'_>) -> impl Future<Output = LoginOutcome<User>> + Send;
    /// A user by address.
    fn user(&self, address: &str) -> impl Future<Output = Result<Option<User>>> + Send;
    /// A user's mailbox by name.
    fn mailbox(
        &self,
        user_id: i64,
        name: &str,
    ) -> impl Future<Output = Result<Option<Mailbox>>> + Send;
    /// A user's mailbox by id.
    fn mailbox_by_id(
        &self,
        user_id: i64,
        id: i64,
    ) -> impl Future<Output = Result<Option<Mailbox>>> + Send;
    /// A user's mailboxes, by name.
    fn list_mailboxes(&self, user_id: i64) -> impl Future<Output = Result<Vec<Mailbox>>> + Send;
    /// Creates a mailbox and its missing superiors.
    fn create_mailbox_path(
        &self,
        user_id: i64,
        name: &str,
    ) -> impl Future<Output = Result<Mailbox>> + Send;
    /// Deletes a mailbox.
    fn delete_mailbox(&self, mailbox: &Mailbox) -> impl Future<Output = Result<()>> + Send;
    /// Renames a mailbox and its inferiors.
    fn rename_mailbox(
        &self,
        user_id: i64,
        from: &str,
        to: &str,
    ) -> impl Future<Output = Result<Mailbox>> + Send;
    /// A user's subscribed names.
    fn subscriptions(&self, user_id: i64) -> impl Future<Output = Result<BTreeSet<String>>> + Send;
    /// Subscribes or unsubscribes a name; whether it was subscribed before.
    fn set_subscription(
        &self,
        user_id: i64,
        name: &str,
        on: bool,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// A mailbox's messages in UID order.
    fn list_messages(
        &self,
        mailbox: &Mailbox,
    ) -> impl Future<Output = Result<Vec<MessageMeta>>> + Send;
    /// Claims the messages no session has seen as `\Recent`; their UIDs.
    fn claim_recent(&self, mailbox: &Mailbox) -> impl Future<Output = Result<Range<i64>>> + Send;
    /// The first UID not yet claimed as `\Recent`.
    fn first_recent_uid(&self, mailbox: &Mailbox) -> impl Future<Output = Result<i64>> + Send;
    /// How many messages are `\Recent` (unclaimed).
    fn recent_count(&self, mailbox: &Mailbox) -> impl Future<Output = Result<i64>> + Send;
    /// Changes flags; the messages whose flags changed.
    fn set_flags(
        &self,
        mailbox: &Mailbox,
        uids: &[i64],
        op: FlagOp,
        flags: &Flags,
    ) -> impl Future<Output = Result<Vec<MessageMeta>>> + Send;
    /// Removes `\Deleted` messages (only `uids` if given); the UIDs removed.
    fn expunge(
        &self,
        mailbox: &Mailbox,
        uids: Option<&[i64]>,
    ) -> impl Future<Output = Result<Vec<i64>>> + Send;
    /// Copies messages; (source UID, new UID) pairs.
    fn copy_messages(
        &self,
        from: &Mailbox,
        uids: &[i64],
        to: &Mailbox,
    ) -> impl Future<Output = Result<Vec<(i64, i64)>>> + Send;
    /// Moves messages; (source UID, new UID) pairs.
    fn move_messages(
        &self,
        from: &Mailbox,
        uids: &[i64],
        to: &Mailbox,
    ) -> impl Future<Output = Result<Vec<(i64, i64)>>> + Send;
    /// Appends one message; its UID.
    fn append(
        &self,
        mailbox: &Mailbox,
        raw: &[u8],
        flags: &Flags,
        internal_date: i64,
    ) -> impl Future<Output = Result<i64>> + Send;
    /// Appends one message from a spool file; its UID.
    fn append_spooled(
        &self,
        mailbox: &Mailbox,
        spool: Spool,
        flags: &Flags,
        internal_date: i64,
    ) -> impl Future<Output = Result<i64>> + Send;
    /// Appends messages all or none; their UIDs.
    fn append_all(
        &self,
        mailbox: &Mailbox,
        messages: &[NewMessage<'_>],
    ) -> impl Future<Output = Result<Vec<i64>>> + Send;
    /// Parsed metadata (and bytes if `with_raw`) of messages, in UID order.
    fn message_details(
        &self,
        mailbox: &Mailbox,
        uids: &[i64],
        with_raw: bool,
    ) -> impl Future<Output = Result<Vec<MessageDetails>>> + Send;
    /// The header blocks of messages, by UID.
    fn message_headers(
        &self,
        mailbox: &Mailbox,
        uids: &[i64],
    ) -> impl Future<Output = Result<Vec<(i64, Vec<u8>)>>> + Send;
    /// UIDs whose `key` text contains `needle` (the search index).
    fn search_text(
        &self,
        mailbox: &Mailbox,
        key: TextKey,
        needle: &str,
    ) -> impl Future<Output = Result<HashSet<i64>>> + Send;
    /// The URLAUTH token of a URL rump (RFC 4467 §3).
    fn urlauth_token(
        &self,
        mailbox: &Mailbox,
        rump: &str,
    ) -> impl Future<Output = Result<String>> + Send;
    /// Whether `token` is the URLAUTH token of `rump`.
    fn urlauth_verify(
        &self,
        mailbox: &Mailbox,
        rump: &str,
        token: &str,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Forgets URLAUTH access keys (RESETKEY, RFC 4467 §4).
    fn reset_urlauth_keys(
        &self,
        user_id: i64,
        mailbox_id: Option<i64>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Trains the owner's junk statistics; how many messages were trained.
    fn train_junk(
        &self,
        mailbox: &Mailbox,
        uids: &[i64],
        class: JunkClass,
    ) -> impl Future<Output = Result<usize>> + Send;
}

impl MailStore for Store {
    fn login(&self, attempt: LoginAttempt<'_>) -> impl Future<Output = LoginOutcome<User>> + Send {
        Store::login(self, attempt)
    }
    fn user(&self, address: &str) -> impl Future<Output = Result<Option<User>>> + Send {
        Store::user(self, address)
    }
    fn mailbox(
        &self,
        user_id: i64,
        name: &str,
    ) -> impl Future<Output = Result<Option<Mailbox>>> + Send {
        Store::mailbox(self, user_id, name)
    }
    fn mailbox_by_id(
        &self,
        user_id: i64,
        id: i64,
    ) -> impl Future<Output = Result<Option<Mailbox>>> + Send {
        Store::mailbox_by_id(self, user_id, id)
    }
    fn list_mailboxes(&self, user_id: i64) -> impl Future<Output = Result<Vec<Mailbox>>> + Send {
        Store::list_mailboxes(self, user_id)
    }
    fn create_mailbox_path(
        &self,
        user_id: i64,
        name: &str,
    ) -> impl Future<Output = Result<Mailbox>> + Send {
        Store::create_mailbox_path(self, user_id, name)
    }
    fn delete_mailbox(&self, mailbox: &Mailbox) -> impl Future<Output = Result<()>> + Send {
        Store::delete_mailbox(self, mailbox)
    }
    fn rename_mailbox(
        &self,
        user_id: i64,
        from: &str,
        to: &str,
    ) -> impl Future<Output = Result<Mailbox>> + Send {
        Store::rename_mailbox(self, user_id, from, to)
    }
    fn subscriptions(&self, user_id: i64) -> impl Future<Output = Result<BTreeSet<String>>> + Send {
        Store::subscriptions(self, user_id)
    }
    fn set_subscription(
        &self,
        user_id: i64,
        name: &str,
        on: bool,
    ) -> impl Future<Output = Result<bool>> + Send {
        Store::set_subscription(self, user_id, name, on)
    }
    fn list_messages(
        &self,
        mailbox: &Mailbox,
    ) -> impl Future<Output = Result<Vec<MessageMeta>>> + Send {
        Store::list_messages(self, mailbox)
    }
    fn claim_recent(&self, mailbox: &Mailbox) -> impl Future<Output = Result<Range<i64>>> + Send {
        Store::claim_recent(self, mailbox)
    }
    fn first_recent_uid(&self, mailbox: &Mailbox) -> impl Future<Output = Result<i64>> + Send {
        Store::first_recent_uid(self, mailbox)
    }
    fn recent_count(&self, mailbox: &Mailbox) -> impl Future<Output = Result<i64>> + Send {
        Store::recent_count(self, mailbox)
    }
    fn set_flags(
        &self,
        mailbox: &Mailbox,
        uids: &[i64],
        op: FlagOp,
        flags: &Flags,
    ) -> impl Future<Output = Result<Vec<MessageMeta>>> + Send {
        Store::set_flags(self, mailbox, uids, op, flags)
    }
    fn expunge(
        &self,
        mailbox: &Mailbox,
        uids: Option<&[i64]>,
    ) -> impl Future<Output = Result<Vec<i64>>> + Send {
        Store::expunge(self, mailbox, uids)
    }
    fn copy_messages(
        &self,
        from: &Mailbox,
        uids: &[i64],
        to: &Mailbox,
    ) -> impl Future<Output = Result<Vec<(i64, i64)>>> + Send {
        Store::copy_messages(self, from, uids, to)
    }
    fn move_messages(
        &self,
        from: &Mailbox,
        uids: &[i64],
        to: &Mailbox,
    ) -> impl Future<Output = Result<Vec<(i64, i64)>>> + Send {
        Store::move_messages(self, from, uids, to)
    }
    fn append(
        &self,
        mailbox: &Mailbox,
        raw: &[u8],
        flags: &Flags,
        internal_date: i64,
    ) -> impl Future<Output = Result<i64>> + Send {
        Store::append(self, mailbox, raw, flags, internal_date)
    }
    fn append_spooled(
        &self,
        mailbox: &Mailbox,
        spool: Spool,
        flags: &Flags,
        internal_date: i64,
    ) -> impl Future<Output = Result<i64>> + Send {
        Store::append_spooled(self, mailbox, spool, flags, internal_date)
    }
    fn append_all(
        &self,
        mailbox: &Mailbox,
        messages: &[NewMessage<'_>],
    ) -> impl Future<Output = Result<Vec<i64>>> + Send {
        Store::append_all(self, mailbox, messages)
    }
    fn message_details(
        &self,
        mailbox: &Mailbox,
        uids: &[i64],
        with_raw: bool,
    ) -> impl Future<Output = Result<Vec<MessageDetails>>> + Send {
        Store::message_details(self, mailbox, uids, with_raw)
    }
    fn message_headers(
        &self,
        mailbox: &Mailbox,
        uids: &[i64],
    ) -> impl Future<Output = Result<Vec<(i64, Vec<u8>)>>> + Send {
        Store::message_headers(self, mailbox, uids)
    }
    fn search_text(
        &self,
        mailbox: &Mailbox,
        key: TextKey,
        needle: &str,
    ) -> impl Future<Output = Result<HashSet<i64>>> + Send {
        Store::search_text(self, mailbox, key, needle)
    }
    fn urlauth_token(
        &self,
        mailbox: &Mailbox,
        rump: &str,
    ) -> impl Future<Output = Result<String>> + Send {
        Store::urlauth_token(self, mailbox, rump)
    }
    fn urlauth_verify(
        &self,
        mailbox: &Mailbox,
        rump: &str,
        token: &str,
    ) -> impl Future<Output = Result<bool>> + Send {
        Store::urlauth_verify(self, mailbox, rump, token)
    }
    fn reset_urlauth_keys(
        &self,
        user_id: i64,
        mailbox_id: Option<i64>,
    ) -> impl Future<Output = Result<()>> + Send {
        Store::reset_urlauth_keys(self, user_id, mailbox_id)
    }
    fn train_junk(
        &self,
        mailbox: &Mailbox,
        uids: &[i64],
        class: JunkClass,
    ) -> impl Future<Output = Result<usize>> + Send {
        Store::train_junk(self, mailbox, uids, class)
    }
}
