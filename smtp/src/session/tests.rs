//! Protocol tests of the session state machine, without sockets or a store.

use std::collections::BTreeSet;

use base64::Engine;

use super::*;
use crate::crlf::BareLineEndings;

fn config() -> Arc<SessionConfig> {
    Arc::new(SessionConfig {
        hostname: "mail.example.test".into(),
        max_message_size: 1000,
        max_recipients: 3,
        max_line_length: 512,
        max_errors: 5,
        max_auth_failures: 3,
        require_tls_for_auth: true,
        bare_line_endings: BareLineEndings::Normalize,
    })
}

/// A session plus a fake backend: alice@example.test (password "secret") owns info@example.test;
/// full@example.test is over quota; other hosted addresses are unknown; other domains not hosted.
struct T {
    s: Session,
    /// Data handed out for the message being received.
    receiving: Vec<u8>,
    delivered: Vec<Delivered>,
    tls_requested: bool,
    closed: bool,
}

impl T {
    fn new(listener: Listener, tls: bool) -> T {
        T::with_config(config(), listener, tls)
    }

    fn with_config(cfg: Arc<SessionConfig>, listener: Listener, tls: bool) -> T {
        let peer: SocketAddr = "192.0.2.7:40000".parse().unwrap();
        let mut t = T {
            s: Session::new(cfg, listener, peer, tls),
            receiving: Vec::new(),
            delivered: Vec::new(),
            tls_requested: false,
            closed: false,
        };
        let greeting = t.out();
        assert_eq!(greeting, "220 mail.example.test ESMTP Postern\r\n");
        t
    }

    fn out(&mut self) -> String {
        String::from_utf8(self.s.take_output()).unwrap()
    }

    /// Feeds `input`, answers actions, and returns everything the session wrote.
    fn send(&mut self, input: &[u8]) -> String {
        self.s.receive(input);
        loop {
            match self.s.next_event() {
                Event::NeedInput => break,
                Event::Action(a) => self.answer(a),
                Event::MessageData(bytes) => self.receiving.extend_from_slice(&bytes),
                Event::DiscardMessage => self.receiving.clear(),
                Event::StartTls => {
                    self.tls_requested = true;
                    break;
                }
                Event::Close => {
                    self.closed = true;
                    break;
                }
            }
        }
        self.out()
    }

    fn answer(&mut self, action: Action) {
        match action {
            Action::Authenticate { username, password } => {
                let ok = username == "alice@example.test" && password == "secret";
                self.s.auth_result(if username == "busy@example.test" {
                    AuthResult::Throttled
                } else if ok {
                    AuthResult::Success {
                        user_id: 1,
                        address: username,
                    }
                } else {
                    AuthResult::Failed
                });
            }
            Action::CheckSender { user, address, .. } => {
                let owned = address == user || address == "info@example.test";
                self.s.sender_result(if owned {
                    SenderResult::Owned
                } else {
                    SenderResult::NotOwned
                });
            }
            Action::CheckRecipient { address, .. } => {
                let result = match address.as_str() {
                    "alice@example.test" | "alice+tag@example.test" => RecipientResult::Deliver {
                        local: BTreeSet::from([1]),
                        remote: BTreeSet::new(),
                    },
                    "full@example.test" => RecipientResult::MailboxFull,
                    POSTMASTER => RecipientResult::Deliver {
                        local: BTreeSet::from([2]),
                        remote: BTreeSet::new(),
                    },
                    a if a.ends_with("@example.test") => RecipientResult::Unknown,
                    _ => RecipientResult::NotHosted,
                };
                self.s.recipient_result(address, result);
            }
            Action::Deliver(d) => {
                self.delivered.push(Delivered {
                    delivery: *d,
                    message: std::mem::take(&mut self.receiving),
                });
                self.s
                    .delivery_result(DeliveryResult::Accepted { id: "ID1".into() });
            }
        }
    }

    /// EHLO, then a logged-in submission session over TLS.
    fn logged_in() -> T {
        let mut t = T::new(Listener::Submissions, true);
        t.send(b"EHLO client.test\r\n");
        let plain =
            base64::engine::general_purpose::STANDARD.encode("\0alice@example.test\0secret");
        let r = t.send(format!("AUTH PLAIN {plain}\r\n").as_bytes());
        assert_eq!(r, "235 2.7.0 Authentication successful\r\n");
        t
    }
}

