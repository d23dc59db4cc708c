//! Delivery status notifications (RFC 3461, RFC 3464) end to end: NOTIFY=NEVER silences a
//! bounce, no NOTIFY still bounces, a delay report goes out once after `delay_warning_secs`,
//! NOTIFY=SUCCESS gets a success report for local delivery (ENVID and ORCPT echoed, RET=HDRS
//! honoured), the parameters reach a Postfix next hop that offers DSN (its own success report
//! comes back), and a next hop without DSN makes Postern report `relayed`. Malformed parameters
//! are refused with 501.

mod common;
mod smtp_support;

use std::time::{Duration, Instant};

use common::{Db, Instance, Server};
use smtp_support::postfix::Postfix;
use smtp_support::{
    inbox, python, relaying_server, wait_inbox, wait_queue_empty, Raw, Sink, PASSWORD,
};

both_backends!(
    never_default_and_delay_notices,
    success_notice_for_local_delivery,
    dsn_next_hop_reports_itself,
    next_hop_without_dsn_gets_a_relayed_notice
);

/// Postern with alice and bob relaying to `outbound_port` (see [`relaying_server`]).
async fn postern(db: Db, outbound_port: u16, more: &str) -> (Instance, Server) {
    let users = ["alice@example.test", "bob@example.test"];
    let (inst, server, _) = relaying_server(db, outbound_port, &users, more).await;
    (inst, server)
}

/// alice sends one message to `ok@remote.test` (RCPT parameters `rcpt`) through Postern to a
/// Postfix with `extra` in its `main.cf`, which sends mail for example.test back to Postern;
/// returns alice's one report once Postfix has delivered the message.
async fn through_postfix(db: Db, extra: &str, mail: &str, rcpt: &str) -> (Postfix, String) {
    let postfix = Postfix::start_with("reject", extra);
    let (inst, server) = postern(db, postfix.port, "").await;
    postfix.relay_to(server.addr("smtp"));
    submit(
        &server,
        mail,
        &[&format!("ok@remote.test {rcpt}")],
        "via postfix",
    );
    wait_queue_empty(&inst).await;
    postfix.wait_delivered(1);
    wait_inbox(&inst, "alice@example.test", 1).await;
    assert!(server.stop().success());
    let mut alice = inbox(&inst, "alice@example.test").await;
    assert_eq!(alice.len(), 1, "one report: {alice:#?}");
    (postfix, alice.remove(0))
}

/// alice submits one message with smtplib: MAIL parameters `mail`, and per recipient its RCPT
/// parameters (`"addr"` or `"addr NOTIFY=... ORCPT=..."`).
fn submit(server: &Server, mail: &str, rcpts: &[&str], subject: &str) {
    const SUBMIT: &str = r#"
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=20)
s.ehlo('client.test')
assert s.has_extn('dsn'), s.esmtp_features
s.login('alice@example.test', sys.argv[2])
code, text = s.mail('alice@example.test', sys.argv[3].split())
assert code == 250, (code, text)
for spec in sys.argv[5:]:
    addr, *opts = spec.split()
    code, text = s.rcpt(addr, opts)
    assert code == 250, (spec, code, text)
msg = 'From: alice@example.test\r\nSubject: %s\r\n\r\nsecret body\r\n' % sys.argv[4]
code, text = s.data(msg)
assert code == 250, (code, text)
s.quit()
"#;
    let port = server.addr("submission").port().to_string();
    let mut args = vec![port.as_str(), PASSWORD, mail, subject];
    args.extend_from_slice(rcpts);
    let (ok, out) = python(SUBMIT, &args);
    assert!(ok, "{out}");
}

/// The message in `messages` whose text holds `needle`.
fn find<'a>(messages: &'a [String], needle: &str) -> &'a str {
    messages
        .iter()
        .find(|m| m.contains(needle))
        .unwrap_or_else(|| panic!("no message with {needle:?} in {messages:#?}"))
}

