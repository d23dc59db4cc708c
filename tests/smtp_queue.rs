//! End-to-end tests of the outbound queue against the real binary: MX lookup through a test DNS
//! server, delivery to an SMTP sink on loopback, retries after 4xx, bounces after 5xx and expiry,
//! forwarding through aliases, persistence across restarts and `postern queue`.

mod common;
mod smtp_support;

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::{Db, Instance};
use smtp_support::{
    hosted, inbox, python, swaks, transcript, wait_inbox, wait_queue_empty, Raw, Rr, Sink, TestDns,
    PASSWORD,
};

both_backends!(
    delivers_retries_and_bounces,
    relays_to_address_literals,
    queue_survives_restart_and_is_managed_by_cli,
    kill_9_during_drain_loses_nothing_and_resends_at_once,
    two_nodes_on_one_database_deliver_each_message_once
);

/// The test zone: remote.test has a dead preferred MX and a live second one; implicit.test has
/// no MX, only an address; everything else does not exist.
fn zone() -> HashMap<String, Vec<Rr>> {
    let mut z = HashMap::new();
    z.insert(
        "remote.test".into(),
        vec![
            Rr::Mx(20, "mx2.remote.test".into()),
            Rr::Mx(5, "mx1.remote.test".into()),
        ],
    );
    z.insert(
        "mx1.remote.test".into(),
        vec![Rr::A(Ipv4Addr::new(127, 0, 0, 9))],
    );
    z.insert("mx2.remote.test".into(), vec![Rr::A(Ipv4Addr::LOCALHOST)]);
    z.insert("implicit.test".into(), vec![Rr::A(Ipv4Addr::LOCALHOST)]);
    z
}

/// `[smtp]` settings pointing the queue at the test DNS and sink, with fast retries.
fn queue_config(dns: &TestDns, sink: &Sink, lifetime: u64) -> String {
    format!(
        "[smtp]\nresolver = \"{}\"\noutbound_port = {}\nretry_initial_secs = 1\nretry_max_secs = 1\nqueue_scan_secs = 1\nqueue_lifetime_secs = {lifetime}\noutbound_timeout_secs = 5\n",
        dns.addr,
        sink.addr.port()
    )
}

/// Submits one message from alice over implicit TLS.
fn submit(inst_port: u16, rcpts: &[&str], subject: &str) {
    const SUBMIT: &str = r#"
import smtplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP_SSL('127.0.0.1', int(sys.argv[1]), context=ctx, timeout=20)
s.login('alice@example.test', sys.argv[2])
rcpts = sys.argv[3].split(',')
msg = 'From: alice@example.test\r\nTo: %s\r\nSubject: %s\r\n\r\nHi there.\r\n' % (', '.join(rcpts), sys.argv[4])
print(s.sendmail('alice@example.test', rcpts, msg))
s.quit()
"#;
    let (ok, out) = python(
        SUBMIT,
        &[&inst_port.to_string(), PASSWORD, &rcpts.join(","), subject],
    );
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "{}");
}

