//! Authentication: LOGIN (RFC 3501 §6.2.3) and AUTHENTICATE (§6.2.2) with the PLAIN (RFC 4616)
//! and LOGIN mechanisms, checked by the store's one login service through [`MailStore::login`].

use imap_codec::imap_types::auth::AuthenticateData;
use imap_codec::imap_types::response::{Code, CommandContinuationRequest, Response, StatusKind};
use postern_store::sasl::{self, LoginStep, SaslError, SaslLogin};
use postern_store::{LoginAttempt, LoginOutcome, Service};

use super::{bad, no, Done, Failure, Next, Outcome, Reply, Session};
use crate::mail_store::MailStore;
use crate::response::{code_other, tagged};

/// A SASL mechanism in progress.
pub(super) enum Mechanism {
    /// PLAIN (RFC 4616): one response.
    Plain,
    /// LOGIN: user name, then password, each after a challenge.
    Login(SaslLogin),
}

impl<S: MailStore> Session<S> {
    pub(super) fn login_disabled(&self) -> bool {
        !self.tls && self.config.login_disabled_without_tls
    }

    /// AUTHENTICATE (RFC 3501 §6.2.2) with `mechanism`: PLAIN answers at once when the client
    /// sent an initial response (SASL-IR, RFC 4959), else a continuation request asks for data.
    pub(crate) async fn authenticate(
        &mut self,
        mechanism: &str,
        initial: Option<Vec<u8>>,
    ) -> Outcome {
        if self.user.is_some() {
            return Err(bad("Already authenticated"));
        }
        let plain = mechanism.eq_ignore_ascii_case("PLAIN");
        if !plain && !mechanism.eq_ignore_ascii_case("LOGIN") {
            return Err(no("Unsupported mechanism"));
        }
        if self.login_disabled() {
            return Err(Failure::No(
                Some(code_other("PRIVACYREQUIRED")),
                "Use STARTTLS first".into(),
            ));
        }
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

    /// A line of AUTHENTICATE data (RFC 3501 §6.2.2).
    pub async fn authenticate_data(&mut self, line: AuthenticateData<'_>) -> Reply {
        let Some(tag) = self.pending.take() else {
            return Reply {
                raw: Vec::new(),
                responses: vec![Session::syntax_error(None, "No authentication in progress")],
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

    /// The continuation request of a pending AUTHENTICATE: empty for PLAIN (RFC 4616 §2 lets
    /// the client speak first), the next challenge for LOGIN.
    pub(super) fn challenge(&self) -> Response<'static> {
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
}
