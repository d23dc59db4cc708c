//! Dynamic DNS UPDATE (RFC 2136) with TSIG against the real `postern serve`, with `nsupdate`
//! (bind9-dnsutils): adds and deletes visible at once with a new serial, prerequisites with
//! their RCODEs, a bad key answered NOTAUTH, names outside the key's grant REFUSED, the
//! records still served after a restart (they live in the store), and IXFR sending the
//! differences from the update journal.

mod common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};

use common::{dig, example_dns, repo_path, Db, Instance};

both_backends!(nsupdate_changes_are_stored_and_served);

const INSIDE: &str = "127.0.0.2";
const OUTSIDE: &str = "127.0.0.3";
const KEY: &str = "hmac-sha256:ddns-key:ZGRucy1leGFtcGxlLXNlY3JldC0wMTIzNDU2Nzg5YWI=";

/// The example `[dns]` with a `ddns-key` that may change A, AAAA and TXT records under
/// `dyn.example.test` in the internal view.
fn config() -> String {
    example_dns(&repo_path("zones"))
        .replace(
            "[[dns.view]]\nname = \"internal\"",
            "[[dns.tsig_key]]\nname = \"ddns-key\"\nsecret = \"ZGRucy1leGFtcGxlLXNlY3JldC0wMTIzNDU2Nzg5YWI=\"\n\n\
             [[dns.view]]\nname = \"internal\"",
        )
        .replace(
            "allow_transfer = [\"key:xfr-key\"]\n",
            "allow_transfer = [\"key:xfr-key\"]\n\n[[dns.view.update_policy]]\nkey = \"ddns-key\"\n\
             name = \"dyn.example.test\"\ntypes = [\"A\", \"AAAA\", \"TXT\"]\n",
        )
}

/// Runs nsupdate (over UDP) with `key` from `source`; returns (success, stdout + stderr).
fn nsupdate(server: SocketAddr, key: &str, source: &str, commands: &str) -> (bool, String) {
    nsupdate_with(server, key, source, commands, &[])
}

/// Like [`nsupdate`], with more nsupdate options (`-v`: over TCP).
fn nsupdate_with(
    server: SocketAddr,
    key: &str,
    source: &str,
    commands: &str,
    options: &[&str],
) -> (bool, String) {
    let script = format!(
        "server {} {}\nlocal {source}\nzone example.test\n{commands}\nsend\n",
        server.ip(),
        server.port()
    );
    let mut child = Command::new("nsupdate")
        .args(["-y", key, "-t", "20", "-u", "5"])
        .args(options)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nsupdate (bind9-dnsutils) is installed");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write script");
    let out = child.wait_with_output().expect("nsupdate runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn serial(server: SocketAddr) -> u32 {
    dig(server, INSIDE, &["example.test", "SOA"])[0]
        .split_whitespace()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .expect("SOA serial")
}

fn fails_with(result: (bool, String), rcode: &str) {
    let (ok, text) = result;
    assert!(!ok && text.contains(rcode), "want {rcode}: {text}");
}