async fn delivers_retries_and_bounces(db: Db) {
    let dns = TestDns::start(zone());
    let sink = Sink::start();
    let (inst, server) = hosted(db, &queue_config(&dns, &sink, 3600)).await;
    submit(
        server.addr("submissions").port(),
        &[
            "ok@remote.test",
            "temp@remote.test",
            "perm@remote.test",
            "ok@implicit.test",
            "x@nxdomain.test",
        ],
        "outbound",
    );
    let got = sink.wait_for(3);
    let mut rcpts: Vec<&str> = got.iter().map(|r| r.to[0].as_str()).collect();
    rcpts.sort();
    assert_eq!(
        rcpts,
        ["ok@implicit.test", "ok@remote.test", "temp@remote.test"]
    );
    for r in &got {
        assert_eq!(r.from, "alice@example.test");
        // Signed (RFC 6376) over the trace header the submission server added.
        assert!(r.data.starts_with("DKIM-Signature: "), "{}", r.data);
        assert!(r.data.contains("\r\nReceived: from "), "{}", r.data);
        assert!(r.data.contains("Subject: outbound\r\n"), "{}", r.data);
        assert!(
            r.data.ends_with("Hi there.\r\n"),
            "no extra blank line: {:?}",
            r.data
        );
    }
    assert_eq!(
        sink.attempts("temp@remote.test"),
        2,
        "451 once, then delivered on retry"
    );
    // Two bounces (RFC 3464) reach alice: 550 from the sink and a domain that does not exist.
    let alice = wait_inbox(&inst, "alice@example.test", 2).await;
    let perm = alice
        .iter()
        .find(|m| m.contains("Final-Recipient: rfc822; perm@remote.test"))
        .expect("bounce for perm@");
    assert!(perm.contains("Content-Type: multipart/report"), "{perm}");
    assert!(
        perm.contains(
            "Final-Recipient: rfc822; perm@remote.test\r\nAction: failed\r\nStatus: 5.1.1"
        ),
        "{perm}"
    );
    assert!(
        perm.contains("Diagnostic-Code: smtp; 550 5.1.1 no such user here"),
        "{perm}"
    );
    assert!(perm.contains("Remote-MTA: dns; mx2.remote.test"), "{perm}");
    assert!(
        perm.contains("Subject: outbound"),
        "original headers included"
    );
    let nx = alice
        .iter()
        .find(|m| m.contains("Final-Recipient: rfc822; x@nxdomain.test"))
        .expect("bounce for the missing domain");
    assert!(nx.contains("Status: 5.1.2"), "{nx}");
    wait_queue_empty(&inst).await;
    assert!(server.log().contains("delivered"), "{}", server.log());

    // An alias to an external address forwards mail arriving on the MX.
    let o = swaks(
        server.addr("smtp"),
        &[
            "--from",
            "someone@elsewhere.test",
            "--to",
            "fwd@example.test",
            "--header",
            "Subject: forwarded",
        ],
    );
    assert!(
        transcript(&o).contains("<-  250 2.0.0 Ok"),
        "{}",
        transcript(&o)
    );
    let got = sink.wait_for(4);
    let fwd = got
        .iter()
        .find(|r| r.data.contains("Subject: forwarded"))
        .unwrap();
    assert_eq!(fwd.to, ["ok@remote.test"]);
    assert_eq!(fwd.from, "someone@elsewhere.test");
    assert!(server.stop().success());
}

/// Submitted mail to address literals (RFC 5321 §4.1.3) goes straight to the address, without an
/// MX lookup (§5.1; the resolver named here answers nothing): `[IPv6:::1]` to a sink on the IPv6
/// loopback, `[127.0.0.1]` to one on the same port over IPv4.
async fn relays_to_address_literals(db: Db) {
    let (v6, v4) = loop {
        let v6 = Sink::start_at(SocketAddr::from((Ipv6Addr::LOCALHOST, 0)))
            .expect("a sink on the IPv6 loopback [::1] (is IPv6 enabled?)");
        let same_port = SocketAddr::from((Ipv4Addr::LOCALHOST, v6.addr.port()));
        if let Ok(v4) = Sink::start_at(same_port) {
            break (v6, v4);
        }
    };
    let config = format!(
        "[smtp]\nresolver = \"127.0.0.1:9\"\noutbound_port = {}\nretry_initial_secs = 1\nretry_max_secs = 1\nqueue_scan_secs = 1\noutbound_timeout_secs = 5\n",
        v6.addr.port()
    );
    let (inst, server) = hosted(db, &config).await;
    submit(
        server.addr("submissions").port(),
        &["u@[IPv6:::1]", "v@[127.0.0.1]"],
        "literal",
    );
    let got6 = v6.wait_for(1);
    let got4 = v4.wait_for(1);
    wait_queue_empty(&inst).await;
    assert_eq!(v6.received.lock().unwrap().len(), 1);
    assert_eq!(got6[0].to, ["u@[IPv6:::1]"]);
    assert_eq!(got4[0].to, ["v@[127.0.0.1]"]);
    for got in [&got6[0], &got4[0]] {
        assert_eq!(got.from, "alice@example.test");
        assert!(got.data.contains("Subject: literal\r\n"), "{}", got.data);
    }
    assert!(server.stop().success());
}

