//! `check` on the shipped example zones and on broken ones.

use std::path::Path;

use postern_dns::{check, DnsConfig};
use serde::Deserialize;

#[derive(Deserialize)]
struct File {
    dns: DnsConfig,
}

fn config(text: &str) -> DnsConfig {
    toml::from_str::<File>(text).expect("parses").dns
}

#[test]
fn shipped_example_zones_are_clean() {
    let zones = Path::new(env!("CARGO_MANIFEST_DIR")).join("../zones");
    let text = std::fs::read_to_string(zones.join("dns.example.toml")).expect("example config");
    let report = check(&config(&text), &zones).expect("config valid");
    let printed = report.to_string();
    assert!(report.is_ok(), "{printed}");
    assert_eq!(report.counts(), (0, 0), "{printed}");
    assert!(
        printed.contains("zone example.test./IN [internal]: loaded serial 2024060101"),
        "{printed}"
    );
    assert!(printed.contains("[external]"));
}

#[test]
fn broken_zone_is_reported_with_file_and_line() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(dir.path().join("zones/v")).expect("mkdir");
    std::fs::write(
        dir.path().join("zones/v/bad.zone"),
        "$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nwww CNAME ns\nwww TXT \"x\"\nother.example. A 192.0.2.2\n",
    )
    .expect("write");
    let cfg = config(
        "[dns]\n[[dns.view]]\nname = \"v\"\n[[dns.view.zone]]\nname = \"bad.test\"\nfile = \"v/bad.zone\"\n",
    );
    let report = check(&cfg, dir.path()).expect("config valid");
    assert!(!report.is_ok());
    let printed = report.to_string();
    assert!(
        printed.contains("v/bad.zone:5: error: www.bad.test.: CNAME and other data"),
        "{printed}"
    );
    assert!(
        printed.contains("v/bad.zone:7: warning: ignoring out-of-zone data"),
        "{printed}"
    );
    assert!(printed.contains("not loaded due to errors"));
    let bad_acl = config("[dns]\n[[dns.view]]\nname = \"v\"\nmatch_clients = [\"10.0.0.0/40\"]\n");
    let err = check(&bad_acl, dir.path()).expect_err("bad prefix");
    assert!(err.to_string().contains("10.0.0.0/40"), "{err}");
    let dup = config("[dns]\n[[dns.view]]\nname = \"v\"\n[[dns.view]]\nname = \"v\"\n");
    assert!(check(&dup, dir.path())
        .expect_err("duplicate")
        .to_string()
        .contains("duplicate view"));
}
