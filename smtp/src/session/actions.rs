//! What a session asks of its caller ([`Action`], [`Event`]) and the results the caller reports
//! back, plus the listener kinds and per-server settings.

use std::collections::BTreeSet;

use postern_store::DsnRequest;

use crate::crlf::BareLineEndings;
use crate::dsn::params;
use crate::reply::Reply;

/// Which listener a session arrived on; it decides what is offered and required.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// Inbound MX (port 25): mail for hosted domains only, no AUTH, STARTTLS offered.
    Mx,
    /// Submission (port 587, RFC 6409): AUTH required, only after STARTTLS.
    Submission,
    /// Submission over implicit TLS (port 465, RFC 8314 §3.3).
    Submissions,
}

impl Listener {
    /// The service name used in logs and `listeners.json`.
    pub fn name(self) -> &'static str {
        match self {
            Listener::Mx => "smtp",
            Listener::Submission => "submission",
            Listener::Submissions => "submissions",
        }
    }
}

/// The per-server settings a session needs.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// This server's host name (greeting, EHLO, `Received:` headers).
    pub hostname: String,
    /// SIZE limit in bytes (RFC 1870).
    pub max_message_size: usize,
    /// Most recipients per transaction.
    pub max_recipients: usize,
    /// Longest command line in bytes.
    pub max_line_length: usize,
    /// Errors tolerated before the session is closed.
    pub max_errors: u32,
    /// Failed AUTH attempts tolerated per session before it is closed.
    pub max_auth_failures: u32,
    /// AUTH only on TLS connections.
    pub require_tls_for_auth: bool,
    /// What to do with message data holding a bare CR or LF.
    pub bare_line_endings: BareLineEndings,
}

/// Something the caller must do, then report with the matching `Session` method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Check a login (rate limited): answer with [`Session::auth_result`](super::Session::auth_result).
    Authenticate {
        /// The login name (an address).
        username: String,
        /// The password.
        password: String,
    },
    /// May the logged-in user use this envelope sender? Answer with [`Session::sender_result`](super::Session::sender_result).
    CheckSender {
        /// The logged-in user.
        user_id: i64,
        /// Their address.
        user: String,
        /// The MAIL FROM address.
        address: String,
    },
    /// Where does this recipient go? Answer with [`Session::recipient_result`](super::Session::recipient_result).
    CheckRecipient {
        /// The RCPT TO address.
        address: String,
        /// The size announced with MAIL FROM SIZE=, 0 if none.
        size: usize,
        /// The MAIL FROM address (empty for the null reverse-path), for greylisting.
        sender: String,
        /// Whether the client logged in: no block list or greylisting checks then.
        authenticated: bool,
    },
    /// Store and queue the message whose data was handed out with [`Event::MessageData`]; answer
    /// with [`Session::delivery_result`](super::Session::delivery_result).
    Deliver(Box<Delivery>),
}

/// What the session needs next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Send the pending output, then read more and call [`Session::receive`](super::Session::receive).
    NeedInput,
    /// Send the pending output, then perform the action.
    Action(Action),
    /// Append these bytes to the data of the message being received (the first piece starts a
    /// new message); [`Action::Deliver`] follows once it is complete. Its line endings are
    /// canonical and this server's trace header leads it (RFC 5321 §4.4).
    MessageData(Vec<u8>),
    /// Drop the data handed out for the message being received: it will not be delivered.
    DiscardMessage,
    /// Send the pending output, start TLS on the connection, then call [`Session::tls_started`](super::Session::tls_started).
    StartTls,
    /// Send the pending output and close the connection.
    Close,
}

/// The result of [`Action::Authenticate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthResult {
    /// The password matched.
    Success {
        /// The user's id.
        user_id: i64,
        /// The user's address.
        address: String,
    },
    /// Wrong name or password.
    Failed,
    /// Refused unverified by the login limiter: too many failures from this client, or the
    /// account is being guessed at (RFC 4954 §6: 454 4.7.0).
    Throttled,
    /// The check could not be made (database down).
    Unavailable,
}

/// The result of [`Action::CheckSender`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenderResult {
    /// The address is the user's own or an alias of theirs.
    Owned,
    /// Someone else's address.
    NotOwned,
    /// The check could not be made.
    Unavailable,
}

/// The result of [`Action::CheckRecipient`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientResult {
    /// Deliver to these local users and forward to these remote addresses.
    Deliver {
        /// Local user ids.
        local: BTreeSet<i64>,
        /// Remote addresses (alias expansion).
        remote: BTreeSet<String>,
    },
    /// The domain is hosted but the address matches nothing.
    Unknown,
    /// The domain is not hosted here.
    NotHosted,
    /// The (only) local mailbox is full.
    MailboxFull,
    /// Refused by policy (block list 554, greylisting 451): the reply to send.
    Refused(Reply),
    /// The check could not be made.
    Unavailable,
}

/// The result of [`Action::Deliver`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryResult {
    /// Committed: stored locally and/or queued; the id names it in the 250 reply and logs.
    Accepted {
        /// Identifier for the reply text.
        id: String,
    },
    /// Nothing was stored because every local mailbox is over quota (RFC 5321 §4.5.3.1.10).
    MailboxFull,
    /// Refused by policy (DMARC reject: 550 5.7.1): the reply to send.
    Refused(Reply),
    /// The store failed; the client should retry.
    Unavailable,
}

/// A logged-in user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The user's id.
    pub id: i64,
    /// The user's address.
    pub address: String,
}

/// One accepted recipient and where it resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The RCPT TO address as given.
    pub address: String,
    /// Local user ids it reaches.
    pub local: BTreeSet<i64>,
    /// Remote addresses it reaches.
    pub remote: BTreeSet<String>,
    /// What the sender asked of delivery status notifications for it (RFC 3461).
    pub dsn: DsnRequest,
}

/// The envelope of a complete message ready to be stored (its data was handed out before).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// MAIL FROM (empty for the null reverse-path).
    pub sender: String,
    /// Accepted recipients.
    pub recipients: Vec<Recipient>,
    /// The logged-in user, for submissions.
    pub user: Option<Account>,
    /// The HELO/EHLO name the client gave, for SPF (RFC 7208 §2.3).
    pub helo: String,
}

impl Delivery {
    /// Every local user reached, without duplicates.
    pub fn local_users(&self) -> Vec<i64> {
        let set: BTreeSet<i64> = self
            .recipients
            .iter()
            .flat_map(|r| r.local.iter().copied())
            .collect();
        set.into_iter().collect()
    }

    /// Every remote address reached, without duplicates, with the DSN request passed on from
    /// the first recipient that reaches it ([`params::for_expansion`]).
    pub fn remote_addresses(&self) -> (Vec<String>, Vec<DsnRequest>) {
        let mut seen = std::collections::BTreeMap::new();
        for r in &self.recipients {
            let targets = r.local.len() + r.remote.len();
            for address in &r.remote {
                seen.entry(address.clone())
                    .or_insert_with(|| params::for_expansion(&r.dsn, targets));
            }
        }
        seen.into_iter().unzip()
    }
}
