//! The shared network edge under hostile clients, against the real binary: a flood of idle
//! connections from one address leaves every service answering others at once (and refusals on
//! implicit-TLS ports are never plaintext), clients that have not logged in are held to small
//! input and a short idle timeout, DNS over TCP at its cap makes room by closing the oldest idle
//! connection (RFC 7766 §6.2.2), and PROXY protocol clients are counted by the address the
//! trusted balancer names.

mod common;
mod smtp_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{dig, example_dns, metrics, repo_path, sample, Db, Instance};
use smtp_support::{proxy_v2, socket2_connect};

const FLOODER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 20);
const NEIGHBOUR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 21);
const BALANCER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 30);
const STRANGER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 31);

/// Connections the flooder opens to each service.
const FLOOD: usize = 600;

/// Lets this test process hold the flood's sockets.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a valid, owned rlimit value.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    assert!(
        lim.rlim_max >= 8 * FLOOD as u64,
        "the hard descriptor limit ({}) is too low for this test",
        lim.rlim_max
    );
}

/// Runs tests/edge/greet.py: (seconds until the first line, the line).
fn greet(source: Ipv4Addr, port: u16, proto: &str, tls: bool) -> (f64, String) {
    let mut c = Command::new("python3");
    c.arg(repo_path("tests/edge/greet.py"))
        .arg(source.to_string())
        .arg(port.to_string())
        .arg(proto);
    if tls {
        c.arg("tls");
    }
    let out = c.output().expect("python3");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        out.status.success(),
        "greet.py {port} {proto}: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (secs, line) = text.split_once(' ').unwrap_or((&text, ""));
    (secs.parse().expect("seconds"), line.to_owned())
}

