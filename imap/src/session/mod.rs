//! The IMAP session state machine (RFC 3501 §3): fed parsed commands, it returns the responses to
//! send and what the connection must do next (start TLS, idle, read SASL data, close). It reaches
//! the store only through [`MailStore`], the time only through a [`Clock`], and changes other
//! sessions make only as the shell passes them in ([`Session::changes`], or the [`ChangeFeed`]
//! it lends each command); never a socket.

mod auth;
mod capabilities;
mod dispatch;
mod push;
mod selected;
#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::sync::Arc;

use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::response::{Code, Greeting, GreetingKind, Response, StatusKind};
use postern_store::{Store, StoreError, User};

use auth::Mechanism;
pub use push::ChangeFeed;
pub(crate) use selected::{flag_items, set_ranges, Selected};

use crate::commands::{FetchPlan, Notify};
use crate::config::ImapConfig;
use crate::esearch::SearchReturn;
use crate::list_extended::ListExtras;
use crate::mail_store::{Clock, MailStore};
use crate::response::{bye, code_other, tagged, text};

/// What the connection does after sending a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Read the next command.
    Continue,
    /// Discard anything buffered, then run the TLS handshake (RFC 3501 §6.2.1).
    StartTls,
    /// Read AUTHENTICATE data lines (RFC 3501 §6.2.2).
    Authenticate,
    /// Wait for `DONE`, passing on changes as they happen (RFC 2177).
    Idle,
    /// Close the connection.
    Logout,
    /// Send the responses of [`Session::fetch_batch`] until it returns `None`, then the reply of
    /// [`Session::fetch_done`]: a FETCH reply is streamed, never built whole.
    Fetch,
    /// Start DEFLATE in both directions right after this reply (COMPRESS, RFC 4978 §3).
    Compress,
}

/// Responses to send, in order, and what to do next.
#[derive(Debug)]
pub struct Reply {
    /// Untagged responses imap-codec has no type for (LIST-EXTENDED's CHILDINFO, ESEARCH),
    /// already encoded; written before `responses`.
    pub raw: Vec<u8>,
    /// The responses.
    pub responses: Vec<Response<'static>>,
    /// The connection's next step.
    pub next: Next,
}

/// Parts of a command imap-codec does not parse, read beside it (`list_extended`, `esearch`).
#[derive(Debug, Clone, Default)]
pub struct Extras {
    /// LIST-EXTENDED options and patterns.
    pub list: ListExtras,
    /// ESEARCH result options of `SEARCH RETURN (...)`.
    pub search_return: Option<SearchReturn>,
    /// The command's set was `$` (SEARCHRES, RFC 5182 §2.2): it names the saved result.
    pub saved_set: bool,
}

/// A successful command's result: untagged responses, then a tagged OK with an optional code.
pub(crate) struct Done {
    /// Untagged responses already encoded (see [`Reply::raw`]), sent before `untagged`.
    pub raw: Vec<u8>,
    pub untagged: Vec<Response<'static>>,
    pub code: Option<Code<'static>>,
    pub text: &'static str,
    pub next: Next,
}

impl Done {
    pub fn ok(text: &'static str) -> Done {
        Done {
            raw: Vec::new(),
            untagged: Vec::new(),
            code: None,
            text,
            next: Next::Continue,
        }
    }

    pub fn with(mut self, untagged: Vec<Response<'static>>) -> Done {
        self.untagged = untagged;
        self
    }

    /// Adds untagged responses already encoded (see [`Reply::raw`]).
    pub fn raw(mut self, raw: Vec<u8>) -> Done {
        self.raw = raw;
        self
    }

    pub fn code(mut self, code: Code<'static>) -> Done {
        self.code = Some(code);
        self
    }
}

/// Why a command did not succeed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Tagged NO (operational failure).
    No(Option<Code<'static>>, String),
    /// Tagged BAD (protocol error).
    Bad(String),
    /// The store failed.
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::OverQuota(_) => Failure::No(Some(Code::OverQuota), "Quota exceeded".into()),
            StoreError::Exists(_) => Failure::No(
                Some(code_other("ALREADYEXISTS")),
                "Mailbox already exists".into(),
            ),
            StoreError::NotFound(_) => {
                Failure::No(Some(code_other("NONEXISTENT")), "No such mailbox".into())
            }
            StoreError::Invalid { .. } => {
                Failure::No(Some(code_other("CANNOT")), "Not possible".into())
            }
            other => Failure::Store(other),
        }
    }
}

pub(crate) type Outcome = Result<Done, Failure>;

pub(crate) fn no(msg: &str) -> Failure {
    Failure::No(None, msg.to_owned())
}

pub(crate) fn bad(msg: &str) -> Failure {
    Failure::Bad(msg.to_owned())
}

/// One client connection's protocol state.
pub struct Session<S: MailStore = Store> {
    pub(crate) store: S,
    /// Where the session reads the time.
    pub(crate) clock: Clock,
    pub(crate) config: Arc<ImapConfig>,
    peer: IpAddr,
    tls: bool,
    pub(crate) user: Option<User>,
    pub(crate) selected: Option<Selected>,
    /// UTF8=ACCEPT enabled (RFC 6855): names and strings in UTF-8.
    pub(crate) utf8: bool,
    /// CONDSTORE enabled (RFC 7162 §3.1): MODSEQ in untagged FETCH responses.
    pub(crate) condstore: bool,
    /// QRESYNC enabled (RFC 7162 §3.2): VANISHED instead of EXPUNGE.
    pub(crate) qresync: bool,
    /// COMPRESS DEFLATE is active (RFC 4978).
    pub(crate) compressed: bool,
    /// Untagged responses a command produced before its own (sent first).
    pub(crate) notices: Vec<Response<'static>>,
    pub(crate) pending: Option<Tag<'static>>,
    /// The SASL exchange of a pending AUTHENTICATE (RFC 3501 §6.2.2).
    sasl: Option<Mechanism>,
    /// The FETCH being streamed (its tag is `pending`).
    pub(crate) fetching: Option<FetchPlan>,
    /// UIDs of the view the current command started from, while searches are live or QRESYNC
    /// is on (`commands::context` turns EXPUNGE into REMOVEFROM and VANISHED with it).
    pub(crate) context_view: Option<Vec<i64>>,
    /// The NOTIFY registration (RFC 5465), if any.
    pub(crate) notify: Option<Notify>,
    /// NOTIFY's FETCH of new messages being streamed (RFC 5465 §5.2).
    pub(crate) notify_fetching: Option<FetchPlan>,
}

