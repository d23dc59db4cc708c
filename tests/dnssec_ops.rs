//! Operating a signed zone: a BIND secondary follows an `nsupdate` by IXFR and its copy passes
//! `dnssec-verify` and `ldns-verify-zone`; a ZSK rollover by pre-publication and a KSK rollover
//! by double DS (RFC 6781 §4.1.1.1, §4.1.2) validate with `delv` at every step.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use common::dnssec::{anchors, delv, eventually, eventually_showing, validates, verify_zone};
use common::named::Secondary;
use common::ports::free_port;
use common::{dig, Db, Instance};

both_backends!(
    bind_secondary_follows_a_signed_update_by_ixfr,
    ixfr_survives_a_restart,
    two_nodes_serve_one_signed_zone,
    zsk_and_ksk_rollovers_validate_at_every_step
);

const CLIENT: &str = "127.0.0.1";
const DDNS_KEY: &str = "hmac-sha256:ddns-key:ZGRucy1leGFtcGxlLXNlY3JldC0wMTIzNDU2Nzg5YWI=";

const ZONE: &str = "$TTL 300\n\
@ IN SOA ns1.example.test. hostmaster.example.test. ( 2024060101 7200 900 1209600 300 )\n\
@ IN NS ns1\n@ IN MX 10 mail\nns1 IN A 192.0.2.53\nmail IN A 192.0.2.25\nwww IN A 192.0.2.80\n\
*.apps IN A 192.0.2.90\n";

/// One view serving a signed `example.test` to everyone, transfers to loopback, NOTIFY to
/// `notify`, and `ddns-key` allowed under `dyn.example.test`.
fn config(zones: &Path, notify: Option<u16>) -> String {
    std::fs::write(zones.join("example.test.zone"), ZONE).expect("zone");
    let notify = notify.map_or(String::new(), |p| {
        format!("also_notify = [\"127.0.0.1:{p}\"]\n")
    });
    format!(
        "[dns]\nzones_dir = \"{}\"\n\n[[dns.tsig_key]]\nname = \"ddns-key\"\n\
         secret = \"ZGRucy1leGFtcGxlLXNlY3JldC0wMTIzNDU2Nzg5YWI=\"\n\n[[dns.view]]\nname = \"main\"\n\
         match_clients = [\"any\"]\nallow_transfer = [\"127.0.0.0/8\"]\n\n[[dns.view.update_policy]]\n\
         key = \"ddns-key\"\nname = \"dyn.example.test\"\ntypes = [\"A\"]\n\n[[dns.view.zone]]\n\
         name = \"example.test\"\nfile = \"example.test.zone\"\ndnssec = true\n{notify}",
        zones.display()
    )
}

/// The served SOA serial of `example.test`, 0 while the server does not answer.
fn serial(server: SocketAddr) -> u32 {
    common::try_dig(server, CLIENT, &["+short"], &["example.test", "SOA"])
        .ok()
        .and_then(|lines| lines.first()?.split_whitespace().nth(2)?.parse().ok())
        .unwrap_or(0)
}

async fn bind_secondary_follows_a_signed_update_by_ixfr(db: Db) {
    let scratch = tempfile::tempdir().expect("tmp");
    let dir = scratch.path();
    let zones = dir.join("zones");
    std::fs::create_dir_all(&zones).expect("zones");
    let port = free_port();
    let inst = Instance::new(db, &["dns"], &config(&zones, Some(port))).await;
    let server = inst.start();
    let dns = server.addr("dns");
    eventually("the zone to be signed", || {
        dig(dns, CLIENT, &["example.test", "DNSKEY"]).len() == 1
    });
    let named = Secondary::start(&dir.join("named"), port, dns, "example.test");
    let signed_serial = serial(dns);
    eventually("the secondary to load the signed zone", || {
        serial(named.addr()) == signed_serial
    });

    add_name(dns, "h1.dyn.example.test", "192.0.2.201");
    let updated = serial(dns);
    assert!(updated > signed_serial, "{updated} after {signed_serial}");
    let logs = || format!("named:\n{}\npostern:\n{}", named.log(), server.log());
    eventually_showing(
        "the secondary to transfer the update",
        || serial(named.addr()) == updated,
        logs,
    );
    assert_eq!(
        dig(named.addr(), CLIENT, &["h1.dyn.example.test", "A"]),
        ["192.0.2.201"]
    );
    let from = format!("from={signed_serial}");
    assert!(
        server
            .log()
            .lines()
            .any(|l| l.contains("incremental zone transfer") && l.contains(&from)),
        "Postern sent an IXFR:\n{}",
        server.log()
    );
    // BIND asked for IXFR and got the difference: fewer records than the first, full transfer.
    let log = named.log();
    assert!(log.contains("requesting IXFR"), "{log}");
    let records = |serial: u32| transferred_records(&log, serial);
    assert!(
        records(updated) * 2 < records(signed_serial),
        "incremental: {} records, the full zone {}",
        records(updated),
        records(signed_serial)
    );
    // The secondary's copy, after applying the difference, is a complete, valid signed zone.
    verify_zone(dir, "secondary.zone", &axfr(named.addr()));
    assert!(server.stop().success());
}

