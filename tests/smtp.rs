//! End-to-end tests of inbound SMTP against the real binary: MX delivery to users, aliases,
//! catch-all and plus-addresses, submission over STARTTLS and implicit TLS, and the security rules
//! (no open relay, sender ownership, STARTTLS injection, SMTP smuggling, AUTH lockout, size
//! limits, quotas), on SQLite and PostgreSQL.

mod common;
mod smtp_support;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::Db;
use smtp_support::{hosted, inbox, python, swaks, transcript, wait_inbox, Raw, TestDns, PASSWORD};

both_backends!(
    delivers_to_users_aliases_catch_all_and_plus_addresses,
    submission_over_starttls_and_implicit_tls,
    accepted_message_survives_kill_9,
    sigterm_lets_the_message_in_progress_finish,
    quota_is_enforced_at_rcpt_and_data,
    chunking_delivers,
    postmaster_and_abuse_reach_the_role_mailbox,
    address_literals_where_configured,
);

/// Python smtplib: log in and send one message; prints the refused recipients as a dict.
const SUBMIT: &str = r#"
import smtplib, ssl, sys
port, mode, frm, rcpts = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4].split(',')
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
if mode == 'implicit':
    s = smtplib.SMTP_SSL('127.0.0.1', port, context=ctx, timeout=20)
else:
    s = smtplib.SMTP('127.0.0.1', port, timeout=20)
    s.ehlo('client.test')
    assert 'auth' not in s.esmtp_features, 'AUTH offered before TLS'
    s.starttls(context=ctx)
s.ehlo('client.test')
assert 'PLAIN' in s.esmtp_features['auth'] and 'LOGIN' in s.esmtp_features['auth'], s.esmtp_features
s.login('alice@example.test', sys.argv[5])
msg = 'From: Alice <%s>\r\nTo: %s\r\nSubject: via %s\r\n\r\nHello from smtplib.\r\n' % (frm, ', '.join(rcpts), mode)
print(s.sendmail(frm, rcpts, msg))
s.quit()
"#;

async fn delivers_to_users_aliases_catch_all_and_plus_addresses(db: Db) {
    let (inst, server) = hosted(db, "").await;
    let mx = server.addr("smtp");
    for (to, subject) in [
        ("alice@example.test", "direct"),
        ("info@example.test", "alias"),
        ("random@example.test", "catch-all"),
        ("Alice+News@Example.TEST", "plus"),
    ] {
        let o = swaks(
            mx,
            &[
                "--from",
                "sender@remote.test",
                "--to",
                to,
                "--header",
                &format!("Subject: {subject}"),
            ],
        );
        assert!(o.status.success(), "{to}: {}", transcript(&o));
        assert!(
            transcript(&o).contains("<-  250 2.0.0 Ok: queued as"),
            "{}",
            transcript(&o)
        );
    }
    let alice = inbox(&inst, "alice@example.test").await;
    let subjects: Vec<bool> = ["direct", "alias", "plus"]
        .iter()
        .map(|s| alice.iter().any(|m| m.contains(&format!("Subject: {s}"))))
        .collect();
    assert_eq!(alice.len(), 3, "{alice:#?}");
    assert_eq!(subjects, [true, true, true]);
    let bob = inbox(&inst, "bob@example.test").await;
    assert_eq!(bob.len(), 2, "alias fan-out and catch-all");
    assert!(bob.iter().any(|m| m.contains("Subject: catch-all")));
    // The checks' results (RFC 8601) on top, then the trace header (RFC 5321 §4.4) from this
    // server with the client's HELO and address.
    let first = &alice[0];
    assert!(
        first.starts_with("Authentication-Results: mail.example.test;"),
        "{first}"
    );
    assert!(first.contains("\r\nReceived: from client.test ([127.0.0.1])\r\n\tby mail.example.test (Postern) with ESMTP id "), "{first}");
    assert!(first.contains("for <alice@example.test>;"), "{first}");
    assert!(server.stop().success());
}

