//! Outgoing zone transfers under load (issue 18 item 11).
//!
//! While `max_transfers` AXFRs of a 120,000-record zone (about 10 MB, more than the kernel's
//! socket buffers hold) are sent to slow readers, TCP and UDP
//! queries from another address are answered promptly, one transfer more is answered SERVFAIL
//! (as BIND answers over its `transfers-out` quota), and once the readers hang up their places
//! are free again and a full AXFR arrives complete.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{dig, try_dig, Db, Instance};

both_backends!(transfers_do_not_delay_queries_and_are_capped);

const HOSTS: u32 = 60_000;
const MAX_TRANSFERS: usize = 5;
/// Generous on a loaded 2-core machine; the figures are in `bench/dns-transfer.sh`.
const PROMPT: Duration = Duration::from_secs(1);

fn write_zone(dir: &Path) {
    let mut text = String::from(
        "$TTL 300\n@ IN SOA ns1.big.test. hostmaster.big.test. ( 1 3600 600 86400 300 )\n\
         @ IN NS ns1.big.test.\nns1 IN A 10.0.0.1\n",
    );
    for i in 0..HOSTS {
        text.push_str(&format!(
            "h{i} IN A 10.{}.{}.{}\n",
            i >> 16,
            (i >> 8) & 255,
            i & 255
        ));
        text.push_str(&format!("h{i} IN TXT \"{}\"\n", "x".repeat(120)));
    }
    std::fs::write(dir.join("big.test.zone"), text).unwrap();
}

fn dns_config(dir: &Path) -> String {
    format!(
        "[dns]\nzones_dir = \"{}\"\nmax_transfers = {MAX_TRANSFERS}\n\n[[dns.view]]\nname = \"main\"\n\
         match_clients = [\"any\"]\nallow_transfer = [\"127.0.0.1\"]\n\n[[dns.view.zone]]\n\
         name = \"big.test\"\nfile = \"big.test.zone\"\n",
        dir.display()
    )
}

/// An AXFR request for `big.test.` with `id`, framed for TCP (RFC 1035 §4.2.2).
fn axfr_request(id: u16) -> Vec<u8> {
    let mut msg = id.to_be_bytes().to_vec();
    msg.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    msg.extend_from_slice(b"\x03big\x04test\x00\x00\xfc\x00\x01");
    let mut framed = u16::try_from(msg.len()).unwrap().to_be_bytes().to_vec();
    framed.extend_from_slice(&msg);
    framed
}

/// Opens a transfer with a small receive buffer and reads its first message header: the RCODE.
fn open_transfer(server: SocketAddr, id: u16) -> (TcpStream, u8) {
    // A small receive buffer, set before connecting so that the window stays small.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&server.into()).unwrap();
    let mut stream = TcpStream::from(socket);
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(&axfr_request(id)).unwrap();
    let mut head = [0u8; 6];
    stream.read_exact(&mut head).unwrap();
    assert_eq!(
        u16::from_be_bytes([head[2], head[3]]),
        id,
        "answer to our request"
    );
    (stream, head[5] & 0x0f)
}

/// A transfer read at about 30 KB/s, so that its 10 MB (4 MB of them in socket buffers) take
/// minutes, yet the server never waits long for room to write.
struct SlowReader {
    stop: Arc<AtomicBool>,
    read: Arc<AtomicUsize>,
    thread: JoinHandle<bool>,
}

