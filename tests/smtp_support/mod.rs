//! Helpers shared by the SMTP end-to-end tests: a server with hosted users, clients (swaks, Python
//! smtplib and raw sockets), reading delivered messages through the store, and, for the outbound
//! queue, a tiny authoritative DNS responder and an SMTP sink on loopback.
#![allow(dead_code)] // Each test file uses a different part.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::TokioResolver;

use crate::common::{Db, Instance, Server};

pub mod postfix;

/// Password of every test user.
pub const PASSWORD: &str = "correct horse";

/// An instance hosting example.test with users alice and bob (bob's quota from `bob_quota`),
/// `info@` -> alice and bob, a catch-all to bob, `fwd@` -> `ok@remote.test`; then started.
pub async fn hosted(db: Db, extra: &str) -> (Instance, Server) {
    let inst = Instance::new(db, &["smtp", "submission", "submissions"], extra).await;
    inst.ok(&["domain", "add", "example.test"], "");
    inst.ok(
        &["user", "add", "alice@example.test"],
        &format!("{PASSWORD}\n"),
    );
    inst.ok(
        &["user", "add", "bob@example.test", "--quota", "4K"],
        &format!("{PASSWORD}\n"),
    );
    inst.ok(
        &["alias", "add", "info@example.test", "alice@example.test"],
        "",
    );
    inst.ok(
        &["alias", "add", "info@example.test", "bob@example.test"],
        "",
    );
    inst.ok(&["alias", "add", "@example.test", "bob@example.test"], "");
    inst.ok(&["alias", "add", "fwd@example.test", "ok@remote.test"], "");
    let server = inst.start();
    (inst, server)
}

/// The raw messages in `address`'s INBOX, oldest first.
pub async fn inbox(inst: &Instance, address: &str) -> Vec<String> {
    folder(inst, address, "INBOX").await
}

/// The raw messages in `address`'s mailbox `name`, oldest first.
pub async fn folder(inst: &Instance, address: &str, name: &str) -> Vec<String> {
    let store = postern_store::Store::open(&inst.db.url)
        .await
        .expect("open store");
    let user = store.user(address).await.unwrap().expect("user exists");
    let mailbox = store
        .mailbox(user.id, name)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{address} has no {name}"));
    let mut out = Vec::new();
    for m in store.list_messages(&mailbox).await.unwrap() {
        let raw = store.message_raw(&mailbox, m.uid).await.unwrap().unwrap();
        out.push(String::from_utf8_lossy(&raw).into_owned());
    }
    store.close().await;
    out
}