#[tokio::test]
async fn rejects_unknown_users_and_relaying_from_any_address() {
    let (inst, server) = hosted(Db::Sqlite, "").await;
    let mx = server.addr("smtp");
    inst.ok(&["alias", "remove", "@example.test"], "");
    let o = swaks(
        mx,
        &["--from", "a@remote.test", "--to", "nobody@example.test"],
    );
    assert!(!o.status.success());
    assert!(transcript(&o).contains("550 5.1.1"), "{}", transcript(&o));
    // No open relay, whichever address the client connects from.
    for source in [
        Ipv4Addr::LOCALHOST,
        Ipv4Addr::new(127, 0, 0, 2),
        Ipv4Addr::new(127, 0, 0, 3),
    ] {
        let mut c = Raw::connect_from(mx, source);
        assert!(c.cmd("EHLO client.test").starts_with("250"));
        assert!(c.cmd("MAIL FROM:<alice@example.test>").starts_with("250"));
        let r = c.cmd("RCPT TO:<victim@elsewhere.test>");
        assert!(r.starts_with("554 5.7.1"), "{source}: {r}");
        assert!(
            c.cmd("DATA").starts_with("554 5.5.1"),
            "no recipients, no data"
        );
    }
    // Submission without AUTH relays nothing either.
    let mut c = Raw::connect(server.addr("submission"));
    c.cmd("EHLO client.test");
    assert!(c
        .cmd("MAIL FROM:<alice@example.test>")
        .starts_with("530 5.7.0"));
    // VRFY and EXPN reveal nothing.
    let mut c = Raw::connect(mx);
    c.cmd("EHLO client.test");
    assert!(c.cmd("VRFY alice").starts_with("252"));
    assert!(c.cmd("EXPN info").starts_with("502"));
    let store = postern_store::Store::open(&inst.db.url).await.unwrap();
    assert!(
        store.list_queue().await.unwrap().is_empty(),
        "nothing queued"
    );
    store.close().await;
}

async fn submission_over_starttls_and_implicit_tls(db: Db) {
    // A DNS server that knows no domain: the remote recipient is queued, then bounced.
    let dns = TestDns::start(Default::default());
    let (inst, server) = hosted(db, &format!("[smtp]\nresolver = \"{}\"\n", dns.addr)).await;
    let port = server.addr("submission").port().to_string();
    let (ok, out) = python(
        SUBMIT,
        &[
            &port,
            "starttls",
            "alice@example.test",
            "bob@example.test,carol@remote.test",
            PASSWORD,
        ],
    );
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "{}", "every recipient accepted");
    let port = server.addr("submissions").port().to_string();
    let (ok, out) = python(
        SUBMIT,
        &[
            &port,
            "implicit",
            "info@example.test",
            "bob@example.test",
            PASSWORD,
        ],
    );
    assert!(ok, "sending as an alias of one's own: {out}");
    let bob = inbox(&inst, "bob@example.test").await;
    assert_eq!(bob.len(), 2);
    assert!(bob[0].contains("with ESMTPSA id"), "{}", bob[0]);
    assert!(bob[0].contains("Subject: via starttls") && bob[1].contains("Subject: via implicit"));
    assert!(
        bob[0].contains("\r\nMessage-ID: <") && bob[0].contains("\r\nDate: "),
        "added by submission"
    );
    let alice = wait_inbox(&inst, "alice@example.test", 1).await;
    assert!(
        alice[0].contains("Final-Recipient: rfc822; carol@remote.test")
            && alice[0].contains("Status: 5.1.2"),
        "{}",
        alice[0]
    );
    assert!(server.stop().success());
}

