//! Sieve (RFC 5228) at local delivery, end to end against the real binary on SQLite and
//! PostgreSQL: scripts stored with `postern sieve`, mail sent to the MX, the result read over
//! IMAP and from the store; vacation (RFC 5230), reject (RFC 5429), redirect loops, and redirects
//! through a private Postfix with the SRS envelope sender passing SPF at Postern's own DNS.

mod common;
mod smtp_support;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use common::{Db, Instance, Server};
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{MessageAuthenticator, SpfResult};
use smtp_support::postfix::Postfix;
use smtp_support::{folder, inbox, python, resolver, OwnDns, Raw, Rr, Sink, TestDns, PASSWORD};

both_backends!(
    scripts_file_flag_discard_and_never_lose_mail,
    vacation_and_reject,
    redirect_loop_ends,
    redirect_keeps_spf_with_srs_and_bounces_come_back,
    account_settings_run_before_the_users_script
);

/// Users of every test, all on example.test.
const USERS: [&str; 4] = ["alice", "bob", "carl", "dave"];

/// A server for example.test with [`USERS`], IMAPS, the MX and `extra` configuration.
async fn instance(db: Db, extra: &str) -> (Instance, Server) {
    let inst = Instance::new(db, &["smtp", "submissions", "imaps"], extra).await;
    inst.ok(&["domain", "add", "example.test"], "");
    for user in USERS {
        inst.ok(
            &["user", "add", &format!("{user}@example.test")],
            &format!("{PASSWORD}\n"),
        );
    }
    let server = inst.start();
    (inst, server)
}

/// Stores `script` as `user`'s active script `name` with the CLI.
fn put(inst: &Instance, user: &str, name: &str, script: &str, activate: bool) {
    let address = format!("{user}@example.test");
    let mut args = vec!["sieve", "put", &address, name, "-"];
    if activate {
        args.push("--activate");
    }
    inst.ok(&args, script);
}

/// Sends `data` over the MX from `from` to `rcpts`; returns the reply to the end of DATA (or to
/// the first refused RCPT).
fn mx_send(server: &Server, from: &str, rcpts: &[&str], data: &str) -> String {
    let mut c = Raw::connect(server.addr("smtp"));
    c.cmd("EHLO client.test");
    let r = c.cmd(&format!("MAIL FROM:<{from}>"));
    assert!(r.starts_with("250"), "{r}");
    for rcpt in rcpts {
        let r = c.cmd(&format!("RCPT TO:<{rcpt}>"));
        if !r.starts_with("250") {
            return r;
        }
    }
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(format!("{data}\r\n.\r\n").as_bytes());
    let done = c.reply();
    c.cmd("QUIT");
    done
}

/// A message from `from` to `to` with `subject`, extra header lines and body.
fn message(from: &str, to: &str, subject: &str, headers: &str, body: &str) -> String {
    format!("From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{subject}.{}@client.test>\r\n{headers}\r\n{body}\r\n", subject.len())
}

fn subjects(messages: &[String]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .map(|s| s.trim().to_owned())
        })
        .collect()
}

const MAIN: &str = r#"require ["fileinto", "imap4flags", "envelope", "subaddress", "body", "variables",
         "mailbox", "include", "relational", "comparator-i;ascii-numeric"];
if envelope :detail "to" "lists" { fileinto :create "Lists"; stop; }
if header :contains "subject" "flagme" { addflag ["\\Flagged", "$Work"]; fileinto :create "Work"; stop; }
if header :contains "subject" "nofolder" { fileinto "Missing"; stop; }
if body :text :contains "discardme" { discard; stop; }
if header :matches "subject" "tag *" { fileinto :create "Tags/${1}"; stop; }
if header :value "ge" :comparator "i;ascii-numeric" "x-priority" "4" { fileinto :create "Low"; stop; }
include :personal "helper";
"#;

const HELPER: &str = r#"require ["fileinto", "copy", "mailbox"];
if header :contains "subject" "copyme" { fileinto :copy :create "Copies"; }
"#;

