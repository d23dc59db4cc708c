//! SMTP smuggling (CVE-2023-51764 class) end to end, with Postfix as the receiving MTA: messages
//! whose data hides `<LF>.<CR><LF>`-style endings followed by a forged transaction reach Postern
//! through the MX (an alias forwarding to a remote address) and through submission; Postern relays
//! them to a private Postfix instance. With `smtpd_forbid_bare_newline = no` (which ends data at
//! such sequences) exactly one message per submission must arrive, never the forged second one;
//! with `= reject` (which refuses any bare LF) every relayed message must be accepted. Submitted
//! mail must still carry a valid DKIM signature over what was sent.

mod common;
mod smtp_support;

use std::net::SocketAddr;

use base64::Engine;
use common::{Db, Instance, Server};
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator};
use smtp_support::postfix::Postfix;
use smtp_support::{inbox, relaying_server, resolver, wait_queue_empty, Raw, PASSWORD};

both_backends!(
    no_forged_message_reaches_a_lenient_receiver,
    a_strict_receiver_takes_every_relayed_message,
    bare_line_endings_can_be_refused,
    quoted_local_parts_are_relayed
);

/// The line-ending tricks that end DATA early at one receiver or another.
const SMUGGLES: [&[u8]; 5] = [b"\n.\n", b"\n.\r\n", b"\r.\r\n", b"\r\n.\n", b"\r\n.\r"];

/// Postern relaying to `postfix` (see [`relaying_server`]) with the user alice.
async fn postern(db: Db, postfix: &Postfix, more: &str) -> (Instance, Server, SocketAddr) {
    relaying_server(db, postfix.port, &["alice@example.test"], more).await
}

/// A message whose data holds `smuggle` followed by a complete forged transaction.
fn smuggling_data(from: &str, subject: &str, smuggle: &[u8]) -> Vec<u8> {
    let mut data = format!("From: {from}\r\nTo: ok@remote.test\r\nSubject: {subject}\r\n\r\nouter")
        .into_bytes();
    data.extend_from_slice(smuggle);
    data.extend_from_slice(
        b"MAIL FROM:<ceo@example.test>\r\nRCPT TO:<victim@remote.test>\r\nDATA\r\n\
          From: ceo@example.test\r\nSubject: forged\r\n\r\nPay the invoice.\r\n.\r\n",
    );
    data
}

