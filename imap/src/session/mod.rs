//! The IMAP session state machine (RFC 3501 §3): fed parsed commands, it returns the responses to
//! send and what the connection must do next (start TLS, idle, read SASL data, close). It uses the
//! store but never a socket.

mod push;
mod selected;
#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::sync::Arc;

use imap_codec::imap_types::auth::AuthenticateData;
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::core::{Tag, Vec1};
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::response::{
    Capability, Code, CommandContinuationRequest, Data, Greeting, GreetingKind, Response,
    StatusKind,
};
use imap_codec::imap_types::IntoStatic;
use postern_store::sasl::{self, LoginStep, SaslError, SaslLogin};
use postern_store::{Change, LoginAttempt, LoginOutcome, Service, Store, StoreError, User};
use tokio::sync::broadcast;

pub(crate) use selected::{flag_items, set_ranges, Selected};

use crate::commands::{AppendData, FetchPlan, Notify};
use crate::config::ImapConfig;
use crate::esearch::SearchReturn;
use crate::list_extended::ListExtras;
use crate::response::{atom, bye, code_other, data, tagged, text};

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
pub struct Session {
    pub(crate) store: Store,
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
    changes: Option<broadcast::Receiver<Change>>,
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
}

/// A SASL mechanism in progress.
enum Mechanism {
    /// PLAIN (RFC 4616): one response.
    Plain,
    /// LOGIN: user name, then password, each after a challenge.
    Login(SaslLogin),
}