/// Adds `owner A address` with `nsupdate` and the update key.
fn add_name(dns: SocketAddr, owner: &str, address: &str) {
    let script = format!(
        "server {} {}\nlocal {CLIENT}\nzone example.test\nupdate add {owner} 300 A {address}\nsend\n",
        dns.ip(),
        dns.port()
    );
    let mut nsupdate = Command::new("nsupdate");
    nsupdate.args(["-y", DDNS_KEY, "-t", "20"]);
    let out = common::run_with_stdin(nsupdate, &script);
    assert!(
        out.status.success(),
        "nsupdate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// How many records BIND's log says the transfer of `serial` carried.
fn transferred_records(log: &str, serial: u32) -> usize {
    log.lines()
        .filter(|l| l.contains("Transfer completed") && l.contains(&format!("(serial {serial})")))
        .find_map(|l| {
            l.split(" messages, ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("transfer of {serial} in the log:\n{log}"))
}

/// The zone as `server` transfers it (AXFR), as zone-file lines.
fn axfr(server: SocketAddr) -> String {
    dig(
        server,
        CLIENT,
        &["+noshort", "+noall", "+answer", "example.test", "AXFR"],
    )
    .into_iter()
    .filter(|l| !l.starts_with(';') && !l.is_empty())
    .map(|l| l + "\n")
    .collect()
}

/// The signatures and journal are in the store: after a restart Postern serves the same signed
/// zone under the same serial, and the next change reaches the BIND secondary by IXFR (a
/// difference BIND can apply exactly to the copy it holds), which still verifies.
async fn ixfr_survives_a_restart(db: Db) {
    let scratch = tempfile::tempdir().expect("tmp");
    let dir = scratch.path();
    let zones = dir.join("zones");
    std::fs::create_dir_all(&zones).expect("zones");
    let port = free_port();
    let inst = Instance::new(db, &["dns"], &config(&zones, Some(port))).await;
    inst.set_dns_port(free_port());
    let server = inst.start();
    let dns = server.addr("dns");
    eventually("the zone to be signed", || {
        dig(dns, CLIENT, &["example.test", "DNSKEY"]).len() == 1
    });
    let named = Secondary::start(&dir.join("named"), port, dns, "example.test");
    let first = serial(dns);
    eventually("the secondary to load the signed zone", || {
        serial(named.addr()) == first
    });
    add_name(dns, "h1.dyn.example.test", "192.0.2.201");
    let before_restart = serial(dns);
    assert!(before_restart > first, "{before_restart} after {first}");
    eventually("the secondary to transfer the first update", || {
        serial(named.addr()) == before_restart
    });
    let signed_before = axfr(named.addr());
    assert!(server.stop().success());

    let server = inst.start();
    assert_eq!(server.addr("dns"), dns);
    eventually("the restarted server to answer", || serial(dns) != 0);
    assert_eq!(
        serial(dns),
        before_restart,
        "the same signed zone under the same serial"
    );
    assert_eq!(
        sorted(&axfr(dns)),
        sorted(&signed_before),
        "signatures reused"
    );
    add_name(dns, "h2.dyn.example.test", "192.0.2.202");
    let after_restart = serial(dns);
    assert!(after_restart > before_restart);
    eventually(
        "the secondary to transfer the update after the restart",
        || serial(named.addr()) == after_restart,
    );
    assert_eq!(
        dig(named.addr(), CLIENT, &["h2.dyn.example.test", "A"]),
        ["192.0.2.202"]
    );
    let from = format!("from={before_restart}");
    assert!(
        server
            .log()
            .lines()
            .any(|l| l.contains("incremental zone transfer") && l.contains(&from)),
        "the restarted Postern sent an IXFR:\n{}",
        server.log()
    );
    let log = named.log();
    assert!(
        transferred_records(&log, after_restart) * 2 < transferred_records(&log, first),
        "incremental after the restart: {} records, the full zone {}",
        transferred_records(&log, after_restart),
        transferred_records(&log, first)
    );
    verify_zone(dir, "secondary.zone", &axfr(named.addr()));
    assert!(server.stop().success());
}

/// What `server` answers to an IXFR from `from`, as zone-file lines.
fn ixfr(server: SocketAddr, from: u32) -> String {
    dig(
        server,
        CLIENT,
        &[
            "+noshort",
            "+noall",
            "+answer",
            "example.test",
            &format!("IXFR={from}"),
        ],
    )
    .into_iter()
    .filter(|l| !l.starts_with(';') && !l.is_empty())
    .map(|l| l + "\n")
    .collect()
}

/// Two Postern processes on one database (PostgreSQL: two nodes; SQLite: two processes on one
/// file) serve the same signed zone: the second starts with the first's signatures, and of a
/// change both sign, the version stored first is the one both serve, and both send the same
/// IXFR; a BIND secondary of the first node gets the change by IXFR and verifies.
async fn two_nodes_serve_one_signed_zone(db: Db) {
    let scratch = tempfile::tempdir().expect("tmp");
    let dir = scratch.path();
    let zones = dir.join("zones");
    std::fs::create_dir_all(&zones).expect("zones");
    let port = free_port();
    let node_a = Instance::new(db, &["dns"], &config(&zones, Some(port))).await;
    let node_b = Instance::new(db, &["dns"], &config(&zones, None)).await;
    let text = std::fs::read_to_string(&node_b.config).expect("config");
    std::fs::write(&node_b.config, text.replace(&node_b.db.url, &node_a.db.url)).expect("config");
    let server_a = node_a.start();
    let a = server_a.addr("dns");
    eventually("the first node to sign the zone", || {
        dig(a, CLIENT, &["example.test", "DNSKEY"]).len() == 1
    });
    let first = serial(a);
    let server_b = node_b.start();
    let b = server_b.addr("dns");
    eventually("the second node to serve the zone", || serial(b) != 0);
    assert_eq!(serial(b), first);
    eventually("both nodes to serve the same signed zone", || {
        sorted(&axfr(a)) == sorted(&axfr(b))
    });
    let named = Secondary::start(&dir.join("named"), port, a, "example.test");
    eventually("the secondary to load the signed zone", || {
        serial(named.addr()) == first
    });

    // A change through the second node: both sign it, one version wins, both serve it.
    add_name(b, "h1.dyn.example.test", "192.0.2.201");
    let changed = serial(b);
    assert!(changed > first);
    eventually("the first node to serve the change", || {
        serial(a) == changed
    });
    eventually("both nodes to serve the same signed version", || {
        sorted(&axfr(a)) == sorted(&axfr(b))
    });
    eventually("both nodes to send the same IXFR", || {
        let from_a = ixfr(a, first);
        from_a.lines().count() > 2 && sorted(&from_a) == sorted(&ixfr(b, first))
    });
    eventually("the secondary to transfer the change", || {
        serial(named.addr()) == changed
    });
    let from = format!("from={first}");
    assert!(
        server_a
            .log()
            .lines()
            .any(|l| l.contains("incremental zone transfer") && l.contains(&from)),
        "the first node sent an IXFR:\n{}",
        server_a.log()
    );
    // Its copy is valid; it is the version that won only if it transferred after the first
    // node adopted it (a node serves its own signing until its store write is refused).
    verify_zone(dir, "secondary.zone", &axfr(named.addr()));
    assert!(server_b.stop().success());
    assert!(server_a.stop().success());
}

/// Zone-file lines, sorted.
fn sorted(zone: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = zone.lines().collect();
    lines.sort_unstable();
    lines
}

/// Runs one rollover step and checks that the output names it.
fn step(inst: &Instance, role: &str, expect: &str) -> String {
    let out = inst.ok(
        &["dns", "key", "rollover", "example.test", "--role", role],
        "",
    );
    assert!(out.contains(expect), "{role}: {out}");
    out
}

/// The key tags of the RRSIGs over `qname`/`qtype`.
fn signing_tags(dns: SocketAddr, qname: &str, qtype: &str) -> Vec<String> {
    let mut tags: Vec<String> = dig(dns, CLIENT, &["+dnssec", qname, qtype])
        .iter()
        .filter(|l| l.starts_with(qtype) && l.split_whitespace().count() > 6)
        .filter_map(|l| l.split_whitespace().nth(6).map(str::to_owned))
        .collect();
    tags.sort();
    tags
}

/// The tag printed in a rollover step ("key 12345 published").
fn tag_in(out: &str) -> String {
    out.split_whitespace()
        .skip_while(|w| *w != "key")
        .nth(1)
        .expect("key tag printed")
        .to_owned()
}

/// delv validates a positive, a wildcard and a negative answer with `anchor`.
fn all_validate(dns: SocketAddr, anchor: &Path) {
    validates(dns, CLIENT, anchor, ("www.example.test", "A"), false);
    validates(dns, CLIENT, anchor, ("x.apps.example.test", "A"), false);
    validates(dns, CLIENT, anchor, ("nope.example.test", "A"), true);
}

async fn zsk_and_ksk_rollovers_validate_at_every_step(db: Db) {
    let scratch = tempfile::tempdir().expect("tmp");
    let dir = scratch.path();
    let zones = dir.join("zones");
    std::fs::create_dir_all(&zones).expect("zones");
    let inst = Instance::new(db, &["dns"], &config(&zones, None)).await;
    // A KSK and a ZSK instead of the CSK the server would create.
    for role in ["ksk", "zsk"] {
        inst.ok(
            &["dns", "key", "generate", "example.test", "--role", role],
            "",
        );
    }
    let server = inst.start();
    let dns = server.addr("dns");
    let dnskeys = || dig(dns, CLIENT, &["example.test", "DNSKEY"]).len();
    eventually("the zone to be signed", || dnskeys() == 2);
    let ds = inst.ok(&["dns", "ds", "example.test"], "");
    let ds_lines: Vec<&str> = ds.lines().collect();
    assert_eq!(ds_lines.len(), 1, "one KSK: {ds}");
    let anchor = anchors(dir, "ksk", &ds_lines);
    all_validate(dns, &anchor);
    let old_zsk = signing_tags(dns, "www.example.test", "A");
    assert_eq!(old_zsk.len(), 1, "{old_zsk:?}");

    // ZSK by pre-publication: the new key is published, then signs, then the old one leaves.
    let new_zsk = tag_in(&step(&inst, "zsk", "step 1 of 3"));
    eventually("the new ZSK to be published", || dnskeys() == 3);
    assert_eq!(
        signing_tags(dns, "www.example.test", "A"),
        old_zsk,
        "not signing yet"
    );
    all_validate(dns, &anchor);
    step(&inst, "zsk", "step 2 of 3");
    eventually("the new ZSK to sign", || {
        signing_tags(dns, "www.example.test", "A") == [new_zsk.clone()]
    });
    assert_eq!(dnskeys(), 3, "the old ZSK stays published");
    all_validate(dns, &anchor);
    step(&inst, "zsk", "step 3 of 3");
    eventually("the old ZSK to leave", || dnskeys() == 2);
    all_validate(dns, &anchor);

    // KSK by double DS: the new key is published (its DS added beside the old one), then signs
    // the DNSKEY RRset alone, then the old one leaves; the data keeps the ZSK's signatures.
    let out = step(&inst, "ksk", "step 1 of 3");
    let new_ds = out
        .lines()
        .find_map(|l| l.split(": ").last().filter(|d| d.contains(" IN DS ")))
        .expect("new DS printed")
        .to_owned();
    eventually("the new KSK to be published", || dnskeys() == 3);
    all_validate(dns, &anchor);
    let both = anchors(dir, "both", &[ds_lines[0], &new_ds]);
    let only_new = anchors(dir, "new-ksk", &[&new_ds]);
    step(&inst, "ksk", "step 2 of 3");
    eventually("the new KSK to sign the DNSKEY RRset alone", || {
        delv(dns, CLIENT, &only_new, "example.test", "DNSKEY").contains("; fully validated")
            && !delv(dns, CLIENT, &anchor, "example.test", "DNSKEY").contains("; fully validated")
    });
    all_validate(dns, &both);
    all_validate(dns, &only_new);
    step(&inst, "ksk", "step 3 of 3");
    eventually("the old KSK to leave", || dnskeys() == 2);
    all_validate(dns, &only_new);
    assert_eq!(signing_tags(dns, "www.example.test", "A"), [new_zsk]);
    let ds_after = inst.ok(&["dns", "ds", "example.test"], "");
    assert_eq!(ds_after.trim(), new_ds.trim());
    let zone: String = dig(
        dns,
        CLIENT,
        &["+noshort", "+noall", "+answer", "example.test", "AXFR"],
    )
    .into_iter()
    .map(|l| l + "\n")
    .collect();
    verify_zone(dir, "rolled.zone", &zone);
    assert!(server.stop().success());
}