/// fileinto (with :create, flags, a missing folder), discard, envelope/subaddress, body,
/// variables, relational, include and :copy, on the MX and for submitted mail; the CLI; a broken
/// stored script, a runaway script and an include loop all leave the message in INBOX.
async fn scripts_file_flag_discard_and_never_lose_mail(db: Db) {
    let (inst, server) = instance(db, "").await;
    put(&inst, "alice", "helper", HELPER, false);
    put(&inst, "alice", "main", MAIN, true);
    let listed = inst.ok(&["sieve", "list", "alice@example.test"], "");
    assert_eq!(listed, "helper\nmain  (active)\n");
    assert_eq!(
        inst.ok(&["sieve", "get", "alice@example.test", "helper"], ""),
        HELPER
    );
    let bad = inst.run(
        &["sieve", "put", "alice@example.test", "bad", "-"],
        "require \"fileinto\";\nif true {\n fileinto \"x\"\n",
    );
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.to_ascii_lowercase().contains("line"), "{err}");
    assert!(!inst
        .ok(&["sieve", "list", "alice@example.test"], "")
        .contains("bad"));

    let alice = "alice@example.test";
    let from = "carol@remote.test";
    for (rcpt, subject, headers, body) in [
        ("alice+lists@example.test", "list post", "", "hello"),
        (alice, "flagme", "", "hello"),
        (alice, "nofolder", "", "hello"),
        (alice, "dropped", "", "please discardme now"),
        (alice, "tag blue", "", "hello"),
        (alice, "low", "X-Priority: 5\r\n", "hello"),
        (alice, "copyme", "", "hello"),
    ] {
        let r = mx_send(
            &server,
            from,
            &[rcpt],
            &message(from, rcpt, subject, headers, body),
        );
        assert!(r.starts_with("250"), "{subject}: {r}\n{}", server.log());
    }
    assert_eq!(subjects(&inbox(&inst, alice).await), ["nofolder", "copyme"]);
    assert_eq!(
        subjects(&folder(&inst, alice, "Lists").await),
        ["list post"]
    );
    assert_eq!(subjects(&folder(&inst, alice, "Work").await), ["flagme"]);
    assert_eq!(
        subjects(&folder(&inst, alice, "Tags/blue").await),
        ["tag blue"]
    );
    assert_eq!(subjects(&folder(&inst, alice, "Low").await), ["low"]);
    assert_eq!(subjects(&folder(&inst, alice, "Copies").await), ["copyme"]);

    // Submitted mail to a local user is filtered too.
    const SUBMIT: &str = r#"
import smtplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP_SSL('127.0.0.1', int(sys.argv[1]), context=ctx, timeout=20)
s.login('bob@example.test', sys.argv[2])
msg = 'From: bob@example.test\r\nTo: alice@example.test\r\nSubject: tag green\r\n\r\nHi.\r\n'
print(s.sendmail('bob@example.test', ['alice@example.test'], msg))
s.quit()
"#;
    let (ok, out) = python(
        SUBMIT,
        &[&server.addr("submissions").port().to_string(), PASSWORD],
    );
    assert!(ok && out.trim() == "{}", "{out}");
    assert_eq!(
        subjects(&folder(&inst, alice, "Tags/green").await),
        ["tag green"]
    );

    // imap4flags, seen over IMAP.
    const FLAGS: &str = r#"
import imaplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
m = imaplib.IMAP4_SSL('127.0.0.1', int(sys.argv[1]), ssl_context=ctx)
m.login('alice@example.test', sys.argv[2])
print(m.select('Work'))
print(m.fetch('1', '(FLAGS)'))
print(m.select('Missing'))
m.logout()
"#;
    let (ok, out) = python(FLAGS, &[&server.addr("imaps").port().to_string(), PASSWORD]);
    assert!(ok, "{out}");
    assert!(out.contains("\\Flagged") && out.contains("$Work"), "{out}");
    assert!(out.contains("('NO'"), "no folder Missing was made: {out}");

    // A script that does not compile (stored past the CLI's check) never loses mail.
    let store = postern_store::Store::open(&inst.db.url).await.unwrap();
    let bob = store.user("bob@example.test").await.unwrap().unwrap();
    store
        .put_sieve_script(bob.id, "broken", "if true {")
        .await
        .unwrap();
    store
        .set_active_sieve_script(bob.id, Some("broken"))
        .await
        .unwrap();
    // A runaway script (hits the instruction limit) and an include loop: INBOX too.
    put(&inst, "carl", "huge", &"if true { }\n".repeat(20_000), true);
    put(
        &inst,
        "dave",
        "loop",
        "require [\"include\", \"fileinto\", \"mailbox\"];\ninclude :personal \"loop\";\nfileinto :create \"Never\";\n",
        true,
    );
    for user in ["bob", "carl", "dave"] {
        let rcpt = format!("{user}@example.test");
        let r = mx_send(
            &server,
            from,
            &[&rcpt],
            &message(from, &rcpt, "safe", "", "x"),
        );
        assert!(r.starts_with("250"), "{user}: {r}");
        assert_eq!(subjects(&inbox(&inst, &rcpt).await), ["safe"], "{user}");
    }
    store.close().await;
    let log = server.log();
    assert!(log.contains("sieve failed"), "{log}");
    assert!(log.contains("maximum number of instructions"), "{log}");
    assert!(log.contains("includes nested deeper than"), "{log}");
}

