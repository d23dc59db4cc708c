//! The ManageSieve session (RFC 5804 §2): which commands a client may send in which state, and
//! what each answers. It is fed framed commands and returns the bytes to send and what the
//! connection does next; it reads and writes scripts through the [`Store`] but never touches a
//! socket, a clock or TLS itself.

use std::net::IpAddr;

use base64::Engine;
use postern_store::sasl::decode_plain;
use postern_store::{
    check_sieve_name, LoginAttempt, LoginOutcome, Service, Store, StoreError, User,
    MAX_SIEVE_SCRIPT_BYTES,
};

use super::frame::{Frame, Refusal, Token, MAX_LINE};
use super::response::{self, Code, Status};

/// The `IMPLEMENTATION` capability (RFC 5804 §1.7).
const IMPLEMENTATION: &str = "Postern";

/// What the connection does after a reply is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Read the next command.
    Continue,
    /// Start TLS (RFC 5804 §2.2), then send [`Session::tls_established`]'s capabilities.
    StartTls,
    /// Close the connection.
    Close,
}

/// Bytes to send and the connection's next step.
#[derive(Debug)]
pub struct Reply {
    /// The response lines.
    pub bytes: Vec<u8>,
    /// What happens after they are sent.
    pub next: Next,
}

impl Reply {
    fn new(bytes: Vec<u8>) -> Reply {
        Reply {
            bytes,
            next: Next::Continue,
        }
    }

    fn status(status: Status, code: Option<Code>, text: &str) -> Reply {
        let mut bytes = Vec::new();
        response::status(&mut bytes, status, code.as_ref(), text);
        Reply::new(bytes)
    }

    fn ok(text: &str) -> Reply {
        Reply::status(Status::Ok, None, text)
    }

    fn no(text: &str) -> Reply {
        Reply::status(Status::No, None, text)
    }

    fn no_code(code: Code, text: &str) -> Reply {
        Reply::status(Status::No, Some(code), text)
    }

    /// `BYE` with `text`, closing the connection.
    pub fn bye(text: &str) -> Reply {
        let mut reply = Reply::status(Status::Bye, None, text);
        reply.next = Next::Close;
        reply
    }
}

/// Settings of one session.
#[derive(Debug, Clone, Copy)]
pub struct SessionConfig {
    /// Refuse AUTHENTICATE until STARTTLS (`SASL ""` is advertised until then).
    pub require_tls_for_auth: bool,
}

/// One client's ManageSieve session.
#[derive(Debug)]
pub struct Session {
    peer: IpAddr,
    tls: bool,
    config: SessionConfig,
    user: Option<User>,
    /// An AUTHENTICATE waiting for the client's response to the empty challenge.
    awaiting_sasl: bool,
}

/// A parsed command line: its name (upper case) and arguments.
struct Args {
    name: String,
    args: Vec<Token>,
}

impl Args {
    fn count(&self, min: usize, max: usize) -> Result<(), Reply> {
        if self.args.len() < min || self.args.len() > max {
            return Err(Reply::no(&format!(
                "{} takes {} argument{}",
                self.name,
                if min == max {
                    min.to_string()
                } else {
                    format!("{min} to {max}")
                },
                if max == 1 { "" } else { "s" }
            )));
        }
        Ok(())
    }

    /// Argument `i` as a string (quoted or literal) in UTF-8.
    fn string(&self, i: usize) -> Result<String, Reply> {
        match self.args.get(i) {
            Some(Token::Str(bytes)) => String::from_utf8(bytes.clone())
                .map_err(|_| Reply::no("Strings must be UTF-8 (RFC 5804 section 4)")),
            _ => Err(Reply::no(&format!(
                "{}: argument {} must be a string",
                self.name,
                i + 1
            ))),
        }
    }

    /// Argument `i` as a number (RFC 5804 §4 `number`).
    fn number(&self, i: usize) -> Result<u64, Reply> {
        match self.args.get(i) {
            Some(Token::Atom(n)) if n.len() <= 10 && n.bytes().all(|b| b.is_ascii_digit()) => {
                n.parse().map_err(|_| Reply::no("Bad number"))
            }
            _ => Err(Reply::no(&format!(
                "{}: argument {} must be a number",
                self.name,
                i + 1
            ))),
        }
    }
}