#[tokio::test]
async fn auth_is_refused_before_tls_and_senders_must_be_owned() {
    let (_inst, server) = hosted(Db::Sqlite, "").await;
    let mut c = Raw::connect(server.addr("submission"));
    let ehlo = c.cmd("EHLO client.test");
    assert!(
        ehlo.contains("STARTTLS") && !ehlo.contains("AUTH"),
        "{ehlo}"
    );
    let r = c.cmd("AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABjb3JyZWN0IGhvcnNl");
    assert!(r.starts_with("530 5.7.0"), "{r}");
    let mut c = Raw::connect(server.addr("smtp"));
    c.cmd("EHLO client.test");
    assert!(
        c.cmd("AUTH LOGIN").starts_with("502"),
        "no AUTH on the MX port"
    );

    const OWNERSHIP: &str = r#"
import smtplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP_SSL('127.0.0.1', int(sys.argv[1]), context=ctx, timeout=20)
s.login('alice@example.test', sys.argv[2])
for frm in ['bob@example.test', 'someone@remote.test', 'random@example.test', 'alice+tag@example.test', 'info@example.test', '']:
    code, text = s.mail(frm)
    print(frm or '<>', code)
    s.rset()
"#;
    let port = server.addr("submissions").port().to_string();
    let (ok, out) = python(OWNERSHIP, &[&port, PASSWORD]);
    assert!(ok, "{out}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "bob@example.test 553",
            "someone@remote.test 553",
            "random@example.test 553",
            "alice+tag@example.test 250",
            "info@example.test 250",
            "<> 250",
        ],
        "a catch-all does not make every address alice's"
    );
}

#[tokio::test]
async fn starttls_command_injection_is_discarded() {
    let (inst, server) = hosted(Db::Sqlite, "").await;
    const INJECT: &str = r#"
import socket, ssl, sys
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=20)
f = s.makefile('rb')
def reply(f):
    lines = []
    while True:
        l = f.readline().decode()
        lines.append(l.strip())
        if len(l) < 4 or l[3] == ' ':
            return ' | '.join(lines)
print('greeting', reply(f))
s.sendall(b'EHLO client.test\r\n'); print('ehlo', reply(f).split(' | ')[0])
# CVE-2011-0411: commands in the same packet as STARTTLS.
s.sendall(b'STARTTLS\r\nMAIL FROM:<evil@attacker.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nSubject: injected\r\n\r\n.\r\n')
print('starttls', reply(f))
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
t = ctx.wrap_socket(s, server_hostname='mail.example.test')
g = t.makefile('rb')
t.sendall(b'NOOP\r\n'); print('first', reply(g))
t.sendall(b'MAIL FROM:<a@remote.test>\r\n'); print('mail', reply(g))
"#;
    let port = server.addr("smtp").port().to_string();
    let (ok, out) = python(INJECT, &[&port]);
    assert!(ok, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[2].starts_with("starttls 220 2.0.0"), "{out}");
    assert_eq!(
        lines[3], "first 250 2.0.0 Ok",
        "the first reply under TLS answers NOOP, not an injected command: {out}"
    );
    assert!(
        lines[4].starts_with("mail 503 5.5.1"),
        "EHLO needed again after STARTTLS: {out}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(inbox(&inst, "alice@example.test").await.is_empty());
}

#[tokio::test]
async fn smtp_smuggling_is_not_end_of_data() {
    let (inst, server) = hosted(Db::Sqlite, "").await;
    let mx = server.addr("smtp");
    for (i, dot) in ["\n.\r\n", "\r.\r\n", "\n.\n", "\r\n.\n"]
        .into_iter()
        .enumerate()
    {
        let mut c = Raw::connect(mx);
        c.cmd("EHLO client.test");
        c.cmd("MAIL FROM:<a@remote.test>");
        c.cmd("RCPT TO:<alice@example.test>");
        assert!(c.cmd("DATA").starts_with("354"));
        let payload = format!(
            "Subject: real {i}\r\n\r\nhello{dot}MAIL FROM:<admin@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n"
        );
        c.send(payload.as_bytes());
        let r = c.reply();
        assert!(r.starts_with("250 2.0.0"), "{dot:?}: {r}");
        assert!(
            c.cmd("QUIT").starts_with("221"),
            "nothing else was answered: {dot:?}"
        );
    }
    let alice = inbox(&inst, "alice@example.test").await;
    assert_eq!(alice.len(), 4);
    assert!(
        alice
            .iter()
            .all(|m| m.contains("MAIL FROM:<admin@example.test>")),
        "smuggled text stays inside"
    );
    assert!(
        inbox(&inst, "bob@example.test").await.is_empty(),
        "no second message"
    );
}