/// Waits until `address`'s INBOX holds `n` messages and returns them.
pub async fn wait_inbox(inst: &Instance, address: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let msgs = inbox(inst, address).await;
        if msgs.len() >= n {
            return msgs;
        }
        assert!(
            Instant::now() < deadline,
            "{address} has {} messages, want {n}",
            msgs.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the outbound queue is empty.
pub async fn wait_queue_empty(inst: &Instance) {
    let store = postern_store::Store::open(&inst.db.url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let q = store.list_queue().await.unwrap();
        if q.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "queue not empty: {q:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    store.close().await;
}

/// Runs swaks against `addr` with extra arguments.
pub fn swaks(addr: SocketAddr, args: &[&str]) -> Output {
    Command::new("swaks")
        .args([
            "--server",
            &addr.ip().to_string(),
            "--port",
            &addr.port().to_string(),
        ])
        .args(["--helo", "client.test", "--timeout", "20"])
        .args(args)
        .output()
        .expect("run swaks")
}

/// swaks's transcript (stdout and stderr).
pub fn transcript(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs a Python 3 script with arguments; returns (success, stdout + stderr).
pub fn python(script: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python3");
    (out.status.success(), transcript(&out))
}

/// A plain-text SMTP client on a raw socket, for protocol-level tests.
pub struct Raw {
    reader: BufReader<TcpStream>,
    stream: TcpStream,
}

impl Raw {
    /// Connects from `source` (e.g. 127.0.0.2) and reads the greeting.
    pub fn connect_from(addr: SocketAddr, source: Ipv4Addr) -> Raw {
        let socket = socket2_connect(addr, source);
        socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut raw = Raw {
            reader: BufReader::new(socket.try_clone().unwrap()),
            stream: socket,
        };
        let greeting = raw.reply();
        assert!(greeting.starts_with("220 "), "{greeting}");
        raw
    }

    /// Connects from `source`, a trusted load balancer, and sends a PROXY v2 header naming
    /// `client` before reading the greeting.
    pub fn connect_proxied(addr: SocketAddr, source: Ipv4Addr, client: SocketAddrV4) -> Raw {
        let mut socket = socket2_connect(addr, source);
        socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        socket.write_all(&proxy_v2(client, addr)).unwrap();
        let mut raw = Raw {
            reader: BufReader::new(socket.try_clone().unwrap()),
            stream: socket,
        };
        let greeting = raw.reply();
        assert!(greeting.starts_with("220 "), "{greeting}");
        raw
    }

    /// Connects from 127.0.0.1.
    pub fn connect(addr: SocketAddr) -> Raw {
        Raw::connect_from(addr, Ipv4Addr::LOCALHOST)
    }

    /// Sends bytes as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Sends `bytes` as two TCP segments split at `at`, with a pause between them so that the
    /// server reads them apart.
    pub fn send_split(&mut self, bytes: &[u8], at: usize) {
        self.stream.set_nodelay(true).unwrap();
        self.send(&bytes[..at]);
        std::thread::sleep(Duration::from_millis(150));
        self.send(&bytes[at..]);
    }

    /// Reads one (possibly multi-line) reply, lines joined with "\n".
    pub fn reply(&mut self) -> String {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).unwrap_or(0);
            if n == 0 {
                lines.push("<closed>".to_owned());
                break;
            }
            let line = line.trim_end().to_owned();
            let last = line.len() < 4 || line.as_bytes()[3] == b' ';
            lines.push(line);
            if last {
                break;
            }
        }
        lines.join("\n")
    }

    /// Sends a command line and returns the reply.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }
}

/// A TCP connection to `addr` from the local address `source`.
/// A PROXY protocol v2 header (TCP over IPv4) naming `client` as the source and `server` as the
/// destination, built by hand from the specification (§2.2) so the server's parser is checked
/// against the text, not against itself.
pub fn proxy_v2(client: SocketAddrV4, server: SocketAddr) -> Vec<u8> {
    let SocketAddr::V4(server) = server else {
        panic!("IPv4 only")
    };
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0, 12]);
    h.extend_from_slice(&client.ip().octets());
    h.extend_from_slice(&server.ip().octets());
    h.extend_from_slice(&client.port().to_be_bytes());
    h.extend_from_slice(&server.port().to_be_bytes());
    h
}

/// A TCP connection to `addr` from the loopback address `source`.
pub fn socket2_connect(addr: SocketAddr, source: Ipv4Addr) -> TcpStream {
    if source == Ipv4Addr::LOCALHOST {
        return TcpStream::connect(addr).unwrap();
    }
    // SAFETY: plain socket(2)/bind(2)/connect(2) calls on a descriptor we own and hand to std.
    unsafe {
        use std::os::fd::FromRawFd;
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let mut local: libc::sockaddr_in = std::mem::zeroed();
        local.sin_family = libc::AF_INET as libc::sa_family_t;
        local.sin_addr.s_addr = u32::from(source).to_be();
        assert_eq!(
            libc::bind(
                fd,
                &local as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_in>() as u32
            ),
            0,
            "bind {source}"
        );
        let SocketAddr::V4(v4) = addr else {
            panic!("IPv4 only")
        };
        let mut remote: libc::sockaddr_in = std::mem::zeroed();
        remote.sin_family = libc::AF_INET as libc::sa_family_t;
        remote.sin_port = v4.port().to_be();
        remote.sin_addr.s_addr = u32::from(*v4.ip()).to_be();
        assert_eq!(
            libc::connect(
                fd,
                &remote as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_in>() as u32
            ),
            0,
            "connect {addr}"
        );
        TcpStream::from_raw_fd(fd)
    }
}