impl Session {
    /// A session for a client at `peer`; `tls` if the connection is already encrypted.
    pub fn new(peer: IpAddr, tls: bool, config: SessionConfig) -> Session {
        Session {
            peer,
            tls,
            config,
            user: None,
            awaiting_sasl: false,
        }
    }

    /// The logged-in user.
    pub fn user(&self) -> Option<&User> {
        self.user.as_ref()
    }

    /// Literal octets a command may carry now, and whether a larger literal is dropped (after
    /// login: a script may be that large) rather than ending the connection (before login).
    pub fn literal_limit(&self) -> (usize, bool) {
        if self.user.is_some() {
            // Room for the script name next to the largest script.
            (MAX_SIEVE_SCRIPT_BYTES + MAX_LINE, true)
        } else {
            (MAX_LINE, false)
        }
    }

    fn auth_allowed(&self) -> bool {
        self.tls || !self.config.require_tls_for_auth
    }

    /// The capability lines followed by OK: the greeting, the CAPABILITY answer and the answer
    /// after STARTTLS (RFC 5804 §1.7, §2.4).
    pub fn capabilities(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut cap = |name: &str, value: Option<&str>| {
            response::string(&mut out, name.as_bytes());
            if let Some(v) = value {
                out.push(b' ');
                response::string(&mut out, v.as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        };
        cap("IMPLEMENTATION", Some(IMPLEMENTATION));
        if self.user.is_none() {
            // RFC 5804 §1.7: an empty SASL list until the client may authenticate.
            cap("SASL", Some(if self.auth_allowed() { "PLAIN" } else { "" }));
        }
        cap("SIEVE", Some(&crate::extensions()));
        if !self.tls && self.user.is_none() {
            cap("STARTTLS", None);
        }
        if let Some(user) = &self.user {
            cap("OWNER", Some(&user.address.to_string()));
        }
        cap("UNAUTHENTICATE", None);
        cap("VERSION", Some("1.0"));
        response::status(&mut out, Status::Ok, None, "");
        out
    }

    /// Records that TLS is now active and returns the capabilities the client must be sent
    /// again (RFC 5804 §2.2).
    pub fn tls_established(&mut self) -> Vec<u8> {
        self.tls = true;
        self.capabilities()
    }

    /// Handles one frame from the client.
    pub async fn frame(&mut self, store: &Store, frame: Frame) -> Reply {
        match frame {
            Frame::Fatal(why) => Reply::bye(why),
            Frame::Refused(Refusal::TooBig) => {
                self.awaiting_sasl = false;
                Reply::no_code(Code::MaxSize, "Literal larger than the largest script")
            }
            Frame::Refused(Refusal::Syntax(why)) => {
                self.awaiting_sasl = false;
                Reply::no(why)
            }
            Frame::Command(tokens) if self.awaiting_sasl => {
                self.awaiting_sasl = false;
                match tokens.as_slice() {
                    [Token::Str(response)] if response == b"*" => {
                        Reply::no("Authentication cancelled")
                    }
                    [Token::Str(response)] => self.sasl_plain(store, response).await,
                    _ => Reply::no("Expected a SASL response string"),
                }
            }
            Frame::Command(tokens) => {
                let mut tokens = tokens.into_iter();
                let Some(Token::Atom(name)) = tokens.next() else {
                    return Reply::no("Expected a command name");
                };
                let args = Args {
                    name: name.to_ascii_uppercase(),
                    args: tokens.collect(),
                };
                match self.command(store, &args).await {
                    Ok(reply) | Err(reply) => reply,
                }
            }
        }
    }

    async fn command(&mut self, store: &Store, a: &Args) -> Result<Reply, Reply> {
        match a.name.as_str() {
            "CAPABILITY" => {
                a.count(0, 0)?;
                return Ok(Reply::new(self.capabilities()));
            }
            "LOGOUT" => {
                a.count(0, 0)?;
                let mut reply = Reply::ok("Logout completed");
                reply.next = Next::Close;
                return Ok(reply);
            }
            "NOOP" => {
                a.count(0, 1)?;
                return Ok(match a.args.first() {
                    Some(_) => {
                        let tag = a.string(0)?;
                        Reply::status(Status::Ok, Some(Code::Tag(tag.into_bytes())), "Done")
                    }
                    None => Reply::ok("Done"),
                });
            }
            _ => {}
        }
        let Some(user) = self.user.clone() else {
            return match a.name.as_str() {
                "STARTTLS" => {
                    a.count(0, 0)?;
                    if self.tls {
                        return Ok(Reply::no("TLS is already active"));
                    }
                    let mut reply = Reply::ok("Begin TLS negotiation now");
                    reply.next = Next::StartTls;
                    Ok(reply)
                }
                "AUTHENTICATE" => self.authenticate(store, a).await,
                _ => Ok(Reply::no("Authenticate first")),
            };
        };
        let id = user.id;
        Ok(match a.name.as_str() {
            "STARTTLS" | "AUTHENTICATE" => Reply::no("Already authenticated"),
            "UNAUTHENTICATE" => {
                a.count(0, 0)?;
                self.user = None;
                Reply::ok("Unauthenticated")
            }
            "LISTSCRIPTS" => {
                a.count(0, 0)?;
                let scripts = store.list_sieve_scripts(id).await.map_err(store_error)?;
                let mut out = Vec::new();
                for s in scripts {
                    response::string(&mut out, s.name.as_bytes());
                    if s.active {
                        out.extend_from_slice(b" ACTIVE");
                    }
                    out.extend_from_slice(b"\r\n");
                }
                response::status(&mut out, Status::Ok, None, "");
                Reply::new(out)
            }
            "GETSCRIPT" => {
                a.count(1, 1)?;
                let name = a.string(0)?;
                match store.sieve_script(id, &name).await.map_err(store_error)? {
                    Some(script) => {
                        let mut out = Vec::new();
                        response::literal(&mut out, script.content.as_bytes());
                        out.extend_from_slice(b"\r\n");
                        response::status(&mut out, Status::Ok, None, "");
                        Reply::new(out)
                    }
                    None => Reply::no_code(Code::Nonexistent, "There is no such script"),
                }
            }
            "HAVESPACE" => {
                a.count(2, 2)?;
                let name = a.string(0)?;
                let size = a.number(1)?;
                check_sieve_name(&name).map_err(|e| Reply::no(&e.to_string()))?;
                if size > MAX_SIEVE_SCRIPT_BYTES as u64 {
                    return Err(too_big());
                }
                match store.sieve_have_space(id, &name, size as usize).await {
                    Ok(()) => Reply::ok(""),
                    Err(StoreError::Invalid { reason, .. }) => {
                        Reply::no_code(Code::MaxScripts, &reason)
                    }
                    Err(e) => store_error(e),
                }
            }
            "CHECKSCRIPT" => {
                a.count(1, 1)?;
                let script = script_arg(a, 0)?;
                compile_check(&script)?;
                Reply::ok("")
            }
            "PUTSCRIPT" => {
                a.count(2, 2)?;
                let name = a.string(0)?;
                check_sieve_name(&name).map_err(|e| Reply::no(&e.to_string()))?;
                let script = script_arg(a, 1)?;
                compile_check(&script)?;
                match store.put_sieve_script(id, &name, &script).await {
                    Ok(()) => Reply::ok(""),
                    Err(StoreError::Invalid { reason, .. }) => {
                        Reply::no_code(Code::MaxScripts, &reason)
                    }
                    Err(e) => store_error(e),
                }
            }
            "SETACTIVE" => {
                a.count(1, 1)?;
                let name = a.string(0)?;
                let target = (!name.is_empty()).then_some(name.as_str());
                match store.set_active_sieve_script(id, target).await {
                    Ok(()) => Reply::ok(""),
                    Err(StoreError::NotFound(_)) => {
                        Reply::no_code(Code::Nonexistent, "There is no such script")
                    }
                    Err(e) => store_error(e),
                }
            }
            "DELETESCRIPT" => {
                a.count(1, 1)?;
                let name = a.string(0)?;
                match store.delete_sieve_script(id, &name).await {
                    Ok(()) => Reply::ok(""),
                    Err(StoreError::NotFound(_)) => {
                        Reply::no_code(Code::Nonexistent, "There is no such script")
                    }
                    Err(StoreError::Invalid { .. }) => Reply::no_code(
                        Code::Active,
                        "The active script cannot be deleted; deactivate it first",
                    ),
                    Err(e) => store_error(e),
                }
            }
            "RENAMESCRIPT" => {
                a.count(2, 2)?;
                let (from, to) = (a.string(0)?, a.string(1)?);
                match store.rename_sieve_script(id, &from, &to).await {
                    Ok(()) => Reply::ok(""),
                    Err(StoreError::NotFound(_)) => {
                        Reply::no_code(Code::Nonexistent, "There is no such script")
                    }
                    Err(StoreError::Exists(_)) => {
                        Reply::no_code(Code::AlreadyExists, "A script of that name exists")
                    }
                    Err(e @ StoreError::Invalid { .. }) => Reply::no(&e.to_string()),
                    Err(e) => store_error(e),
                }
            }
            _ => Reply::no("Unknown command"),
        })
    }

    /// AUTHENTICATE (RFC 5804 §2.1) with the PLAIN mechanism (RFC 4616), with or without an
    /// initial response.
    async fn authenticate(&mut self, store: &Store, a: &Args) -> Result<Reply, Reply> {
        a.count(1, 2)?;
        let mechanism = a.string(0)?;
        if !mechanism.eq_ignore_ascii_case("PLAIN") {
            return Ok(Reply::no("Unsupported SASL mechanism; use PLAIN"));
        }
        if !self.auth_allowed() {
            return Ok(Reply::no_code(
                Code::EncryptNeeded,
                "Use STARTTLS before authenticating",
            ));
        }
        if a.args.len() == 2 {
            let Some(Token::Str(initial)) = a.args.get(1) else {
                return Ok(Reply::no("The initial response must be a string"));
            };
            return Ok(self.sasl_plain(store, initial).await);
        }
        self.awaiting_sasl = true;
        // The empty server challenge of PLAIN (RFC 5804 §2.1: a string on a line of its own).
        Ok(Reply::new(b"\"\"\r\n".to_vec()))
    }

    /// Checks a base64 PLAIN response through the process's one login path.
    async fn sasl_plain(&mut self, store: &Store, response: &[u8]) -> Reply {
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(response) else {
            return Reply::no("The SASL response is not base64");
        };
        let credentials = match decode_plain(&decoded) {
            Ok(c) => c,
            Err(e) => return Reply::no(&e.to_string()),
        };
        let outcome = store
            .login(LoginAttempt {
                service: Service::ManageSieve,
                client: self.peer,
                username: &credentials.username,
                password: &credentials.password,
            })
            .await;
        match outcome {
            LoginOutcome::Success(user) => {
                self.user = Some(user);
                Reply::ok("Logged in")
            }
            LoginOutcome::Failed => Reply::no("Authentication failed"),
            LoginOutcome::Throttled { retry_after } => Reply::no_code(
                Code::TryLater,
                &format!(
                    "Too many failed logins; try again in {} seconds",
                    retry_after.as_secs().max(1)
                ),
            ),
            LoginOutcome::Unavailable => Reply::no_code(Code::TryLater, "Login is unavailable now"),
        }
    }
}

fn too_big() -> Reply {
    Reply::no_code(
        Code::MaxSize,
        &format!("Scripts may be at most {MAX_SIEVE_SCRIPT_BYTES} bytes"),
    )
}

/// A script argument: UTF-8 (RFC 5228 §2.1) and within the size limit.
fn script_arg(a: &Args, i: usize) -> Result<String, Reply> {
    let script = a.string(i)?;
    if script.len() > MAX_SIEVE_SCRIPT_BYTES {
        return Err(too_big());
    }
    Ok(script)
}

/// Compiles `script`; a failure is `NO` with the compiler's words (RFC 5804 §2.6).
fn compile_check(script: &str) -> Result<(), Reply> {
    crate::compile(script)
        .map(drop)
        .map_err(|e| Reply::no(&e.to_string()))
}

/// A store failure other than the ones a command answers itself: temporary (RFC 5804 §1.3
/// `TRYLATER`), logged.
fn store_error(e: StoreError) -> Reply {
    tracing::error!(error = %e, "managesieve: store operation failed");
    Reply::no_code(Code::TryLater, "Temporary failure; try again later")
}
