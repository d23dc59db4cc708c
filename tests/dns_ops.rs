//! Operating the DNS server: zone files rewritten in place, secondaries, signals.
//!
//! - A zone file written in two steps is never served half-written (it is read once it has
//!   settled), and content changed without a new serial is served under a higher serial.
//! - A BIND secondary (`named`, bind9) of a Postern zone ends with the complete zone after such
//!   a rewrite, even when the first half was served; the served serial survives a restart.
//! - SIGHUP during start-up (a large zone loading) does not end the process.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::named::Secondary;
use common::ports::free_port;
use common::{dig, try_dig, Db, Instance, Server};

both_backends!(
    half_written_zone_file_is_never_served,
    bind_secondary_converges_after_two_step_rewrite,
    sighup_during_start_up_is_handled_after_it
);

/// `ops.test` with `names` hosts `hN A 10.0.<net>.N`, serial `serial`.
fn zone_text(serial: u32, names: u32, net: u8) -> String {
    let mut text = format!(
        "$TTL 300\n@ IN SOA ns1.ops.test. hostmaster.ops.test. ( {serial} 3600 600 86400 300 )\n\
         @ IN NS ns1.ops.test.\nns1 IN A 10.0.0.1\n"
    );
    for i in 1..=names {
        text.push_str(&format!("h{i} IN A 10.0.{net}.{}\n", i % 250 + 1));
    }
    text
}

/// A `[dns]` serving `ops.test` from `dir/ops.test.zone` to everyone, transfers allowed from
/// loopback, NOTIFY to `notify` if given.
fn dns_config(dir: &Path, settle_ms: u64, notify: Option<u16>) -> String {
    let notify = notify.map_or(String::new(), |p| {
        format!("also_notify = [\"127.0.0.1:{p}\"]\n")
    });
    format!(
        "[dns]\nzones_dir = \"{}\"\nzone_settle_ms = {settle_ms}\n\n[[dns.view]]\nname = \"main\"\n\
         match_clients = [\"any\"]\nallow_transfer = [\"127.0.0.0/8\"]\n\n[[dns.view.zone]]\n\
         name = \"ops.test\"\nfile = \"ops.test.zone\"\n{notify}",
        dir.display()
    )
}

/// Rewrites `path` in place (truncate, then two writes): the first `cut` bytes, a pause, the rest.
fn write_in_two_steps(path: &Path, text: &str, cut: usize, pause: Duration) {
    let cut = text[..cut].rfind('\n').map_or(0, |i| i + 1);
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(&text.as_bytes()[..cut]).unwrap();
    f.flush().unwrap();
    // The pause is the scenario under test (an editor or a script writing slowly), not a wait.
    std::thread::sleep(pause);
    f.write_all(&text.as_bytes()[cut..]).unwrap();
    f.flush().unwrap();
}

/// The served SOA serial of `ops.test`, 0 while the server does not answer (yet).
fn serial(server: SocketAddr) -> u32 {
    try_dig(server, "127.0.0.1", &["+short"], &["ops.test", "SOA"])
        .ok()
        .and_then(|lines| lines.first()?.split_whitespace().nth(2)?.parse().ok())
        .unwrap_or(0)
}

fn wait_until(what: &str, log: impl Fn() -> String, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out: {what}\n{}", log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn half_written_zone_file_is_never_served(db: Db) {
    let zones = tempfile::tempdir().unwrap();
    let file = zones.path().join("ops.test.zone");
    std::fs::write(&file, zone_text(7, 300, 1)).unwrap();
    // The pause below (500 ms, as in the report: >= 400 ms) must stay under the settle interval
    // even on a loaded machine, hence 2 s here instead of the default 1 s.
    let inst = Instance::new(db, &["dns"], &dns_config(zones.path(), 2000, None)).await;
    let server = inst.start();
    let dns = server.addr("dns");
    assert_eq!(dig(dns, "127.0.0.1", &["h299.ops.test"]), ["10.0.1.50"]);
    let before = serial(dns);
    assert_eq!(before, 7);

    // Poll a name near the end of the file while it is rewritten (same serial, new addresses).
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                seen.push(dig(dns, "127.0.0.1", &["h299.ops.test"]).join(","));
            }
            seen
        })
    };
    write_in_two_steps(
        &file,
        &zone_text(7, 300, 2),
        zone_text(7, 300, 2).len() / 3,
        Duration::from_millis(500),
    );
    wait_until(
        "the rewritten zone is served",
        || server.log(),
        || dig(dns, "127.0.0.1", &["h299.ops.test"]) == ["10.0.2.50"],
    );
    stop.store(true, Ordering::Relaxed);
    let seen = poller.join().unwrap();
    assert!(seen.len() > 5, "the poller ran: {seen:?}");
    assert!(
        seen.iter().all(|a| a == "10.0.1.50" || a == "10.0.2.50"),
        "only the old or the complete new zone was served: {seen:?}\n{}",
        server.log()
    );
    assert_eq!(
        serial(dns),
        before + 1,
        "content changed under the same file serial: served with the next serial"
    );
    assert!(server
        .log()
        .contains("zone content changed without a new serial"));
    assert!(server.stop().success());
}