/// A minimal DNS responder over UDP for one test zone: answers A, MX and TLSA queries from a
/// fixed table, NODATA for other types of known names, NXDOMAIN for the rest. It plays a
/// validating resolver too: answers carry the AD bit (RFC 4035 §3.2.3) when the query asked for
/// DNSSEC (AD or DO) and the name is not marked [`Rr::Insecure`].
pub struct TestDns {
    /// Where it listens.
    pub addr: SocketAddr,
}

/// One record of the test zone.
#[derive(Clone)]
pub enum Rr {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// A mail exchanger: preference and host.
    Mx(u16, String),
    /// A TLSA record: usage, selector, matching type, data (RFC 6698).
    Tlsa(u8, u8, u8, Vec<u8>),
    /// Not a record: answers for this name are not authenticated (no AD bit).
    Insecure,
}

impl TestDns {
    /// Starts answering `records` (name -> records) on 127.0.0.1.
    pub fn start(records: HashMap<String, Vec<Rr>>) -> TestDns {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while let Ok((n, peer)) = socket.recv_from(&mut buf) {
                if let Some(answer) = dns_answer(&buf[..n], &records) {
                    let _ = socket.send_to(&answer, peer);
                }
            }
        });
        TestDns { addr }
    }
}

fn encode_name(name: &str, out: &mut Vec<u8>) {
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

fn dns_answer(q: &[u8], records: &HashMap<String, Vec<Rr>>) -> Option<Vec<u8>> {
    if q.len() < 12 {
        return None;
    }
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = *q.get(i)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(q.get(i..i + len)?).to_ascii_lowercase());
        i += len;
    }
    let qtype = u16::from_be_bytes([*q.get(i)?, *q.get(i + 1)?]);
    let question = &q[12..i + 4];
    let name = labels.join(".");
    let known = records.get(&name);
    let answers: Vec<&Rr> = known
        .map(|rrs| {
            rrs.iter()
                .filter(|r| {
                    matches!(
                        (r, qtype),
                        (Rr::A(_), 1) | (Rr::Mx(..), 15) | (Rr::Tlsa(..), 52)
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let rcode = if known.is_some() { 0 } else { 3 };
    // AD asked for in the header, or DO in an OPT record (the only additional record sent).
    let dnssec = q[3] & 0x20 != 0
        || q.get(i + 4..)
            .is_some_and(|opt| opt.len() >= 11 && opt[7] & 0x80 != 0);
    let secure = dnssec && !known.is_some_and(|rrs| rrs.iter().any(|r| matches!(r, Rr::Insecure)));
    let mut out = Vec::new();
    out.extend_from_slice(&q[0..2]);
    out.extend_from_slice(&[0x84 | (q[2] & 0x01), rcode | if secure { 0x20 } else { 0 }]);
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(question);
    for rr in answers {
        out.extend_from_slice(&[0xc0, 0x0c]);
        let (rtype, rdata) = match rr {
            Rr::A(ip) => (1u16, ip.octets().to_vec()),
            Rr::Mx(pref, host) => {
                let mut d = pref.to_be_bytes().to_vec();
                encode_name(host, &mut d);
                (15u16, d)
            }
            Rr::Tlsa(usage, selector, matching, data) => {
                let mut d = vec![*usage, *selector, *matching];
                d.extend_from_slice(data);
                (52u16, d)
            }
            Rr::Insecure => unreachable!("markers are not answers"),
        };
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&60u32.to_be_bytes());
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(&rdata);
    }
    Some(out)
}

/// One message the sink accepted.
#[derive(Debug, Clone)]
pub struct Received {
    /// MAIL FROM.
    pub from: String,
    /// RCPT TO addresses accepted.
    pub to: Vec<String>,
    /// The message data (dot-unstuffed, without the final dot line).
    pub data: String,
}

/// An SMTP sink on loopback standing in for remote mail servers. Recipients whose local part
/// starts with `temp` get 451 the first time, `defer` always 451, `perm` 550; others are accepted.
/// A message to a `slow` recipient is taken (counted as received) 300 ms before its 250 is sent.
pub struct Sink {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Messages accepted so far.
    pub received: Arc<Mutex<Vec<Received>>>,
    /// RCPT attempts per address.
    pub attempts: Arc<Mutex<HashMap<String, u32>>>,
}

impl Sink {
    /// Starts the sink on 127.0.0.1.
    pub fn start() -> Sink {
        Sink::start_at(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap()
    }

    /// Starts the sink on `addr` (port 0: any free port).
    pub fn start_at(addr: SocketAddr) -> std::io::Result<Sink> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let attempts: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let (r, a) = (received.clone(), attempts.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (r, a) = (r.clone(), a.clone());
                std::thread::spawn(move || sink_session(stream, &r, &a));
            }
        });
        Ok(Sink {
            addr,
            received,
            attempts,
        })
    }

    /// Waits until the sink holds `n` messages and returns them.
    pub fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.received.lock().unwrap().clone();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "sink has {} messages, want {n}",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// RCPT attempts seen for `address`.
    pub fn attempts(&self, address: &str) -> u32 {
        self.attempts
            .lock()
            .unwrap()
            .get(address)
            .copied()
            .unwrap_or(0)
    }
}

fn sink_session(
    stream: TcpStream,
    received: &Mutex<Vec<Received>>,
    attempts: &Mutex<HashMap<String, u32>>,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut out = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let _ = out.write_all(b"220 sink.remote.test ESMTP\r\n");
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let upper = line.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            "250-sink.remote.test\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 PIPELINING\r\n".into()
        } else if upper.starts_with("MAIL FROM:") {
            from = angle(&line);
            to.clear();
            "250 2.1.0 ok\r\n".into()
        } else if upper.starts_with("RCPT TO:") {
            let rcpt = angle(&line);
            let n = {
                let mut a = attempts.lock().unwrap();
                let n = a.entry(rcpt.clone()).or_insert(0);
                *n += 1;
                *n
            };
            if rcpt.starts_with("perm") {
                "550 5.1.1 no such user here\r\n".into()
            } else if rcpt.starts_with("defer") || (rcpt.starts_with("temp") && n == 1) {
                "451 4.3.0 try again later\r\n".into()
            } else {
                to.push(rcpt);
                "250 2.1.5 ok\r\n".into()
            }
        } else if upper.starts_with("DATA") {
            if to.is_empty() {
                "554 5.5.1 no valid recipients\r\n".into()
            } else {
                let _ = out.write_all(b"354 go ahead\r\n");
                let mut data = String::new();
                loop {
                    let mut l = String::new();
                    if reader.read_line(&mut l).unwrap_or(0) == 0 {
                        return;
                    }
                    if l == ".\r\n" {
                        break;
                    }
                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                }
                received.lock().unwrap().push(Received {
                    from: from.clone(),
                    to: to.clone(),
                    data,
                });
                if to.iter().any(|t| t.starts_with("slow")) {
                    std::thread::sleep(Duration::from_millis(300));
                }
                "250 2.0.0 queued\r\n".into()
            }
        } else if upper.starts_with("QUIT") {
            let _ = out.write_all(b"221 2.0.0 bye\r\n");
            return;
        } else {
            "250 2.0.0 ok\r\n".into()
        };
        let _ = out.write_all(reply.as_bytes());
    }
}