/// A delivery the fake backend performed, with the data handed out before it.
struct Delivered {
    delivery: Delivery,
    message: Vec<u8>,
}

impl std::ops::Deref for Delivered {
    type Target = Delivery;

    fn deref(&self) -> &Delivery {
        &self.delivery
    }
}

fn codes(replies: &str) -> Vec<&str> {
    replies
        .lines()
        .filter(|l| l.len() >= 4 && l.as_bytes()[3] == b' ')
        .map(|l| &l[..3])
        .collect()
}

#[test]
fn ehlo_lists_extensions_per_listener() {
    let mut mx = T::new(Listener::Mx, false);
    let r = mx.send(b"EHLO client.test\r\n");
    for ext in [
        "PIPELINING",
        "SIZE 1000",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "CHUNKING",
        "DSN",
        "STARTTLS",
    ] {
        assert!(
            r.contains(&format!("250-{ext}\r\n")) || r.contains(&format!("250 {ext}\r\n")),
            "{ext} missing: {r}"
        );
    }
    assert!(!r.contains("AUTH"), "no AUTH on MX: {r}");
    assert!(!r.contains("VRFY") && !r.contains("EXPN"));

    let mut sub = T::new(Listener::Submission, false);
    let r = sub.send(b"EHLO client.test\r\n");
    assert!(
        r.contains("STARTTLS") && !r.contains("AUTH"),
        "no AUTH before TLS: {r}"
    );
    sub.send(b"STARTTLS\r\n");
    sub.s.tls_started();
    let r = sub.send(b"EHLO client.test\r\n");
    assert!(
        r.contains("AUTH PLAIN LOGIN") || r.contains("AUTH LOGIN PLAIN"),
        "{r}"
    );
    assert!(!r.contains("STARTTLS"), "{r}");

    let mut subs = T::new(Listener::Submissions, true);
    let r = subs.send(b"HELO client.test\r\n");
    assert_eq!(r, "250 mail.example.test\r\n");
}

#[test]
fn mx_delivery_with_received_header_and_dot_unstuffing() {
    let mut t = T::new(Listener::Mx, false);
    t.send(b"EHLO client.test\r\n");
    assert_eq!(
        t.send(b"MAIL FROM:<bob@remote.test> SIZE=100\r\n"),
        "250 2.1.0 Ok\r\n"
    );
    assert_eq!(
        t.send(b"RCPT TO:<alice@example.test>\r\n"),
        "250 2.1.5 Ok\r\n"
    );
    assert_eq!(
        t.send(b"DATA\r\n"),
        "354 End data with <CR><LF>.<CR><LF>\r\n"
    );
    let r = t.send(b"Subject: hi\r\n\r\n..leading dot\r\nbody\r\n.\r\n");
    assert_eq!(r, "250 2.0.0 Ok: queued as ID1\r\n");
    let d = &t.delivered[0];
    assert_eq!(d.sender, "bob@remote.test");
    assert_eq!(d.local_users(), [1]);
    let msg = String::from_utf8(d.message.clone()).unwrap();
    assert!(msg.starts_with("Received: from client.test ([192.0.2.7])\r\n\tby mail.example.test (Postern) with ESMTP id "), "{msg}");
    assert!(msg.contains("\tfor <alice@example.test>;"), "{msg}");
    assert!(
        msg.ends_with("Subject: hi\r\n\r\n.leading dot\r\nbody\r\n"),
        "{msg:?}"
    );
    assert_eq!(t.send(b"QUIT\r\n"), "221 2.0.0 mail.example.test Bye\r\n");
    assert!(t.closed);
}

#[test]
fn pipelined_commands_are_answered_in_order() {
    let mut t = T::new(Listener::Mx, false);
    let r = t.send(
        b"EHLO c.test\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<nobody@example.test>\r\nRCPT TO:<x@elsewhere.test>\r\nDATA\r\nhello\r\n.\r\nNOOP\r\nRSET\r\nQUIT\r\n",
    );
    assert_eq!(
        codes(&r),
        ["250", "250", "250", "550", "554", "354", "250", "250", "250", "221"],
        "{r}"
    );
    assert!(r.contains("550 5.1.1 "), "{r}");
    assert!(r.contains("554 5.7.1 Relay access denied"), "{r}");
    assert_eq!(t.delivered.len(), 1);
    assert_eq!(t.delivered[0].sender, "");
}