/// Everything a refused connection receives before the server closes it (which it must).
fn read_all(s: TcpStream) -> Vec<u8> {
    closed_within(s, Duration::from_secs(20))
        .expect("the server did not close a refused connection")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_address_leaves_every_service_to_the_others() {
    raise_fd_limit();
    let services = [
        "smtp",
        "submission",
        "submissions",
        "imap",
        "imaps",
        "admin",
    ];
    // The flood's admitted connections must hold their slots until the check, however slow a
    // loaded machine is: the configurable pre-login and handshake timeouts are set long (both have
    // their own test below), and each service is checked right after its own flood (a flood
    // checked much later may find its admitted admin connections closed by the admin server's
    // fixed 30 s idle timeout, and the next connection admitted instead of refused).
    let inst = Instance::new(
        Db::Sqlite,
        &services,
        "[net]\npreauth_idle_timeout_secs = 3600\ntls_handshake_timeout_secs = 3600\n",
    )
    .await;
    let server = inst.start();
    // (service, protocol, implicit TLS, what a refused plaintext client reads)
    let table = [
        ("smtp", "smtp", false, "421 "),
        ("submission", "smtp", false, "421 "),
        ("submissions", "smtp", true, ""),
        ("imap", "imap", false, "* BYE"),
        ("imaps", "imap", true, ""),
        ("admin", "http", false, "HTTP/1.1 503"),
    ];
    let mut held = Vec::new();
    for (service, proto, tls, refusal) in table {
        let addr = server.addr(service);
        let flood_started = Instant::now();
        for _ in 0..FLOOD {
            held.push(socket2_connect(addr, FLOODER));
        }
        let flood_took = flood_started.elapsed();
        let Some(got) = closed_within(socket2_connect(addr, FLOODER), Duration::from_secs(20))
        else {
            panic!(
                "{service}: a connection over the flooder's limit was not closed within 20 s \
                 (the flood took {flood_took:?})\n{}",
                server.log()
            );
        };
        let got = String::from_utf8_lossy(&got);
        if tls {
            assert!(
                got.is_empty(),
                "{service}: plaintext refusal on a TLS port: {got:?}"
            );
        } else {
            assert!(got.starts_with(refusal), "{service}: refused with {got:?}");
        }
        let (secs, line) = greet(NEIGHBOUR, addr.port(), proto, tls);
        let expected = match proto {
            "smtp" => "220 ",
            "imap" => "* OK",
            _ => "HTTP/1.1 200",
        };
        assert!(
            line.starts_with(expected),
            "{service}: neighbour got {line:?}"
        );
        assert!(secs < 1.0, "{service}: neighbour waited {secs} s");
    }
    let m = metrics(&inst, &server);
    for (service, ..) in table {
        let refused = sample(
            &m,
            &format!(
                "postern_connections_total{{service=\"{service}\",result=\"refused_client_limit\"}}"
            ),
        );
        assert!(
            refused >= (FLOOD - 30) as u64,
            "{service}: {refused} refusals counted\n{m}"
        );
    }
    drop(held);
}

/// Reads one CRLF line (empty at end of stream).
fn line(r: &mut BufReader<TcpStream>) -> String {
    let mut l = String::new();
    let _ = r.read_line(&mut l);
    l
}

fn imap_client(addr: SocketAddr) -> (TcpStream, BufReader<TcpStream>) {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    assert!(line(&mut r).starts_with("* OK"));
    (s, r)
}

/// Reads until the server closes, returning everything it sent.
fn until_closed(r: &mut BufReader<TcpStream>) -> String {
    let mut rest = String::new();
    let _ = r.read_to_string(&mut rest);
    rest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_have_not_logged_in_get_small_input_and_a_short_idle_timeout() {
    let inst = Instance::new(
        Db::Sqlite,
        &["imap", "submission", "imaps"],
        "[net]\npreauth_idle_timeout_secs = 2\ntls_handshake_timeout_secs = 2\n",
    )
    .await;
    let server = inst.start();
    let imap = server.addr("imap");

    // A 40 MiB synchronizing literal before login: refused at once, without a continuation
    // request, and the connection goes on.
    let (mut s, mut r) = imap_client(imap);
    s.write_all(b"a LOGIN {41943040}\r\n").expect("send");
    let reply = line(&mut r);
    assert!(reply.starts_with("a NO [TOOBIG]"), "{reply}");
    s.write_all(b"b NOOP\r\n").expect("send");
    assert!(line(&mut r).starts_with("b OK"));

    // A 2 GiB non-synchronizing literal: the server says why and closes without reading it.
    let (mut s, mut r) = imap_client(imap);
    s.write_all(b"a LOGIN {2147483648+}\r\nxxxxxxxx")
        .expect("send");
    let rest = until_closed(&mut r);
    assert!(rest.starts_with("* BYE"), "{rest:?}");

    // An endless line: closed once it passes the pre-login cap (40 KiB).
    let (mut s, mut r) = imap_client(imap);
    let chunk = vec![b'x'; 4096];
    for _ in 0..16 {
        if s.write_all(&chunk).is_err() {
            break;
        }
    }
    let rest = until_closed(&mut r);
    assert!(rest.starts_with("* BYE"), "{rest:?}");

    // Silent before login: disconnected after the pre-login timeout, on IMAP and submission.
    let (_s, mut r) = imap_client(imap);
    let rest = until_closed(&mut r);
    assert!(rest.contains("* BYE"), "{rest:?}");
    let s = TcpStream::connect(server.addr("submission")).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut r = BufReader::new(s);
    assert!(line(&mut r).starts_with("220 "));
    let rest = until_closed(&mut r);
    assert!(rest.starts_with("421 "), "{rest:?}");

    // Silent, or stopping halfway through its ClientHello, on an implicit-TLS port: closed after
    // the handshake timeout, with nothing sent in plaintext.
    for hello in [
        &b""[..],
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..],
    ] {
        let mut s = TcpStream::connect(server.addr("imaps")).expect("connect");
        s.write_all(hello).expect("send");
        let got = closed_within(s, Duration::from_secs(30));
        assert_eq!(
            got.as_deref(),
            Some(&b""[..]),
            "a stalled TLS handshake was not closed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_over_tcp_at_its_cap_closes_the_oldest_idle_connection() {
    let dns =
        example_dns(&repo_path("zones")).replacen("[dns]\n", "[dns]\nmax_tcp_connections = 4\n", 1);
    let inst = Instance::new(Db::Sqlite, &["dns"], &dns).await;
    let server = inst.start();
    let addr = server.addr("dns");
    let idle: Vec<TcpStream> = (0..4).map(|_| socket2_connect(addr, FLOODER)).collect();
    // Each idle connection is admitted before the next opens.
    let deadline = Instant::now() + Duration::from_secs(30);
    let started = Instant::now();
    let answer = loop {
        let a = dig(addr, "127.0.0.21", &["+tcp", "www.example.test", "A"]);
        if !a.is_empty() || Instant::now() > deadline {
            break a;
        }
    };
    assert_eq!(answer, ["192.0.2.80"]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a new client waited for an idle slot to time out"
    );
    let closed = idle.iter().filter(|s| is_closed(s)).count();
    assert!(closed >= 1, "no idle connection was closed");
}

/// Whether the server has closed `s` (reads EOF within a short while).
fn is_closed(s: &TcpStream) -> bool {
    let mut s = s.try_clone().expect("clone");
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let mut buf = [0u8; 64];
    matches!(s.read(&mut buf), Ok(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxied_clients_are_counted_by_the_address_the_balancer_names() {
    let inst = Instance::new(
        Db::Sqlite,
        &["imap"],
        &format!(
            "[net]\nmax_connections_per_client = 3\n[net.proxy_protocol]\nimap = [\"{BALANCER}/32\"]\n"
        ),
    )
    .await;
    let server = inst.start();
    let imap = server.addr("imap");
    let open = |client: SocketAddrV4| {
        let mut s = socket2_connect(imap, BALANCER);
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        s.write_all(&proxy_v2(client, imap)).expect("header");
        let mut r = BufReader::new(s.try_clone().expect("clone"));
        (s, line(&mut r))
    };
    let client = |last: u8, port| SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, last), port);
    let mut held = Vec::new();
    for port in 0..3 {
        let (s, greeting) = open(client(77, 1000 + port));
        assert!(greeting.starts_with("* OK"), "{greeting}");
        held.push(s);
    }
    let (_s, refused) = open(client(77, 2000));
    assert!(refused.starts_with("* BYE"), "{refused}");
    let (_s, other) = open(client(78, 2000));
    assert!(other.starts_with("* OK"), "{other}");
    // Without a trusted source, no greeting at all.
    let got = read_all(socket2_connect(imap, STRANGER));
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_server_closes_silent_and_half_sent_requests() {
    let inst = Instance::new(Db::Sqlite, &["admin"], "").await;
    let server = inst.start();
    let admin = server.addr("admin");
    let silent = TcpStream::connect(admin).expect("connect");
    let mut half = TcpStream::connect(admin).expect("connect");
    half.write_all(b"GET /login HTTP/1.1\r\nHost: admin\r\n")
        .expect("send");
    // Both end within the header-read (10 s) and idle (30 s) timeouts.
    for s in [silent, half] {
        let got = closed_within(s, Duration::from_secs(45))
            .expect("the admin server kept an idle connection open");
        let got = String::from_utf8_lossy(&got);
        assert!(got.is_empty() || got.starts_with("HTTP/1.1 408"), "{got:?}");
    }
}

/// What the server sent before closing `s`, or `None` if it did not close it within `limit`.
fn closed_within(mut s: TcpStream, limit: Duration) -> Option<Vec<u8>> {
    s.set_read_timeout(Some(limit)).expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Some(got),
            Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_low_descriptor_limit_one_service_cannot_starve_the_others() {
    raise_fd_limit();
    let inst = Instance::new(Db::Sqlite, &["smtp", "imap", "admin"], "").await;
    let server = inst.start_with_fd_limit(256);
    // 300 idle admin connections from ten addresses (30 each, the per-client cap).
    let mut held = Vec::new();
    for i in 0..300 {
        let source = Ipv4Addr::new(127, 0, 0, 40 + (i / 30) as u8);
        held.push(socket2_connect(server.addr("admin"), source));
    }
    for (service, proto) in [("smtp", "smtp"), ("imap", "imap")] {
        let (_, line) = greet(NEIGHBOUR, server.addr(service).port(), proto, false);
        let expected = if proto == "smtp" { "220 " } else { "* OK" };
        assert!(
            line.starts_with(expected),
            "{service} under an admin flood: {line:?}\n{}",
            server.log()
        );
    }
    assert!(
        !server.log().contains("Too many open files"),
        "{}",
        server.log()
    );
    drop(held);
}
