//! DNS served by the real `postern serve`: views by client address, records from the store (admin
//! records and the records of hosted mail domains) served at once with a new serial, `postern
//! check`, SIGHUP with a broken zone, and `postern import-bind`. The DNS crate's own tests cover the
//! lookup rules in depth (dns/tests).

mod common;

use common::{copy_zones, dig, example_dns, metrics, repo_path, sample, Db, Instance};

both_backends!(
    views_answer_by_client_address,
    store_records_are_served_at_once
);

const INSIDE: &str = "127.0.0.2";
const OUTSIDE: &str = "127.0.0.3";

fn serial(server: std::net::SocketAddr, source: &str) -> u32 {
    let soa = dig(server, source, &["example.test", "SOA"]);
    soa[0]
        .split_whitespace()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .expect("SOA serial")
}

async fn views_answer_by_client_address(db: Db) {
    let inst = Instance::new(db, &["dns"], &example_dns(&repo_path("zones"))).await;
    let server = inst.start();
    let dns = server.addr("dns");
    assert_eq!(
        dig(dns, INSIDE, &["www.example.test", "A"]),
        ["192.168.10.80"]
    );
    assert_eq!(
        dig(dns, OUTSIDE, &["www.example.test", "A"]),
        ["192.0.2.80"]
    );
    assert_eq!(
        dig(dns, INSIDE, &["webmail.example.test", "A"]),
        ["portal.example.test.", "www.example.test.", "192.168.10.80"]
    );
    // Out-of-zone names are refused, never recursed.
    let refused = std::process::Command::new("dig")
        .args([
            "-b",
            OUTSIDE,
            &format!("@{}", dns.ip()),
            "-p",
            &dns.port().to_string(),
            "example.org",
            "A",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&refused.stdout).contains("status: REFUSED"));
    assert!(server.stop().success());
}