#[test]
fn sequence_errors() {
    let mut t = T::new(Listener::Mx, false);
    assert!(t.send(b"MAIL FROM:<a@b.test>\r\n").starts_with("503 5.5.1"));
    t.send(b"EHLO c.test\r\n");
    assert!(t
        .send(b"RCPT TO:<alice@example.test>\r\n")
        .starts_with("503 5.5.1"));
    assert!(t.send(b"DATA\r\n").starts_with("503 5.5.1"));
    t.send(b"MAIL FROM:<a@b.test>\r\n");
    assert!(t.send(b"MAIL FROM:<a@b.test>\r\n").starts_with("503 5.5.1"));
    assert!(
        t.send(b"DATA\r\n").starts_with("554 5.5.1"),
        "no recipients"
    );
}

#[test]
fn vrfy_and_expn_are_disabled() {
    let mut t = T::new(Listener::Mx, false);
    t.send(b"EHLO c.test\r\n");
    assert!(t.send(b"VRFY alice\r\n").starts_with("252 2.5.2"));
    assert!(t.send(b"EXPN staff\r\n").starts_with("502 5.5.1"));
}

#[test]
fn auth_is_refused_before_tls_and_on_mx() {
    let mut sub = T::new(Listener::Submission, false);
    sub.send(b"EHLO c.test\r\n");
    assert!(sub
        .send(b"AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ=\r\n")
        .starts_with("530 5.7.0"));
    assert!(
        sub.send(b"MAIL FROM:<alice@example.test>\r\n")
            .starts_with("530 5.7.0"),
        "submission needs AUTH"
    );
    let mut mx = T::new(Listener::Mx, true);
    mx.send(b"EHLO c.test\r\n");
    assert!(mx
        .send(b"AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ=\r\n")
        .starts_with("502 5.5.1"));
}

#[test]
fn auth_login_uses_outlook_challenges() {
    let mut t = T::new(Listener::Submissions, true);
    t.send(b"EHLO c.test\r\n");
    assert_eq!(t.send(b"AUTH LOGIN\r\n"), "334 VXNlcm5hbWU6\r\n");
    let user = base64::engine::general_purpose::STANDARD.encode("alice@example.test");
    assert_eq!(
        t.send(format!("{user}\r\n").as_bytes()),
        "334 UGFzc3dvcmQ6\r\n"
    );
    let pass = base64::engine::general_purpose::STANDARD.encode("secret");
    assert_eq!(
        t.send(format!("{pass}\r\n").as_bytes()),
        "235 2.7.0 Authentication successful\r\n"
    );
    assert_eq!(t.s.user(), Some("alice@example.test"));
    assert!(
        t.send(b"AUTH LOGIN\r\n").starts_with("503 5.5.1"),
        "already authenticated"
    );
}

#[test]
fn auth_login_initial_response_authzid_and_throttling() {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut t = T::new(Listener::Submissions, true);
    t.send(b"EHLO c.test\r\n");
    // RFC 4954 §4: the initial response of LOGIN is the user name.
    let r = t.send(format!("AUTH LOGIN {}\r\n", b64("alice@example.test")).as_bytes());
    assert_eq!(r, "334 UGFzc3dvcmQ6\r\n");
    let r = t.send(format!("{}\r\n", b64("secret")).as_bytes());
    assert!(r.starts_with("235 2.7.0"), "{r}");
    // RFC 4616: an authorization identity naming someone else is refused.
    let mut t = T::new(Listener::Submissions, true);
    t.send(b"EHLO c.test\r\n");
    let r = t.send(
        format!(
            "AUTH PLAIN {}\r\n",
            b64("bob@example.test\0alice@example.test\0secret")
        )
        .as_bytes(),
    );
    assert!(r.starts_with("535 5.7.8"), "{r}");
    // An empty password is malformed PLAIN, not a login attempt.
    let r = t.send(format!("AUTH PLAIN {}\r\n", b64("\0alice@example.test\0")).as_bytes());
    assert!(r.starts_with("501 5.5.2"), "{r}");
    // The login service refused unverified: 454 4.7.0 (RFC 4954 §6), the session goes on.
    let r = t.send(format!("AUTH PLAIN {}\r\n", b64("\0busy@example.test\0secret")).as_bytes());
    assert!(r.starts_with("454 4.7.0"), "{r}");
    let r = t.send(format!("AUTH PLAIN {}\r\n", b64("\0alice@example.test\0secret")).as_bytes());
    assert!(r.starts_with("235 2.7.0"), "{r}");
}