/// The shared login limits seen through SMTP AUTH: a guessing address is refused unverified
/// once its failures are spent (454 4.7.0, RFC 4954 §6), guessing one account from addresses
/// with failures is slowed (here: refused at once, `max_slowdown_secs = 0`), and the account is
/// never locked for a clean address.
#[tokio::test]
async fn auth_guessing_is_limited_per_address_and_slowed_per_account() {
    let extra = "[login]\nfailures_per_address = 3\naccount_attempts_per_minute = 2\nmax_slowdown_secs = 0\n";
    let (_inst, server) = hosted(Db::Sqlite, extra).await;
    let addr = server.addr("submissions");
    const LOGIN: &str = r#"
import smtplib, ssl, sys, time
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
src, user, pw = sys.argv[2], sys.argv[3], sys.argv[4]
s = smtplib.SMTP_SSL('127.0.0.1', int(sys.argv[1]), context=ctx, timeout=30, source_address=(src, 0))
t = time.time()
s.ehlo('client.test')
s.user, s.password = user, pw
try:
    code = s.auth('PLAIN', s.auth_plain)[0]
except smtplib.SMTPAuthenticationError as e:
    code = e.smtp_code
except smtplib.SMTPResponseException as e:
    code = e.smtp_code
print(code, round(time.time() - t, 2))
"#;
    let port = addr.port().to_string();
    let login = |src: &str, user: &str, pw: &str| -> (u16, f64) {
        let (ok, out) = python(LOGIN, &[&port, src, user, pw]);
        assert!(ok, "{out}");
        let mut it = out.split_whitespace();
        (
            it.next().unwrap().parse().unwrap(),
            it.next().unwrap().parse().unwrap(),
        )
    };
    assert_eq!(login("127.0.0.1", "alice@example.test", "guess1").0, 535);
    assert_eq!(login("127.0.0.1", "alice@example.test", "guess2").0, 535);
    assert_eq!(login("127.0.0.1", "alice@example.test", "guess3").0, 535);
    // The address's failures are spent: even the right password is refused, without being checked.
    assert_eq!(login("127.0.0.1", "alice@example.test", PASSWORD).0, 454);
    assert_eq!(login("127.0.0.1", "bob@example.test", PASSWORD).0, 454);
    // Other addresses are unaffected.
    let (code, took) = login("127.0.0.2", "alice@example.test", PASSWORD);
    assert_eq!(code, 235);
    assert!(took < 10.0, "not slowed down: {took}s");
    // Per account: a guesser rotating addresses that already failed elsewhere gets bob's two
    // attempts per minute, then "try again later"...
    for i in 0..3 {
        let src = format!("127.0.1.{}", 10 + i);
        assert_eq!(
            login(&src, "nobody@example.test", "x").0,
            535,
            "warm-up {i}"
        );
    }
    assert_eq!(login("127.0.1.10", "bob@example.test", "nope").0, 535);
    assert_eq!(login("127.0.1.11", "bob@example.test", "nope").0, 535);
    assert_eq!(
        login("127.0.1.12", "bob@example.test", "nope").0,
        454,
        "bob's bucket is empty for guessing addresses"
    );
    // ...but bob is not locked out: a clean address gets in at once, and so does alice's.
    assert_eq!(login("127.0.1.99", "bob@example.test", PASSWORD).0, 235);
    assert_eq!(login("127.0.1.98", "alice@example.test", PASSWORD).0, 235);
    server.wait_for_log("login refused unverified");
}

