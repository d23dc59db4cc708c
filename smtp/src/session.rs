//! The sans-I/O SMTP session (RFC 5321): fed bytes, it produces reply bytes and asks its caller to
//! perform actions (check a password, resolve a recipient, store a message, start TLS). It never
//! touches a socket or the store, so every protocol rule is unit-testable.
//!
//! Commands are parsed by smtp-proto; message data goes through its `DataReceiver` (which ends data
//! only at `CRLF.CRLF`, so bare LF or bare CR around a dot cannot smuggle a second message,
//! CVE-2023-51764) and `BdatReceiver` (CHUNKING, RFC 3030); the data is then made canonical
//! (`crate::crlf`) so that it is also relayed safely.
//!
//! The session is split by phase: this file holds the state, input handling and the command
//! dispatcher with the connection-level commands (EHLO, STARTTLS, RSET, QUIT); `auth` holds AUTH,
//! `envelope` MAIL and RCPT (with `literal` for address literals), `data` DATA and BDAT;
//! `actions` defines what the session asks of its caller.

mod actions;
mod auth;
mod body;
mod data;
mod envelope;
mod literal;

use std::net::SocketAddr;
use std::sync::Arc;

use smtp_proto::request::receiver::{BdatReceiver, DataReceiver, LineReceiver, RequestReceiver};
use smtp_proto::{EhloResponse, Request};

use postern_store::sasl::SaslLogin;
use postern_store::DsnRequest;

use crate::reply::Reply;
use body::Body;

pub use actions::*;
pub use envelope::POSTMASTER;
pub(crate) use literal::ip as literal_ip;

struct Transaction {
    sender: String,
    /// RET and ENVID of MAIL (RFC 3461 §4.3–4.4), the start of each recipient's DSN request.
    dsn: DsnRequest,
    /// The DSN request of the RCPT whose check is outstanding.
    pending_dsn: Option<DsnRequest>,
    size: usize,
    smtputf8: bool,
    recipients: Vec<Recipient>,
    /// The message data (from DATA or the first BDAT).
    body: Body,
    too_big: bool,
    /// BDAT was used: DATA is no longer allowed, nor RCPT.
    chunking: bool,
    /// A BDAT chunk failed: the rest of the chunks are read and discarded.
    failed: bool,
}

impl Transaction {
    /// Whether the message's data is still handed out: it is not already bound to be refused.
    fn spooling(&self) -> bool {
        !self.too_big && !self.failed && self.body.refusal.is_none()
    }
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
    user: Option<Account>,
    txn: Option<Transaction>,
    receiver: RequestReceiver,
    input: Vec<u8>,
    pos: usize,
    out: Vec<u8>,
    errors: u32,
    auth_failures: u32,
    /// The rest of an over-long line is being skipped.
    skipping_line: bool,
    /// The partial command line seen so far (held to the line limit).
    line: Vec<u8>,
    /// The partial command line seen so far ends with CR: the next byte must be LF.
    cr_pending: bool,
    /// The answer to a BDAT whose chunk is being read and dropped.
    pending_bdat_error: Option<Reply>,
    /// Message data ready to be handed out with [`Event::MessageData`].
    data_out: Vec<u8>,
    /// Data of the current message was handed out and not yet delivered or discarded.
    message_handed_out: bool,
    /// The delivery of a complete message, asked for once its last data is handed out.
    deliver_after_data: Option<Action>,
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
            line: Vec::new(),
            cr_pending: false,
            pending_bdat_error: None,
            data_out: Vec::new(),
            message_handed_out: false,
            deliver_after_data: None,
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

    /// Whether a message is being received: its DATA or a BDAT chunk is being read, or a BDAT
    /// transaction (RFC 3030) awaits its last chunk. On shutdown such a message is let finish
    /// (the caller's grace period bounds it) before the 421 (RFC 5321 §3.8).
    pub fn in_message(&self) -> bool {
        matches!(self.state, State::Data(_) | State::Bdat(_))
            || self.txn.as_ref().is_some_and(|t| t.chunking && !t.failed)
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
        self.line.clear();
        self.cr_pending = false;
        self.skipping_line = false;
        self.state = State::Command;
    }