/// Two Postern processes on one database (PostgreSQL: two nodes; SQLite: two processes on one
/// file) both run queue workers: every queued message reaches the sink exactly once.
async fn two_nodes_on_one_database_deliver_each_message_once(db: Db) {
    let dns = TestDns::start(zone());
    let sink = Sink::start();
    let (node_a, server_a) = hosted(db, &queue_config(&dns, &sink, 3600)).await;
    let node_b = Instance::new(db, &["smtp"], &queue_config(&dns, &sink, 3600)).await;
    let config = std::fs::read_to_string(&node_b.config).expect("config");
    std::fs::write(
        &node_b.config,
        config.replace(&node_b.db.url, &node_a.db.url),
    )
    .expect("config");
    let server_b = node_b.start();
    let rcpts: Vec<String> = (0..24).map(|i| format!("ok{i}@remote.test")).collect();
    let rcpts: Vec<&str> = rcpts.iter().map(String::as_str).collect();
    submit(server_a.addr("submissions").port(), &rcpts, "once");
    let got = sink.wait_for(24);
    wait_queue_empty(&node_a).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got_later = sink.received.lock().unwrap().len();
    assert_eq!(got_later, 24, "a message was delivered twice");
    let mut to: Vec<&str> = got.iter().map(|r| r.to[0].as_str()).collect();
    to.sort();
    to.dedup();
    assert_eq!(to.len(), 24);
    assert!(server_a.stop().success());
    assert!(server_b.stop().success());
}