/// NOTIFY=NEVER: no bounce; no NOTIFY: a bounce; a recipient still failing after
/// `delay_warning_secs` gets one delay report however often it is retried, unless its NOTIFY
/// leaves DELAY out.
async fn never_default_and_delay_notices(db: Db) {
    let sink = Sink::start();
    let (inst, server) = postern(
        db,
        sink.addr.port(),
        "delay_warning_secs = 2\nqueue_lifetime_secs = 3600",
    )
    .await;
    submit(
        &server,
        "ENVID=delay-1",
        &[
            "perm-never@remote.test NOTIFY=NEVER",
            "perm-default@remote.test",
            "defer-delay@remote.test",
            "defer-quiet@remote.test NOTIFY=FAILURE",
        ],
        "failing",
    );
    let alice = wait_inbox(&inst, "alice@example.test", 2).await;
    let bounce = find(&alice, "Final-Recipient: rfc822; perm-default@remote.test");
    assert!(
        bounce.contains("Action: failed\r\nStatus: 5.1.1"),
        "{bounce}"
    );
    assert!(
        bounce.contains("Original-Envelope-Id: delay-1\r\n"),
        "{bounce}"
    );
    let delay = find(&alice, "Action: delayed");
    assert!(
        delay.contains("Subject: Delayed Mail (still being retried)"),
        "{delay}"
    );
    assert!(
        delay.contains(
            "Final-Recipient: rfc822; defer-delay@remote.test\r\nAction: delayed\r\nStatus: 4.3.0"
        ),
        "{delay}"
    );
    assert!(delay.contains("Will-Retry-Until: "), "{delay}");
    assert!(
        delay.contains("Diagnostic-Code: smtp; 451 4.3.0 try again later"),
        "{delay}"
    );
    assert!(
        !delay.contains("secret body"),
        "only the headers are returned"
    );
    // Three more failed attempts of each deferred recipient: still no second delay report, and
    // nothing for the NOTIFY=NEVER or NOTIFY=FAILURE recipients.
    let seen = sink.attempts("defer-delay@remote.test");
    let deadline = Instant::now() + Duration::from_secs(60);
    while sink.attempts("defer-delay@remote.test") < seen + 3
        || sink.attempts("defer-quiet@remote.test") < seen + 3
    {
        assert!(Instant::now() < deadline, "no more retries");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let alice = inbox(&inst, "alice@example.test").await;
    assert_eq!(alice.len(), 2, "{alice:#?}");
    assert!(
        !alice.iter().any(|m| m.contains("perm-never@")),
        "{alice:#?}"
    );
    assert!(
        !alice.iter().any(|m| m.contains("defer-quiet@")),
        "{alice:#?}"
    );
    assert_eq!(sink.attempts("perm-never@remote.test"), 1);
    let store = postern_store::Store::open(&inst.db.url).await.unwrap();
    let queue = store.list_queue().await.unwrap();
    let notified: Vec<(&str, bool)> = queue
        .iter()
        .map(|e| (e.recipient.as_str(), e.delay_notified))
        .collect();
    assert_eq!(notified.len(), 2, "{queue:#?}");
    assert!(
        notified.contains(&("defer-delay@remote.test", true)),
        "{queue:#?}"
    );
    assert!(
        notified.contains(&("defer-quiet@remote.test", false)),
        "{queue:#?}"
    );
    store.close().await;
    assert!(server.stop().success());
}

/// NOTIFY=SUCCESS to a local user: a `delivered` report with ENVID and ORCPT echoed and, with
/// RET=HDRS, only the headers; to an alias of several members: one `expanded` report. Malformed
/// DSN parameters get 501.
async fn success_notice_for_local_delivery(db: Db) {
    let sink = Sink::start();
    let (inst, server) = postern(db, sink.addr.port(), "").await;
    for to in ["bob@example.test", "ok@remote.test"] {
        inst.ok(&["alias", "add", "team@example.test", to], "");
    }
    submit(
        &server,
        "RET=HDRS ENVID=QQ+20314159",
        &[
            "bob@example.test NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob+2BDSN@Example.TEST",
            "alice@example.test",
            "team@example.test NOTIFY=SUCCESS",
        ],
        "local success",
    );
    wait_inbox(&inst, "bob@example.test", 1).await;
    // The alias reports `expanded` itself; its remote member gets no SUCCESS (a sink without
    // DSN: it would otherwise be reported `relayed`).
    sink.wait_for(1);
    wait_queue_empty(&inst).await;
    // A later message straight to the remote address does get `relayed`: once that is in, a
    // `relayed` report for the alias member would be too.
    submit(&server, "", &["ok@remote.test NOTIFY=SUCCESS"], "direct");
    wait_inbox(&inst, "alice@example.test", 4).await;
    wait_queue_empty(&inst).await;
    let alice = inbox(&inst, "alice@example.test").await;
    assert_eq!(
        alice.len(),
        4,
        "the message, `delivered`, `expanded`, one `relayed`: {alice:#?}"
    );
    let relayed = find(&alice, "Action: relayed");
    assert!(relayed.contains("Subject: direct"), "{relayed}");
    let expanded = find(&alice, "Action: expanded");
    assert!(
        expanded.contains(
            "Final-Recipient: rfc822; team@example.test\r\nAction: expanded\r\nStatus: 2.0.0"
        ),
        "{expanded}"
    );
    assert!(
        !expanded.contains("bob@example.test\r\nAction"),
        "{expanded}"
    );
    let report = find(&alice, "Action: delivered");
    assert!(
        report.contains("Subject: Successful Mail Delivery Report"),
        "{report}"
    );
    assert!(
        report.contains("Original-Envelope-Id: QQ+20314159\r\n"),
        "{report}"
    );
    assert!(
        report.contains("Original-Recipient: rfc822; Bob+2BDSN@Example.TEST\r\nFinal-Recipient: rfc822; bob@example.test\r\nAction: delivered\r\nStatus: 2.0.0"),
        "{report}"
    );
    assert!(report.contains("Subject: local success"), "{report}");
    assert!(!report.contains("secret body"), "RET=HDRS: {report}");
    assert!(
        !report.contains("alice@example.test\r\nAction"),
        "no report for alice, who asked none: {report}"
    );
    // Hostile parameters over the MX.
    let mut c = Raw::connect(server.addr("smtp"));
    assert!(c.cmd("EHLO client.test").contains("250-DSN"));
    let long = format!("MAIL FROM:<x@remote.test> ENVID={}", "a".repeat(101));
    for line in [long.as_str(), "MAIL FROM:<x@remote.test> ENVID=bad+zz"] {
        let r = c.cmd(line);
        assert!(
            r.starts_with("501 5.5.4 Invalid ENVID parameter"),
            "{line}: {r}"
        );
    }
    assert!(c
        .cmd("MAIL FROM:<x@remote.test> RET=HDRS")
        .starts_with("250"));
    for (line, param) in [
        ("RCPT TO:<bob@example.test> NOTIFY=NEVER,SUCCESS", "NOTIFY"),
        (
            "RCPT TO:<bob@example.test> ORCPT=utf-8;bob@example.test",
            "ORCPT",
        ),
        ("RCPT TO:<bob@example.test> ORCPT=rfc822;bob+4", "ORCPT"),
    ] {
        let r = c.cmd(line);
        assert!(
            r.starts_with(&format!("501 5.5.4 Invalid {param} parameter"))
                && r.contains("RFC 3461"),
            "{line}: {r}"
        );
    }
    assert!(c.cmd("QUIT").starts_with("221"));
    assert!(server.stop().success());
}

/// The next hop offers DSN: NOTIFY, ORCPT, RET and ENVID go on to it, and it is Postfix that
/// reports the delivery (back through Postern's MX); Postern sends no report of its own.
async fn dsn_next_hop_reports_itself(db: Db) {
    let (postfix, report) = through_postfix(
        db,
        "",
        "RET=HDRS ENVID=env+2B42",
        "NOTIFY=SUCCESS ORCPT=rfc822;orig@remote.test",
    )
    .await;
    assert!(
        report.contains("Reporting-MTA: dns; mx.remote.test"),
        "Postfix's: {report}"
    );
    assert!(
        report.contains("Original-Envelope-Id: env+2B42"),
        "{report}"
    );
    assert!(
        report.contains("Original-Recipient: rfc822;orig@remote.test"),
        "{report}"
    );
    assert!(report.contains("Action: delivered"), "{report}");
    let log = postfix.log();
    assert!(log.contains("sender delivery status notification"), "{log}");
}

/// The next hop hides DSN: the message goes without the parameters and Postern reports
/// `relayed` to a sender who asked for success notices.
async fn next_hop_without_dsn_gets_a_relayed_notice(db: Db) {
    let (postfix, report) = through_postfix(
        db,
        "smtpd_discard_ehlo_keywords = dsn",
        "ENVID=relay-7",
        "NOTIFY=SUCCESS,FAILURE",
    )
    .await;
    assert!(
        report.contains("Reporting-MTA: dns; mail.example.test\r\n"),
        "Postern's: {report}"
    );
    assert!(
        report.contains("Original-Envelope-Id: relay-7\r\n"),
        "{report}"
    );
    assert!(
        report.contains("Final-Recipient: rfc822; ok@remote.test\r\nAction: relayed\r\nStatus: 2.0.0\r\nRemote-MTA: dns; mx.remote.test"),
        "{report}"
    );
    let log = postfix.log();
    assert!(
        !log.contains("sender delivery status notification"),
        "{log}"
    );
}