const VACATION: &str = r#"require ["vacation"];
vacation :days 1 :addresses ["team@example.test"] "I am away until Monday.";
"#;

/// Vacation answers once per sender per period, never the null sender, list mail or mail not
/// addressed to the user; remote senders get a reply queued with the null envelope sender.
/// reject refuses at DATA when it is every recipient's answer, else bounces for that recipient.
async fn vacation_and_reject(db: Db) {
    let dns = TestDns::start(HashMap::from([
        (
            "remote.test".to_owned(),
            vec![Rr::Mx(10, "mx.remote.test".into())],
        ),
        (
            "mx.remote.test".to_owned(),
            vec![Rr::A(Ipv4Addr::LOCALHOST)],
        ),
    ]));
    let sink = Sink::start();
    let extra = format!(
        "[smtp]\nresolver = \"{}\"\noutbound_port = {}\nmta_sts = false\ndane = false\n",
        dns.addr,
        sink.addr.port()
    );
    let (inst, server) = instance(db, &extra).await;
    put(&inst, "alice", "away", VACATION, true);
    let alice = "alice@example.test";
    let bob = "bob@example.test";
    let carl = "carl@example.test";
    let send = |from: &str, to_header: &str, subject: &str, headers: &str| {
        let r = mx_send(
            &server,
            from,
            &[alice],
            &message(
                if from.is_empty() {
                    "x@remote.test"
                } else {
                    from
                },
                to_header,
                subject,
                headers,
                "hi",
            ),
        );
        assert!(r.starts_with("250"), "{r}");
    };
    send(bob, alice, "hello", "");
    send(bob, alice, "again", "");
    let replies = inbox(&inst, bob).await;
    assert_eq!(
        subjects(&replies),
        ["Auto: hello"],
        "one reply per sender and period"
    );
    let reply = &replies[0];
    assert!(reply.contains("Auto-Submitted: auto-replied"), "{reply}");
    assert!(
        reply.contains("In-Reply-To: <hello.5@client.test>"),
        "{reply}"
    );
    assert!(reply.contains("I am away until Monday."), "{reply}");
    // Null sender, list mail, bulk, mail not addressed to alice: no reply.
    send("", alice, "bounce", "");
    send(carl, alice, "list", "List-Id: <talk.lists.test>\r\n");
    send(carl, alice, "bulk", "Precedence: junk\r\n");
    send(carl, "someone@remote.test", "bcc", "");
    assert!(inbox(&inst, carl).await.is_empty());
    // :addresses counts as alice's; a new sender gets a reply.
    send(carl, "team@example.test", "team", "");
    assert_eq!(subjects(&inbox(&inst, carl).await), ["Auto: team"]);
    // A remote sender's reply is queued with the null sender (RFC 3834 §3.3).
    send("ok@remote.test", alice, "remote", "");
    let sent = sink.wait_for(1);
    assert_eq!(
        (sent[0].from.as_str(), sent[0].to.as_slice()),
        ("", &["ok@remote.test".to_owned()][..])
    );
    assert!(
        sent[0].data.contains("Subject: Auto: remote"),
        "{}",
        sent[0].data
    );
    assert!(
        sent[0].data.starts_with("DKIM-Signature:"),
        "signed for example.test: {}",
        sent[0].data
    );
    assert_eq!(
        inbox(&inst, alice).await.len(),
        8,
        "vacation keeps every message"
    );
    assert_eq!(server.log().matches("vacation reply sent").count(), 3);

    // reject: alone, 550 at DATA; with another recipient, a bounce to the sender.
    put(&inst, "dave", "no", "require \"reject\";\nif header :contains \"subject\" \"spam\" { reject \"No spam, thanks.\"; }\n", true);
    let dave = "dave@example.test";
    let r = mx_send(
        &server,
        carl,
        &[dave],
        &message(carl, dave, "spam", "", "buy"),
    );
    assert!(
        r.starts_with("550 5.7.1") && r.contains("No spam, thanks."),
        "{r}"
    );
    let r = mx_send(
        &server,
        carl,
        &[dave, bob],
        &message(carl, dave, "spam", "", "buy"),
    );
    assert!(r.starts_with("250"), "{r}");
    assert!(inbox(&inst, dave).await.is_empty());
    assert_eq!(subjects(&inbox(&inst, bob).await), ["Auto: hello", "spam"]);
    let carl_mail = inbox(&inst, carl).await;
    assert_eq!(carl_mail.len(), 2, "{carl_mail:?}");
    assert!(
        carl_mail[1].contains("No spam, thanks.") && carl_mail[1].contains("Status: 5.7.1"),
        "{}",
        carl_mail[1]
    );
}

