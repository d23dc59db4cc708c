//! Zone data fidelity against BIND: a corpus of every record type Postern reads (escapes,
//! relative names, RFC 3597 `\#`) is loaded by `postern serve`, transferred with `dig AXFR`
//! and compared record for record with `named-checkzone -D` on the same file (dig and
//! named-checkzone print through the same BIND library, so any difference is in the data).
//! Also: `postern check` errors with file:line, and DNAME answers (RFC 6672 §3).

mod common;

use std::path::Path;
use std::process::Command;

use common::{dig, dig_text, repo_path, Db, Instance};

const ORIGIN: &str = "fidelity.test";

fn dns_config(zones: &Path) -> String {
    format!(
        "[dns]\nzones_dir = \"{}\"\n\n[[dns.view]]\nname = \"all\"\nmatch_clients = [\"any\"]\n\
         allow_transfer = [\"127.0.0.0/8\"]\n\n[[dns.view.zone]]\nname = \"{ORIGIN}\"\n\
         file = \"corpus.zone\"\n",
        zones.display()
    )
}

/// Presentation lines without comments, with whitespace runs made one space, sorted.
fn normalized(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with(';'))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    lines.sort();
    lines
}

fn named_checkzone(file: &Path) -> Vec<String> {
    let out = Command::new("named-checkzone")
        .args(["-k", "ignore", "-D", "-o", "-", ORIGIN])
        .arg(file)
        .output()
        .expect("named-checkzone (bind9-utils) is installed");
    assert!(
        out.status.success(),
        "named-checkzone refused the corpus: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    normalized(
        &text
            .lines()
            .filter(|l| !l.starts_with("zone ") && *l != "OK")
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

fn axfr(server: std::net::SocketAddr) -> Vec<String> {
    normalized(&dig_text(
        server,
        "127.0.0.1",
        &[
            "+onesoa",
            "+nocmd",
            "+nostats",
            "+nocomments",
            ORIGIN,
            "AXFR",
        ],
    ))
}

#[tokio::test]
async fn corpus_transfers_exactly_as_named_checkzone_reads_it() {
    let zones = tempfile::tempdir().expect("tmp");
    let corpus = zones.path().join("corpus.zone");
    std::fs::copy(repo_path("tests/fixtures/fidelity/corpus.zone"), &corpus).expect("copy");
    let inst = Instance::new(Db::Sqlite, &["dns"], &dns_config(zones.path())).await;
    let check = inst.ok(&["check"], "");
    assert!(check.contains("configuration OK"), "{check}");
    let server = inst.start();
    let expected = named_checkzone(&corpus);
    let served = axfr(server.addr("dns"));
    let missing: Vec<&String> = expected.iter().filter(|l| !served.contains(l)).collect();
    let extra: Vec<&String> = served.iter().filter(|l| !expected.contains(l)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "named-checkzone has, Postern's AXFR lacks:\n{missing:#?}\nPostern serves, named-checkzone lacks:\n{extra:#?}"
    );
    assert_eq!(expected.len(), 78, "records in the corpus");
    assert!(server.stop().success());
}

#[tokio::test]
async fn dname_redirects_names_below_it() {
    let zones = tempfile::tempdir().expect("tmp");
    std::fs::copy(
        repo_path("tests/fixtures/fidelity/corpus.zone"),
        zones.path().join("corpus.zone"),
    )
    .expect("copy");
    let inst = Instance::new(Db::Sqlite, &["dns"], &dns_config(zones.path())).await;
    let server = inst.start();
    let dns = server.addr("dns");
    assert_eq!(
        dig(dns, "127.0.0.1", &["x.alias.fidelity.test", "A"]),
        ["target.example.", "x.target.example."]
    );
    assert_eq!(
        dig(dns, "127.0.0.1", &["mail.old.fidelity.test", "TXT"]),
        ["new.fidelity.test.", "mail.new.fidelity.test."]
    );
    assert!(server.stop().success());
}

#[tokio::test]
async fn check_names_the_line_of_data_bind_refuses() {
    let zones = tempfile::tempdir().expect("tmp");
    let inst = Instance::new(Db::Sqlite, &["dns"], &dns_config(zones.path())).await;
    let head = "$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.1\n";
    let long = "x".repeat(256);
    for (line, expected) in [
        (
            format!("t TXT \"ok\" \"{long}\""),
            "bad TXT record: character-string of 256 octets: at most 255",
        ),
        (
            "a A 192.0.2.3 192.0.2.4".to_owned(),
            "bad A record: extra input text `192.0.2.4`",
        ),
        (
            "m MX 10 a. b.".to_owned(),
            "bad MX record: extra input text `b.`",
        ),
        (
            "t TXT \"\\256\"".to_owned(),
            "bad TXT record: escape \\256 is not an octet",
        ),
        ("x FOO 1".to_owned(), "unknown record type `FOO`"),
        (
            "s SVCB 1 www port=1 port=2".to_owned(),
            "bad SVCB record: SvcParam `port` given twice",
        ),
        (
            "l LOC 91 N 0 E 0".to_owned(),
            "bad LOC record: bad LOC coordinate",
        ),
    ] {
        std::fs::write(zones.path().join("corpus.zone"), format!("{head}{line}\n")).expect("write");
        let out = inst.run(&["check"], "");
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{line}: {text}");
        assert!(
            text.contains(&format!("corpus.zone:5: error: {expected}")),
            "{line}: {text}"
        );
    }
}

#[tokio::test]
async fn oversized_tcp_answer_and_unknown_opcode() {
    let zones = tempfile::tempdir().expect("tmp");
    let mut zone = String::from(
        "$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.1\n",
    );
    // 300 strings of 250 octets: about 77 KB, more than one TCP message can hold.
    for i in 0..300 {
        zone.push_str(&format!("huge TXT \"{i:03}{}\"\n", "x".repeat(247)));
    }
    std::fs::write(zones.path().join("corpus.zone"), zone).expect("write");
    let inst = Instance::new(Db::Sqlite, &["dns"], &dns_config(zones.path())).await;
    let server = inst.start();
    let dns = server.addr("dns");
    let big = dig_text(
        dns,
        "127.0.0.1",
        &["+tcp", "+ignore", "huge.fidelity.test", "TXT"],
    );
    assert!(
        big.contains(" tc") && big.contains("ANSWER: 0,"),
        "TC with empty sections, as the README says: {big}"
    );
    let notimp = dig_text(
        dns,
        "127.0.0.1",
        &["+opcode=15", "+cdflag", "fidelity.test", "SOA"],
    );
    assert!(notimp.contains("status: NOTIMP"), "{notimp}");
    let flags = notimp
        .lines()
        .find(|l| l.contains(";; flags:"))
        .expect("flags line");
    assert!(
        !flags.contains(" cd"),
        "CD not echoed for an unknown opcode: {flags}"
    );
    assert!(server.stop().success());
}
