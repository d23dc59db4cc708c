//! Server side of the two SASL mechanisms Postern offers, shared by SMTP AUTH (RFC 4954) and IMAP
//! AUTHENTICATE (RFC 3501 §6.2.2): PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login). Both
//! work on decoded bytes; each protocol does its own base64 framing and cancellation.

/// A login name and password taken from a SASL exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The authentication identity (the login name).
    pub username: String,
    /// The password.
    pub password: String,
}

/// Why a SASL response was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// Not `authzid NUL authcid NUL passwd`, or an empty name or password (RFC 4616 §2).
    #[error("malformed PLAIN response")]
    Malformed,
    /// A field is not UTF-8 (RFC 4616 §2 requires UTF-8).
    #[error("SASL response is not UTF-8")]
    NotUtf8,
    /// An authorization identity other than the login name: Postern lets nobody act as someone
    /// else (RFC 4616 §2: the server decides whether authcid may act as authzid).
    #[error("cannot act as another user")]
    AuthzidMismatch,
}

/// Decodes a PLAIN message (RFC 4616 §2): `[authzid] NUL authcid NUL passwd`. The authzid must be
/// empty or equal to the authcid (case-insensitively, as addresses compare).
pub fn decode_plain(message: &[u8]) -> Result<Credentials, SaslError> {
    let mut parts = message.split(|&b| b == 0);
    let (Some(authz), Some(authc), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed);
    };
    let (Ok(authz), Ok(authc), Ok(password)) = (
        std::str::from_utf8(authz),
        std::str::from_utf8(authc),
        std::str::from_utf8(password),
    ) else {
        return Err(SaslError::NotUtf8);
    };
    if authc.is_empty() || password.is_empty() {
        return Err(SaslError::Malformed);
    }
    if !authz.is_empty() && !authz.eq_ignore_ascii_case(authc) {
        return Err(SaslError::AuthzidMismatch);
    }
    Ok(Credentials {
        username: authc.to_owned(),
        password: password.to_owned(),
    })
}

/// The LOGIN mechanism's first challenge, `Username:` (before base64; Outlook expects exactly it).
pub const LOGIN_USERNAME_CHALLENGE: &[u8] = b"Username:";
/// The LOGIN mechanism's second challenge, `Password:`.
pub const LOGIN_PASSWORD_CHALLENGE: &[u8] = b"Password:";

/// What a [`SaslLogin`] exchange needs next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginStep {
    /// Send this challenge (base64-encoded by the protocol) and feed the answer to
    /// [`SaslLogin::respond`].
    Challenge(&'static [u8]),
    /// The exchange is complete.
    Done(Credentials),
}

/// The server side of SASL LOGIN: the user name, then the password, each in answer to a challenge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaslLogin {
    username: Option<String>,
}

impl SaslLogin {
    /// Starts an exchange; `initial` is the client's initial response (the user name, RFC 4954 §4),
    /// if it sent one.
    pub fn start(initial: Option<&[u8]>) -> Result<(SaslLogin, LoginStep), SaslError> {
        let mut login = SaslLogin::default();
        let step = match initial {
            Some(name) => login.respond(name)?,
            None => LoginStep::Challenge(LOGIN_USERNAME_CHALLENGE),
        };
        Ok((login, step))
    }

    /// The challenge the exchange waits to have answered: `Username:`, then `Password:`.
    pub fn challenge(&self) -> &'static [u8] {
        match self.username {
            None => LOGIN_USERNAME_CHALLENGE,
            Some(_) => LOGIN_PASSWORD_CHALLENGE,
        }
    }

    /// Feeds the client's (decoded) answer to the last challenge.
    pub fn respond(&mut self, answer: &[u8]) -> Result<LoginStep, SaslError> {
        let text = std::str::from_utf8(answer).map_err(|_| SaslError::NotUtf8)?;
        match self.username.take() {
            None => {
                self.username = Some(text.to_owned());
                Ok(LoginStep::Challenge(LOGIN_PASSWORD_CHALLENGE))
            }
            Some(username) => Ok(LoginStep::Done(Credentials {
                username,
                password: text.to_owned(),
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain() {
        let c = decode_plain(b"\0alice@example.test\0pw").unwrap();
        assert_eq!(c.username, "alice@example.test");
        assert_eq!(c.password, "pw");
        assert!(decode_plain(b"Alice@example.test\0alice@example.test\0pw").is_ok());
        assert_eq!(
            decode_plain(b"bob@example.test\0alice@example.test\0pw"),
            Err(SaslError::AuthzidMismatch)
        );
        for bad in [
            &b"alice\0pw"[..],
            b"\0alice\0pw\0x",
            b"\0\0pw",
            b"\0alice\0",
            b"",
        ] {
            assert_eq!(decode_plain(bad), Err(SaslError::Malformed), "{bad:?}");
        }
        assert_eq!(decode_plain(b"\0al\xffce\0pw"), Err(SaslError::NotUtf8));
    }

    #[test]
    fn login() {
        let (mut l, step) = SaslLogin::start(None).unwrap();
        assert_eq!(step, LoginStep::Challenge(LOGIN_USERNAME_CHALLENGE));
        assert_eq!(l.challenge(), LOGIN_USERNAME_CHALLENGE);
        assert_eq!(
            l.respond(b"alice").unwrap(),
            LoginStep::Challenge(LOGIN_PASSWORD_CHALLENGE)
        );
        assert_eq!(
            l.respond(b"pw").unwrap(),
            LoginStep::Done(Credentials {
                username: "alice".into(),
                password: "pw".into()
            })
        );
        let (mut l, step) = SaslLogin::start(Some(b"bob")).unwrap();
        assert_eq!(step, LoginStep::Challenge(LOGIN_PASSWORD_CHALLENGE));
        assert_eq!(l.challenge(), LOGIN_PASSWORD_CHALLENGE);
        assert!(matches!(l.respond(b"secret"), Ok(LoginStep::Done(_))));
        assert_eq!(
            SaslLogin::start(Some(b"\xff")).unwrap_err(),
            SaslError::NotUtf8
        );
    }
}
