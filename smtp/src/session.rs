//! The sans-I/O SMTP session (RFC 5321): fed bytes, it produces reply bytes and asks its caller to
//! perform actions (check a password, resolve a recipient, store a message, start TLS). It never
//! touches a socket or the store, so every protocol rule is unit-testable.
//!
//! Commands are parsed by smtp-proto; message data goes through its `DataReceiver` (which ends data
//! only at `CRLF.CRLF`, so bare LF or bare CR around a dot cannot smuggle a second message,
//! CVE-2023-51764) and `BdatReceiver` (CHUNKING, RFC 3030).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use smtp_proto::request::receiver::{BdatReceiver, DataReceiver, LineReceiver, RequestReceiver};
use smtp_proto::{EhloResponse, Request};

use postern_store::sasl::{self, LoginStep, SaslError, SaslLogin};

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
}

/// Something the caller must do, then report with the matching `Session` method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Check a login (rate limited): answer with [`Session::auth_result`].
    Authenticate {
        /// The login name (an address).
        username: String,
        /// The password.
        password: String,
    },
    /// May the logged-in user use this envelope sender? Answer with [`Session::sender_result`].
    CheckSender {
        /// The logged-in user.
        user_id: i64,
        /// Their address.
        user: String,
        /// The MAIL FROM address.
        address: String,
    },
    /// Where does this recipient go? Answer with [`Session::recipient_result`].
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
    /// Store and queue an accepted message; answer with [`Session::delivery_result`].
    Deliver(Delivery),
}

/// What the session needs next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Send the pending output, then read more and call [`Session::receive`].
    NeedInput,
    /// Send the pending output, then perform the action.
    Action(Action),
    /// Send the pending output, start TLS on the connection, then call [`Session::tls_started`].
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

/// One accepted recipient and where it resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The RCPT TO address as given.
    pub address: String,
    /// Local user ids it reaches.
    pub local: BTreeSet<i64>,
    /// Remote addresses it reaches.
    pub remote: BTreeSet<String>,
}

/// A complete message ready to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// MAIL FROM (empty for the null reverse-path).
    pub sender: String,
    /// Accepted recipients.
    pub recipients: Vec<Recipient>,
    /// The message with this server's `Received:` header prepended (RFC 5321 §4.4).
    pub message: Vec<u8>,
    /// The logged-in user, for submissions.
    pub user: Option<String>,
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

    /// Every remote address reached, without duplicates.
    pub fn remote_addresses(&self) -> Vec<String> {
        let set: BTreeSet<&String> = self
            .recipients
            .iter()
            .flat_map(|r| r.remote.iter())
            .collect();
        set.into_iter().cloned().collect()
    }
}

/// Hop count beyond which a message is taken to be looping (RFC 5321 §6.3).
const MAX_RECEIVED_HEADERS: usize = 50;

#[derive(Debug)]
struct User {
    id: i64,
    address: String,
}

struct Transaction {
    sender: String,
    size: usize,
    smtputf8: bool,
    recipients: Vec<Recipient>,
    /// Header bytes prepended at the start of data; counted apart from the size limit.
    header_len: usize,
    message: Vec<u8>,
    too_big: bool,
    /// BDAT was used: DATA is no longer allowed, nor RCPT.
    chunking: bool,
    /// A BDAT chunk failed: the rest of the chunks are read and discarded.
    failed: bool,
}

enum State {
    Command,
    AuthPlain(LineReceiver<()>),
    AuthLogin(LineReceiver<()>, SaslLogin),
    Data(DataReceiver),
    Bdat(BdatReceiver),
    /// An action is outstanding; input is not processed until its result arrives.
    Waiting,
    Closed,
}

/// One SMTP session.
pub struct Session {
    cfg: Arc<SessionConfig>,
    listener: Listener,
    peer: SocketAddr,
    tls: bool,
    state: State,
    helo: Option<String>,
    esmtp: bool,
    user: Option<User>,
    txn: Option<Transaction>,
    receiver: RequestReceiver,
    input: Vec<u8>,
    pos: usize,
    out: Vec<u8>,
    errors: u32,
    auth_failures: u32,
    /// The rest of an over-long line is being skipped.
    skipping_line: bool,
    /// Partial command line length seen so far (for the line limit).
    line_len: usize,
    /// The answer to a BDAT whose chunk is being read and dropped.
    pending_bdat_error: Option<Reply>,
}