#[test]
fn auth_plain_without_initial_response_and_failures() {
    let mut t = T::new(Listener::Submissions, true);
    t.send(b"EHLO c.test\r\n");
    assert_eq!(t.send(b"AUTH PLAIN\r\n"), "334 \r\n");
    let bad = base64::engine::general_purpose::STANDARD.encode("\0alice@example.test\0wrong");
    assert_eq!(
        t.send(format!("{bad}\r\n").as_bytes()),
        "535 5.7.8 Authentication credentials invalid\r\n"
    );
    assert!(t.send(b"AUTH PLAIN !!!\r\n").starts_with("501 5.5.2"));
    assert_eq!(t.send(b"AUTH LOGIN\r\n"), "334 VXNlcm5hbWU6\r\n");
    assert!(t.send(b"*\r\n").starts_with("501 5.0.0"), "cancelled");
    let r = t.send(b"AUTH CRAM-MD5\r\n");
    assert!(r.starts_with("504 5.5.4"), "{r}");
    let r = t.send(format!("AUTH PLAIN {bad}\r\n").as_bytes());
    assert!(
        r.starts_with("535 5.7.8") && r.contains("\r\n421 4.7.0 "),
        "{r}"
    );
    assert!(t.closed);
    // Three failed logins end a session even without other errors.
    let mut t = T::new(Listener::Submissions, true);
    t.send(b"EHLO c.test\r\n");
    let r =
        t.send(format!("AUTH PLAIN {bad}\r\nAUTH PLAIN {bad}\r\nAUTH PLAIN {bad}\r\n").as_bytes());
    assert!(
        r.ends_with("421 4.7.0 mail.example.test Too many failed logins, closing connection\r\n"),
        "{r}"
    );
    assert!(t.closed);
}

#[test]
fn starttls_discards_pipelined_commands() {
    let mut t = T::new(Listener::Mx, false);
    t.send(b"EHLO c.test\r\n");
    // CVE-2011-0411: commands injected after STARTTLS in the same packet.
    let r =
        t.send(b"STARTTLS\r\nMAIL FROM:<evil@attacker.test>\r\nRCPT TO:<alice@example.test>\r\n");
    assert_eq!(r, "220 2.0.0 Ready to start TLS\r\n");
    assert!(t.tls_requested);
    t.s.tls_started();
    assert_eq!(
        t.s.next_event(),
        Event::NeedInput,
        "nothing left to execute"
    );
    assert_eq!(t.out(), "");
    // The session starts over: EHLO is needed again.
    assert!(t.send(b"MAIL FROM:<a@b.test>\r\n").starts_with("503 5.5.1"));
    assert!(
        t.send(b"STARTTLS\r\n").starts_with("503 5.5.1"),
        "TLS already active"
    );
}

#[test]
fn bare_lf_or_cr_dot_does_not_end_data() {
    for smuggle in [
        &b"\n.\r\n"[..],
        b"\r.\r\n",
        b"\n.\n",
        b"\r\n.\n",
        b"\r\n.\r",
    ] {
        let mut t = T::new(Listener::Mx, false);
        t.send(b"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n");
        let mut data = b"Subject: one\r\n\r\nfirst".to_vec();
        data.extend_from_slice(smuggle);
        data.extend_from_slice(b"MAIL FROM:<evil@b.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\n.\r\n");
        let r = t.send(&data);
        assert_eq!(r, "250 2.0.0 Ok: queued as ID1\r\n", "smuggle {smuggle:?}");
        assert_eq!(t.delivered.len(), 1);
        let msg = String::from_utf8_lossy(&t.delivered[0].message).into_owned();
        assert!(
            msg.contains("MAIL FROM:<evil@b.test>"),
            "the smuggled part stays in the first message"
        );
        // Stored with canonical line endings (RFC 5321 §2.3.8), so it is relayed that way.
        assert!(!crate::crlf::has_bare(&t.delivered[0].message), "{msg:?}");
        assert!(msg.contains("first\r\n"), "{msg:?}");
    }
}