#[tokio::test]
async fn oversized_messages_get_552_after_the_data() {
    let (inst, server) = hosted(Db::Sqlite, "[smtp]\nmax_message_size = 100000\n").await;
    let mut c = Raw::connect(server.addr("smtp"));
    let ehlo = c.cmd("EHLO client.test");
    assert!(ehlo.contains("SIZE 100000"), "{ehlo}");
    assert!(
        c.cmd("MAIL FROM:<a@remote.test> SIZE=200000")
            .starts_with("552 5.3.4"),
        "announced size refused"
    );
    c.cmd("MAIL FROM:<a@remote.test>");
    c.cmd("RCPT TO:<alice@example.test>");
    assert!(c.cmd("DATA").starts_with("354"));
    let pid = server_pid(&inst);
    let peak_before = peak_rss_kb(pid);
    let line = format!("{}\r\n", "x".repeat(998));
    let started = Instant::now();
    for _ in 0..20_000 {
        c.send(line.as_bytes());
    }
    c.send(b".\r\n");
    assert!(
        c.reply().starts_with("552 5.3.4"),
        "20 MB refused after the end of data"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(c.cmd("NOOP").starts_with("250"), "the session goes on");
    assert!(inbox(&inst, "alice@example.test").await.is_empty());
    let grown = peak_rss_kb(pid).saturating_sub(peak_before);
    assert!(
        grown < 10_000,
        "buffering is bounded: peak RSS grew by {grown} kB for a 20 MB message"
    );
}

/// Peak resident set size of a process, in kB.
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap()
}

