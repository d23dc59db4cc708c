//! SMTP replies (RFC 5321 §4.2) with enhanced status codes (RFC 2034, RFC 3463), written through
//! smtp-proto's `Response`.

/// One single-line reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    code: u16,
    enhanced: Option<(u8, u8, u8)>,
    text: String,
}

impl Reply {
    /// A reply with an enhanced status code `class.subject.detail`.
    pub fn new(
        code: u16,
        (class, subject, detail): (u8, u8, u8),
        text: impl Into<String>,
    ) -> Reply {
        Reply {
            code,
            enhanced: Some((class, subject, detail)),
            text: text.into(),
        }
    }

    /// The same reply without the enhanced status code (greeting, HELO, 354).
    pub fn plain(mut self) -> Reply {
        self.enhanced = None;
        self
    }

    /// The three-digit reply code.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// Appends the reply, CRLF-terminated, to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        // Reply texts are ours; strip line breaks anyway so one reply is one line.
        let text: String = self
            .text
            .chars()
            .filter(|c| *c != '\r' && *c != '\n')
            .collect();
        match self.enhanced {
            Some((a, b, c)) => {
                // Writing into a Vec cannot fail.
                let _ = smtp_proto::Response::new(self.code, a, b, c, text).write(out);
            }
            None => out.extend_from_slice(format!("{} {text}\r\n", self.code).as_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let mut out = Vec::new();
        Reply::new(550, (5, 1, 1), "User unknown").write(&mut out);
        Reply::new(354, (0, 0, 0), "Go\r\nahead")
            .plain()
            .write(&mut out);
        assert_eq!(out, b"550 5.1.1 User unknown\r\n354 Goahead\r\n");
    }
}
