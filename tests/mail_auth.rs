//! Mail authentication end to end, with Postern's own DNS as the only resolver: submitted mail
//! leaves DKIM-signed (verified by mail-auth against the keys Postern publishes), and mail arriving
//! on the MX is checked (SPF, DKIM, DMARC) with the `Authentication-Results:` and the action the
//! sender domain's policy asks for; plus DNS block lists and greylisting at RCPT.

mod common;
mod smtp_support;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::{metrics, sample, Db, Instance, Server};
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator};
use smtp_support::{folder, inbox, python, resolver, wait_inbox, OwnDns, Raw, Sink, PASSWORD};

both_backends!(
    signs_submissions_and_checks_mx_mail,
    dnsbl_and_greylisting,
    proxied_clients_are_checked_by_their_own_address
);

/// A load balancer allowed to speak the PROXY protocol to the MX.
const BALANCER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 30);
/// An address that is not.
const UNTRUSTED_BALANCER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 31);

/// The client address the published SPF record (`v=spf1 mx -all`) allows: the mail host's
/// address in the external view.
const MAIL_HOST_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 4);
/// A client address nothing allows.
const STRANGER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 5);
/// A client address on the test block list.
const LISTED_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 6);

/// An instance serving DNS (one view) for test, example.test, remote.test (MX on loopback), other.test
/// (SPF `-all`, DMARC quarantine) and the block list bl.test, using itself as the resolver; it
/// hosts example.test (alice, bob) and grey.test (carol, greylisted).
async fn instance(db: Db, sink: &Sink) -> (Instance, Server, SocketAddr) {
    instance_with(db, sink, "").await
}

/// [`instance`] with `more` TOML appended to its configuration.
async fn instance_with(db: Db, sink: &Sink, more: &str) -> (Instance, Server, SocketAddr) {
    let zones = tempfile::tempdir().expect("zones dir");
    let mut dns = OwnDns::new(&zones.keep());
    dns.zone("example.test", "");
    dns.zone("remote.test", "@ IN MX 10 mx\nmx IN A 127.0.0.1\n");
    dns.zone(
        "other.test",
        "@ IN TXT \"v=spf1 -all\"\n_dmarc IN TXT \"v=DMARC1; p=quarantine\"\n",
    );
    dns.zone(
        "bl.test",
        &format!("{}.0.0.127 IN A 127.0.0.2\n", LISTED_IP.octets()[3]),
    );
    let extra = format!(
        r#"{listener}
[smtp]
resolver = "{resolver}"
outbound_port = {sink}
retry_initial_secs = 1
retry_max_secs = 1
queue_scan_secs = 1
outbound_timeout_secs = 5
dnsbl = ["bl.test"]
dnsbl_check_private = true
greylist_domains = ["grey.test"]
greylist_delay_secs = 2

[mail]
dmarc_policy = "reject"
[mail.views.external]
addresses = ["{MAIL_HOST_IP}"]

{table}
{more}"#,
        listener = dns.listener(),
        resolver = dns.addr(),
        sink = sink.addr.port(),
        table = dns.table(),
    );
    let inst = Instance::new(db, &["smtp", "submissions", "admin"], &extra).await;
    inst.ok(&["domain", "add", "example.test"], "");
    inst.ok(&["domain", "add", "grey.test"], "");
    for user in ["alice@example.test", "bob@example.test", "carol@grey.test"] {
        inst.ok(&["user", "add", user], &format!("{PASSWORD}\n"));
    }
    let server = inst.start();
    (inst, server, dns.addr())
}

/// Sends one message over a plain MX session from `source`; returns the reply to RCPT (if it
/// was refused) or to the end of DATA.
fn deliver_from(
    mx: SocketAddr,
    source: Ipv4Addr,
    sender: &str,
    rcpt: &str,
    message: &str,
) -> String {
    let mut c = Raw::connect_from(mx, source);
    assert!(c.cmd("EHLO mail.example.test").starts_with("250"));
    assert!(c.cmd(&format!("MAIL FROM:<{sender}>")).starts_with("250"));
    let r = c.cmd(&format!("RCPT TO:<{rcpt}>"));
    if !r.starts_with("250") {
        return r;
    }
    assert!(c.cmd("DATA").starts_with("354"));
    let mut data = String::new();
    for line in message.split_inclusive("\r\n") {
        if line.starts_with('.') {
            data.push('.');
        }
        data.push_str(line);
    }
    data.push_str(".\r\n");
    c.send(data.as_bytes());
    let reply = c.reply();
    c.cmd("QUIT");
    reply
}