/// alice redirects to bob and bob to alice: the message stops (in alice's INBOX, where the loop
/// was seen) instead of circling. A redirect to a local user whose script rejects bounces to the
/// original sender.
async fn redirect_loop_ends(db: Db) {
    let (inst, server) = instance(db, "").await;
    put(
        &inst,
        "alice",
        "fwd",
        "redirect \"bob@example.test\";\n",
        true,
    );
    put(
        &inst,
        "bob",
        "fwd",
        "redirect \"alice@example.test\";\n",
        true,
    );
    let alice = "alice@example.test";
    let r = mx_send(
        &server,
        "carol@remote.test",
        &[alice],
        &message("carol@remote.test", alice, "loop", "", "x"),
    );
    assert!(r.starts_with("250"), "{r}");
    let got = inbox(&inst, alice).await;
    assert_eq!(subjects(&got), ["loop"]);
    assert!(
        got[0].contains("Delivered-To: bob@example.test\r\nDelivered-To: alice@example.test\r\n"),
        "{}",
        got[0]
    );
    assert!(inbox(&inst, "bob@example.test").await.is_empty());
    assert!(server.log().contains("mail forwarding loop"));

    // carl redirects to dave, whose script rejects and whose vacation answers: the original
    // sender (not the SRS address) gets dave's bounce.
    put(
        &inst,
        "carl",
        "fwd",
        "redirect \"dave@example.test\";\n",
        true,
    );
    put(
        &inst,
        "dave",
        "no",
        "require \"reject\";\nreject \"Not via carl.\";\n",
        true,
    );
    let (carl, bob) = ("carl@example.test", "bob@example.test");
    let r = mx_send(&server, bob, &[carl], &message(bob, carl, "via", "", "x"));
    assert!(r.starts_with("250"), "{r}");
    let bounced = inbox(&inst, bob).await;
    assert_eq!(bounced.len(), 1, "{bounced:?}");
    assert!(
        bounced[0].contains("Not via carl.") && bounced[0].contains("Status: 5.7.1"),
        "{}",
        bounced[0]
    );
    assert!(inbox(&inst, carl).await.is_empty());
    assert!(inbox(&inst, "dave@example.test").await.is_empty());
}