impl<S: MailStore> Session<S> {
    /// A session for a client at `peer` over `store`; `tls` if the connection is already
    /// encrypted; `clock` tells the time.
    pub fn new(
        store: S,
        config: Arc<ImapConfig>,
        peer: IpAddr,
        tls: bool,
        clock: Clock,
    ) -> Session<S> {
        Session {
            store,
            clock,
            config,
            peer,
            tls,
            user: None,
            selected: None,
            utf8: false,
            condstore: false,
            qresync: false,
            compressed: false,
            notices: Vec::new(),
            pending: None,
            sasl: None,
            fetching: None,
            context_view: None,
            notify: None,
            notify_fetching: None,
        }
    }

    /// The greeting (RFC 3501 §7.1.1), with the capabilities so clients need not ask.
    pub fn greeting(&self) -> Greeting<'static> {
        Greeting {
            kind: GreetingKind::Ok,
            code: Some(Code::Capability(self.capabilities())),
            text: text("Postern IMAP ready"),
        }
    }

    /// The connection is now encrypted (after a STARTTLS handshake).
    pub fn tls_established(&mut self) {
        self.tls = true;
    }

    /// Turns CONDSTORE on because a command used it (RFC 7162 §3.1): the first time, with a
    /// mailbox selected, the client learns its HIGHESTMODSEQ in an untagged OK.
    pub(crate) fn enable_condstore(&mut self) {
        if self.condstore {
            return;
        }
        self.condstore = true;
        if let Some(sel) = &self.selected {
            let highest = crate::response::modseq(sel.mailbox.highestmodseq);
            self.notices.push(crate::response::untagged(
                StatusKind::Ok,
                Some(Code::HighestModSeq(highest)),
                "Highest",
            ));
        }
    }

    /// The authenticated user, if any.
    pub fn user(&self) -> Option<&User> {
        self.user.as_ref()
    }

    /// The UIDs saved for `$` (RFC 5182) as a sequence set; `None` when none are saved.
    pub fn saved_uids(&self) -> Option<String> {
        let sel = self.selected.as_ref()?;
        let uids: Vec<std::num::NonZeroU32> = sel
            .messages
            .iter()
            .filter(|m| sel.saved.contains(&m.uid))
            .filter_map(|m| std::num::NonZeroU32::new(u32::try_from(m.uid).ok()?))
            .collect();
        (!uids.is_empty()).then(|| crate::esearch::sequence_set(&uids))
    }

    /// Leaves the selected state (CLOSE, UNSELECT, a new SELECT).
    pub(crate) fn deselect(&mut self) -> Option<Selected> {
        self.selected.take()
    }

    /// The user, or BAD when not authenticated.
    pub(crate) fn require_user(&self) -> Result<&User, Failure> {
        self.user.as_ref().ok_or_else(|| bad("Not authenticated"))
    }

    /// The selected mailbox, or BAD when none is selected.
    pub(crate) fn require_selected(&mut self) -> Result<&mut Selected, Failure> {
        self.selected
            .as_mut()
            .ok_or_else(|| bad("No mailbox selected"))
    }
}

/// Responses the shell sends on its own, outside any command.
impl Session {
    /// A tagged BAD for a command that could not be parsed (RFC 3501 §7.1.3).
    pub fn syntax_error(tag: Option<&Tag<'_>>, why: &str) -> Response<'static> {
        match tag {
            Some(tag) => tagged(tag, StatusKind::Bad, None, why),
            None => crate::response::untagged(StatusKind::Bad, None, why),
        }
    }

    /// A tagged NO [TOOBIG] for a literal above the limit, refused before it is read.
    pub fn literal_too_big(tag: Option<&Tag<'_>>) -> Response<'static> {
        match tag {
            Some(tag) => tagged(
                tag,
                StatusKind::No,
                Some(code_other("TOOBIG")),
                "Literal too big",
            ),
            None => crate::response::untagged(StatusKind::Bad, None, "Literal too big"),
        }
    }

    /// A tagged NO [LIMIT] (RFC 5530 §3) for an APPEND with a further message after one large
    /// enough to be streamed to disk: MULTIAPPEND (RFC 3502) sets are held in memory, so such a
    /// message must be appended alone.
    pub fn streamed_not_alone(tag: Option<&Tag<'_>>) -> Response<'static> {
        Session::search_limit(tag, "A message this large must be appended alone")
    }

    /// A tagged NO [LIMIT] (RFC 5530 §3) for a command too large to run, refused while decoding.
    pub fn search_limit(tag: Option<&Tag<'_>>, why: &str) -> Response<'static> {
        match tag {
            Some(tag) => tagged(tag, StatusKind::No, Some(code_other("LIMIT")), why),
            None => crate::response::untagged(StatusKind::Bad, None, why),
        }
    }

    /// The BYE sent when the server shuts down or the client idles too long.
    pub fn bye(reason: &str) -> Response<'static> {
        bye(reason)
    }
}