#[test]
fn bare_line_endings_are_refused_when_configured() {
    let cfg = Arc::new(SessionConfig {
        bare_line_endings: BareLineEndings::Reject,
        ..(*config()).clone()
    });
    let mut t = T::with_config(cfg, Listener::Mx, false);
    t.send(b"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n");
    let r = t.send(b"Subject: one\r\n\r\nfirst\n.\r\nsecond\r\n.\r\n");
    assert!(r.starts_with("550 5.5.2 "), "{r}");
    let r = t.send(
        b"MAIL FROM:<a@b.test>\r\nRCPT TO:<alice@example.test>\r\nBDAT 8 LAST\r\nx\r\ny\rz\r\n",
    );
    assert_eq!(codes(&r), ["250", "250", "550"], "{r}");
    // Canonical mail still goes through.
    let r =
        t.send(b"MAIL FROM:<a@b.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nfine\r\n.\r\n");
    assert_eq!(codes(&r), ["250", "250", "354", "250"]);
    assert_eq!(t.delivered.len(), 1);
}

#[test]
fn oversized_data_is_drained_then_refused() {
    let mut t = T::new(Listener::Mx, false);
    t.send(b"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n");
    let line = format!("{}\r\n", "x".repeat(98));
    let mut r = String::new();
    for _ in 0..50 {
        r.push_str(&t.send(line.as_bytes()));
    }
    assert_eq!(r, "", "no reply before the end of data");
    // The buffer never holds much more than the limit.
    let held = t.s.txn.as_ref().map_or(0, |x| x.body.held()) + t.receiving.len();
    assert!(held <= 1000 + 400, "held {held} bytes");
    assert_eq!(t.send(b".\r\n"), "552 5.3.4 Message too big\r\n");
    assert!(t.delivered.is_empty());
    // The session goes on.
    let r =
        t.send(b"MAIL FROM:<a@b.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nsmall\r\n.\r\n");
    assert_eq!(codes(&r), ["250", "250", "354", "250"]);
    assert!(t
        .send(b"MAIL FROM:<a@b.test> SIZE=5000\r\n")
        .starts_with("552 5.3.4"));
}

#[test]
fn bdat_chunks() {
    let mut t = T::new(Listener::Mx, false);
    t.send(b"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<alice@example.test>\r\n");
    assert_eq!(
        t.send(b"BDAT 10\r\nSubject: x"),
        "250 2.0.0 10 octets received\r\n"
    );
    // A chunk may contain anything, including lines that look like commands.
    let r = t.send(b"BDAT 13 LAST\r\n\r\n\r\nQUIT\r\n.\r\n");
    assert_eq!(r, "250 2.0.0 Ok: queued as ID1\r\n");
    assert!(!t.closed);
    assert!(t.delivered[0]
        .message
        .ends_with(b"Subject: x\r\n\r\nQUIT\r\n.\r\n"));
    // BDAT without recipients: the chunk is still consumed, not executed.
    let r = t.send(b"BDAT 6 LAST\r\nQUIT\r\n");
    assert!(r.starts_with("503 5.5.1"), "{r}");
    assert!(!t.closed);
    // DATA after BDAT in one transaction is refused.
    t.send(b"MAIL FROM:<a@b.test>\r\nRCPT TO:<alice@example.test>\r\nBDAT 1\r\nx");
    assert!(t.send(b"DATA\r\n").starts_with("503 5.5.1"));
}

#[test]
fn bdat_over_the_limit_is_refused_after_reading_it() {
    let mut t = T::new(Listener::Mx, false);
    t.send(b"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<alice@example.test>\r\n");
    let mut chunk = b"BDAT 2000 LAST\r\n".to_vec();
    chunk.extend(std::iter::repeat_n(b'y', 2000));
    chunk.extend_from_slice(b"NOOP\r\n");
    let r = t.send(&chunk);
    assert_eq!(r, "552 5.3.4 Message too big\r\n250 2.0.0 Ok\r\n");
    assert!(t.delivered.is_empty());
}