/// The header fields named `name` (continuation lines unfolded), in order.
fn fields(message: &str, name: &str) -> Vec<String> {
    let head = message.split("\r\n\r\n").next().unwrap_or("");
    let mut out: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some(c) = current.as_mut() {
                c.push(' ');
                c.push_str(line.trim());
            }
            continue;
        }
        out.extend(current.take());
        if let Some((n, v)) = line.split_once(':') {
            if n.eq_ignore_ascii_case(name) {
                current = Some(v.trim().to_owned());
            }
        }
    }
    out.extend(current);
    out
}

/// Submits a message from alice to `rcpt` over implicit TLS with smtplib.
fn submit(port: u16, rcpt: &str) {
    const SUBMIT: &str = r#"
import smtplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP_SSL('127.0.0.1', int(sys.argv[1]), context=ctx, timeout=20)
s.login('alice@example.test', sys.argv[2])
msg = ('From: Alice <alice@example.test>\r\nTo: %s\r\nSubject: signed\r\n'
       'Message-ID: <signed-1@example.test>\r\n\r\nThis body is covered by bh=.\r\n.leading dot\r\n') % sys.argv[3]
print(s.sendmail('alice@example.test', [sys.argv[3]], msg))
s.quit()
"#;
    let (ok, out) = python(SUBMIT, &[&port.to_string(), PASSWORD, rcpt]);
    assert!(ok && out.trim() == "{}", "{out}");
}