fn angle(line: &str) -> String {
    let start = line.find('<').map_or(0, |i| i + 1);
    let end = line[start..].find('>').map_or(line.len(), |i| start + i);
    line[start..end].to_owned()
}

/// Zones for a server's own DNS listener, which its `[smtp] resolver` then points at: one view
/// for everyone, with the parent zone `test` so that tree walks (DMARC) get NXDOMAIN, not REFUSED.
pub struct OwnDns {
    /// The port of the DNS listener (UDP and TCP), chosen before the server starts.
    pub port: u16,
    dir: std::path::PathBuf,
    view: String,
}

impl OwnDns {
    /// Zone files go to `dir`; each gets an SOA, an NS and the NS's address on loopback.
    pub fn new(dir: &std::path::Path) -> OwnDns {
        std::fs::create_dir_all(dir).expect("zones dir");
        let port = crate::common::ports::free_port();
        let mut dns = OwnDns {
            port,
            dir: dir.to_path_buf(),
            view: String::new(),
        };
        dns.zone("test", "");
        dns
    }

    /// Adds zone `name` with the records in `body` (zone-file syntax, relative names).
    pub fn zone(&mut self, name: &str, body: &str) {
        let text = format!(
            "$ORIGIN {name}.\n$TTL 60\n@ IN SOA ns hostmaster 1 7200 900 1209600 60\n  IN NS ns\nns IN A 127.0.0.1\n{body}"
        );
        std::fs::write(self.dir.join(format!("{name}.zone")), text).expect("write zone");
        self.view.push_str(&format!(
            "[[dns.view.zone]]\nname = \"{name}\"\nfile = \"{name}.zone\"\n"
        ));
    }