#[test]
fn recipient_limit_and_full_mailbox() {
    let mut t = T::new(Listener::Mx, false);
    t.send(b"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\n");
    assert_eq!(
        t.send(b"RCPT TO:<full@example.test>\r\n"),
        "452 4.2.2 Mailbox full\r\n"
    );
    let r = t.send(b"RCPT TO:<alice@example.test>\r\nRCPT TO:<alice+tag@example.test>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<alice@example.test>\r\n");
    assert_eq!(codes(&r), ["250", "250", "250", "452"], "{r}");
    assert!(r.contains("452 4.5.3 Too many recipients"));
    t.send(b"DATA\r\nx\r\n.\r\n");
    assert_eq!(t.delivered[0].local_users(), [1], "one copy per user");
    assert!(
        !t.delivered[0].message.windows(4).any(|w| w == b"for "),
        "no `for` with several recipients"
    );
}

#[test]
fn long_lines_are_refused_and_skipped() {
    let mut t = T::new(Listener::Mx, false);
    t.send(b"EHLO c.test\r\n");
    let long = format!("NOOP {}\r\nNOOP\r\n", "a".repeat(600));
    assert_eq!(
        t.send(long.as_bytes()),
        "500 5.5.2 Line too long\r\n250 2.0.0 Ok\r\n"
    );
    // Split over reads: the tail of a long line is not taken as a command.
    let r = t.send(format!("NOOP {}", "b".repeat(600)).as_bytes());
    assert_eq!(r, "500 5.5.2 Line too long\r\n");
    assert_eq!(t.send(b"bbbb QUIT\r\nNOOP\r\n"), "250 2.0.0 Ok\r\n");
    assert!(!t.closed);
}

#[test]
fn too_many_errors_close_the_session() {
    let mut t = T::new(Listener::Mx, false);
    let r = t.send(b"FOO\r\nBAR\r\nBAZ\r\nQUX\r\nQUUX\r\nNOOP\r\n");
    assert_eq!(codes(&r), ["500", "500", "500", "500", "500", "421"], "{r}");
    assert!(t.closed);
}

#[test]
fn submission_enforces_sender_ownership_and_adds_missing_headers() {
    let mut t = T::logged_in();
    assert!(t
        .send(b"MAIL FROM:<bob@example.test>\r\n")
        .starts_with("553 5.7.1"));
    assert_eq!(
        t.send(b"MAIL FROM:<info@example.test>\r\n"),
        "250 2.1.0 Ok\r\n"
    );
    assert_eq!(
        t.send(b"RCPT TO:<carol@remote.test>\r\n"),
        "250 2.1.5 Ok\r\n",
        "relay for a logged-in user"
    );
    let r = t.send(b"DATA\r\nSubject: hi\r\n\r\nbody\r\n.\r\n");
    assert!(r.ends_with("250 2.0.0 Ok: queued as ID1\r\n"));
    let d = &t.delivered[0];
    assert_eq!(d.remote_addresses().0, ["carol@remote.test"]);
    assert_eq!(
        d.user.as_ref().map(|u| u.address.as_str()),
        Some("alice@example.test")
    );
    let msg = String::from_utf8_lossy(&d.message).into_owned();
    assert!(msg.contains(" with ESMTPSA id "), "{msg}");
    assert!(
        msg.contains("\r\nDate: ") && msg.contains("\r\nMessage-ID: <"),
        "{msg}"
    );
}

#[test]
fn mail_loops_are_refused() {
    let mut t = T::new(Listener::Mx, false);
    t.send(b"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n");
    let mut data = "Received: x\r\n".repeat(50);
    data.push_str("\r\nbody\r\n.\r\n");
    assert!(t.send(data.as_bytes()).starts_with("554 5.4.6"));
    assert!(t.delivered.is_empty());
}

#[test]
fn shutdown_replies_421() {
    let mut t = T::new(Listener::Mx, false);
    t.s.shutdown(Reply::new(421, (4, 4, 2), "mail.example.test Timeout"));
    assert_eq!(t.out(), "421 4.4.2 mail.example.test Timeout\r\n");
    assert!(t.s.is_closed());
    assert_eq!(t.s.next_event(), Event::Close);
}

#[test]
fn bare_cr_in_a_command_line_is_refused() {
    let mut t = T::new(Listener::Mx, false);
    assert!(t.send(b"EHLO a\rb\r\n").starts_with("501 5.5.2 "));
    assert_eq!(t.s.helo, None);
    // Also when the CR ends one read and the next begins with something else.
    assert_eq!(t.send(b"HELO a\r"), "");
    assert!(t.send(b"b\r\n").starts_with("501 5.5.2 "));
    assert_eq!(t.s.helo, None);
    // The session goes on with the next line.
    assert!(t.send(b"EHLO c.test\r\n").starts_with("250-"));
    assert_eq!(t.s.helo.as_deref(), Some("c.test"));
}