impl Session {
    /// A new session for a client at `peer`; `tls` is true on implicit-TLS listeners. The greeting
    /// (RFC 5321 §4.2) is already in the output.
    pub fn new(
        cfg: Arc<SessionConfig>,
        listener: Listener,
        peer: SocketAddr,
        tls: bool,
    ) -> Session {
        let mut s = Session {
            cfg,
            listener,
            peer,
            tls,
            state: State::Command,
            helo: None,
            esmtp: false,
            user: None,
            txn: None,
            receiver: RequestReceiver::default(),
            input: Vec::new(),
            pos: 0,
            out: Vec::new(),
            errors: 0,
            auth_failures: 0,
            skipping_line: false,
            line_len: 0,
            pending_bdat_error: None,
        };
        let greeting = format!("{} ESMTP Postern", s.cfg.hostname);
        s.out
            .extend_from_slice(format!("220 {greeting}\r\n").as_bytes());
        s
    }

    /// Bytes to send to the client; the caller writes them and clears the buffer with
    /// [`Session::take_output`].
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// Takes the pending output.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// The logged-in user's address, if any.
    pub fn user(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.address.as_str())
    }

    /// The kind of listener the client connected to.
    pub fn listener(&self) -> Listener {
        self.listener
    }

    /// Whether the session is over (QUIT, too many errors, shutdown).
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Feeds bytes read from the client. Call only after [`Event::NeedInput`].
    pub fn receive(&mut self, bytes: &[u8]) {
        if self.pos >= self.input.len() {
            self.input.clear();
            self.pos = 0;
        }
        self.input.extend_from_slice(bytes);
    }

    /// Ends the session with a 421 reply (RFC 5321 §3.8), e.g. on timeout or shutdown.
    pub fn shutdown(&mut self, reply: Reply) {
        reply.write(&mut self.out);
        self.state = State::Closed;
    }

    /// TLS is now active (after [`Event::StartTls`]): everything learnt before is forgotten and the
    /// client must send EHLO again (RFC 3207 §4.2).
    pub fn tls_started(&mut self) {
        self.tls = true;
        self.helo = None;
        self.esmtp = false;
        self.txn = None;
        self.user = None;
        self.receiver = RequestReceiver::default();
        self.input.clear();
        self.pos = 0;
        self.line_len = 0;
        self.skipping_line = false;
        self.state = State::Command;
    }

    /// Processes buffered input until the session needs more input or an action.
    pub fn next_event(&mut self) -> Event {
        loop {
            if matches!(self.state, State::Closed) {
                return Event::Close;
            }
            if matches!(self.state, State::Waiting) {
                // The caller must report the outstanding action's result first.
                return Event::NeedInput;
            }
            if self.pos >= self.input.len() {
                return Event::NeedInput;
            }
            if let Some(event) = self.step() {
                return event;
            }
        }
    }

    /// Handles some input in the current state; returns an event when one is due.
    fn step(&mut self) -> Option<Event> {
        match std::mem::replace(&mut self.state, State::Waiting) {
            State::Command => {
                self.state = State::Command;
                self.command()
            }
            State::Data(mut receiver) => {
                let done = self.ingest_data(|bytes, buf| receiver.ingest(bytes, buf));
                if done {
                    self.state = State::Command;
                    self.end_of_data()
                } else {
                    self.state = State::Data(receiver);
                    None
                }
            }
            State::Bdat(mut receiver) => {
                let done = self.ingest_data(|bytes, buf| receiver.ingest(bytes, buf));
                if done {
                    self.state = State::Command;
                    self.end_of_chunk(receiver.is_last)
                } else {
                    self.state = State::Bdat(receiver);
                    None
                }
            }
            State::AuthPlain(mut line) => match self.read_line(&mut line) {
                Some(text) => {
                    self.state = State::Command;
                    self.auth_plain_response(&text)
                }
                None => {
                    self.state = State::AuthPlain(line);
                    None
                }
            },
            State::AuthLogin(mut line, login) => match self.read_line(&mut line) {
                Some(text) => {
                    self.state = State::Command;
                    self.auth_login_response(login, &text)
                }
                None => {
                    self.state = State::AuthLogin(line, login);
                    None
                }
            },
            s @ (State::Waiting | State::Closed) => {
                self.state = s;
                None
            }
        }
    }

    /// Reads one SASL response line; `None` until it is complete.
    fn read_line(&mut self, line: &mut LineReceiver<()>) -> Option<String> {
        let mut bytes = self.input[self.pos..].iter();
        let complete = line.ingest(&mut bytes);
        self.pos = self.input.len() - bytes.as_slice().len();
        complete.then(|| String::from_utf8_lossy(&std::mem::take(&mut line.buf)).into_owned())
    }

    /// Feeds message data to a receiver with a bounded buffer: past the size limit the bytes are
    /// counted as too big and dropped, but reading continues to the end of the data.
    fn ingest_data(
        &mut self,
        mut ingest: impl FnMut(&mut std::slice::Iter<'_, u8>, &mut Vec<u8>) -> bool,
    ) -> bool {
        let limit = self.cfg.max_message_size;
        let mut bytes = self.input[self.pos..].iter();
        let mut scratch = Vec::new();
        let txn = self.txn.as_mut();
        let done = match txn {
            Some(t) if !t.too_big && !t.failed => {
                let done = ingest(&mut bytes, &mut t.message);
                if t.message.len().saturating_sub(t.header_len) > limit {
                    t.too_big = true;
                    // Keep the last byte: the receiver may still drop a CR it pushed.
                    let last = t.message.last().copied();
                    t.message = last.into_iter().collect();
                }
                done
            }
            Some(t) => {
                let done = ingest(&mut bytes, &mut t.message);
                let last = t.message.last().copied();
                t.message.clear();
                t.message.extend(last);
                done
            }
            None => {
                let done = ingest(&mut bytes, &mut scratch);
                scratch.clear();
                done
            }
        };
        self.pos = self.input.len() - bytes.as_slice().len();
        done
    }

    /// Parses and handles one command (or skips part of an over-long line).
    fn command(&mut self) -> Option<Event> {
        let rest = &self.input[self.pos..];
        if self.skipping_line {
            match rest.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.pos += i + 1;
                    self.skipping_line = false;
                }
                None => self.pos = self.input.len(),
            }
            return None;
        }
        // The line limit, checked before parsing so a long line is never buffered whole.
        let line_end = rest.iter().position(|&b| b == b'\n');
        let this_part = line_end.map_or(rest.len(), |i| i + 1);
        if self.line_len + this_part > self.cfg.max_line_length {
            self.receiver = RequestReceiver::default();
            self.line_len = 0;
            match line_end {
                Some(i) => self.pos += i + 1,
                None => {
                    self.pos = self.input.len();
                    self.skipping_line = true;
                }
            }
            return self.error(Reply::new(500, (5, 5, 2), "Line too long"));
        }
        let mut bytes = rest.iter();
        let before = bytes.as_slice().len();
        let parsed = self.receiver.ingest(&mut bytes).map(Request::into_owned);
        let consumed = before - bytes.as_slice().len();
        let ended_line = consumed > 0 && rest[consumed - 1] == b'\n';
        self.pos += consumed;
        match parsed {
            Err(smtp_proto::Error::NeedsMoreData { .. }) => {
                self.line_len += consumed;
                None
            }
            Ok(request) => {
                self.line_len = 0;
                self.handle(request)
            }
            Err(e) => {
                self.line_len = 0;
                // smtp-proto leaves the rest of some bad lines unread: skip to the line's end so
                // it is not taken as a new command.
                if !ended_line {
                    self.skipping_line = true;
                }
                self.parse_error(e)
            }
        }
    }

    fn parse_error(&mut self, e: smtp_proto::Error) -> Option<Event> {
        use smtp_proto::Error as E;
        let reply = match e {
            E::UnknownCommand => Reply::new(500, (5, 5, 1), "Unrecognized command"),
            E::InvalidSenderAddress => Reply::new(501, (5, 1, 7), "Bad sender address syntax"),
            E::InvalidRecipientAddress => {
                Reply::new(501, (5, 1, 3), "Bad recipient address syntax")
            }
            E::SyntaxError { syntax } => {
                Reply::new(501, (5, 5, 4), format!("Syntax error, expected {syntax}"))
            }
            E::InvalidParameter { param } => {
                Reply::new(501, (5, 5, 4), format!("Invalid {param} parameter"))
            }
            E::UnsupportedParameter { param } => {
                Reply::new(555, (5, 5, 4), format!("Unsupported parameter {param}"))
            }
            E::ResponseTooLong => Reply::new(500, (5, 5, 2), "Line too long"),
            E::NeedsMoreData { .. } | E::InvalidResponse { .. } => {
                Reply::new(500, (5, 5, 1), "Unrecognized command")
            }
        };
        self.error(reply)
    }

    /// Sends an error reply and closes the session after too many of them.
    fn error(&mut self, reply: Reply) -> Option<Event> {
        self.errors += 1;
        reply.write(&mut self.out);
        if self.errors >= self.cfg.max_errors {
            Reply::new(
                421,
                (4, 7, 0),
                format!("{} Too many errors, closing connection", self.cfg.hostname),
            )
            .write(&mut self.out);
            self.state = State::Closed;
            return Some(Event::Close);
        }
        None
    }

    fn reply(&mut self, reply: Reply) -> Option<Event> {
        reply.write(&mut self.out);
        None
    }

    fn wait(&mut self, action: Action) -> Option<Event> {
        self.state = State::Waiting;
        Some(Event::Action(action))
    }

    fn handle(&mut self, request: Request<String>) -> Option<Event> {
        match request {
            Request::Ehlo { host } => self.hello(host, true),
            Request::Helo { host } => self.hello(host, false),
            Request::Mail { from } => self.mail(from),
            Request::Rcpt { to } => self.rcpt(to),
            Request::Data => self.data(),
            Request::Bdat {
                chunk_size,
                is_last,
            } => self.bdat(chunk_size, is_last),
            Request::Auth {
                mechanism,
                initial_response,
            } => self.auth(mechanism, initial_response),
            Request::StartTls => self.starttls(),
            Request::Rset => {
                self.txn = None;
                self.reply(Reply::new(250, (2, 0, 0), "Ok"))
            }
            Request::Noop { .. } => self.reply(Reply::new(250, (2, 0, 0), "Ok")),
            Request::Quit => {
                Reply::new(221, (2, 0, 0), format!("{} Bye", self.cfg.hostname))
                    .write(&mut self.out);
                self.state = State::Closed;
                Some(Event::Close)
            }
            // RFC 5321 §3.5.3: VRFY may be disabled; 252 says "cannot verify, will accept".
            Request::Vrfy { .. } => self.reply(Reply::new(
                252,
                (2, 5, 2),
                "Cannot VRFY user, but will accept message",
            )),
            Request::Expn { .. } => self.error(Reply::new(502, (5, 5, 1), "EXPN not available")),
            Request::Help { .. } => self.reply(Reply::new(
                214,
                (2, 0, 0),
                "See RFC 5321, https://www.rfc-editor.org/rfc/rfc5321",
            )),
            Request::Lhlo { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => {
                self.error(Reply::new(502, (5, 5, 1), "Command not implemented"))
            }
        }
    }

    fn auth_offered(&self) -> bool {
        self.listener != Listener::Mx && (self.tls || !self.cfg.require_tls_for_auth)
    }

    /// EHLO/HELO (RFC 5321 §4.1.1.1): resets any transaction and lists the extensions.
    fn hello(&mut self, host: String, esmtp: bool) -> Option<Event> {
        self.txn = None;
        self.helo = Some(host);
        self.esmtp = esmtp;
        if !esmtp {
            return self.reply(Reply::new(250, (2, 0, 0), self.cfg.hostname.clone()).plain());
        }
        use smtp_proto::{
            AUTH_LOGIN, AUTH_PLAIN, EXT_8BIT_MIME, EXT_AUTH, EXT_CHUNKING, EXT_DSN,
            EXT_ENHANCED_STATUS_CODES, EXT_PIPELINING, EXT_SIZE, EXT_SMTP_UTF8, EXT_START_TLS,
        };
        let mut ehlo = EhloResponse::new(self.cfg.hostname.as_str());
        ehlo.capabilities = EXT_PIPELINING
            | EXT_SIZE
            | EXT_8BIT_MIME
            | EXT_SMTP_UTF8
            | EXT_ENHANCED_STATUS_CODES
            | EXT_CHUNKING
            | EXT_DSN;
        ehlo.size = self.cfg.max_message_size;
        if !self.tls && self.listener != Listener::Submissions {
            ehlo.capabilities |= EXT_START_TLS;
        }
        if self.auth_offered() && self.user.is_none() {
            ehlo.capabilities |= EXT_AUTH;
            ehlo.auth_mechanisms = AUTH_PLAIN | AUTH_LOGIN;
        }
        // Writing into a Vec cannot fail.
        let _ = ehlo.write(&mut self.out);
        None
    }

    fn starttls(&mut self) -> Option<Event> {
        if self.tls {
            return self.error(Reply::new(503, (5, 5, 1), "TLS already active"));
        }
        Reply::new(220, (2, 0, 0), "Ready to start TLS").write(&mut self.out);
        // Anything the client sent after STARTTLS in the clear is discarded, never executed after
        // the handshake (CVE-2011-0411).
        self.input.clear();
        self.pos = 0;
        self.receiver = RequestReceiver::default();
        self.line_len = 0;
        self.state = State::Waiting;
        Some(Event::StartTls)
    }

    /// AUTH (RFC 4954) with PLAIN (RFC 4616) and LOGIN.
    fn auth(&mut self, mechanism: u64, initial: String) -> Option<Event> {
        if self.listener == Listener::Mx {
            return self.error(Reply::new(
                502,
                (5, 5, 1),
                "AUTH not available on this port, use submission",
            ));
        }
        if !self.tls && self.cfg.require_tls_for_auth {
            return self.error(Reply::new(
                530,
                (5, 7, 0),
                "Must issue a STARTTLS command first",
            ));
        }
        if self.helo.is_none() || !self.esmtp {
            return self.error(Reply::new(503, (5, 5, 1), "Send EHLO first"));
        }
        if self.user.is_some() {
            return self.error(Reply::new(503, (5, 5, 1), "Already authenticated"));
        }
        if self.txn.is_some() {
            return self.error(Reply::new(
                503,
                (5, 5, 1),
                "AUTH not allowed during a mail transaction",
            ));
        }
        match mechanism {
            smtp_proto::AUTH_PLAIN if initial.is_empty() => {
                self.out.extend_from_slice(b"334 \r\n");
                self.state = State::AuthPlain(LineReceiver::new(()));
                None
            }
            smtp_proto::AUTH_PLAIN => self.auth_plain_response(&initial),
            smtp_proto::AUTH_LOGIN => {
                let initial = if initial.is_empty() {
                    None
                } else {
                    match self.sasl_decode(&initial) {
                        Ok(d) => Some(d),
                        Err(e) => return e,
                    }
                };
                match SaslLogin::start(initial.as_deref()) {
                    Ok((login, step)) => self.auth_login_step(login, step),
                    Err(_) => self.auth_failed(),
                }
            }
            _ => self.error(Reply::new(
                504,
                (5, 5, 4),
                "Unrecognized authentication type",
            )),
        }
    }

    /// Decodes one base64 SASL response; `Err` has already been answered.
    fn sasl_decode(&mut self, text: &str) -> Result<Vec<u8>, Option<Event>> {
        let text = text.trim();
        if text == "*" {
            return Err(self.error(Reply::new(501, (5, 0, 0), "Authentication cancelled")));
        }
        if text == "=" {
            return Ok(Vec::new());
        }
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| self.error(Reply::new(501, (5, 5, 2), "Cannot decode base64 response")))
    }

    /// A PLAIN response (RFC 4616), decoded by the store's shared SASL decoder.
    fn auth_plain_response(&mut self, text: &str) -> Option<Event> {
        let decoded = match self.sasl_decode(text) {
            Ok(d) => d,
            Err(e) => return e,
        };
        match sasl::decode_plain(&decoded) {
            Ok(c) => self.wait(Action::Authenticate {
                username: c.username,
                password: c.password,
            }),
            Err(SaslError::AuthzidMismatch) => self.auth_failed(),
            Err(_) => self.error(Reply::new(501, (5, 5, 2), "Malformed PLAIN response")),
        }
    }

    /// Sends the next LOGIN challenge (`Username:`, `Password:`; Outlook expects exactly these)
    /// or, once both answers are in, asks for the login check.
    fn auth_login_step(&mut self, login: SaslLogin, step: LoginStep) -> Option<Event> {
        match step {
            LoginStep::Challenge(challenge) => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(challenge);
                self.out
                    .extend_from_slice(format!("334 {encoded}\r\n").as_bytes());
                self.state = State::AuthLogin(LineReceiver::new(()), login);
                None
            }
            LoginStep::Done(c) => self.wait(Action::Authenticate {
                username: c.username,
                password: c.password,
            }),
        }
    }

    fn auth_login_response(&mut self, mut login: SaslLogin, text: &str) -> Option<Event> {
        let decoded = match self.sasl_decode(text) {
            Ok(d) => d,
            Err(e) => return e,
        };
        match login.respond(&decoded) {
            Ok(step) => self.auth_login_step(login, step),
            Err(_) => self.auth_failed(),
        }
    }

    fn auth_failed(&mut self) -> Option<Event> {
        self.auth_failures += 1;
        let event = self.error(Reply::new(
            535,
            (5, 7, 8),
            "Authentication credentials invalid",
        ));
        if event.is_none() && self.auth_failures >= self.cfg.max_auth_failures {
            Reply::new(
                421,
                (4, 7, 0),
                format!(
                    "{} Too many failed logins, closing connection",
                    self.cfg.hostname
                ),
            )
            .write(&mut self.out);
            self.state = State::Closed;
            return Some(Event::Close);
        }
        event
    }

    /// Reports the result of [`Action::Authenticate`].
    pub fn auth_result(&mut self, result: AuthResult) {
        self.state = State::Command;
        match result {
            AuthResult::Success { user_id, address } => {
                self.user = Some(User {
                    id: user_id,
                    address,
                });
                Reply::new(235, (2, 7, 0), "Authentication successful").write(&mut self.out);
            }
            AuthResult::Failed => {
                self.auth_failed();
            }
            AuthResult::Throttled => {
                self.error(Reply::new(
                    454,
                    (4, 7, 0),
                    "Too many failed logins, try again later",
                ));
            }
            AuthResult::Unavailable => {
                Reply::new(454, (4, 7, 0), "Temporary authentication failure").write(&mut self.out);
            }
        }
    }

    /// MAIL FROM (RFC 5321 §4.1.1.2) with SIZE, BODY, SMTPUTF8 and DSN parameters.
    fn mail(&mut self, from: smtp_proto::MailFrom<String>) -> Option<Event> {
        if self.helo.is_none() {
            return self.error(Reply::new(503, (5, 5, 1), "Send HELO or EHLO first"));
        }
        if self.txn.is_some() {
            return self.error(Reply::new(503, (5, 5, 1), "Nested MAIL command"));
        }
        if self.listener != Listener::Mx && self.user.is_none() {
            return self.error(Reply::new(530, (5, 7, 0), "Authentication required"));
        }
        if from.size > self.cfg.max_message_size {
            return self.error(Reply::new(
                552,
                (5, 3, 4),
                "Message size exceeds fixed maximum message size",
            ));
        }
        if from.flags & smtp_proto::MAIL_BODY_BINARYMIME != 0 {
            return self.error(Reply::new(504, (5, 5, 4), "BINARYMIME is not supported"));
        }
        let sender = from.address;
        if !sender.is_empty() && !plausible_address(&sender) {
            return self.error(Reply::new(501, (5, 1, 7), "Bad sender address syntax"));
        }
        self.txn = Some(Transaction {
            sender: sender.clone(),
            size: from.size,
            smtputf8: from.flags & smtp_proto::MAIL_SMTPUTF8 != 0,
            recipients: Vec::new(),
            header_len: 0,
            message: Vec::new(),
            too_big: false,
            chunking: false,
            failed: false,
        });
        match &self.user {
            Some(user) if !sender.is_empty() => {
                let action = Action::CheckSender {
                    user_id: user.id,
                    user: user.address.clone(),
                    address: sender,
                };
                self.wait(action)
            }
            _ => self.reply(Reply::new(250, (2, 1, 0), "Ok")),
        }
    }

    /// Reports the result of [`Action::CheckSender`].
    pub fn sender_result(&mut self, result: SenderResult) {
        self.state = State::Command;
        match result {
            SenderResult::Owned => Reply::new(250, (2, 1, 0), "Ok").write(&mut self.out),
            SenderResult::NotOwned => {
                self.txn = None;
                self.error(Reply::new(
                    553,
                    (5, 7, 1),
                    "Sender address not owned by the logged-in user",
                ));
            }
            SenderResult::Unavailable => {
                self.txn = None;
                Reply::new(451, (4, 3, 0), "Temporary failure, try again later")
                    .write(&mut self.out);
            }
        }
    }

    /// RCPT TO (RFC 5321 §4.1.1.3).
    fn rcpt(&mut self, to: smtp_proto::RcptTo<String>) -> Option<Event> {
        let max = self.cfg.max_recipients;
        let Some(txn) = &self.txn else {
            return self.error(Reply::new(503, (5, 5, 1), "Need MAIL command first"));
        };
        if txn.chunking {
            return self.error(Reply::new(503, (5, 5, 1), "RCPT not allowed after BDAT"));
        }
        if txn.recipients.len() >= max {
            return self.reply(Reply::new(452, (4, 5, 3), "Too many recipients"));
        }
        if !plausible_address(&to.address) {
            return self.error(Reply::new(501, (5, 1, 3), "Bad recipient address syntax"));
        }
        let size = txn.size;
        let sender = txn.sender.clone();
        self.wait(Action::CheckRecipient {
            address: to.address,
            size,
            sender,
            authenticated: self.user.is_some(),
        })
    }

    /// Reports the result of [`Action::CheckRecipient`] for the address it named.
    pub fn recipient_result(&mut self, address: String, result: RecipientResult) {
        self.state = State::Command;
        let authenticated = self.user.is_some();
        let target = match result {
            RecipientResult::Deliver { local, remote } => Some((local, remote)),
            // Only a logged-in user may send to other domains: no open relay (RFC 5321 §3.6.2).
            RecipientResult::NotHosted if authenticated => {
                Some((BTreeSet::new(), BTreeSet::from([address.clone()])))
            }
            RecipientResult::NotHosted => {
                self.error(Reply::new(554, (5, 7, 1), "Relay access denied"));
                None
            }
            RecipientResult::Unknown => {
                self.error(Reply::new(
                    550,
                    (5, 1, 1),
                    "Recipient address rejected: user unknown",
                ));
                None
            }
            RecipientResult::MailboxFull => {
                Reply::new(452, (4, 2, 2), "Mailbox full").write(&mut self.out);
                None
            }
            RecipientResult::Refused(reply) => {
                reply.write(&mut self.out);
                None
            }
            RecipientResult::Unavailable => {
                Reply::new(451, (4, 3, 0), "Temporary failure, try again later")
                    .write(&mut self.out);
                None
            }
        };
        if let (Some((local, remote)), Some(txn)) = (target, self.txn.as_mut()) {
            txn.recipients.push(Recipient {
                address,
                local,
                remote,
            });
            Reply::new(250, (2, 1, 5), "Ok").write(&mut self.out);
        }
    }

    /// Checks that a transaction may receive data; the error reply if not.
    fn data_allowed(&self, bdat: bool) -> Result<(), Reply> {
        match &self.txn {
            None => Err(Reply::new(503, (5, 5, 1), "Need MAIL command first")),
            Some(t) if t.recipients.is_empty() => {
                Err(Reply::new(554, (5, 5, 1), "No valid recipients"))
            }
            Some(t) if t.chunking && !bdat => {
                Err(Reply::new(503, (5, 5, 1), "DATA not allowed after BDAT"))
            }
            Some(t) if t.failed => Err(Reply::new(503, (5, 5, 1), "Transaction failed, send RSET")),
            Some(_) => Ok(()),
        }
    }

    /// DATA (RFC 5321 §4.1.1.4).
    fn data(&mut self) -> Option<Event> {
        if let Err(reply) = self.data_allowed(false) {
            return self.error(reply);
        }
        self.start_message();
        Reply::new(354, (0, 0, 0), "End data with <CR><LF>.<CR><LF>")
            .plain()
            .write(&mut self.out);
        self.state = State::Data(DataReceiver::new());
        None
    }

    /// BDAT (RFC 3030 §2): the chunk is read whatever happens, then answered.
    fn bdat(&mut self, size: usize, last: bool) -> Option<Event> {
        match self.data_allowed(true) {
            Ok(()) => {
                if let Some(t) = &self.txn {
                    if !t.chunking {
                        self.start_message();
                    }
                }
                if let Some(t) = self.txn.as_mut() {
                    t.chunking = true;
                }
            }
            Err(reply) => {
                // Read and drop the chunk, then answer with the error.
                if let Some(t) = self.txn.as_mut() {
                    t.failed = true;
                    t.chunking = true;
                }
                self.pending_bdat_error = Some(reply);
            }
        }
        self.state = State::Bdat(BdatReceiver::new(size, last));
        None
    }

    /// Prepends the `Received:` header (RFC 5321 §4.4, RFC 3848 protocol names).
    fn start_message(&mut self) {
        let Some(txn) = self.txn.as_mut() else { return };
        let protocol = match (txn.smtputf8, self.esmtp, self.tls, self.user.is_some()) {
            (true, _, false, false) => "UTF8SMTP",
            (true, _, false, true) => "UTF8SMTPA",
            (true, _, true, false) => "UTF8SMTPS",
            (true, _, true, true) => "UTF8SMTPSA",
            (false, false, _, _) => "SMTP",
            (false, true, false, false) => "ESMTP",
            (false, true, false, true) => "ESMTPA",
            (false, true, true, false) => "ESMTPS",
            (false, true, true, true) => "ESMTPSA",
        };
        let helo = self.helo.as_deref().unwrap_or("unknown");
        let helo: String = helo
            .chars()
            .filter(|c| c.is_ascii_graphic() && *c != '(' && *c != ')')
            .take(255)
            .collect();
        let id: u64 = rand::random();
        let for_clause = match txn.recipients.as_slice() {
            [one] => format!("\r\n\tfor <{}>", one.address),
            _ => String::new(),
        };
        let date = mail_builder::headers::date::Date::new(postern_store::unix_now()).to_rfc822();
        let header = format!(
            "Received: from {helo} ([{ip}])\r\n\tby {host} (Postern) with {protocol} id {id:016x}{for_clause};\r\n\t{date}\r\n",
            ip = self.peer.ip(),
            host = self.cfg.hostname,
        );
        txn.header_len = header.len();
        txn.message = header.into_bytes();
    }

    fn end_of_data(&mut self) -> Option<Event> {
        self.finish_message()
    }

    fn end_of_chunk(&mut self, last: bool) -> Option<Event> {
        if let Some(reply) = self.pending_bdat_error.take() {
            return self.error(reply);
        }
        let Some(txn) = self.txn.as_mut() else {
            return self.error(Reply::new(503, (5, 5, 1), "Need MAIL command first"));
        };
        if txn.too_big {
            txn.failed = true;
            if last {
                self.txn = None;
            }
            return self.error(Reply::new(552, (5, 3, 4), "Message too big"));
        }
        if !last {
            let received = txn.message.len().saturating_sub(txn.header_len);
            return self.reply(Reply::new(
                250,
                (2, 0, 0),
                format!("{received} octets received"),
            ));
        }
        self.finish_message()
    }

    /// The message is complete: check it and hand it over for storage.
    fn finish_message(&mut self) -> Option<Event> {
        let Some(txn) = self.txn.take() else {
            return self.error(Reply::new(503, (5, 5, 1), "Need MAIL command first"));
        };
        if txn.too_big {
            return self.error(Reply::new(552, (5, 3, 4), "Message too big"));
        }
        let mut message = txn.message;
        let body = &message[txn.header_len..];
        let parsed = mail_parser::MessageParser::new().parse_headers(body);
        let hops = parsed
            .as_ref()
            .map_or(0, |m| m.header_values("Received").count());
        if hops >= MAX_RECEIVED_HEADERS {
            return self.error(Reply::new(
                554,
                (5, 4, 6),
                "Too many hops, mail loop detected",
            ));
        }
        if self.user.is_some() {
            // RFC 6409 §8.2–8.3: a submission server may add a missing Date and Message-ID.
            let (has_date, has_id) = parsed.as_ref().map_or((false, false), |m| {
                (m.date().is_some(), m.message_id().is_some())
            });
            let mut extra = String::new();
            if !has_date {
                let date =
                    mail_builder::headers::date::Date::new(postern_store::unix_now()).to_rfc822();
                extra.push_str(&format!("Date: {date}\r\n"));
            }
            if !has_id {
                let id: u128 = rand::random();
                extra.push_str(&format!(
                    "Message-ID: <{id:032x}@{}>\r\n",
                    self.cfg.hostname
                ));
            }
            if !extra.is_empty() {
                let at = txn.header_len;
                message.splice(at..at, extra.into_bytes());
            }
        }
        self.wait(Action::Deliver(Delivery {
            sender: txn.sender,
            recipients: txn.recipients,
            message,
            user: self.user.as_ref().map(|u| u.address.clone()),
            helo: self.helo.clone().unwrap_or_default(),
        }))
    }

    /// Reports the result of [`Action::Deliver`]; the transaction is over either way.
    pub fn delivery_result(&mut self, result: DeliveryResult) {
        self.state = State::Command;
        self.txn = None;
        let reply = match result {
            DeliveryResult::Accepted { id } => {
                Reply::new(250, (2, 0, 0), format!("Ok: queued as {id}"))
            }
            DeliveryResult::MailboxFull => Reply::new(552, (5, 2, 2), "Mailbox full"),
            DeliveryResult::Refused(reply) => reply,
            DeliveryResult::Unavailable => {
                Reply::new(451, (4, 3, 0), "Temporary failure, try again later")
            }
        };
        reply.write(&mut self.out);
    }
}

/// A light syntax check of an envelope address: `local@domain` with both parts present.
fn plausible_address(address: &str) -> bool {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.starts_with('.')
                && !address.chars().any(|c| c.is_control() || c.is_whitespace())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests;
