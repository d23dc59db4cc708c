//! End-to-end tests: a real server on loopback, queried with dig from distinct source
//! addresses (127.0.0.2 internal, 127.0.0.3 external).

mod common;

use std::time::Duration;

use common::*;
use postern_dns::ManagedRecord;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_name_differs_per_view() {
    let t = start(&default_config("")).await;
    let internal = dig(t.port, "127.0.0.2", &["www.example.test", "A"]).await;
    assert_eq!(
        rdata(&internal, "ANSWER"),
        vec!["192.168.10.80"],
        "{internal}"
    );
    assert!(flags(&internal).contains(&"aa"));
    let external = dig(t.port, "127.0.0.3", &["www.example.test", "A"]).await;
    assert_eq!(rdata(&external, "ANSWER"), vec!["192.0.2.80"], "{external}");
    let localhost = dig(t.port, "127.0.0.1", &["mail.example.test", "AAAA"]).await;
    assert_eq!(rdata(&localhost, "ANSWER"), vec!["fd00:10::25"]);
    let ext_mail = dig(t.port, "127.0.0.3", &["mail.example.test", "AAAA"]).await;
    assert_eq!(rdata(&ext_mail, "ANSWER"), vec!["2001:db8::25"]);
    // The query's case is preserved in the answer (RFC 1034 §3.1, RFC 4343).
    let mixed = dig(t.port, "127.0.0.3", &["WwW.ExAmPlE.TeSt", "A"]).await;
    assert!(
        section(&mixed, "ANSWER")[0].starts_with("WwW.ExAmPlE.TeSt."),
        "{mixed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn match_list_order_and_negation() {
    let config = r#"
[dns]
zones_dir = "zones"
[[dns.acl]]
name = "lab"
match = ["127.0.0.4/30"]
[[dns.view]]
name = "first"
match_clients = ["!127.0.0.5", "lab"]
[[dns.view.zone]]
name = "example.test"
file = "internal/example.test.zone"
[[dns.view]]
name = "second"
match_clients = ["127.0.0.5", "127.0.0.6"]
[[dns.view.zone]]
name = "example.test"
file = "external/example.test.zone"
"#;
    let t = start(config).await;
    let negated = dig(t.port, "127.0.0.5", &["www.example.test"]).await;
    assert_eq!(
        rdata(&negated, "ANSWER"),
        vec!["192.0.2.80"],
        "negated in the first view"
    );
    let first_wins = dig(t.port, "127.0.0.6", &["www.example.test"]).await;
    assert_eq!(
        rdata(&first_wins, "ANSWER"),
        vec!["192.168.10.80"],
        "first matching view wins"
    );
    let unmatched = dig(t.port, "127.0.0.9", &["www.example.test"]).await;
    assert_eq!(status(&unmatched), "REFUSED");
    assert!(t.server.counters().refused >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_outside_zones_and_for_unmatched_clients() {
    let t = start(&default_config("")).await;
    let other = dig(t.port, "127.0.0.3", &["www.example.org", "A"]).await;
    assert_eq!(status(&other), "REFUSED");
    assert!(!flags(&other).contains(&"ra"), "never recursion");
    assert!(!flags(&other).contains(&"aa"));
    let root = dig(t.port, "127.0.0.3", &[".", "NS"]).await;
    assert_eq!(status(&root), "REFUSED");
    let unmatched = dig(t.port, "127.0.0.9", &["www.example.test"]).await;
    assert_eq!(status(&unmatched), "REFUSED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nxdomain_and_nodata_with_soa() {
    let t = start(&default_config("")).await;
    let nx = dig(t.port, "127.0.0.3", &["nope.example.test", "A"]).await;
    assert_eq!(status(&nx), "NXDOMAIN");
    assert!(flags(&nx).contains(&"aa"));
    let soa = section(&nx, "AUTHORITY");
    assert_eq!(soa.len(), 1);
    assert!(soa[0].contains("\tSOA\t"));
    // SOA TTL 3600, SOA MINIMUM 300: negative TTL is the smaller (RFC 2308 §3).
    assert!(soa[0].starts_with("example.test.\t\t300\t"), "{}", soa[0]);
    let nodata = dig(t.port, "127.0.0.3", &["www.example.test", "MX"]).await;
    assert_eq!(status(&nodata), "NOERROR");
    assert!(section(&nodata, "ANSWER").is_empty());
    assert!(section(&nodata, "AUTHORITY")[0].contains("\tSOA\t"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referral_with_glue() {
    let t = start(&default_config("")).await;
    let r = dig(t.port, "127.0.0.3", &["host.dev.example.test", "A"]).await;
    assert_eq!(status(&r), "NOERROR");
    assert!(
        !flags(&r).contains(&"aa"),
        "referrals are not authoritative: {r}"
    );
    assert!(section(&r, "ANSWER").is_empty());
    assert_eq!(rdata(&r, "AUTHORITY"), vec!["ns.dev.example.test."]);
    assert_eq!(rdata(&r, "ADDITIONAL"), vec!["192.0.2.60"]);
    let ds = dig(t.port, "127.0.0.3", &["dev.example.test", "DS"]).await;
    assert!(flags(&ds).contains(&"aa"), "DS is the parent's: {ds}");
    assert_eq!(section(&ds, "ANSWER").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcard_existing_name_and_empty_non_terminal() {
    let t = start(&default_config("")).await;
    let w = dig(t.port, "127.0.0.3", &["anything.apps.example.test", "A"]).await;
    assert_eq!(rdata(&w, "ANSWER"), vec!["192.0.2.90"]);
    assert!(section(&w, "ANSWER")[0].starts_with("anything.apps.example.test."));
    let exists = dig(t.port, "127.0.0.3", &["exists.apps.example.test", "A"]).await;
    assert_eq!(status(&exists), "NOERROR");
    assert!(
        section(&exists, "ANSWER").is_empty(),
        "an existing name is not covered by the wildcard"
    );
    let ent = dig(t.port, "127.0.0.3", &["lab.example.test", "A"]).await;
    assert_eq!(
        status(&ent),
        "NOERROR",
        "empty non-terminal is NODATA, not NXDOMAIN"
    );
    assert!(section(&ent, "ANSWER").is_empty());
    let below_ent = dig(t.port, "127.0.0.3", &["x.lab.example.test", "A"]).await;
    assert_eq!(status(&below_ent), "NXDOMAIN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cname_chain_followed_in_zone() {
    let t = start(&default_config("")).await;
    let c = dig(t.port, "127.0.0.3", &["webmail.example.test", "A"]).await;
    assert_eq!(
        rdata(&c, "ANSWER"),
        vec!["portal.example.test.", "www.example.test.", "192.0.2.80"]
    );
    assert!(flags(&c).contains(&"aa"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_over_udp_then_full_over_tcp() {
    let t = start(&default_config("")).await;
    let udp = dig(t.port, "127.0.0.3", &["+ignore", "big.example.test", "TXT"]).await;
    assert!(flags(&udp).contains(&"tc"), "{udp}");
    assert!(section(&udp, "ANSWER").is_empty());
    let noedns = dig(
        t.port,
        "127.0.0.3",
        &["+ignore", "+noedns", "_dmarc.example.test", "TXT"],
    )
    .await;
    assert!(
        !flags(&noedns).contains(&"tc"),
        "small answers fit in 512 bytes"
    );
    let small_buf = dig(
        t.port,
        "127.0.0.3",
        &["+ignore", "+noedns", "example.test", "TXT"],
    )
    .await;
    assert!(!flags(&small_buf).contains(&"tc"));
    let retried = dig(t.port, "127.0.0.3", &["big.example.test", "TXT"]).await;
    assert!(retried.contains("Truncated, retrying in TCP mode"));
    assert_eq!(section(&retried, "ANSWER").len(), 8);
    assert!(retried.contains("(TCP)"));
    assert!(t.server.counters().truncated >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axfr_by_acl_and_tsig() {
    let t = start(&default_config("")).await;
    let key = format!("hmac-sha256:xfr-key:{SECRET}");
    let denied = dig(t.port, "127.0.0.2", &["example.test", "AXFR"]).await;
    assert!(denied.contains("Transfer failed"), "{denied}");
    let signed = dig(t.port, "127.0.0.2", &["-y", &key, "example.test", "AXFR"]).await;
    assert!(signed.contains("192.168.10.80"), "{signed}");
    assert!(signed.contains("TSIG"));
    let soas = signed.lines().filter(|l| l.contains("\tSOA\t")).count();
    assert_eq!(soas, 2, "SOA first and last");
    let bad_key = dig(
        t.port,
        "127.0.0.2",
        &["-y", "hmac-sha256:xfr-key:d3JvbmcK", "example.test", "AXFR"],
    )
    .await;
    assert!(
        bad_key.contains("Transfer failed") || bad_key.contains("BADSIG"),
        "{bad_key}"
    );
    assert!(!bad_key.contains("192.168.10.80"));
    let by_address = dig(t.port, "127.0.0.4", &["example.test", "AXFR"]).await;
    assert!(
        by_address.contains("192.0.2.80"),
        "external allows 127.0.0.4: {by_address}"
    );
    let other = dig(t.port, "127.0.0.3", &["example.test", "AXFR"]).await;
    assert!(other.contains("Transfer failed"));
    let ixfr = dig(t.port, "127.0.0.4", &["example.test", "IXFR=2024060101"]).await;
    assert_eq!(
        ixfr.lines().filter(|l| l.contains("\tSOA\t")).count(),
        1,
        "up to date: SOA only"
    );
    let ixfr_old = dig(t.port, "127.0.0.4", &["example.test", "IXFR=1"]).await;
    assert!(
        ixfr_old.contains("192.0.2.80"),
        "older serial: full zone in AXFR form"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_axfr_spans_several_signed_messages() {
    let t = start(&default_config("")).await;
    let mut hosts = String::from("; generated\n");
    for i in 0..3000 {
        hosts.push_str(&format!("host{i} 300 IN A 192.0.2.{}\n", i % 250 + 1));
    }
    std::fs::write(t.dir.path().join("zones/internal/hosts.inc"), hosts).expect("write");
    let key = format!("hmac-sha256:xfr-key:{SECRET}");
    let port = t.port;
    let loaded = eventually(|| async move {
        dig(port, "127.0.0.2", &["host2999.example.test"])
            .await
            .contains("192.0.2.250")
    })
    .await;
    assert!(loaded, "zone reloaded");
    let out = dig(t.port, "127.0.0.2", &["-y", &key, "example.test", "AXFR"]).await;
    let messages: u32 = out
        .split("messages ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|n| n.parse().ok())
        .expect("XFR size line");
    assert!(messages > 2, "{messages} messages");
    assert!(out.contains("host2999.example.test."));
    assert!(!out.contains("Transfer failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_edit_reloads_and_broken_edit_keeps_old_zone() {
    let t = start(&default_config("")).await;
    let path = t.zone_path("external");
    let text = std::fs::read_to_string(&path).expect("read");
    let edited = text
        .replace("2024060101 ; serial", "2024060102 ; serial")
        .replace("www     IN A    192.0.2.80", "www     IN A    192.0.2.81");
    // Write a new file and rename it over the old one, like editors do.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, &edited).expect("write");
    std::fs::rename(&tmp, &path).expect("rename");
    let port = t.port;
    assert!(
        eventually(|| async move {
            rdata(
                &dig(port, "127.0.0.3", &["www.example.test"]).await,
                "ANSWER",
            ) == vec!["192.0.2.81"]
        })
        .await,
        "edit picked up without restart"
    );
    assert_eq!(
        t.server.zone_serial("external", "example.test"),
        Some(2024060102)
    );
    // A broken edit (bad address on some line) keeps the old zone serving.
    std::fs::write(&path, edited.replace("192.0.2.81", "192.0.2.999")).expect("write");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let still = dig(t.port, "127.0.0.3", &["www.example.test"]).await;
    assert_eq!(rdata(&still, "ANSWER"), vec!["192.0.2.81"]);
    // And the report names file and line.
    let report = postern_dns::check(&parse_config(&default_config("")), t.dir.path())
        .expect("config is fine");
    assert!(!report.is_ok());
    let printed = report.to_string();
    assert!(
        printed.contains("external/example.test.zone:18:"),
        "{printed}"
    );
    // Fixing the file is picked up again: the watcher survived the broken version.
    std::fs::write(
        &path,
        edited
            .replace("192.0.2.81", "192.0.2.82")
            .replace("2024060102 ; serial", "2024060103 ; serial"),
    )
    .expect("write");
    assert!(
        eventually(|| async move {
            rdata(
                &dig(port, "127.0.0.3", &["www.example.test"]).await,
                "ANSWER",
            ) == vec!["192.0.2.82"]
        })
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_sent_when_serial_changes() {
    let secondary = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let target = secondary.local_addr().expect("addr");
    let t = start(&default_config(&format!("also_notify = [\"{target}\"]"))).await;
    t.server.set_managed_records(
        "internal",
        vec![ManagedRecord {
            name: "admin.example.test.".into(),
            ttl: 120,
            rtype: "A".into(),
            data: "192.168.10.7".into(),
            synthesised: false,
        }],
    );
    assert_eq!(
        t.server.zone_serial("internal", "example.test"),
        Some(2024060102),
        "changed content: the next serial"
    );
    let mut buf = [0u8; 1500];
    let (n, from) = tokio::time::timeout(Duration::from_secs(5), secondary.recv_from(&mut buf))
        .await
        .expect("NOTIFY arrives")
        .expect("recv");
    let msg = hickory_proto::op::Message::from_vec(&buf[..n]).expect("parses");
    assert_eq!(msg.op_code, hickory_proto::op::OpCode::Notify);
    assert!(msg.authoritative);
    assert_eq!(msg.queries[0].name().to_string(), "example.test.");
    // Acknowledge it, as a secondary would.
    let mut ack = hickory_proto::op::Message::response(msg.id, msg.op_code);
    ack.queries = msg.queries.clone();
    secondary
        .send_to(&ack.to_vec().expect("encode"), from)
        .await
        .expect("ack");
    let managed = dig(t.port, "127.0.0.2", &["admin.example.test"]).await;
    assert_eq!(rdata(&managed, "ANSWER"), vec!["192.168.10.7"]);
    let soa = dig(t.port, "127.0.0.2", &["example.test", "SOA", "+short"]).await;
    assert!(soa.contains(" 2024060102 "), "{soa}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_records_never_override_the_file() {
    let t = start(&default_config("")).await;
    t.server.set_managed_records(
        "external",
        vec![
            ManagedRecord {
                name: "www.example.test".into(),
                ttl: 60,
                rtype: "A".into(),
                data: "192.0.2.200".into(),
                synthesised: false,
            },
            ManagedRecord {
                name: "example.test.".into(),
                ttl: 60,
                rtype: "MX".into(),
                data: "20 backup.example.test.".into(),
                synthesised: false,
            },
            ManagedRecord {
                name: "new.example.test.".into(),
                ttl: 60,
                rtype: "TXT".into(),
                data: "\"hello world\"".into(),
                synthesised: false,
            },
            ManagedRecord {
                name: "elsewhere.example.org.".into(),
                ttl: 60,
                rtype: "A".into(),
                data: "192.0.2.1".into(),
                synthesised: false,
            },
        ],
    );
    let www = dig(t.port, "127.0.0.3", &["www.example.test"]).await;
    assert_eq!(rdata(&www, "ANSWER"), vec!["192.0.2.80"], "file wins");
    let mx = dig(t.port, "127.0.0.3", &["example.test", "MX"]).await;
    assert_eq!(rdata(&mx, "ANSWER"), vec!["10 mail.example.test."]);
    let txt = dig(t.port, "127.0.0.3", &["new.example.test", "TXT"]).await;
    assert_eq!(rdata(&txt, "ANSWER"), vec!["\"hello world\""]);
    let internal = dig(t.port, "127.0.0.2", &["new.example.test", "TXT"]).await;
    assert_eq!(
        status(&internal),
        "NXDOMAIN",
        "managed records are per view"
    );
    // What the view serves, as the admin UI lists it: the file's RRsets marked, the managed
    // TXT served, the overridden managed A and MX and the unplaced record absent.
    let served = t.server.served_records("external");
    let find = |name: &str, rtype: &str| {
        served
            .iter()
            .filter(|s| s.record.name == name && s.record.rtype == rtype)
            .map(|s| (s.record.data.as_str(), s.from_file))
            .collect::<Vec<_>>()
    };
    assert_eq!(served[0].record.rtype, "SOA", "SOA first");
    assert!(served[0].from_file);
    assert_eq!(find("www.example.test.", "A"), [("192.0.2.80", true)]);
    assert_eq!(
        find("example.test.", "MX"),
        [("10 mail.example.test.", true)]
    );
    assert_eq!(
        find("new.example.test.", "TXT"),
        [("\"hello world\"", false)]
    );
    assert!(served
        .iter()
        .all(|s| s.record.name.ends_with("example.test.")));
    assert!(t.server.served_records("no-such-view").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_pipelining_and_idle_timeout() {
    let t = start(&default_config("")).await;
    let mut stream = tokio::net::TcpStream::connect(server_addr(t.port))
        .await
        .expect("connect");
    let mut batch = Vec::new();
    for (id, name) in [
        (1u16, "www.example.test."),
        (2, "mail.example.test."),
        (3, "nope.example.test."),
    ] {
        let mut q = hickory_proto::op::Message::query();
        q.metadata.id = id;
        q.add_query(hickory_proto::op::Query::query(
            hickory_proto::rr::Name::from_ascii(name).expect("name"),
            hickory_proto::rr::RecordType::A,
        ));
        let bytes = q.to_vec().expect("encode");
        batch.extend_from_slice(&u16::try_from(bytes.len()).expect("len").to_be_bytes());
        batch.extend_from_slice(&bytes);
    }
    stream
        .write_all(&batch)
        .await
        .expect("send all three at once");
    let mut ids = Vec::new();
    for _ in 0..3 {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await.expect("length");
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut body).await.expect("body");
        let msg = hickory_proto::op::Message::from_vec(&body).expect("parses");
        ids.push((msg.id, msg.response_code));
    }
    assert_eq!(ids[0].0, 1);
    assert_eq!(ids[2], (3, hickory_proto::op::ResponseCode::NXDomain));
    // Idle timeout is 2 s in the test config: the server closes the connection.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
    assert!(matches!(closed, Ok(Ok(0))), "{closed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_view_shares_one_zone_and_reload_keeps_old_on_error() {
    let mut text = default_config("");
    text.push_str(
        r#"
[[dns.view]]
name = "partners"
match_clients = ["127.0.0.9"]
[[dns.view.zone]]
name = "example.test"
in_view = "external"
"#,
    );
    // 127.0.0.9 is excluded from external by `!127.0.0.9`, so it reaches "partners".
    let t = start(&text).await;
    let shared = dig(t.port, "127.0.0.9", &["www.example.test"]).await;
    assert_eq!(rdata(&shared, "ANSWER"), vec!["192.0.2.80"]);
    let broken = text.replace(
        "match_clients = [\"127.0.0.9\"]",
        "match_clients = [\"127.0.0.999\"]",
    );
    let err = t
        .server
        .reload(parse_config(&broken))
        .expect_err("bad address");
    assert!(err.to_string().contains("127.0.0.999"), "{err}");
    let still = dig(t.port, "127.0.0.9", &["www.example.test"]).await;
    assert_eq!(
        rdata(&still, "ANSWER"),
        vec!["192.0.2.80"],
        "old config still serving"
    );
    let without = text.replace(
        "in_view = \"external\"",
        "file = \"internal/example.test.zone\"",
    );
    t.server.reload(parse_config(&without)).expect("reload");
    let swapped = dig(t.port, "127.0.0.9", &["www.example.test"]).await;
    assert_eq!(rdata(&swapped, "ANSWER"), vec!["192.168.10.80"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn match_destinations_uses_the_listener_address() {
    let config = parse_config(
        r#"
[dns]
zones_dir = "zones"
[[dns.view]]
name = "on-five"
match_destinations = ["127.0.0.5"]
[[dns.view.zone]]
name = "example.test"
file = "internal/example.test.zone"
[[dns.view]]
name = "elsewhere"
[[dns.view.zone]]
name = "example.test"
file = "external/example.test.zone"
"#,
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let server = postern_dns::DnsServer::start(
        config,
        dir,
        vec![
            "127.0.0.1:0".parse().expect("addr"),
            "127.0.0.5:0".parse().expect("addr"),
        ],
        &postern_net::NetConfig::default(),
        shutdown.clone(),
    )
    .await
    .expect("starts");
    let [one, five] = server.local_addrs() else {
        panic!("two listeners");
    };
    let out = tokio::process::Command::new("dig")
        .args([
            "-p",
            &five.port().to_string(),
            "@127.0.0.5",
            "+short",
            "www.example.test",
        ])
        .output()
        .await
        .expect("dig");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "192.168.10.80");
    let other = dig(one.port(), "127.0.0.1", &["+short", "www.example.test"]).await;
    assert_eq!(other.trim(), "192.0.2.80");
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), server.wait())
        .await
        .expect("listeners stop on shutdown");
}