impl Session {
    /// A session for a client at `peer`; `tls` if the connection is already encrypted.
    pub fn new(store: Store, config: Arc<ImapConfig>, peer: IpAddr, tls: bool) -> Session {
        Session {
            store,
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
            changes: None,
            pending: None,
            sasl: None,
            fetching: None,
            context_view: None,
            notify: None,
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
            let highest = std::num::NonZeroU64::new(sel.mailbox.highestmodseq.max(1) as u64)
                .unwrap_or(std::num::NonZeroU64::MIN);
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

    fn login_disabled(&self) -> bool {
        !self.tls && self.config.login_disabled_without_tls
    }

    /// CAPABILITY (RFC 3501 §7.2.1), depending on TLS and authentication state.
    pub(crate) fn capabilities(&self) -> Vec1<Capability<'static>> {
        let mut caps = vec!["IMAP4rev1", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE"];
        if self.user.is_none() {
            if !self.tls {
                caps.push("STARTTLS");
            }
            if self.login_disabled() {
                caps.push("LOGINDISABLED");
            } else {
                caps.extend(["AUTH=PLAIN", "AUTH=LOGIN"]);
            }
        } else {
            caps.extend([
                "NAMESPACE",
                "UNSELECT",
                "UIDPLUS",
                "BINARY",
                "MULTIAPPEND",
                "CATENATE",
                "COMPRESS=DEFLATE",
                "MOVE",
                "CHILDREN",
                "SPECIAL-USE",
                "LIST-EXTENDED",
                "LIST-STATUS",
                "CONDSTORE",
                "QRESYNC",
                "QUOTA",
                "QUOTA=RES-STORAGE",
                "STATUS=SIZE",
                "UTF8=ACCEPT",
                "ESEARCH",
                "SEARCHRES",
                "ESORT",
                "CONTEXT=SEARCH",
                "CONTEXT=SORT",
                "URLAUTH",
                "URLAUTH=BINARY",
                "NOTIFY",
                "SORT",
                "SORT=DISPLAY",
                "THREAD=ORDEREDSUBJECT",
                "THREAD=REFERENCES",
            ]);
        }
        let caps: Vec<Capability<'static>> = caps
            .into_iter()
            .map(|c| Capability::from(atom(c)))
            .collect();
        Vec1::try_from(caps).unwrap_or_else(|_| Vec1::from(Capability::Imap4Rev1))
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

    /// Handles one command.
    pub async fn command(&mut self, cmd: Command<'_>) -> Reply {
        self.command_with(cmd, Extras::default()).await
    }

    /// Handles one command; `extras` carries what imap-codec does not parse.
    pub async fn command_with(&mut self, cmd: Command<'_>, extras: Extras) -> Reply {
        self.start_command();
        let tag = cmd.tag;
        let allow_expunge = !matches!(
            &cmd.body,
            CommandBody::Fetch { uid: false, .. }
                | CommandBody::Store { uid: false, .. }
                | CommandBody::Search { uid: false, .. }
        );
        let saves = extras.search_return.as_ref().is_some_and(|r| r.save);
        if let Some(sel) = self.selected.as_mut() {
            sel.use_saved = extras.saved_set;
        }
        let outcome = self.dispatch(cmd.body, extras).await;
        if let Some(sel) = self.selected.as_mut() {
            sel.use_saved = false;
            if saves && outcome.is_err() {
                // A failed SEARCH ... RETURN (SAVE) leaves `$` empty (RFC 5182 §2.1).
                sel.saved.clear();
            }
        }
        self.finish(tag, allow_expunge, outcome).await
    }

    /// What every command does first: take note of changes other sessions made meanwhile.
    pub(crate) fn start_command(&mut self) {
        self.drain_changes();
        self.note_context_view();
    }

    /// Turns a command's outcome into its reply: untagged data, pending updates of the selected
    /// mailbox (EXPUNGE only if `allow_expunge`, RFC 3501 §7.4.1), then the tagged status.
    pub(crate) async fn finish(
        &mut self,
        tag: Tag<'_>,
        allow_expunge: bool,
        outcome: Outcome,
    ) -> Reply {
        let mut raw = Vec::new();
        let (mut responses, status, next) = match outcome {
            Ok(done) => {
                let next = done.next;
                raw = done.raw;
                let status = if matches!(next, Next::Authenticate | Next::Idle | Next::Fetch) {
                    None
                } else {
                    Some(tagged(&tag, StatusKind::Ok, done.code, done.text))
                };
                (done.untagged, status, next)
            }
            Err(Failure::No(code, msg)) => (
                Vec::new(),
                Some(tagged(&tag, StatusKind::No, code, &msg)),
                Next::Continue,
            ),
            Err(Failure::Bad(msg)) => (
                Vec::new(),
                Some(tagged(&tag, StatusKind::Bad, None, &msg)),
                Next::Continue,
            ),
            Err(Failure::Store(e)) => {
                tracing::error!(error = %e, "imap command failed in the store");
                (
                    Vec::new(),
                    Some(tagged(
                        &tag,
                        StatusKind::No,
                        Some(code_other("SERVERBUG")),
                        "Internal error",
                    )),
                    Next::Continue,
                )
            }
        };
        if next != Next::Fetch {
            // A streamed FETCH sends them with its first batch.
            responses.splice(0..0, std::mem::take(&mut self.notices));
        }
        if matches!(next, Next::Continue | Next::Idle | Next::Compress) {
            self.drain_changes();
            responses.extend(self.updates(allow_expunge).await);
            if let Some(encoded) = self.context_updates(&mut responses).await {
                raw.extend(encoded);
            }
            let notified = self.notify_updates().await;
            if !notified.is_empty() {
                // After the untagged responses, before the tagged status.
                raw.extend(crate::response::encode_all(&std::mem::take(&mut responses)));
                raw.extend(notified);
            }
        }
        match next {
            Next::Idle => responses.push(Response::CommandContinuationRequest(
                CommandContinuationRequest::basic(None, "idling")
                    .unwrap_or_else(|_| CommandContinuationRequest::base64(Vec::new())),
            )),
            Next::Authenticate => {
                responses.push(self.challenge());
            }
            _ => {}
        }
        if matches!(next, Next::Idle | Next::Authenticate | Next::Fetch) {
            self.pending = Some(tag.into_static());
        }
        responses.extend(status);
        Reply {
            raw,
            responses,
            next,
        }
    }

    /// Pending updates of the selected mailbox, if a change was noticed.
    async fn updates(&mut self, allow_expunge: bool) -> Vec<Response<'static>> {
        let condstore = self.condstore;
        let Some(sel) = self.selected.as_mut() else {
            return Vec::new();
        };
        if !sel.dirty {
            return Vec::new();
        }
        match sel.refresh(&self.store, allow_expunge, condstore).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "refreshing the selected mailbox failed");
                Vec::new()
            }
        }
    }

    /// NOOP, CHECK and IDLE look at the selected mailbox itself (RFC 3501 §6.1.2: NOOP is the
    /// client's poll), so a change another session has committed is reported even when its
    /// notification (a PostgreSQL NOTIFY from another connection or node) has not arrived yet.
    async fn poll_selected(&mut self) -> Result<(), Failure> {
        if let Some(sel) = self.selected.as_mut() {
            sel.poll(&self.store).await?;
        }
        Ok(())
    }

    /// A line of AUTHENTICATE data (RFC 3501 §6.2.2).
    pub async fn authenticate_data(&mut self, line: AuthenticateData<'_>) -> Reply {
        let Some(tag) = self.pending.take() else {
            return Reply {
                raw: Vec::new(),
                responses: vec![Self::syntax_error(None, "No authentication in progress")],
                next: Next::Continue,
            };
        };
        let outcome = match (line, self.sasl.take()) {
            (AuthenticateData::Cancel, _) => Err(bad("Authentication cancelled")),
            (AuthenticateData::Continue(data), Some(Mechanism::Login(mut login))) => {
                match login.respond(data.declassify()) {
                    Ok(LoginStep::Challenge(_)) => {
                        // Password next: the tag stays pending.
                        self.sasl = Some(Mechanism::Login(login));
                        self.pending = Some(tag);
                        return Reply {
                            raw: Vec::new(),
                            responses: vec![self.challenge()],
                            next: Next::Authenticate,
                        };
                    }
                    Ok(LoginStep::Done(c)) => self.login(&c.username, &c.password).await,
                    Err(_) => Err(bad("LOGIN response is not UTF-8")),
                }
            }
            (AuthenticateData::Continue(data), _) => self.sasl_plain(data.declassify()).await,
        };
        let response = match outcome {
            Ok(done) => tagged(&tag, StatusKind::Ok, done.code, done.text),
            Err(Failure::No(code, msg)) => tagged(&tag, StatusKind::No, code, &msg),
            Err(Failure::Bad(msg)) => tagged(&tag, StatusKind::Bad, None, &msg),
            Err(Failure::Store(e)) => {
                tracing::error!(error = %e, "authentication failed in the store");
                tagged(&tag, StatusKind::No, None, "Internal error")
            }
        };
        Reply {
            raw: Vec::new(),
            responses: vec![response],
            next: Next::Continue,
        }
    }

    /// The BYE sent when the server shuts down or the client idles too long.
    pub fn bye(reason: &str) -> Response<'static> {
        bye(reason)
    }

    /// The continuation request of a pending AUTHENTICATE: empty for PLAIN (RFC 4616 §2 lets
    /// the client speak first), the next challenge for LOGIN.
    fn challenge(&self) -> Response<'static> {
        let challenge = match &self.sasl {
            Some(Mechanism::Login(l)) => l.challenge().to_vec(),
            _ => Vec::new(),
        };
        Response::CommandContinuationRequest(CommandContinuationRequest::base64(challenge))
    }

    /// Checks a login with the store's one login service (RFC 3501 §6.2.3; limits, metrics and
    /// logs are there) and enters the authenticated state.
    pub(crate) async fn login(&mut self, username: &str, password: &str) -> Outcome {
        if self.user.is_some() {
            return Err(bad("Already authenticated"));
        }
        if self.login_disabled() {
            return Err(Failure::No(
                Some(code_other("PRIVACYREQUIRED")),
                "Use STARTTLS first".into(),
            ));
        }
        let attempt = LoginAttempt {
            service: Service::Imap,
            client: self.peer,
            username,
            password,
        };
        match self.store.login(attempt).await {
            LoginOutcome::Success(user) => {
                self.changes = Some(self.store.subscribe());
                self.user = Some(user);
                Ok(Done::ok("Logged in").code(Code::Capability(self.capabilities())))
            }
            LoginOutcome::Failed => Err(Failure::No(
                Some(code_other("AUTHENTICATIONFAILED")),
                "Invalid credentials".into(),
            )),
            // RFC 5530 §3: UNAVAILABLE, a temporary failure.
            LoginOutcome::Throttled { .. } => Err(Failure::No(
                Some(code_other("UNAVAILABLE")),
                "Too many failed logins, try again later".into(),
            )),
            LoginOutcome::Unavailable => Err(Failure::No(
                Some(code_other("UNAVAILABLE")),
                "Cannot check logins now, try again later".into(),
            )),
        }
    }

    /// SASL PLAIN (RFC 4616), decoded by the store's shared decoder.
    pub(crate) async fn sasl_plain(&mut self, data: &[u8]) -> Outcome {
        match sasl::decode_plain(data) {
            Ok(c) => self.login(&c.username, &c.password).await,
            Err(SaslError::AuthzidMismatch) => Err(Failure::No(
                Some(code_other("AUTHORIZATIONFAILED")),
                "Cannot act as another user".into(),
            )),
            Err(SaslError::NotUtf8) => Err(bad("PLAIN response is not UTF-8")),
            Err(SaslError::Malformed) => Err(bad("Malformed PLAIN response")),
        }
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

    async fn dispatch(&mut self, body: CommandBody<'_>, extras: Extras) -> Outcome {
        use CommandBody as C;
        match body {
            C::Capability => Ok(Done::ok("Capabilities listed")
                .with(vec![data(Data::Capability(self.capabilities()))])),
            C::Noop | C::Check => {
                self.poll_selected().await?;
                Ok(Done::ok("Done"))
            }
            C::Logout => {
                self.deselect();
                let mut done = Done::ok("Bye").with(vec![bye("Logging out")]);
                done.next = Next::Logout;
                Ok(done)
            }
            C::StartTLS => {
                if self.tls {
                    return Err(bad("TLS is already active"));
                }
                if self.user.is_some() {
                    return Err(bad("Already authenticated"));
                }
                let mut done = Done::ok("Begin TLS negotiation now");
                done.next = Next::StartTls;
                Ok(done)
            }
            C::Login { username, password } => {
                let user = String::from_utf8_lossy(username.as_ref()).into_owned();
                let pass = String::from_utf8_lossy(password.declassify().as_ref()).into_owned();
                self.login(&user, &pass).await
            }
            C::Authenticate {
                mechanism,
                initial_response,
            } => {
                if self.user.is_some() {
                    return Err(bad("Already authenticated"));
                }
                let plain = mechanism.as_ref().eq_ignore_ascii_case("PLAIN");
                if !plain && !mechanism.as_ref().eq_ignore_ascii_case("LOGIN") {
                    return Err(no("Unsupported mechanism"));
                }
                if self.login_disabled() {
                    return Err(Failure::No(
                        Some(code_other("PRIVACYREQUIRED")),
                        "Use STARTTLS first".into(),
                    ));
                }
                let initial = initial_response.map(|ir| ir.declassify().to_vec());
                if plain {
                    if let Some(ir) = initial {
                        return self.sasl_plain(&ir).await;
                    }
                    self.sasl = Some(Mechanism::Plain);
                } else {
                    match SaslLogin::start(initial.as_deref()) {
                        Ok((login, _)) => self.sasl = Some(Mechanism::Login(login)),
                        Err(_) => return Err(bad("LOGIN response is not UTF-8")),
                    }
                }
                let mut done = Done::ok("");
                done.next = Next::Authenticate;
                Ok(done)
            }
            C::Id { .. } => Ok(Done::ok("ID completed").with(vec![data(Data::Id {
                parameters: Some(vec![(
                    crate::response::istring("name"),
                    crate::response::nstring(Some("Postern")),
                )]),
            })])),
            C::Enable { capabilities } => self.enable(capabilities),
            C::Idle => {
                self.require_user()?;
                self.poll_selected().await?;
                let mut done = Done::ok("");
                done.next = Next::Idle;
                Ok(done)
            }
            C::Namespace => self.namespace(),
            C::List {
                reference,
                mailbox_wildcard,
            } => {
                self.list(&reference, &mailbox_wildcard, extras.list, false)
                    .await
            }
            C::Lsub {
                reference,
                mailbox_wildcard,
            } => {
                self.list(&reference, &mailbox_wildcard, extras.list, true)
                    .await
            }
            C::Create { mailbox } => self.create(&mailbox).await,
            C::Delete { mailbox } => self.delete(&mailbox).await,
            C::Rename { from, to } => self.rename(&from, &to).await,
            C::Subscribe { mailbox } => self.subscribe(&mailbox, true).await,
            C::Unsubscribe { mailbox } => self.subscribe(&mailbox, false).await,
            C::Status {
                mailbox,
                item_names,
            } => self.status(&mailbox, &item_names).await,
            C::Select {
                mailbox,
                parameters,
            } => self.select(&mailbox, false, &parameters).await,
            C::Examine {
                mailbox,
                parameters,
            } => self.select(&mailbox, true, &parameters).await,
            C::Unselect => {
                self.require_selected()?;
                self.deselect();
                Ok(Done::ok("Unselected"))
            }
            C::Close => self.close().await,
            C::Expunge => self.expunge(None).await,
            C::ExpungeUid { sequence_set } => self.expunge(Some(&sequence_set)).await,
            C::Append {
                mailbox,
                flags,
                date,
                message,
            } => {
                let raw = match &message {
                    LiteralOrLiteral8::Literal(l) => l.data(),
                    LiteralOrLiteral8::Literal8(l) => l.data.as_ref(),
                };
                self.append(&mailbox, &flags, date.as_ref(), AppendData::Literal(raw))
                    .await
            }
            C::Search {
                charset,
                criteria,
                uid,
            } => {
                self.search(
                    charset.as_ref(),
                    criteria.as_ref(),
                    uid,
                    extras.search_return,
                )
                .await
            }
            C::Sort {
                sort_criteria,
                charset,
                search_criteria,
                uid,
            } => {
                self.sort(
                    sort_criteria.as_ref(),
                    &charset,
                    search_criteria.as_ref(),
                    uid,
                    extras.search_return,
                )
                .await
            }
            C::Thread {
                algorithm,
                charset,
                search_criteria,
                uid,
            } => {
                self.thread(&algorithm, &charset, search_criteria.as_ref(), uid)
                    .await
            }
            C::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                modifiers,
            } => {
                self.fetch(&sequence_set, macro_or_item_names, uid, &modifiers)
                    .await
            }
            C::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                modifiers,
            } => {
                self.store_flags(&sequence_set, kind, response, &flags, uid, &modifiers)
                    .await
            }
            C::Copy {
                sequence_set,
                mailbox,
                uid,
            } => self.copy(&sequence_set, &mailbox, uid, false).await,
            C::Move {
                sequence_set,
                mailbox,
                uid,
            } => self.copy(&sequence_set, &mailbox, uid, true).await,
            C::Compress { .. } => self.compress(),
            C::GetQuota { root } => self.get_quota(&root).await,
            C::GetQuotaRoot { mailbox } => self.get_quota_root(&mailbox).await,
            C::SetQuota { .. } => Err(no("Quotas are set by the administrator")),
            other => Err(bad(&format!("{} is not supported", other.name()))),
        }
    }
}
