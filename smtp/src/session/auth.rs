//! AUTH (RFC 4954) with the PLAIN (RFC 4616) and LOGIN mechanisms.

use base64::Engine;
use smtp_proto::request::receiver::LineReceiver;

use postern_store::sasl::{self, LoginStep, SaslError, SaslLogin};

use super::{Account, Action, AuthResult, Event, Listener, Session, State};
use crate::reply::Reply;

impl Session {
    pub(super) fn auth_offered(&self) -> bool {
        self.listener != Listener::Mx && (self.tls || !self.cfg.require_tls_for_auth)
    }

    /// AUTH (RFC 4954) with PLAIN (RFC 4616) and LOGIN.
    pub(super) fn auth(&mut self, mechanism: u64, initial: String) -> Option<Event> {
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
    pub(super) fn auth_plain_response(&mut self, text: &str) -> Option<Event> {
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

    pub(super) fn auth_login_response(
        &mut self,
        mut login: SaslLogin,
        text: &str,
    ) -> Option<Event> {
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
                self.user = Some(Account {
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
}
