//! The resolver against a small DNS responder on 127.0.0.1 (UDP and TCP on one port) that plays a
//! validating resolver: it sets AD on answers for secure names when the query asked for DNSSEC
//! (RFC 6840 §5.7), truncates chosen UDP answers, and counts the queries it gets.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use hickory_resolver::proto::op::{MessageType, OpCode};
use hickory_resolver::proto::rr::rdata::tlsa::{CertUsage, Matching, Selector};
use hickory_resolver::proto::rr::rdata::{A, AAAA, MX, SOA};
use hickory_resolver::proto::rr::Record;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

use super::*;

/// What the responder knows about one name.
#[derive(Clone, Default)]
struct Node {
    records: Vec<RData>,
    /// Answers carry AD when the query asked for DNSSEC.
    secure: bool,
    /// UDP answers are empty with TC set; TCP answers are complete.
    truncate_udp: bool,
}

/// Queries seen, by transport.
#[derive(Default)]
struct Seen {
    udp: AtomicUsize,
    tcp: AtomicUsize,
    /// Whether every query had both AD and DO set.
    asked_dnssec: Mutex<Vec<bool>>,
}

struct Responder {
    addr: SocketAddr,
    seen: Arc<Seen>,
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).expect("name")
}

/// The zone `test.`: its SOA gives denials a negative TTL of 30 seconds.
fn soa() -> Record {
    Record::from_rdata(
        name("test."),
        300,
        RData::SOA(SOA::new(
            name("ns.test."),
            name("admin.test."),
            1,
            3600,
            600,
            86400,
            30,
        )),
    )
}

/// The answer to `query` (wire format) from `zone`; `udp` marks the transport.
fn respond(query: &[u8], zone: &HashMap<Name, Node>, seen: &Seen, udp: bool) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    let q = request.queries.first()?.clone();
    let dnssec = request.metadata.authentic_data
        && request.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
    seen.asked_dnssec.lock().ok()?.push(dnssec);
    let mut reply = Message::new(request.metadata.id, MessageType::Response, OpCode::Query);
    reply.metadata.recursion_desired = request.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.add_query(q.clone());
    match zone.get(&q.name().to_lowercase()) {
        None => {
            reply.metadata.response_code = ResponseCode::NXDomain;
            reply.authorities.push(soa());
        }
        Some(node) => {
            reply.metadata.authentic_data = dnssec && node.secure;
            if udp && node.truncate_udp {
                reply.metadata.truncation = true;
            } else {
                let matching = node
                    .records
                    .iter()
                    .filter(|r| r.record_type() == q.query_type());
                for data in matching {
                    reply
                        .answers
                        .push(Record::from_rdata(q.name().clone(), 60, data.clone()));
                }
                if reply.answers.is_empty() {
                    reply.authorities.push(soa());
                }
            }
        }
    }
    reply.to_vec().ok()
}

impl Responder {
    async fn start(zone: HashMap<&str, Node>) -> Responder {
        let zone: Arc<HashMap<Name, Node>> = Arc::new(
            zone.into_iter()
                .map(|(n, node)| (name(n).to_lowercase(), node))
                .collect(),
        );
        // UDP and TCP on the same port: retry until a port free for both is found.
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").await.expect("udp");
            if let Ok(tcp) = TcpListener::bind(udp.local_addr().expect("addr")).await {
                break (udp, tcp);
            }
        };
        let addr = udp.local_addr().expect("addr");
        let seen = Arc::new(Seen::default());
        let (z, s) = (zone.clone(), seen.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((n, peer)) = udp.recv_from(&mut buf).await {
                s.udp.fetch_add(1, Ordering::SeqCst);
                if let Some(answer) = respond(&buf[..n], &z, &s, true) {
                    let _ = udp.send_to(&answer, peer).await;
                }
            }
        });
        let (z, s) = (zone, seen.clone());
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = tcp.accept().await {
                s.tcp.fetch_add(1, Ordering::SeqCst);
                let (z, s) = (z.clone(), s.clone());
                tokio::spawn(async move {
                    while let Ok(len) = conn.read_u16().await {
                        let mut query = vec![0u8; usize::from(len)];
                        if conn.read_exact(&mut query).await.is_err() {
                            break;
                        }
                        let Some(answer) = respond(&query, &z, &s, false) else {
                            break;
                        };
                        let Ok(len) = u16::try_from(answer.len()) else {
                            break;
                        };
                        if conn.write_all(&len.to_be_bytes()).await.is_err()
                            || conn.write_all(&answer).await.is_err()
                        {
                            break;
                        }
                    }
                });
            }
        });
        Responder { addr, seen }
    }

    fn resolver(&self) -> Resolver {
        Resolver::with_servers(vec![self.addr], Duration::from_secs(5)).expect("resolver")
    }

    fn udp(&self) -> usize {
        self.seen.udp.load(Ordering::SeqCst)
    }
}