async fn queue_survives_restart_and_is_managed_by_cli(db: Db) {
    let dns = TestDns::start(zone());
    let sink = Sink::start();
    let (inst, server) = hosted(db, &queue_config(&dns, &sink, 3600)).await;
    submit(
        server.addr("submissions").port(),
        &["defer@remote.test"],
        "deferred",
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while sink.attempts("defer@remote.test") < 2 {
        assert!(Instant::now() < deadline, "no retry seen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(server.stop().success());
    let list = inst.ok(&["queue", "list"], "");
    assert!(
        list.contains("\talice@example.test\tdefer@remote.test\t"),
        "{list}"
    );
    assert!(
        list.contains("451 4.3.0 try again later") || list.contains("451"),
        "{list}"
    );
    let id = list.split('\t').next().unwrap().trim().to_owned();
    // The entry is still there after a restart and keeps being retried.
    let before = sink.attempts("defer@remote.test");
    let server = inst.start();
    let deadline = Instant::now() + Duration::from_secs(30);
    while sink.attempts("defer@remote.test") <= before {
        assert!(Instant::now() < deadline, "not retried after restart");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        inst.ok(&["queue", "retry", &id], ""),
        format!("queue entry {id} is due now\n")
    );
    assert_eq!(
        inst.ok(&["queue", "delete", &id], ""),
        format!("deleted queue entry {id}\n")
    );
    assert_eq!(inst.ok(&["queue", "list"], ""), "queue is empty\n");
    assert!(
        !inst.run(&["queue", "delete", &id], "").status.success(),
        "gone"
    );
    assert!(
        inbox(&inst, "alice@example.test").await.is_empty(),
        "deleting does not bounce"
    );
    assert!(server.stop().success());
}

/// kill -9 while the queue drains to a slow next hop: after the restart the node takes back its
/// own leases at once (not after the 15-minute lease), every message arrives, re-sends start
/// within seconds, and the only duplicates are messages that were in flight at the kill (the sink
/// had taken them without the dead process seeing its 250): at most one per lease.
async fn kill_9_during_drain_loses_nothing_and_resends_at_once(db: Db) {
    const N: usize = 40;
    let dns = TestDns::start(zone());
    let sink = Sink::start();
    let (inst, server) = hosted(db, &queue_config(&dns, &sink, 3600)).await;
    let rcpts: Vec<String> = (0..N).map(|i| format!("slow{i}@remote.test")).collect();
    let rcpts: Vec<&str> = rcpts.iter().map(String::as_str).collect();
    submit(server.addr("submissions").port(), &rcpts, "drain");
    sink.wait_for(6);
    server.kill();
    let at_kill = sink.received.lock().unwrap().len();
    assert!(at_kill < N, "the drain was over before the kill");
    // The entries the dead process held under lease: due only in a quarter of an hour.
    let store = postern_store::Store::open(&inst.db.url).await.unwrap();
    let soon = postern_store::unix_now() + 60;
    let leased: Vec<String> = store
        .list_queue()
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.next_attempt > soon)
        .map(|e| e.recipient)
        .collect();
    assert!(!leased.is_empty(), "no delivery was in flight at the kill");
    let restarted = Instant::now();
    let server = inst.start();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !store.list_queue().await.unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "queue not drained after the restart: {:?}\n{}",
            store.list_queue().await.unwrap(),
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drained = restarted.elapsed();
    store.close().await;
    let received = sink.received.lock().unwrap().clone();
    let mut count: HashMap<&str, usize> = HashMap::new();
    for r in &received {
        *count.entry(r.to[0].as_str()).or_default() += 1;
    }
    assert_eq!(count.len(), N, "every message arrived");
    let resent: Vec<&str> = received[at_kill..]
        .iter()
        .map(|r| r.to[0].as_str())
        .collect();
    for r in &leased {
        assert!(resent.contains(&r.as_str()), "{r} was not sent again");
    }
    // Duplicates only from deliveries in flight at the kill (the sink took them, the 250 never
    // reached the dead process): at most one per lease.
    let duplicates: Vec<&str> = count
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(r, _)| *r)
        .collect();
    for d in &duplicates {
        assert!(
            leased.iter().any(|l| l == d),
            "{d} sent twice without being in flight"
        );
        assert_eq!(count[d], 2, "{d}");
    }
    eprintln!(
        "kill -9 after {at_kill} of {N} taken: {} leases taken back, queue drained {drained:?} after the restart, {} duplicates",
        leased.len(),
        duplicates.len()
    );
    assert!(
        drained < Duration::from_secs(30),
        "re-sends waited for the lease: {drained:?}"
    );
    assert!(
        server.log().contains("took back this node's queue leases"),
        "{}",
        server.log()
    );
    assert!(server.stop().success());
}

#[tokio::test]
async fn expired_entries_bounce_but_bounces_never_bounce() {
    let dns = TestDns::start(zone());
    let sink = Sink::start();
    let (inst, server) = hosted(Db::Sqlite, &queue_config(&dns, &sink, 2)).await;
    inst.ok(
        &["alias", "add", "gone@example.test", "perm@remote.test"],
        "",
    );
    submit(
        server.addr("submissions").port(),
        &["defer@remote.test"],
        "expiring",
    );
    let alice = wait_inbox(&inst, "alice@example.test", 1).await;
    assert!(
        alice[0].contains("Final-Recipient: rfc822; defer@remote.test"),
        "{}",
        alice[0]
    );
    assert!(alice[0].contains("Status: 4.4.7"), "{}", alice[0]);
    assert!(
        alice[0].contains("451 4.3.0 try again later"),
        "last error reported: {}",
        alice[0]
    );
    wait_queue_empty(&inst).await;

    // A bounce (null sender) forwarded to an address that refuses it is dropped, not bounced.
    let mut c = Raw::connect(server.addr("smtp"));
    c.cmd("EHLO client.test");
    assert!(c.cmd("MAIL FROM:<>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<gone@example.test>").starts_with("250"));
    c.cmd("DATA");
    c.send(b"Subject: a bounce\r\n\r\nundeliverable\r\n.\r\n");
    assert!(c.reply().starts_with("250"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while sink.attempts("perm@remote.test") == 0 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_queue_empty(&inst).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let store = postern_store::Store::open(&inst.db.url).await.unwrap();
    assert!(
        store.list_queue().await.unwrap().is_empty(),
        "no bounce of a bounce queued"
    );
    store.close().await;
    assert_eq!(inbox(&inst, "alice@example.test").await.len(), 1);
    assert!(server.stop().success());
}

#[tokio::test]
async fn delivers_to_another_postern_over_starttls() {
    // The "remote" server: a second Postern hosting remote.test.
    let remote = Instance::new(Db::Sqlite, &["smtp"], "").await;
    remote.ok(&["domain", "add", "remote.test"], "");
    remote.ok(&["user", "add", "ok@remote.test"], &format!("{PASSWORD}\n"));
    let remote_server = remote.start();
    let dns = TestDns::start(zone());
    let extra = format!(
        "[smtp]\nresolver = \"{}\"\noutbound_port = {}\nretry_initial_secs = 1\nqueue_scan_secs = 1\n",
        dns.addr,
        remote_server.addr("smtp").port()
    );
    let (_inst, server) = hosted(Db::Sqlite, &extra).await;
    submit(
        server.addr("submissions").port(),
        &["ok@remote.test"],
        "over TLS",
    );
    let got = wait_inbox(&remote, "ok@remote.test", 1).await;
    // The receiving side records that the hop was encrypted (RFC 3848 ESMTPS).
    // Under the receiver's Authentication-Results (RFC 8601 §5: on top).
    assert!(
        got[0].starts_with("Authentication-Results: mail.example.test;"),
        "{}",
        got[0]
    );
    assert!(got[0].contains("\r\nReceived: from mail.example.test ([127.0.0.1])\r\n\tby mail.example.test (Postern) with ESMTPS id "), "{}", got[0]);
    assert!(
        got[0].contains("with ESMTPSA id"),
        "the sender's own Received header travels along"
    );
    assert!(got[0].contains("Subject: over TLS"));
    assert!(server.stop().success());
    assert!(remote_server.stop().success());
}