/// Sends `data` (already ending with CRLF.CRLF) over a raw session; returns the final reply.
fn send_raw(c: &mut Raw, from: &str, rcpt: &str, data: &[u8]) -> String {
    assert!(c.cmd(&format!("MAIL FROM:<{from}>")).starts_with("250"));
    assert!(c.cmd(&format!("RCPT TO:<{rcpt}>")).starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(data);
    c.reply()
}

/// Every smuggling variant once through the MX alias and once through submission; returns the
/// Subjects sent.
fn send_every_variant(server: &Server) -> Vec<String> {
    let mut subjects = Vec::new();
    let mut mx = Raw::connect(server.addr("smtp"));
    assert!(mx.cmd("EHLO client.test").starts_with("250"));
    let mut sub = Raw::connect(server.addr("submission"));
    assert!(sub.cmd("EHLO client.test").starts_with("250"));
    let plain = base64::engine::general_purpose::STANDARD
        .encode(format!("\0alice@example.test\0{PASSWORD}"));
    assert!(sub.cmd(&format!("AUTH PLAIN {plain}")).starts_with("235"));
    for (i, smuggle) in SMUGGLES.iter().enumerate() {
        let subject = format!("via mx {i}");
        let data = smuggling_data("someone@elsewhere.test", &subject, smuggle);
        let r = send_raw(&mut mx, "someone@elsewhere.test", "fwd@example.test", &data);
        assert!(r.starts_with("250"), "{subject}: {r}");
        subjects.push(subject);
        let subject = format!("via submission {i}");
        let data = smuggling_data("alice@example.test", &subject, smuggle);
        let r = send_raw(&mut sub, "alice@example.test", "ok@remote.test", &data);
        assert!(r.starts_with("250"), "{subject}: {r}");
        subjects.push(subject);
    }
    mx.cmd("QUIT");
    sub.cmd("QUIT");
    subjects
}

/// The value of the first `Subject:` header field.
fn subject(message: &str) -> &str {
    let head = message.split("\r\n\r\n").next().unwrap_or("");
    head.split('\n')
        .find_map(|l| l.strip_prefix("Subject: "))
        .unwrap_or("")
        .trim_end()
}

/// Delivers every variant to Postfix; checks that exactly the sent messages arrived, each with
/// the smuggled text as body and nothing forged, and that submitted ones verify (DKIM).
async fn relays_each_message_once(db: Db, bare_newline: &str) {
    let postfix = Postfix::start(bare_newline);
    let (inst, server, dns) = postern(db, &postfix, "").await;
    let mut sent = send_every_variant(&server);
    wait_queue_empty(&inst).await;
    let delivered = postfix.wait_delivered(sent.len());
    let mut got: Vec<String> = delivered.iter().map(|m| subject(m).to_owned()).collect();
    got.sort();
    sent.sort();
    assert_eq!(got, sent, "exactly the sent messages, no forged one");
    let log = postfix.log();
    assert!(!log.contains("victim@remote.test"), "{log}");
    assert!(
        inbox(&inst, "alice@example.test").await.is_empty(),
        "no bounce"
    );
    let authenticator = MessageAuthenticator(resolver(dns));
    for m in &delivered {
        // The smuggled commands arrive as body text of the one message.
        assert!(m.contains("\r\nMAIL FROM:<ceo@example.test>\r\n"), "{m}");
        if subject(m).starts_with("via submission") {
            let parsed = AuthenticatedMessage::parse(m.as_bytes()).expect("parsable");
            let results = authenticator.verify_dkim(&parsed).await;
            assert!(!results.is_empty(), "signed: {m}");
            for r in &results {
                assert_eq!(r.result(), &DkimResult::Pass, "{r:?}\n{m}");
            }
        }
    }
    assert!(server.stop().success());
}

async fn no_forged_message_reaches_a_lenient_receiver(db: Db) {
    relays_each_message_once(db, "no").await;
}

async fn a_strict_receiver_takes_every_relayed_message(db: Db) {
    relays_each_message_once(db, "reject").await;
}

/// `[smtp] bare_line_endings = "reject"`: such mail is refused at the end of DATA, on the MX and
/// on submission, and nothing reaches Postfix.
async fn bare_line_endings_can_be_refused(db: Db) {
    let postfix = Postfix::start("no");
    let (inst, server, _) = postern(db, &postfix, "bare_line_endings = \"reject\"").await;
    let mut mx = Raw::connect(server.addr("smtp"));
    assert!(mx.cmd("EHLO client.test").starts_with("250"));
    for smuggle in SMUGGLES {
        let data = smuggling_data("someone@elsewhere.test", "refused", smuggle);
        let r = send_raw(&mut mx, "someone@elsewhere.test", "fwd@example.test", &data);
        assert!(r.starts_with("550 5.5.2 "), "{r}");
    }
    let data = b"Subject: clean\r\n\r\nfine\r\n.\r\n";
    let r = send_raw(&mut mx, "someone@elsewhere.test", "fwd@example.test", data);
    assert!(r.starts_with("250"), "{r}");
    wait_queue_empty(&inst).await;
    let delivered = postfix.wait_delivered(1);
    assert_eq!(delivered.len(), 1);
    assert_eq!(subject(&delivered[0]), "clean");
    assert!(server.stop().success());
}

/// RFC 5321 §4.1.2 quoted local parts: a submitted message to `"john q. public"@remote.test`
/// reaches Postfix with the quotes intact, from a quoted sender the MX accepted too.
async fn quoted_local_parts_are_relayed(db: Db) {
    let postfix = Postfix::start("reject");
    let (inst, server, _) = postern(db, &postfix, "").await;
    let mut sub = Raw::connect(server.addr("submission"));
    assert!(sub.cmd("EHLO client.test").starts_with("250"));
    let plain = base64::engine::general_purpose::STANDARD
        .encode(format!("\0alice@example.test\0{PASSWORD}"));
    assert!(sub.cmd(&format!("AUTH PLAIN {plain}")).starts_with("235"));
    let data = b"From: alice@example.test\r\nSubject: quoted\r\n\r\nhi\r\n.\r\n";
    let r = send_raw(
        &mut sub,
        "alice@example.test",
        "\"john q. public\"@remote.test",
        data,
    );
    assert!(r.starts_with("250"), "{r}");
    // The MX takes a quoted sender and forwards through the alias.
    let mut mx = Raw::connect(server.addr("smtp"));
    assert!(mx.cmd("EHLO client.test").starts_with("250"));
    let data = b"Subject: from quoted\r\n\r\nhi\r\n.\r\n";
    let r = send_raw(
        &mut mx,
        "\"jane doe\"@elsewhere.test",
        "fwd@example.test",
        data,
    );
    assert!(r.starts_with("250"), "{r}");
    wait_queue_empty(&inst).await;
    let delivered = postfix.wait_delivered(2);
    assert_eq!(delivered.len(), 2);
    let log = postfix.log();
    assert!(log.contains("to=<\"john q. public\"@remote.test>"), "{log}");
    assert!(log.contains("from=<\"jane doe\"@elsewhere.test>"), "{log}");
    assert!(server.stop().success());
}