fn zone() -> HashMap<&'static str, Node> {
    let tlsa = RData::TLSA(TLSA::new(
        CertUsage::DaneEe,
        Selector::Spki,
        Matching::Sha256,
        vec![0xab; 32],
    ));
    HashMap::from([
        (
            "secure.test.",
            Node {
                records: vec![RData::MX(MX::new(10, name("mx.secure.test.")))],
                secure: true,
                ..Node::default()
            },
        ),
        (
            "mx.secure.test.",
            Node {
                records: vec![
                    RData::A(A(Ipv4Addr::new(192, 0, 2, 1))),
                    RData::AAAA(AAAA(Ipv6Addr::LOCALHOST)),
                ],
                secure: true,
                ..Node::default()
            },
        ),
        (
            "_25._tcp.mx.secure.test.",
            Node {
                records: vec![tlsa.clone()],
                secure: true,
                ..Node::default()
            },
        ),
        (
            "_25._tcp.mx.insecure.test.",
            Node {
                records: vec![tlsa],
                ..Node::default()
            },
        ),
        (
            "xn--bcher-kva.test.",
            Node {
                records: vec![RData::MX(MX::new(5, name("mx.secure.test.")))],
                ..Node::default()
            },
        ),
        (
            "big.test.",
            Node {
                records: vec![RData::A(A(Ipv4Addr::new(192, 0, 2, 7)))],
                secure: true,
                truncate_udp: true,
            },
        ),
    ])
}

#[tokio::test]
async fn the_ad_bit_is_carried_by_every_answer() {
    let dns = Responder::start(zone()).await;
    let resolver = dns.resolver();
    let mx = resolver.mx("secure.test").await.expect("mx");
    assert_eq!(mx.records, [(10, "mx.secure.test.".to_owned())]);
    assert!(mx.authenticated);
    let ips = resolver.ips("mx.secure.test.").await.expect("ips");
    assert_eq!(
        ips.records,
        [
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        ]
    );
    assert!(ips.authenticated);
    let secure = resolver
        .tlsa("_25._tcp.mx.secure.test")
        .await
        .expect("tlsa");
    assert_eq!(secure.records.len(), 1);
    assert!(secure.authenticated);
    let insecure = resolver
        .tlsa("_25._tcp.mx.insecure.test")
        .await
        .expect("tlsa");
    assert_eq!(insecure.records, secure.records);
    assert!(
        !insecure.authenticated,
        "no AD from the server: not validated"
    );
    // A validated NODATA (the name exists, no MX): authenticated and empty.
    let nodata = resolver.mx("mx.secure.test").await.expect("nodata");
    assert!(nodata.records.is_empty() && nodata.authenticated);
    assert_eq!(
        resolver.mx("missing.test").await,
        Err(LookupError::NxDomain {
            authenticated: false
        })
    );
    // An internationalized domain is asked as its A-label, and is not validated here.
    let idn = resolver.mx("bücher.test").await.expect("idn");
    assert_eq!(idn.records, [(5, "mx.secure.test.".to_owned())]);
    assert!(!idn.authenticated);
    let asked = dns.seen.asked_dnssec.lock().expect("seen").clone();
    assert!(!asked.is_empty() && asked.iter().all(|&b| b), "{asked:?}");
}

#[tokio::test]
async fn answers_are_cached_for_their_ttl() {
    let dns = Responder::start(zone()).await;
    let resolver = dns.resolver();
    let now = Instant::now();
    let first = resolver.lookup_at("secure.test", RecordType::MX, now).await;
    assert!(first.is_ok());
    assert_eq!(dns.udp(), 1);
    // Within the TTL (60 s): from the cache, in any case of the name.
    let again = resolver
        .lookup_at(
            "SECURE.test.",
            RecordType::MX,
            now + Duration::from_secs(59),
        )
        .await;
    assert_eq!(again.map(|c| c.authenticated), Ok(true));
    assert_eq!(dns.udp(), 1);
    // Past the TTL: asked again.
    let later = now + Duration::from_secs(61);
    assert!(resolver
        .lookup_at("secure.test", RecordType::MX, later)
        .await
        .is_ok());
    assert_eq!(dns.udp(), 2);
    // A denial lives for the SOA's negative TTL (30 s, RFC 2308 §5).
    for (offset, queries) in [(0, 3), (29, 3), (31, 4)] {
        let at = now + Duration::from_secs(offset);
        let nx = resolver.lookup_at("missing.test", RecordType::A, at).await;
        assert!(matches!(nx, Err(LookupError::NxDomain { .. })), "{nx:?}");
        assert_eq!(dns.udp(), queries, "{offset} s after the first denial");
    }
    // A different type is a different question.
    assert!(resolver.txt("secure.test").await.is_ok());
    assert_eq!(dns.udp(), 5);
}

#[tokio::test]
async fn a_truncated_answer_is_asked_again_over_tcp() {
    let dns = Responder::start(zone()).await;
    let resolver = dns.resolver();
    let answer = resolver.ipv4("big.test").await.expect("answer over TCP");
    assert_eq!(answer.records, [Ipv4Addr::new(192, 0, 2, 7)]);
    assert!(answer.authenticated);
    assert_eq!(dns.udp(), 1);
    assert_eq!(dns.seen.tcp.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_dead_server_is_a_failure_and_the_next_one_answers() {
    let dns = Responder::start(zone()).await;
    // A UDP port nobody listens on: each query fails (refused or timed out).
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let dead_addr = dead.local_addr().expect("addr");
    drop(dead);
    let alone = Resolver::with_servers(vec![dead_addr], Duration::from_millis(300)).expect("r");
    assert!(matches!(
        alone.mx("secure.test").await,
        Err(LookupError::Failed(_))
    ));
    let both =
        Resolver::with_servers(vec![dead_addr, dns.addr], Duration::from_millis(300)).expect("r");
    assert!(both.mx("secure.test").await.expect("mx").authenticated);
}