async fn signs_submissions_and_checks_mx_mail(db: Db) {
    let sink = Sink::start();
    let (inst, server, dns) = instance(db, &sink).await;
    let mx = server.addr("smtp");

    // Outbound: signed with both published keys (RSA-2048 and Ed25519, RFC 8463).
    submit(server.addr("submissions").port(), "ext@remote.test");
    let signed = sink.wait_for(1).remove(0).data;
    let signatures = fields(&signed, "DKIM-Signature");
    assert_eq!(signatures.len(), 2, "{signed}");
    assert!(signatures
        .iter()
        .any(|s| s.contains("a=rsa-sha256") && s.contains("d=example.test")));
    assert!(signatures
        .iter()
        .any(|s| s.contains("a=ed25519-sha256") && s.contains("d=example.test")));
    let authenticator = MessageAuthenticator(resolver(dns));
    let parsed = AuthenticatedMessage::parse(signed.as_bytes()).expect("parsable");
    let results = authenticator.verify_dkim(&parsed).await;
    assert_eq!(results.len(), 2);
    for r in &results {
        assert_eq!(r.result(), &DkimResult::Pass, "{r:?}");
    }

    // Inbound from the published mail host: everything passes, delivered to the INBOX.
    let reply = deliver_from(
        mx,
        MAIL_HOST_IP,
        "alice@example.test",
        "bob@example.test",
        &signed,
    );
    assert!(reply.starts_with("250"), "{reply}");
    let bob = wait_inbox(&inst, "bob@example.test", 1).await;
    assert!(
        bob[0].starts_with("Authentication-Results: mail.example.test;"),
        "{}",
        bob[0]
    );
    let ar = &fields(&bob[0], "Authentication-Results")[0];
    for result in [
        "dkim=pass header.d=example.test",
        "spf=pass",
        "smtp.mailfrom=alice@example.test",
        "dmarc=pass",
    ] {
        assert!(ar.contains(result), "{result} missing: {ar}");
    }

    // From a stranger but still DKIM-signed (a forwarder): SPF fails, DMARC passes on DKIM.
    let reply = deliver_from(
        mx,
        STRANGER_IP,
        "alice@example.test",
        "bob@example.test",
        &signed,
    );
    assert!(reply.starts_with("250"), "{reply}");
    let bob = wait_inbox(&inst, "bob@example.test", 2).await;
    let ar = &fields(&bob[1], "Authentication-Results")[0];
    assert!(
        ar.contains("spf=fail") && ar.contains("dkim=pass") && ar.contains("dmarc=pass"),
        "{ar}"
    );

    // A changed body breaks DKIM; from a stranger SPF fails too: DMARC fails and example.test
    // publishes p=reject, so the message is refused at the end of DATA and nothing is stored.
    let tampered = signed.replace("covered by bh=", "changed after signing");
    let reply = deliver_from(
        mx,
        STRANGER_IP,
        "alice@example.test",
        "bob@example.test",
        &tampered,
    );
    assert!(reply.starts_with("550 5.7.1"), "{reply}");
    assert_eq!(inbox(&inst, "bob@example.test").await.len(), 2);

    // The same tampered message from the mail host: DKIM fails (mail-auth reports a body hash
    // mismatch as neutral), SPF passes, DMARC passes.
    let reply = deliver_from(
        mx,
        MAIL_HOST_IP,
        "alice@example.test",
        "bob@example.test",
        &tampered,
    );
    assert!(reply.starts_with("250"), "{reply}");
    let bob = wait_inbox(&inst, "bob@example.test", 3).await;
    let ar = &fields(&bob[2], "Authentication-Results")[0];
    assert!(
        !ar.contains("dkim=pass")
            && ar.contains("dkim=neutral (body hash did not verify)")
            && ar.contains("spf=pass")
            && ar.contains("dmarc=pass"),
        "{ar}"
    );

    // other.test (SPF -all, DMARC p=quarantine), unsigned, with a forged result claiming to be
    // ours: the forgery is removed (RFC 8601 §5) and the message goes to Junk.
    let forged = "Authentication-Results: mail.example.test; dkim=pass; spf=pass; dmarc=pass\r\n\
                  Authentication-Results: elsewhere.test; spf=pass\r\n\
                  From: <news@other.test>\r\nTo: <bob@example.test>\r\nSubject: offer\r\n\r\nBuy.\r\n";
    let reply = deliver_from(
        mx,
        STRANGER_IP,
        "news@other.test",
        "bob@example.test",
        forged,
    );
    assert!(reply.starts_with("250"), "{reply}");
    let junk = folder(&inst, "bob@example.test", "Junk").await;
    assert_eq!(junk.len(), 1, "{junk:?}");
    let results = fields(&junk[0], "Authentication-Results");
    assert_eq!(results.len(), 2, "{}", junk[0]);
    assert!(
        results[0].starts_with("mail.example.test;")
            && results[0].contains("spf=fail")
            && results[0].contains("dmarc=fail"),
        "{results:?}"
    );
    assert_eq!(results[1], "elsewhere.test; spf=pass");
    assert_eq!(inbox(&inst, "bob@example.test").await.len(), 3);

    // What happened is counted on /metrics (shown on the admin dashboard).
    let m = metrics(&inst, &server);
    for (name, value) in [
        (
            r#"postern_smtp_messages_total{source="submission",result="accepted"}"#,
            1,
        ),
        (
            r#"postern_smtp_messages_total{source="mx",result="accepted"}"#,
            4,
        ),
        (
            r#"postern_smtp_messages_total{source="mx",result="refused"}"#,
            1,
        ),
        (r#"postern_smtp_policy_refusals_total{reason="dmarc"}"#, 1),
        ("postern_smtp_junk_total", 1),
        (r#"postern_smtp_outbound_total{result="delivered"}"#, 1),
        (
            r#"postern_logins_total{service="smtp",result="success"}"#,
            1,
        ),
    ] {
        assert_eq!(sample(&m, name), value, "{name} in\n{m}");
    }
    drop(server);
}

async fn dnsbl_and_greylisting(db: Db) {
    let sink = Sink::start();
    let (inst, server, _dns) = instance(db, &sink).await;
    let mx = server.addr("smtp");
    // remote.test publishes no SPF or DMARC: mail from it is only subject to these checks.
    let message = "From: <ann@remote.test>\r\nSubject: hi\r\n\r\nhi\r\n";

    // 127.0.0.6 is listed on bl.test (RFC 5782): refused at RCPT; others are not.
    let reply = deliver_from(
        mx,
        LISTED_IP,
        "ann@remote.test",
        "bob@example.test",
        message,
    );
    assert!(
        reply.starts_with("554 5.7.1") && reply.contains("bl.test"),
        "{reply}"
    );
    let mut c = Raw::connect_from(mx, MAIL_HOST_IP);
    c.cmd("EHLO mail.example.test");
    c.cmd("MAIL FROM:<ann@remote.test>");
    assert!(c.cmd("RCPT TO:<bob@example.test>").starts_with("250"));

    // grey.test is greylisted (RFC 6647): a new triplet is deferred until the delay has passed,
    // then accepted; a neighbour in the same /24 shares the triplet.
    let r = c.cmd("RCPT TO:<carol@grey.test>");
    assert!(r.starts_with("451 4.7.1"), "{r}");
    let r = c.cmd("RCPT TO:<carol@grey.test>");
    assert!(r.starts_with("451 4.7.1"), "too early: {r}");
    c.cmd("QUIT");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let reply = deliver_from(
        mx,
        STRANGER_IP,
        "ann@remote.test",
        "carol@grey.test",
        message,
    );
    assert!(reply.starts_with("250"), "after the delay: {reply}");
    // A different sender is a new triplet.
    let mut c = Raw::connect_from(mx, MAIL_HOST_IP);
    c.cmd("EHLO mail.example.test");
    c.cmd("MAIL FROM:<bert@remote.test>");
    let r = c.cmd("RCPT TO:<carol@grey.test>");
    assert!(r.starts_with("451 4.7.1"), "{r}");
    c.cmd("QUIT");
    let m = metrics(&inst, &server);
    assert_eq!(
        sample(
            &m,
            r#"postern_smtp_policy_refusals_total{reason="greylist"}"#
        ),
        3,
        "{m}"
    );
    assert_eq!(
        sample(&m, r#"postern_smtp_policy_refusals_total{reason="dnsbl"}"#),
        1,
        "{m}"
    );
}

/// Behind a load balancer speaking PROXY v2 (trusted source), the MX judges the client named
/// in the header: the block list check refuses a listed client, the log names it; a connection
/// from a source not trusted for the PROXY protocol is closed without a greeting.
async fn proxied_clients_are_checked_by_their_own_address(db: Db) {
    let sink = Sink::start();
    let more = format!("[net.proxy_protocol]\nsmtp = [\"{BALANCER_IP}/32\"]\n");
    let (_inst, server, _dns) = instance_with(db, &sink, &more).await;
    let mx = server.addr("smtp");

    let listed = std::net::SocketAddrV4::new(LISTED_IP, 40001);
    let mut c = Raw::connect_proxied(mx, BALANCER_IP, listed);
    assert!(c.cmd("EHLO mail.remote.test").starts_with("250"));
    assert!(c.cmd("MAIL FROM:<ann@remote.test>").starts_with("250"));
    let r = c.cmd("RCPT TO:<bob@example.test>");
    assert!(r.starts_with("554 5.7.1") && r.contains("bl.test"), "{r}");
    c.cmd("QUIT");
    server.wait_for_log(&listed.to_string());

    let clean = std::net::SocketAddrV4::new(STRANGER_IP, 40002);
    let mut c = Raw::connect_proxied(mx, BALANCER_IP, clean);
    assert!(c.cmd("EHLO mail.remote.test").starts_with("250"));
    assert!(c.cmd("MAIL FROM:<ann@remote.test>").starts_with("250"));
    let r = c.cmd("RCPT TO:<bob@example.test>");
    assert!(r.starts_with("250"), "{r}");
    c.cmd("QUIT");

    let mut untrusted = smtp_support::socket2_connect(mx, UNTRUSTED_BALANCER_IP);
    untrusted
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut got = Vec::new();
    let _ = std::io::Read::read_to_end(&mut untrusted, &mut got);
    assert!(
        got.is_empty(),
        "untrusted source got {:?}",
        String::from_utf8_lossy(&got)
    );
}