    /// Processes buffered input until the session needs more input or an action.
    pub fn next_event(&mut self) -> Event {
        loop {
            if let Some(event) = self.message_event() {
                return event;
            }
            if let Some(action) = self.deliver_after_data.take() {
                // The data went out whole: from here on it belongs to the delivery.
                self.message_handed_out = false;
                return Event::Action(action);
            }
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

    /// Hands out ready message data, or tells the caller to drop what it was handed of a message
    /// that will not be delivered (refused, reset, or its connection state was reset).
    fn message_event(&mut self) -> Option<Event> {
        let spooling = self.deliver_after_data.is_some()
            || self.txn.as_ref().is_some_and(Transaction::spooling);
        if !spooling {
            self.data_out.clear();
            return std::mem::take(&mut self.message_handed_out).then_some(Event::DiscardMessage);
        }
        if self.data_out.is_empty() {
            return None;
        }
        self.message_handed_out = true;
        Some(Event::MessageData(std::mem::take(&mut self.data_out)))
    }

    /// Handles some input in the current state; returns an event when one is due.
    fn step(&mut self) -> Option<Event> {
        match std::mem::replace(&mut self.state, State::Waiting) {
            State::Command => {
                self.state = State::Command;
                self.command()
            }
            State::Data(mut receiver) => {
                let done = self.ingest_data(true, |bytes, buf| receiver.ingest(bytes, buf));
                if done {
                    self.state = State::Command;
                    self.end_of_data()
                } else {
                    self.state = State::Data(receiver);
                    None
                }
            }
            State::Bdat(mut receiver) => {
                let last = receiver.is_last;
                let done = self.ingest_data(last, |bytes, buf| receiver.ingest(bytes, buf));
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
        if self.line.len() + this_part > self.cfg.max_line_length {
            return self.refuse_line(line_end, Reply::new(500, (5, 5, 2), "Line too long"));
        }
        // RFC 5321 §2.3.8: CR only as part of CRLF. smtp-proto drops a bare CR inside a line, so
        // `EHLO a<CR>b` would be taken as `EHLO ab`: refuse the line instead.
        let part = &rest[..this_part];
        let continues_bare_cr = self.cr_pending && part.first() != Some(&b'\n');
        if continues_bare_cr || part.windows(2).any(|w| w[0] == b'\r' && w[1] != b'\n') {
            return self.refuse_line(
                line_end,
                Reply::new(501, (5, 5, 2), "Bare CR in command line (RFC 5321 §2.3.8)"),
            );
        }
        // A whole MAIL or RCPT line with an address literal is parsed with a stand-in domain,
        // also when its start came in an earlier read (then the parser starts the line afresh).
        let literal = line_end.and_then(|i| {
            let mut whole = self.line.clone();
            whole.extend_from_slice(&rest[..=i]);
            literal::find(&whole)
        });
        let (parsed, consumed) = match &literal {
            Some(l) => {
                self.receiver = RequestReceiver::default();
                let mut bytes = l.line.iter();
                let parsed = self.receiver.ingest(&mut bytes).map(Request::into_owned);
                (parsed, this_part)
            }
            None => {
                let mut bytes = rest.iter();
                let parsed = self.receiver.ingest(&mut bytes).map(Request::into_owned);
                (parsed, rest.len() - bytes.as_slice().len())
            }
        };
        let ended_line = consumed > 0 && rest[consumed - 1] == b'\n';
        // DSN parameters are checked on the whole line as sent (RFC 3461 §4).
        let bad_dsn = match &parsed {
            Ok(Request::Mail { .. } | Request::Rcpt { .. }) => {
                let mut whole = self.line.clone();
                whole.extend_from_slice(&rest[..consumed]);
                crate::dsn::params::check_line(&whole).err()
            }
            _ => None,
        };
        self.pos += consumed;
        match (parsed, bad_dsn) {
            (Err(smtp_proto::Error::NeedsMoreData { .. }), _) => {
                self.line.extend_from_slice(&rest[..consumed]);
                self.cr_pending = consumed > 0 && rest[consumed - 1] == b'\r';
                None
            }
            (Ok(_), Some(text)) => {
                self.line.clear();
                self.cr_pending = false;
                self.error(Reply::new(501, (5, 5, 4), text))
            }
            (Ok(request), None) => {
                self.line.clear();
                self.cr_pending = false;
                let request = match &literal {
                    Some(l) => l.restore(request),
                    None => request,
                };
                self.handle(request)
            }
            (Err(e), _) => {
                self.line.clear();
                self.cr_pending = false;
                // smtp-proto leaves the rest of some bad lines unread: skip to the line's end so
                // it is not taken as a new command.
                if !ended_line {
                    self.skipping_line = true;
                }
                self.parse_error(e)
            }
        }
    }

    /// Drops the command line being read (its rest too, when it has not all arrived) and answers
    /// with `reply`.
    fn refuse_line(&mut self, line_end: Option<usize>, reply: Reply) -> Option<Event> {
        self.receiver = RequestReceiver::default();
        self.line.clear();
        self.cr_pending = false;
        match line_end {
            Some(i) => self.pos += i + 1,
            None => {
                self.pos = self.input.len();
                self.skipping_line = true;
            }
        }
        self.error(reply)
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
                Reply::new(501, (5, 5, 4), invalid_parameter_text(param))
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
        self.line.clear();
        self.cr_pending = false;
        self.state = State::Waiting;
        Some(Event::StartTls)
    }
}

/// The text of the 501 reply to a malformed MAIL or RCPT parameter, naming the rule for DSN's.
fn invalid_parameter_text(param: &str) -> String {
    let rule = match param {
        "NOTIFY" => ": NEVER alone, or a list of SUCCESS, FAILURE, DELAY (RFC 3461 §4.1)",
        "ORCPT" => ": rfc822;<address in xtext> expected (RFC 3461 §4.2)",
        "RET" => ": FULL or HDRS (RFC 3461 §4.3)",
        "ENVID" => ": 1 to 100 characters of xtext (RFC 3461 §4.4)",
        _ => "",
    };
    format!("Invalid {param} parameter{rule}")
}

#[cfg(test)]
mod tests;