impl SlowReader {
    /// Opens a transfer on its own thread, so that several open at once; the receiver gets
    /// the RCODE of its first message.
    fn open(server: SocketAddr, id: u16) -> (SlowReader, std::sync::mpsc::Receiver<u8>) {
        let stop = Arc::new(AtomicBool::new(false));
        let read = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = {
            let (stop, read) = (stop.clone(), read.clone());
            std::thread::spawn(move || {
                let (mut stream, rcode) = open_transfer(server, id);
                let _ = tx.send(rcode);
                let mut buf = [0u8; 1024];
                while !stop.load(Ordering::Relaxed) {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return true,
                        Ok(n) => read.fetch_add(n, Ordering::Relaxed),
                    };
                    // Reading slowly is the scenario under test, not a wait for a condition.
                    std::thread::sleep(Duration::from_millis(30));
                }
                false
            })
        };
        let reader = SlowReader { stop, read, thread };
        (reader, rx)
    }

    /// Stops reading and hangs up; true if the transfer had ended before.
    fn hang_up(self) -> bool {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// Times one `dig` from 127.0.0.2 (not a transfer client) and checks its answer.
fn timed_query(dns: SocketAddr, host: u32, tcp: bool) -> Duration {
    let name = format!("h{host}.big.test");
    let options: &[&str] = if tcp {
        &["+short", "+tcp"]
    } else {
        &["+short"]
    };
    let started = Instant::now();
    let answer = try_dig(dns, "127.0.0.2", options, &[&name, "A"]).unwrap();
    let took = started.elapsed();
    let expected = format!("10.{}.{}.{}", host >> 16, (host >> 8) & 255, host & 255);
    assert_eq!(
        answer,
        [expected],
        "{name} over {}",
        if tcp { "TCP" } else { "UDP" }
    );
    took
}

async fn transfers_do_not_delay_queries_and_are_capped(db: Db) {
    let zones = tempfile::tempdir().unwrap();
    write_zone(zones.path());
    let inst = Instance::new(db, &["dns"], &dns_config(zones.path())).await;
    let server = inst.start();
    let dns = server.addr("dns");
    assert_eq!(dig(dns, "127.0.0.2", &["h59999.big.test"]), ["10.0.234.95"]);

    let (readers, rcodes): (Vec<SlowReader>, Vec<_>) = (0..MAX_TRANSFERS)
        .map(|i| SlowReader::open(dns, 100 + i as u16))
        .unzip();
    for (i, rcode) in rcodes.into_iter().enumerate() {
        assert_eq!(rcode.recv().unwrap(), 0, "transfer {i} is sent");
    }
    let (_, rcode) = open_transfer(dns, 200);
    assert_eq!(rcode, 2, "a transfer over max_transfers gets SERVFAIL");
    assert!(server.log().contains("too many zone transfers running"));

    let mut worst = Duration::ZERO;
    for i in 0..10u32 {
        for tcp in [false, true] {
            let took = timed_query(dns, i * 9_973 % HOSTS, tcp);
            assert!(
                took < PROMPT,
                "query {i} (tcp: {tcp}) took {took:?} during transfers\n{}",
                server.log()
            );
            worst = worst.max(took);
        }
    }
    let progress: Vec<usize> = readers
        .iter()
        .map(|r| r.read.load(Ordering::Relaxed))
        .collect();
    assert!(
        progress.iter().all(|&n| n > 0),
        "every transfer moves: {progress:?}"
    );
    for reader in readers {
        assert!(
            !reader.hang_up(),
            "the transfers were still running while the queries were timed ({worst:?})"
        );
    }

    // The hung-up transfers give their places back: a full AXFR now arrives complete.
    let deadline = Instant::now() + Duration::from_secs(60);
    let records = loop {
        let out = Command::new("dig")
            .args(["+noall", "+answer", "-b", "127.0.0.1", "-p"])
            .arg(dns.port().to_string())
            .args([&format!("@{}", dns.ip()), "big.test", "AXFR"])
            .output()
            .expect("dig (bind9-dnsutils) is installed");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let lines = text.lines().filter(|l| !l.is_empty()).count();
        if !text.contains("Transfer failed") && lines > 3 {
            break lines;
        }
        assert!(
            Instant::now() < deadline,
            "AXFR refused after hang-ups: {text}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        records,
        2 * HOSTS as usize + 4,
        "SOA, NS, ns1, the hosts' A and TXT and the closing SOA"
    );
    assert!(server.stop().success());
}