async fn nsupdate_changes_are_stored_and_served(db: Db) {
    let inst = Instance::new(db, &["dns"], &config()).await;
    let server = inst.start();
    let dns = server.addr("dns");
    let before = serial(dns);

    // Add: served at once (the update is answered only once it is served), serial + 1.
    let (ok, text) = nsupdate(
        dns,
        KEY,
        INSIDE,
        "update add h1.dyn.example.test 300 A 192.168.10.201\nupdate add h1.dyn.example.test 300 TXT \"first host\"",
    );
    assert!(ok, "{text}\n{}", server.log());
    assert_eq!(
        dig(dns, INSIDE, &["h1.dyn.example.test", "A"]),
        ["192.168.10.201"]
    );
    assert_eq!(
        dig(dns, INSIDE, &["h1.dyn.example.test", "TXT"]),
        ["\"first host\""]
    );
    assert_eq!(serial(dns), before + 1, "one update, one serial step");
    assert!(
        dig(dns, OUTSIDE, &["h1.dyn.example.test", "A"]).is_empty(),
        "the external view is not changed"
    );
    // IXFR from the old serial sends the difference (RFC 1995 §4), not the zone.
    let diff = ixfr(dns, before);
    assert_eq!(diff.len(), 6, "{diff:?}");
    assert!(diff[1].contains(&format!(" {before} ")), "{diff:?}");
    assert!(diff[2].contains(&format!(" {} ", before + 1)), "{diff:?}");
    assert_eq!(diff[3..5], ["192.168.10.201", "\"first host\""], "{diff:?}");

    // Prerequisites (RFC 2136 §2.4) fail with their RCODEs and change nothing.
    let add = "update add h2.dyn.example.test 300 A 192.168.10.202";
    for (prereq, rcode) in [
        ("prereq nxdomain h1.dyn.example.test", "YXDOMAIN"),
        ("prereq yxdomain nope.dyn.example.test", "NXDOMAIN"),
        ("prereq yxrrset h1.dyn.example.test AAAA", "NXRRSET"),
        ("prereq nxrrset h1.dyn.example.test A", "YXRRSET"),
        (
            "prereq yxrrset h1.dyn.example.test A 192.168.10.99",
            "NXRRSET",
        ),
    ] {
        fails_with(
            nsupdate(dns, KEY, INSIDE, &format!("{prereq}\n{add}")),
            rcode,
        );
    }
    assert!(dig(dns, INSIDE, &["h2.dyn.example.test", "A"]).is_empty());
    // Over TCP this time (RFC 2136 §3.8 allows both).
    let (ok, text) = nsupdate_with(
        dns,
        KEY,
        INSIDE,
        &format!("prereq yxrrset h1.dyn.example.test A 192.168.10.201\nprereq nxdomain h2.dyn.example.test\n{add}"),
        &["-v"],
    );
    assert!(ok, "satisfied prerequisites: {text}");
    assert_eq!(
        dig(dns, INSIDE, &["h2.dyn.example.test", "A"]),
        ["192.168.10.202"]
    );

    // Outside the grant, a type not granted, or the external view (no policy): REFUSED.
    fails_with(
        nsupdate(
            dns,
            KEY,
            INSIDE,
            "update add www2.example.test 300 A 192.168.10.9",
        ),
        "REFUSED",
    );
    fails_with(
        nsupdate(
            dns,
            KEY,
            INSIDE,
            "update add h1.dyn.example.test 300 MX 10 mail.example.test.",
        ),
        "REFUSED",
    );
    fails_with(
        nsupdate(
            dns,
            KEY,
            OUTSIDE,
            "update add h3.dyn.example.test 300 A 192.0.2.3",
        ),
        "REFUSED",
    );
    // A wrong secret or an unknown key: NOTAUTH (RFC 8945 §5.2).
    let wrong = "hmac-sha256:ddns-key:d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZw==";
    fails_with(nsupdate(dns, wrong, INSIDE, add), "NOTAUTH");
    let unknown = "hmac-sha256:who-key:ZGRucy1leGFtcGxlLXNlY3JldC0wMTIzNDU2Nzg5YWI=";
    fails_with(nsupdate(dns, unknown, INSIDE, add), "NOTAUTH");

    // Delete one RR type and a whole name.
    let (ok, text) = nsupdate(
        dns,
        KEY,
        INSIDE,
        "update delete h1.dyn.example.test TXT\nupdate delete h2.dyn.example.test",
    );
    assert!(ok, "{text}");
    assert!(dig(dns, INSIDE, &["h1.dyn.example.test", "TXT"]).is_empty());
    assert!(dig(dns, INSIDE, &["h2.dyn.example.test", "A"]).is_empty());
    assert_eq!(serial(dns), before + 3);
    assert!(server.stop().success());

    // The records live in the store: a restarted server serves them, and its IXFR still has
    // the three steps (h2 added then deleted: in the difference, not in the zone).
    let server = inst.start();
    let dns = server.addr("dns");
    assert_eq!(
        dig(dns, INSIDE, &["h1.dyn.example.test", "A"]),
        ["192.168.10.201"]
    );
    assert_eq!(serial(dns), before + 3);
    let steps = ixfr(dns, before);
    let soas = steps
        .iter()
        .filter(|l| l.starts_with("ns1.example.test."))
        .count();
    assert_eq!(soas, 2 + 2 * 3, "three differences: {steps:?}");
    assert!(steps.iter().any(|l| l == "192.168.10.202"), "{steps:?}");
    assert!(
        !steps.iter().any(|l| l == "192.168.10.80"),
        "not the whole zone: {steps:?}"
    );
    assert_eq!(ixfr(dns, before + 3).len(), 1, "up to date: the SOA only");
    let full = ixfr(dns, 1);
    assert!(
        full.iter().any(|l| l == "192.168.10.80"),
        "a serial the journal does not cover gets the zone: {full:?}"
    );
    assert!(server.stop().success());
}

/// `dig IXFR=serial` (over TCP) signed with the example's transfer key, from the internal view.
fn ixfr(server: SocketAddr, serial: u32) -> Vec<String> {
    dig(
        server,
        INSIDE,
        &[
            "-y",
            "hmac-sha256:xfr-key:cG9zdGVybi1leGFtcGxlLXRzaWcta2V5LTAxMjM0NTY3",
            "example.test",
            &format!("IXFR={serial}"),
        ],
    )
}