/// The server's pid from `listeners.json`.
fn server_pid(inst: &common::Instance) -> u32 {
    let text = std::fs::read_to_string(inst.data_dir().join("listeners.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["pid"].as_u64().unwrap() as u32
}

async fn accepted_message_survives_kill_9(db: Db) {
    let (inst, server) = hosted(db, "").await;
    let o = swaks(
        server.addr("smtp"),
        &[
            "--from",
            "a@remote.test",
            "--to",
            "alice@example.test",
            "--header",
            "Subject: durable",
        ],
    );
    assert!(
        transcript(&o).contains("<-  250 2.0.0 Ok: queued as"),
        "{}",
        transcript(&o)
    );
    server.kill();
    let server = inst.start();
    let alice = inbox(&inst, "alice@example.test").await;
    assert_eq!(alice.len(), 1);
    assert!(alice[0].contains("Subject: durable"));
    assert!(server.stop().success());
}

/// SIGTERM while a client is in the middle of DATA: an idle session gets 421 at once, but the
/// message in progress may finish within the grace period; it gets its 250 and is stored, and
/// only then does the session get 421 (RFC 5321 §3.8).
async fn sigterm_lets_the_message_in_progress_finish(db: Db) {
    let (inst, mut server) = hosted(db, "").await;
    let mx = server.addr("smtp");
    let mut sending = Raw::connect(mx);
    sending.cmd("EHLO client.test");
    assert!(sending.cmd("MAIL FROM:<a@remote.test>").starts_with("250"));
    assert!(sending
        .cmd("RCPT TO:<alice@example.test>")
        .starts_with("250"));
    assert!(sending.cmd("DATA").starts_with("354"));
    sending.send(b"Subject: slow\r\n\r\nfirst half,\r\n");
    let mut idle = Raw::connect(mx);
    assert!(idle.cmd("EHLO idle.test").starts_with("250"));
    server.signal(libc::SIGTERM);
    assert!(
        idle.reply().starts_with("421 4.3.2 "),
        "idle session closed at once"
    );
    sending.send(b"second half.\r\n.\r\n");
    let done = sending.reply();
    assert!(done.starts_with("250 2.0.0 Ok: queued as"), "{done}");
    assert!(sending.reply().starts_with("421 4.3.2 "), "then closed");
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.exited().is_none() {
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let alice = inbox(&inst, "alice@example.test").await;
    assert_eq!(alice.len(), 1);
    assert!(
        alice[0].contains("first half,\r\nsecond half.\r\n"),
        "{}",
        alice[0]
    );
}

async fn quota_is_enforced_at_rcpt_and_data(db: Db) {
    // bob's quota is 4K.
    let (inst, server) = hosted(db, "").await;
    let mx = server.addr("smtp");
    let mut c = Raw::connect(mx);
    c.cmd("EHLO client.test");
    c.cmd("MAIL FROM:<a@remote.test> SIZE=5000");
    assert!(
        c.cmd("RCPT TO:<bob@example.test>").starts_with("452 4.2.2"),
        "announced size does not fit"
    );
    c.cmd("RSET");
    let send = |c: &mut Raw, size: usize| -> String {
        c.cmd("MAIL FROM:<a@remote.test>");
        let r = c.cmd("RCPT TO:<bob@example.test>");
        if !r.starts_with("250") {
            return r;
        }
        c.cmd("DATA");
        c.send(format!("Subject: q\r\n\r\n{}\r\n.\r\n", "z".repeat(size)).as_bytes());
        c.reply()
    };
    // Each stored copy also carries the Received and Authentication-Results fields (~400 bytes).
    assert!(send(&mut c, 2000).starts_with("250"), "first fits");
    assert!(
        send(&mut c, 2500).starts_with("552 5.2.2"),
        "second no longer fits"
    );
    assert!(
        send(&mut c, 500).starts_with("250"),
        "a smaller one still does"
    );
    let mut filler = 4096
        - inbox(&inst, "bob@example.test")
            .await
            .iter()
            .map(|m| m.len())
            .sum::<usize>();
    // Fill the mailbox exactly: the next RCPT is refused with 452.
    filler -= "Subject: q\r\n\r\n\r\n".len() + header_len(&inst).await;
    assert!(send(&mut c, filler).starts_with("250"));
    assert!(send(&mut c, 10).starts_with("452 4.2.2"), "full at RCPT");
    // Alias fan-out with one full mailbox: alice gets it, the sender gets a bounce for bob.
    let mut c = Raw::connect(mx);
    c.cmd("EHLO client.test");
    c.cmd("MAIL FROM:<alice@example.test>");
    assert!(c.cmd("RCPT TO:<info@example.test>").starts_with("250"));
    c.cmd("DATA");
    c.send(b"Subject: fan-out\r\n\r\nhi\r\n.\r\n");
    assert!(c.reply().starts_with("250"));
    let alice = wait_inbox(&inst, "alice@example.test", 2).await;
    assert!(alice[0].contains("Subject: fan-out"));
    assert!(
        alice[1].contains("Final-Recipient: rfc822; info@example.test")
            && alice[1].contains("Status: 5.2.2"),
        "{}",
        alice[1]
    );
}

/// Length of the `Received:` header this server adds (for exact quota arithmetic).
async fn header_len(inst: &common::Instance) -> usize {
    let bob = inbox(inst, "bob@example.test").await;
    bob[0].find("Subject: q").unwrap()
}

async fn chunking_delivers(db: Db) {
    let (inst, server) = hosted(db, "").await;
    let mut c = Raw::connect(server.addr("smtp"));
    assert!(c.cmd("EHLO client.test").contains("CHUNKING"));
    c.cmd("MAIL FROM:<a@remote.test> BODY=8BITMIME");
    c.cmd("RCPT TO:<alice@example.test>");
    let part1 = "Subject: chunked\r\n\r\n";
    let part2 = "line one\r\n.\r\nQUIT\r\n";
    c.send(format!("BDAT {}\r\n{part1}", part1.len()).as_bytes());
    assert!(c.reply().starts_with("250"));
    c.send(format!("BDAT {} LAST\r\n{part2}", part2.len()).as_bytes());
    assert!(c.reply().starts_with("250 2.0.0 Ok"));
    let alice = inbox(&inst, "alice@example.test").await;
    assert!(
        alice[0].ends_with("Subject: chunked\r\n\r\nline one\r\n.\r\nQUIT\r\n"),
        "{:?}",
        alice[0]
    );
}

/// Sends one message over the MX to `rcpt` (given as written in RCPT TO); returns the RCPT reply.
fn mx_to(mx: std::net::SocketAddr, rcpt: &str, subject: &str) -> String {
    let mut c = Raw::connect(mx);
    c.cmd("EHLO client.test");
    assert!(c.cmd("MAIL FROM:<reporter@remote.test>").starts_with("250"));
    let r = c.cmd(&format!("RCPT TO:{rcpt}"));
    if r.starts_with("250") {
        assert!(c.cmd("DATA").starts_with("354"));
        c.send(format!("Subject: {subject}\r\n\r\nreport\r\n.\r\n").as_bytes());
        let done = c.reply();
        assert!(done.starts_with("250"), "{rcpt}: {done}");
    }
    c.cmd("QUIT");
    r
}

/// RFC 5321 §4.5.1: `postmaster` (bare, any case) and `postmaster@` of a hosted domain are
/// accepted, as is `abuse@` (RFC 2142); with no user or alias of that name they reach the role
/// mailbox (unset: the first user, alice), not the catch-all (bob).
async fn postmaster_and_abuse_reach_the_role_mailbox(db: Db) {
    let (inst, server) = hosted(db, "").await;
    let mx = server.addr("smtp");
    for (i, rcpt) in [
        "<postmaster>",
        "<PostMaster>",
        "<postmaster@example.test>",
        "<Abuse@Example.TEST>",
    ]
    .into_iter()
    .enumerate()
    {
        let r = mx_to(mx, rcpt, &format!("role {i}"));
        assert!(r.starts_with("250"), "{rcpt}: {r}");
    }
    let alice = wait_inbox(&inst, "alice@example.test", 4).await;
    assert_eq!(alice.len(), 4);
    assert!(
        inbox(&inst, "bob@example.test").await.is_empty(),
        "not the catch-all"
    );
    // Other domains are still not relayed to.
    assert!(mx_to(mx, "<postmaster@elsewhere.test>", "x").starts_with("554 5.7.1"));
    // An explicit alias of the role address is honoured.
    inst.ok(
        &["alias", "add", "abuse@example.test", "bob@example.test"],
        "",
    );
    assert!(mx_to(mx, "<abuse@example.test>", "to bob").starts_with("250"));
    wait_inbox(&inst, "bob@example.test", 1).await;
    assert!(server.stop().success());

    // A configured role mailbox.
    let (inst, server) = hosted(db, "[smtp]\npostmaster = \"bob@example.test\"\n").await;
    assert!(mx_to(server.addr("smtp"), "<postmaster>", "configured").starts_with("250"));
    let bob = wait_inbox(&inst, "bob@example.test", 1).await;
    assert!(bob[0].contains("Subject: configured"));
    assert!(inbox(&inst, "alice@example.test").await.is_empty());
    assert!(server.stop().success());
}

/// RFC 5321 §4.1.3 address literals: accepted in MAIL FROM; in RCPT TO local only for the
/// addresses `[smtp] address_literals` maps to a hosted domain, other literals are remote (no
/// relaying for the MX); general literals stay a syntax error.
async fn address_literals_where_configured(db: Db) {
    let extra = "[smtp]\naddress_literals = { \"127.0.0.1\" = \"example.test\" }\n";
    let (inst, server) = hosted(db, extra).await;
    let mx = server.addr("smtp");
    let mut c = Raw::connect(mx);
    c.cmd("EHLO [127.0.0.1]");
    assert!(c.cmd("MAIL FROM:<someone@[192.0.2.9]>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<alice@[127.0.0.1]>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<postmaster@[127.0.0.1]>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<alice@[IPv6:::1]>").starts_with("554 5.7.1"));
    assert!(c
        .cmd("RCPT TO:<alice@[192.0.2.1]>")
        .starts_with("554 5.7.1"));
    assert!(c.cmd("RCPT TO:<alice@[tag:x]>").starts_with("501"));
    // A command whose literal arrives in two reads parses as when it comes in one.
    let split = b"RCPT TO:<postmaster@[127.0.0.1]>\r\n";
    for at in [10, 21, 25, 30, 32] {
        c.send_split(split, at);
        let reply = c.reply();
        assert!(reply.starts_with("250"), "split at {at}: {reply}");
    }
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(b"Subject: literal\r\n\r\nhi\r\n.\r\n");
    assert!(c.reply().starts_with("250"));
    let alice = wait_inbox(&inst, "alice@example.test", 1).await;
    assert_eq!(alice.len(), 1, "one copy for both recipients");
    assert!(alice[0].contains("Subject: literal"));
    assert!(server.stop().success());
}