#[test]
fn bare_postmaster_is_accepted_in_any_case() {
    let mut t = T::new(Listener::Mx, false);
    t.send(b"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\n");
    let r = t.send(b"RCPT TO:<Postmaster>\r\nRCPT TO:<POSTMASTER>\r\nRCPT TO:<postmaster@>\r\n");
    assert_eq!(codes(&r), ["250", "250", "501"], "{r}");
    t.send(b"DATA\r\nSubject: report\r\n\r\nx\r\n.\r\n");
    let d = &t.delivered[0];
    assert_eq!(d.recipients[0].address, "postmaster");
    assert_eq!(d.local_users(), [2]);
}

#[test]
fn quoted_local_parts_are_accepted_and_kept_quoted() {
    let mut t = T::new(Listener::Mx, false);
    t.send(b"EHLO c.test\r\n");
    let r = t.send(b"MAIL FROM:<\"john q. public\"@b.test>\r\nRCPT TO:<\"alice\"@example.test>\r\nRCPT TO:<\"no body\"@example.test>\r\nRCPT TO:<\"x\\\"y\"@example.test>\r\n");
    assert_eq!(codes(&r), ["250", "250", "550", "550"], "{r}");
    t.send(b"DATA\r\nSubject: q\r\n\r\nx\r\n.\r\n");
    let d = &t.delivered[0];
    assert_eq!(d.sender, "\"john q. public\"@b.test");
    assert_eq!(d.recipients[0].address, "alice@example.test");
    // Control characters stay refused, quoted or not.
    let r = t.send(b"MAIL FROM:<\"a\x01b\"@b.test>\r\n");
    assert!(r.starts_with("501"), "{r}");
}

#[test]
fn wire_form_quotes_what_is_not_a_dot_string() {
    use super::envelope::wire_form;
    assert_eq!(wire_form("alice@d.test"), "alice@d.test");
    assert_eq!(wire_form("a.b+c@d.test"), "a.b+c@d.test");
    assert_eq!(wire_form("alice smith@d.test"), "\"alice smith\"@d.test");
    assert_eq!(wire_form("a..b@d.test"), "\"a..b\"@d.test");
    assert_eq!(wire_form("x\"y\\z@d.test"), "\"x\\\"y\\\\z\"@d.test");
    assert_eq!(wire_form(""), "");
}

#[test]
fn a_message_is_in_progress_from_data_or_bdat_to_its_end() {
    let mut t = T::new(Listener::Mx, false);
    t.send(b"EHLO client.test\r\nMAIL FROM:<b@remote.test>\r\nRCPT TO:<alice@example.test>\r\n");
    assert!(!t.s.in_message(), "an envelope alone is not a message");
    t.send(b"DATA\r\nSubject: x\r\n");
    assert!(t.s.in_message());
    assert_eq!(
        t.send(b"\r\nbody\r\n.\r\n"),
        "250 2.0.0 Ok: queued as ID1\r\n"
    );
    assert!(!t.s.in_message());
    t.send(b"MAIL FROM:<b@remote.test>\r\nRCPT TO:<alice@example.test>\r\nBDAT 3\r\nab\n");
    assert!(t.s.in_message(), "between chunks");
    // An empty last chunk is answered at once, without waiting for more input.
    assert_eq!(
        t.send(b"BDAT 0 LAST\r\n"),
        "250 2.0.0 Ok: queued as ID1\r\n"
    );
    assert!(!t.s.in_message());
    let msg = String::from_utf8_lossy(&t.delivered[1].message).into_owned();
    assert!(msg.ends_with(" +0000\r\nab\r\n"), "{msg:?}");
    // A failed BDAT transaction is not kept alive on shutdown.
    let r = t.send(b"MAIL FROM:<b@remote.test>\r\nRCPT TO:<nobody@example.test>\r\nBDAT 2\r\nxy");
    assert!(r.ends_with("554 5.5.1 No valid recipients\r\n"), "{r}");
    assert!(!t.s.in_message());
}

mod dsn;
mod streaming;
