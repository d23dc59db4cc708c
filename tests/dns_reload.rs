//! Reload cost follows the change: with a big zone beside it, an admin record, a zone file edit
//! and a new mail domain rebuild only the zones they touch, as `postern_dns_zone_builds_total`
//! on `/metrics` and the "zone built" log lines of the real `postern serve` show.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{copy_zones, dig, example_dns, metrics_with, Db, Instance, Server};

both_backends!(one_edit_rebuilds_only_the_zone_it_touches);

const INSIDE: &str = "127.0.0.2";
const OUTSIDE: &str = "127.0.0.3";
const BIG_HOSTS: u32 = 20_000;

/// `big.test` with `BIG_HOSTS` A records.
fn big_zone() -> String {
    let mut text = String::from(
        "$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n@ NS ns1\nns1 A 10.0.0.1\n",
    );
    for i in 0..BIG_HOSTS {
        text.push_str(&format!("h{i} A 10.1.{}.{}\n", i / 250, i % 250 + 1));
    }
    text
}

/// How often each (view, zone) was built, from `/metrics`.
fn builds(server: &Server, token: &str, view: &str, zone: &str) -> u64 {
    let text = metrics_with(server, token);
    text.lines()
        .filter(|l| l.starts_with("postern_dns_zone_builds_total{"))
        .filter(|l| l.contains(&format!("view=\"{view}\"")))
        .find(|l| l.contains(&format!("zone=\"{zone}\"")))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

/// Polls dig until it answers `want`, or fails after a generous deadline.
fn wait_for(server: &Server, dns: SocketAddr, source: &str, args: &[&str], want: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = dig(dns, source, args);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{args:?} from {source}: {got:?}, want {want:?}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn one_edit_rebuilds_only_the_zone_it_touches(db: Db) {
    let zones = tempfile::tempdir().unwrap();
    copy_zones(zones.path());
    std::fs::write(zones.path().join("internal/big.test.zone"), big_zone()).unwrap();
    let config = example_dns(zones.path()).replace(
        "[[dns.view]]\nname = \"external\"",
        "[[dns.view.zone]]\nname = \"big.test\"\nfile = \"internal/big.test.zone\"\n\n\
         [[dns.view]]\nname = \"external\"",
    );
    assert!(config.contains("big.test"), "{config}");
    let inst = Instance::new(db, &["dns", "admin", "imaps", "submissions"], &config).await;
    let server = inst.start();
    let dns = server.addr("dns");
    let token = inst.ok(&["admin", "token", "admin", "--label", "metrics"], "");
    let token = token.trim();
    let last = format!("h{}.big.test", BIG_HOSTS - 1);
    assert_eq!(dig(dns, INSIDE, &[&last, "A"]), ["10.1.79.250"]);
    let built = |view: &str, zone: &str| builds(&server, token, view, zone);
    assert_eq!(built("internal", "big.test."), 1, "{}", server.log());
    let small_before = built("internal", "example.test.");
    assert!(small_before >= 1);

    // An admin record in the small zone.
    let store = postern_store::Store::open(&inst.db.url).await.unwrap();
    store
        .add_dns_record(
            "internal",
            "labelprinter.example.test",
            "A",
            60,
            "192.168.10.99",
        )
        .await
        .unwrap();
    wait_for(
        &server,
        dns,
        INSIDE,
        &["labelprinter.example.test", "A"],
        &["192.168.10.99"],
    );
    assert_eq!(built("internal", "example.test."), small_before + 1);

    // A one-line edit of the small zone's file.
    let file = zones.path().join("internal/example.test.zone");
    let text = std::fs::read_to_string(&file).unwrap();
    let edited = text.replace("192.168.10.80", "192.168.10.81");
    assert_ne!(text, edited);
    std::fs::write(&file, edited).unwrap();
    wait_for(
        &server,
        dns,
        INSIDE,
        &["www.example.test", "A"],
        &["192.168.10.81"],
    );
    assert_eq!(built("internal", "example.test."), small_before + 2);

    // A new mail domain publishes its records in both views' example.test.
    let external_before = built("external", "example.test.");
    store.add_domain("example.test").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while dig(dns, OUTSIDE, &["pst1e._domainkey.example.test", "TXT"]).is_empty() {
        assert!(
            Instant::now() < deadline,
            "DKIM key not published\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(built("external", "example.test.") > external_before);

    // Through all of it the big zone was built once, at start.
    assert_eq!(built("internal", "big.test."), 1);
    let log = server.log();
    let big_builds = log
        .lines()
        .filter(|l| l.contains("zone built") && l.contains("big.test"))
        .count();
    assert_eq!(big_builds, 1, "{log}");
    assert_eq!(dig(dns, INSIDE, &[&last, "A"]), ["10.1.79.250"]);
    store.close().await;
    assert!(server.stop().success());
}