/// A redirect to a Postfix receiver leaves with an `SRS0=...@example.test` envelope sender, for
/// which SPF passes at Postern's own DNS (checked with mail-auth) while the original sender's
/// domain would fail; a bounce to that address is reversed and reaches the original sender; a
/// forged SRS address is refused.
async fn redirect_keeps_spf_with_srs_and_bounces_come_back(db: Db) {
    let postfix = Postfix::start("normalize");
    let zones = tempfile::tempdir().expect("zones dir");
    let mut dns = OwnDns::new(&zones.keep());
    dns.zone("example.test", "");
    dns.zone(
        "remote.test",
        "@ IN MX 10 mx\nmx IN A 127.0.0.1\n@ IN TXT \"v=spf1 ip4:192.0.2.1 -all\"\n",
    );
    let extra = format!(
        "{listener}\n[smtp]\nresolver = \"{resolver}\"\noutbound_port = {port}\nretry_initial_secs = 1\nretry_max_secs = 1\nqueue_scan_secs = 1\noutbound_timeout_secs = 10\nmta_sts = false\ndane = false\n\n[mail.views.external]\naddresses = [\"127.0.0.1\"]\n\n{table}",
        listener = dns.listener(),
        resolver = dns.addr(),
        port = postfix.port,
        table = dns.table(),
    );
    let (inst, server) = instance(db, &extra).await;
    put(
        &inst,
        "alice",
        "fwd",
        "redirect \"dest@remote.test\";\n",
        true,
    );
    let alice = "alice@example.test";
    let carol = "carol@remote.test";
    let r = mx_send(
        &server,
        carol,
        &[alice],
        &message(carol, alice, "forwarded", "", "x"),
    );
    assert!(r.starts_with("250"), "{r}");
    let delivered = postfix.wait_delivered(1);
    let forwarded = &delivered[0];
    let return_path = forwarded
        .lines()
        .find_map(|l| l.strip_prefix("Return-Path: <"))
        .and_then(|l| l.strip_suffix('>'))
        .unwrap_or_else(|| panic!("no Return-Path: {forwarded}"))
        .to_owned();
    assert!(
        return_path.starts_with("SRS0=")
            && return_path.ends_with("=remote.test=carol@example.test"),
        "{return_path}"
    );
    assert!(
        forwarded.contains("Delivered-To: alice@example.test"),
        "{forwarded}"
    );
    assert!(inbox(&inst, alice).await.is_empty());

    let authenticator = MessageAuthenticator(resolver(dns.addr()));
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let spf = |sender: String| {
        let authenticator = &authenticator;
        async move {
            authenticator
                .verify_spf(SpfParameters::verify_mail_from(
                    ip,
                    "mail.example.test",
                    "mx.remote.test",
                    &sender,
                ))
                .await
                .result()
        }
    };
    assert_eq!(spf(return_path.clone()).await, SpfResult::Pass);
    assert_eq!(
        spf(carol.to_owned()).await,
        SpfResult::Fail,
        "without SRS SPF would fail"
    );

    // Postfix bounces to the SRS address: Postern turns it back into carol's address.
    let r = mx_send(
        &server,
        "",
        &[&return_path],
        &message(
            "MAILER-DAEMON@mx.remote.test",
            &return_path,
            "bounced",
            "",
            "undeliverable",
        ),
    );
    assert!(r.starts_with("250"), "{r}");
    let delivered = postfix.wait_delivered(2);
    assert!(
        delivered
            .iter()
            .any(|m| m.contains("Subject: bounced") && m.contains("Return-Path: <>")),
        "{delivered:?}"
    );
    let forged = return_path.replacen("SRS0=", "SRS0=x", 1);
    let r = mx_send(&server, "", &[&forged], "Subject: x\r\n\r\nx\r\n");
    assert!(r.starts_with("550"), "{r}");
}

/// The vacation and forwarding settings of the account (set here with `postern user vacation` /
/// `forward`) run before the user's own script, like Pigeonhole's `sieve_before`: the forward
/// and the vacation reply go out, and the user's `fileinto` still files the kept copy.
async fn account_settings_run_before_the_users_script(db: Db) {
    let (inst, server) = instance(db, "").await;
    let (alice, bob, carl) = (
        "alice@example.test",
        "bob@example.test",
        "carl@example.test",
    );
    inst.ok(&["user", "forward", alice, "--to", bob, "--keep"], "");
    inst.ok(
        &[
            "user",
            "vacation",
            alice,
            "--on",
            "--subject",
            "Away",
            "--body",
            "Back on Monday.",
        ],
        "",
    );
    put(
        &inst,
        "alice",
        "own",
        "require [\"fileinto\", \"mailbox\"];\nif header :contains \"subject\" \"work\" { fileinto :create \"Work\"; }\n",
        true,
    );
    let r = mx_send(
        &server,
        carl,
        &[alice],
        &message(carl, alice, "work item", "", "x"),
    );
    assert!(r.starts_with("250"), "{r}");
    assert_eq!(subjects(&folder(&inst, alice, "Work").await), ["work item"]);
    assert!(
        inbox(&inst, alice).await.is_empty(),
        "the user's fileinto cancels the keep"
    );
    assert_eq!(subjects(&inbox(&inst, bob).await), ["work item"]);
    let replies = inbox(&inst, carl).await;
    assert_eq!(subjects(&replies), ["Away"], "{replies:?}");
    assert!(replies[0].contains("Back on Monday."), "{}", replies[0]);

    // Forwarding off: only the user's script (and the vacation, once per sender) act.
    inst.ok(&["user", "forward", alice, "--off"], "");
    let r = mx_send(
        &server,
        carl,
        &[alice],
        &message(carl, alice, "work again", "", "x"),
    );
    assert!(r.starts_with("250"), "{r}");
    assert_eq!(
        subjects(&folder(&inst, alice, "Work").await),
        ["work item", "work again"]
    );
    assert_eq!(subjects(&inbox(&inst, bob).await), ["work item"]);
    assert_eq!(
        inbox(&inst, carl).await.len(),
        1,
        "one vacation reply per sender and period"
    );
}