async fn store_records_are_served_at_once(db: Db) {
    let extra = format!(
        "{}\n[mail.views.external]\naddresses = [\"192.0.2.25\"]\n[mail.views.internal]\naddresses = [\"192.168.10.25\"]\n",
        example_dns(&repo_path("zones"))
    );
    let inst = Instance::new(db, &["dns", "imaps", "submissions"], &extra).await;
    let server = inst.start();
    let dns = server.addr("dns");
    let before = serial(dns, INSIDE);
    assert_eq!(before, 2024060101, "the file's serial");

    // An admin record in the internal view only.
    let store = postern_store::Store::open(&inst.db.url).await.unwrap();
    let rec = store
        .add_dns_record(
            "internal",
            "labelprinter.example.test",
            "A",
            60,
            "192.168.10.99",
        )
        .await
        .unwrap();
    let wait_for = |source: &str, args: &[&str], want: &[&str]| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let got = dig(dns, source, args);
            if got == want {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{args:?} from {source}: {got:?}, want {want:?}\n{}",
                server.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    wait_for(
        INSIDE,
        &["labelprinter.example.test", "A"],
        &["192.168.10.99"],
    );
    assert!(
        dig(dns, OUTSIDE, &["labelprinter.example.test", "A"]).is_empty(),
        "not in the external view"
    );
    assert_eq!(serial(dns, INSIDE), before + 1, "the serial moved");
    // A record in the zone file wins over an admin record for the same RRset.
    store
        .add_dns_record("internal", "www.example.test", "A", 60, "10.9.9.9")
        .await
        .unwrap();
    wait_for(
        INSIDE,
        &["labelprinter.example.test", "A"],
        &["192.168.10.99"],
    );
    assert_eq!(
        dig(dns, INSIDE, &["www.example.test", "A"]),
        ["192.168.10.80"]
    );
    store.remove_dns_record(rec.id).await.unwrap();
    wait_for(INSIDE, &["labelprinter.example.test", "A"], &[]);

    // Adding a mail domain publishes its records in both views.
    store.add_domain("example.test").await.unwrap();
    let dkim = store.signing_keys("example.test").await.unwrap();
    let want = format!("\"v=DKIM1; k=rsa; p={}", &dkim[0].public_key[..200]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let txt = dig(dns, OUTSIDE, &["pst1r._domainkey.example.test", "TXT"]);
        if txt.first().is_some_and(|t| t.starts_with(&want)) {
            assert!(
                txt[0].contains("\" \""),
                "split into 255-byte strings: {}",
                txt[0]
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "DKIM key not published: {txt:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for source in [INSIDE, OUTSIDE] {
        assert_eq!(
            dig(dns, source, &["_submissions._tcp.example.test", "SRV"]),
            ["0 1 465 mail.example.test."]
        );
        assert_eq!(
            dig(dns, source, &["_submission._tcp.example.test", "SRV"]),
            ["0 0 0 ."],
            "not offered"
        );
        assert_eq!(
            dig(dns, source, &["autoconfig.example.test", "CNAME"]),
            ["mail.example.test."]
        );
        assert_eq!(
            dig(dns, source, &["_smtp._tls.example.test", "TXT"]),
            ["\"v=TLSRPTv1; rua=mailto:postmaster@example.test\""]
        );
        assert!(
            dig(dns, source, &["_mta-sts.example.test", "TXT"]).is_empty(),
            "no _mta-sts while no HTTPS listener serves the policy (RFC 8461 §3.3)"
        );
        assert!(
            dig(dns, source, &["pst1e._domainkey.example.test", "TXT"])[0]
                .starts_with("\"v=DKIM1; k=ed25519; p=")
        );
        // The zone file's SPF record wins over the synthesised one: still exactly one.
        let spf: Vec<_> = dig(dns, source, &["example.test", "TXT"])
            .into_iter()
            .filter(|t| t.contains("v=spf1"))
            .collect();
        assert_eq!(spf.len(), 1, "{spf:?}");
    }
    assert_eq!(
        dig(dns, INSIDE, &["mail.example.test", "A"]),
        ["192.168.10.25"]
    );
    assert_eq!(
        dig(dns, OUTSIDE, &["mail.example.test", "A"]),
        ["192.0.2.25"]
    );
    assert!(serial(dns, OUTSIDE) > 2024060101);
    store.close().await;
    assert!(server.stop().success());
}

#[tokio::test]
async fn broken_zone_on_sighup_keeps_the_old_one_and_check_reports_it() {
    let zones = tempfile::tempdir().unwrap();
    copy_zones(zones.path());
    let inst = Instance::new(Db::Sqlite, &["dns"], &example_dns(zones.path())).await;
    assert!(inst.ok(&["check"], "").contains("configuration OK"));
    let server = inst.start();
    let dns = server.addr("dns");
    let zone = zones.path().join("internal/example.test.zone");
    let good = std::fs::read_to_string(&zone).unwrap();
    std::fs::write(
        &zone,
        good.replace(
            "www     IN A    192.168.10.80",
            "www     IN A    192.168.10.800",
        ),
    )
    .unwrap();
    server.signal(libc::SIGHUP);
    server.wait_for_log("reload refused");
    assert_eq!(
        dig(dns, INSIDE, &["www.example.test", "A"]),
        ["192.168.10.80"],
        "old zone still served"
    );
    let out = inst.run(&["check"], "");
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("internal/example.test.zone:18: error: bad A record"),
        "file and line named: {text}"
    );
    assert!(server.stop().success());
}

/// A DNS query for `name` A, in wire format (RFC 1035 §4.1).
fn query(id: u16, name: &str) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

#[tokio::test]
async fn rate_limited_udp_flood_is_counted_on_metrics() {
    let config = example_dns(&repo_path("zones")).replace(
        "name = \"external\"\nmatch_clients = [\"any\"]\n",
        "name = \"external\"\nmatch_clients = [\"any\"]\n\
         rrl = { responses_per_second = 2, slip = 2, ipv4_prefix_length = 32 }\n",
    );
    assert!(config.contains("rrl ="), "{config}");
    let inst = Instance::new(Db::Sqlite, &["dns", "admin"], &config).await;
    let server = inst.start();
    let dns = server.addr("dns");
    let socket = std::net::UdpSocket::bind((OUTSIDE, 0)).unwrap();
    let started = std::time::Instant::now();
    for id in 0..100 {
        socket.send_to(&query(id, "www.example.test"), dns).unwrap();
    }
    // The counters move with the responses: wait until all 100 queries were handled.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let text = loop {
        let text = metrics(&inst, &server);
        let all = sample(&text, "postern_dns_responses_total{kind=\"all\"}");
        if all >= 100 || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    // No bucket refilled for longer than it took to handle all 100 queries.
    let elapsed = started.elapsed().as_secs();
    let get = |action: &str| {
        sample(
            &text,
            &format!("postern_dns_rrl_total{{action=\"{action}\"}}"),
        )
    };
    let (limited, dropped, slipped) = (get("limited"), get("dropped"), get("slipped"));
    // 2 per second (and 2 to start with): only a few of the 100 are answered.
    assert!(
        100u64.saturating_sub(limited) <= 2 * (elapsed + 2),
        "{limited} of 100 limited in {elapsed} s:\n{text}"
    );
    assert_eq!(limited, dropped + slipped, "{text}");
    assert!(dropped > 0 && slipped > 0, "{text}");
    // The internal view has no limit, and other external clients are not affected.
    assert_eq!(
        dig(dns, INSIDE, &["www.example.test", "A"]),
        ["192.168.10.80"]
    );
    assert_eq!(
        dig(dns, "127.0.0.6", &["www.example.test", "A"]),
        ["192.0.2.80"]
    );
    assert!(server.stop().success());
}

#[test]
fn import_bind_converts_views_into_config_postern_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let named = dir.path().join("named.conf");
    std::fs::write(
        &named,
        r#"
acl "lan" { 192.168.0.0/16; 10.0.0.0/8; };
key "xfr" { algorithm hmac-sha256; secret "cG9zdGVybi1leGFtcGxlLXRzaWcta2V5LTAxMjM0NTY3"; };
options { directory "/var/named"; recursion no; };
view "internal" {
    match-clients { lan; localhost; };
    zone "example.test" { type master; file "internal/example.test.zone"; allow-transfer { key xfr; }; };
};
view "external" {
    match-clients { any; };
    zone "example.test" { type master; file "external/example.test.zone"; also-notify { 192.0.2.53; }; };
};
"#,
    )
    .unwrap();
    let out = std::process::Command::new(common::POSTERN)
        .arg("import-bind")
        .arg(&named)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let toml = String::from_utf8(out.stdout).unwrap();
    assert!(
        toml.contains("[[dns.view]]")
            && toml.contains("name = \"internal\"")
            && toml.contains("key:xfr"),
        "{toml}"
    );
    // The result, with zones_dir pointed at the example zones, passes `postern check`.
    let config = dir.path().join("postern.toml");
    let toml = toml.replace(
        "zones_dir = \"/var/named\"",
        &format!("zones_dir = \"{}\"", repo_path("zones").display()),
    );
    std::fs::write(&config, &toml).unwrap();
    let check = std::process::Command::new(common::POSTERN)
        .arg("--config")
        .arg(&config)
        .arg("check")
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{toml}\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}