    /// The address to give as `[smtp] resolver`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The `dns` listener line: it belongs in `[listeners]`, so it must open the extra config.
    pub fn listener(&self) -> String {
        format!("dns = [\"{}\"]\n", self.addr())
    }

    /// The `[dns]` table serving the zones to everyone.
    pub fn table(&self) -> String {
        format!(
            "[dns]\nzones_dir = \"{}\"\n[[dns.view]]\nname = \"external\"\nmatch_clients = [\"any\"]\n{}",
            self.dir.display(),
            self.view
        )
    }
}

/// A resolver asking only Postern's DNS.
pub fn resolver(dns: SocketAddr) -> TokioResolver {
    let mut udp = ConnectionConfig::udp();
    udp.port = dns.port();
    let server = NameServerConfig::new(dns.ip(), true, vec![udp]);
    TokioResolver::builder_with_config(
        ResolverConfig::from_name_servers(vec![server]),
        TokioRuntimeProvider::default(),
    )
    .build()
    .expect("resolver")
}

/// A certificate authority for tests of validated outbound TLS.
pub struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    /// The CA certificate, PEM.
    pub pem: String,
    /// The CA certificate, DER.
    pub der: Vec<u8>,
}

impl TestCa {
    /// A fresh CA.
    pub fn new() -> TestCa {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Postern test CA");
        let cert = params.self_signed(&key).expect("CA");
        TestCa {
            pem: cert.pem(),
            der: cert.der().to_vec(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// Issues a certificate for `names`; writes `<stem>.pem` (leaf, then this CA) and
    /// `<stem>.key` to `dir` and returns the leaf's DER.
    pub fn issue(&self, names: &[String], dir: &std::path::Path, stem: &str) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().expect("key");
        let leaf = rcgen::CertificateParams::new(names.to_vec())
            .expect("params")
            .signed_by(&key, &self.issuer)
            .expect("leaf");
        std::fs::write(
            dir.join(format!("{stem}.pem")),
            format!("{}{}", leaf.pem(), self.pem),
        )
        .expect("write");
        std::fs::write(dir.join(format!("{stem}.key")), key.serialize_pem()).expect("write");
        leaf.der().to_vec()
    }
}

/// Submits one message from alice@example.test to `rcpts` over implicit TLS with smtplib.
pub fn submit_as_alice(port: u16, rcpts: &[String], subject: &str) {
    const SUBMIT: &str = r#"
import smtplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP_SSL('127.0.0.1', int(sys.argv[1]), context=ctx, timeout=20)
s.login('alice@example.test', sys.argv[2])
rcpts = sys.argv[3].split(',')
msg = 'From: alice@example.test\r\nSubject: %s\r\n\r\nhi\r\n' % sys.argv[4]
print(s.sendmail('alice@example.test', rcpts, msg))
s.quit()
"#;
    let (ok, out) = python(
        SUBMIT,
        &[&port.to_string(), PASSWORD, &rcpts.join(","), subject],
    );
    assert!(ok && out.trim() == "{}", "{out}");
}

/// Waits until the outbound queue holds exactly the `(recipient, error text)` entries given.
pub async fn wait_deferred(inst: &Instance, expected: &[(&str, &str)]) {
    let store = postern_store::Store::open(&inst.db.url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let queue = store.list_queue().await.unwrap();
        let ok = queue.len() == expected.len()
            && expected.iter().all(|(rcpt, why)| {
                queue.iter().any(|e| {
                    e.recipient == *rcpt
                        && e.last_error.as_deref().is_some_and(|err| err.contains(why))
                })
            });
        if ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "queue {queue:#?}, want {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    store.close().await;
}

/// A started sending server with `extra` config: hosts example.test with alice, submissions only.
pub async fn sending_server(db: Db, extra: &str) -> (Instance, Server) {
    alice_server(db, &["submissions"], extra).await
}

/// A started server with `services` and `extra` config, hosting example.test with alice.
pub async fn alice_server(db: Db, services: &[&str], extra: &str) -> (Instance, Server) {
    let inst = Instance::new(db, services, extra).await;
    inst.ok(&["domain", "add", "example.test"], "");
    inst.ok(
        &["user", "add", "alice@example.test"],
        &format!("{PASSWORD}\n"),
    );
    let server = inst.start();
    (inst, server)
}

/// A started receiving MX using the certificate `<stem>.pem`/`<stem>.key` in `dir` (see
/// [`TestCa::issue`]), hosting each of `domains` with the user `u@<domain>`.
pub async fn receiving_server(
    db: Db,
    dir: &std::path::Path,
    stem: &str,
    domains: &[&str],
) -> (Instance, Server) {
    let extra = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        dir.join(format!("{stem}.pem")).display(),
        dir.join(format!("{stem}.key")).display()
    );
    let inst = Instance::new(db, &["smtp"], &extra).await;
    for domain in domains {
        inst.ok(&["domain", "add", domain], "");
        inst.ok(
            &["user", "add", &format!("u@{domain}")],
            &format!("{PASSWORD}\n"),
        );
    }
    let server = inst.start();
    (inst, server)
}

/// Postern with its own DNS (example.test, and remote.test whose MX is 127.0.0.1, reached at
/// `outbound_port`), the users `users` of example.test and `fwd@example.test` forwarding to
/// `ok@remote.test`; AUTH allowed without TLS so raw sockets can submit. `more` goes into
/// `[smtp]`. Returns the started server and the DNS address.
pub async fn relaying_server(
    db: Db,
    outbound_port: u16,
    users: &[&str],
    more: &str,
) -> (Instance, Server, SocketAddr) {
    let zones = tempfile::tempdir().expect("zones dir");
    let mut dns = OwnDns::new(&zones.keep());
    dns.zone("example.test", "");
    dns.zone("remote.test", "@ IN MX 10 mx\nmx IN A 127.0.0.1\n");
    let extra = format!(
        "{listener}\n[smtp]\nresolver = \"{resolver}\"\noutbound_port = {outbound_port}\nretry_initial_secs = 1\nretry_max_secs = 1\nqueue_scan_secs = 1\noutbound_timeout_secs = 5\nrequire_tls_for_auth = false\n{more}\n{table}",
        listener = dns.listener(),
        resolver = dns.addr(),
        table = dns.table(),
    );
    let inst = Instance::new(db, &["smtp", "submission"], &extra).await;
    inst.ok(&["domain", "add", "example.test"], "");
    for user in users {
        inst.ok(&["user", "add", user], &format!("{PASSWORD}\n"));
    }
    inst.ok(&["alias", "add", "fwd@example.test", "ok@remote.test"], "");
    let server = inst.start();
    (inst, server, dns.addr())
}
