//! Records through the admin API are refused (400 with the reason) when they would not be
//! served or would stop their zone loading, on SQLite and PostgreSQL; a bad record already in
//! the store does not stop later changes being served; the published SPF joins a zone file's
//! apex TXT RRset (exactly one SPF); the `_autodiscover._tcp` SRV target is an address name.

mod common;

use std::time::{Duration, Instant};

use common::http::Api;
use common::{dig, Db, Instance};
use serde_json::{json, Value};

both_backends!(admin_records_are_served_or_refused);

const ZONE: &str = "$TTL 300
@ SOA ns1 hostmaster 1 3600 600 86400 60
@ NS ns1
@ TXT \"site-verification=abc123\"
ns1 A 192.0.2.1
www A 192.0.2.80
sub NS ns.sub
ns.sub A 192.0.2.53
moved DNAME elsewhere.example.
";

async fn admin_records_are_served_or_refused(db: Db) {
    let zones = tempfile::tempdir().expect("tmp");
    std::fs::write(zones.path().join("hosted.test.zone"), ZONE).expect("zone");
    let extra = format!(
        "[dns]\nzones_dir = \"{}\"\n\n[[dns.view]]\nname = \"all\"\nmatch_clients = [\"any\"]\n\n\
         [[dns.view.zone]]\nname = \"hosted.test\"\nfile = \"hosted.test.zone\"\n",
        zones.path().display()
    );
    let inst = Instance::new(db, &["dns", "admin"], &extra).await;
    let server = inst.start();
    let dns = server.addr("dns");
    let api = Api::for_server(&inst, &server);
    let wait_for = |args: &[&str], want: &[&str]| {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let mut got = dig(dns, "127.0.0.1", args);
            got.sort();
            if got == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{args:?}: {got:?}, want {want:?}\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };

    // A hosted mail domain: its SPF joins the file's apex TXT, the SRV names the mail host.
    let (status, body) = api.call(
        "POST",
        "/api/v1/domains",
        Some(json!({"name": "hosted.test"})),
        None,
    );
    assert_eq!(status, 201, "{body}");
    wait_for(
        &["hosted.test", "TXT"],
        &["\"site-verification=abc123\"", "\"v=spf1 mx -all\""],
    );
    wait_for(
        &["_autodiscover._tcp.hosted.test", "SRV"],
        &["0 1 443 mail.example.test."],
    );

    let add = |name: &str, rtype: &str, data: &str| -> (u16, Value) {
        api.call(
            "POST",
            "/api/v1/dns/records",
            Some(json!({"view": "all", "name": name, "type": rtype, "ttl": 300, "data": data})),
            None,
        )
    };
    let refused = |name: &str, rtype: &str, data: &str, reason: &str| {
        let (status, body) = add(name, rtype, data);
        assert_eq!(status, 400, "{name} {rtype} {data}: {body}");
        let text = body.to_string();
        assert!(text.contains(reason), "{name} {rtype} {data}: {text}");
    };
    refused(
        "www.hosted.test",
        "A",
        "192.0.2.99",
        "the zone file has this RRset",
    );
    refused(
        "x.sub.hosted.test",
        "TXT",
        "\"hidden\"",
        "below the delegation at sub.hosted.test",
    );
    refused(
        "sub.hosted.test",
        "TXT",
        "\"at the cut\"",
        "delegation point",
    );
    refused(
        "x.moved.hosted.test",
        "A",
        "192.0.2.9",
        "below the DNAME at moved.hosted.test",
    );
    refused(
        "hosted.test",
        "CNAME",
        "www.hosted.test.",
        "other data at this name",
    );
    refused(
        "k._domainkey.hosted.test",
        "TXT",
        "v=DKIM1; k=rsa; p=MIIB",
        "quote the text",
    );
    refused(
        "long.hosted.test",
        "TXT",
        &format!("\"{}\"", "x".repeat(256)),
        "at most 255",
    );
    refused(
        "m.hosted.test",
        "MX",
        "10 a.hosted.test. b.hosted.test.",
        "extra input text",
    );

    // Escapes are octets and relative names are qualified, as in zone files.
    let (status, body) = add("bytes.hosted.test", "TXT", r#""\000\255\010" caf\195\169"#);
    assert_eq!(status, 201, "{body}");
    wait_for(
        &["bytes.hosted.test", "TXT"],
        &[r#""\000\255\010" "caf\195\169""#],
    );
    let (status, body) = add("_x._tcp.hosted.test", "SRV", "0 1 443 www");
    assert_eq!(status, 201, "{body}");
    wait_for(
        &["_x._tcp.hosted.test", "SRV"],
        &["0 1 443 www.hosted.test."],
    );

    // c1 A right after c1 CNAME (before the CNAME is even served) is refused.
    let (status, body) = add("c1.hosted.test", "CNAME", "www.hosted.test.");
    assert_eq!(status, 201, "{body}");
    refused("c1.hosted.test", "A", "192.0.2.7", "CNAME");
    wait_for(&["c1.hosted.test", "CNAME"], &["www.hosted.test."]);

    // Even with such a record in the store (written before this check existed), later
    // changes to the zone are served.
    let store = postern_store::Store::open(&inst.db.url)
        .await
        .expect("store");
    store
        .add_dns_record("all", "c1.hosted.test", "A", 300, "192.0.2.7")
        .await
        .expect("stored directly");
    let (status, body) = add("later.hosted.test", "A", "192.0.2.8");
    assert_eq!(status, 201, "{body}");
    wait_for(&["later.hosted.test", "A"], &["192.0.2.8"]);
    wait_for(&["c1.hosted.test", "CNAME"], &["www.hosted.test."]);
    store.close().await;
    assert!(
        !server.log().contains("is a CNAME (illegal"),
        "no warning about Postern's own records:\n{}",
        server.log()
    );
    assert!(server.stop().success());
}