/// The zone by AXFR, one normalised record per line, sorted (empty if the server refuses).
fn axfr(server: SocketAddr) -> Vec<String> {
    let options = ["+noall", "+answer", "+nottlid"];
    let mut lines: Vec<String> = try_dig(server, "127.0.0.1", &options, &["ops.test", "AXFR"])
        .unwrap_or_default()
        .iter()
        .map(|l| {
            l.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_ascii_lowercase()
        })
        .filter(|l| !l.is_empty())
        .collect();
    lines.sort();
    lines.dedup();
    lines
}

async fn bind_secondary_converges_after_two_step_rewrite(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let zones = dir.path().join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    let file = zones.join("ops.test.zone");
    std::fs::write(&file, zone_text(2026, 450, 1)).unwrap();
    let named_port = free_port();
    // A short settle interval, so that the first half of the rewrite IS served: the serial
    // policy alone must make the secondary converge.
    let inst = Instance::new(db, &["dns"], &dns_config(&zones, 100, Some(named_port))).await;
    let server = inst.start();
    let dns = server.addr("dns");
    let named = Secondary::start(&dir.path().join("named"), named_port, dns, "ops.test");
    let both_logs = || format!("{}\n--- named ---\n{}", server.log(), named.log());
    wait_until("the secondary loaded the zone", both_logs, || {
        serial(named.addr()) == 2026
    });
    assert_eq!(axfr(named.addr()), axfr(dns));
    assert_eq!(axfr(dns).len(), 453, "SOA, NS, ns1 and 450 hosts");

    let new = zone_text(2026, 459, 2);
    write_in_two_steps(&file, &new, new.len() / 3, Duration::from_millis(1500));
    wait_until("Postern serves the complete file", both_logs, || {
        dig(dns, "127.0.0.1", &["h459.ops.test"]) == ["10.0.2.210"]
    });
    let primary = axfr(dns);
    assert_eq!(primary.len(), 462);
    let served = serial(dns);
    assert!(served > 2026, "changed content, higher serial: {served}");
    wait_until(
        "the secondary holds the complete new zone",
        both_logs,
        || serial(named.addr()) == served && axfr(named.addr()) == primary,
    );
    assert!(
        server
            .log()
            .contains("zone lost most of its records without a new serial"),
        "the half-written file was noticed: {}",
        server.log()
    );

    // The served serial is remembered: a restart serves the same content under the same serial.
    assert!(server.stop().success());
    let server = inst.start();
    assert_eq!(serial(server.addr("dns")), served);
    assert!(server.stop().success());
}

async fn sighup_during_start_up_is_handled_after_it(db: Db) {
    let zones = tempfile::tempdir().unwrap();
    std::fs::write(zones.path().join("ops.test.zone"), zone_text(1, 60_000, 1)).unwrap();
    let inst = Instance::new(db, &["dns", "admin"], &dns_config(zones.path(), 1000, None)).await;
    let port = free_port();
    inst.set_dns_port(port);
    let mut server: Server = inst.spawn();
    // SIGHUP as soon as the process logs, and again every 50 ms until it has started: some of
    // them arrive while the zone loads and while DNS already answers.
    let listeners = inst.data_dir().join("listeners.json");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut sent = 0;
    while !listeners.exists() {
        assert!(Instant::now() < deadline, "no start: {}", server.log());
        if let Some(status) = server.exited() {
            panic!(
                "postern died during start-up ({status}) after {sent} SIGHUP:\n{}",
                server.log()
            );
        }
        if !server.log().is_empty() {
            server.signal(libc::SIGHUP);
            sent += 1;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(sent > 0, "no SIGHUP was sent during start-up");
    server.wait_listening(&inst.data_dir());
    server.wait_for_log("configuration reloaded");
    assert!(
        server.exited().is_none(),
        "alive after SIGHUP: {}",
        server.log()
    );
    let dns = SocketAddr::from(([127, 0, 0, 1], port));
    assert_eq!(dig(dns, "127.0.0.1", &["h59999.ops.test"]), ["10.0.1.250"]);
    assert!(server.stop().success());
}
