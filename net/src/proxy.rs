//! The PROXY protocol (HAProxy's v1 text and v2 binary headers): a load balancer in front of
//! Postern prepends the client's real address to the connection. Accepted only from configured
//! sources, since anyone else could claim any address (and with it, relay rights).
//!
//! The header is read exactly — never a byte past it — so the protocol (or TLS) that follows
//! reads the connection from its first byte. Parsing is done by the `ppp` crate.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The v2 header's fixed signature (PROXY protocol specification §2.2).
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Longest v1 header, CRLF included (specification §2.1).
const V1_MAX: usize = 107;
/// Longest v2 header accepted: the addresses plus room for TLVs a load balancer adds.
const V2_MAX: usize = 16 + 2048;

/// The networks allowed to send PROXY headers to one service.
#[derive(Debug, Clone)]
pub struct ProxyTrust {
    nets: Vec<IpNet>,
}

impl ProxyTrust {
    /// Trusts connections from `nets`.
    pub fn new(nets: Vec<IpNet>) -> ProxyTrust {
        ProxyTrust { nets }
    }

    /// Whether `ip` may send a PROXY header.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.nets.iter().any(|n| n.contains(&ip))
    }
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("PROXY header: {why}"))
}

/// Reads one PROXY header from `stream` within `timeout` and returns the (source, destination)
/// it names; `None` for a `LOCAL`/`UNKNOWN` header (the load balancer's own health check), whose
/// connection keeps its socket addresses.
pub(crate) async fn read_header(
    stream: &mut TcpStream,
    timeout: Duration,
) -> io::Result<Option<(SocketAddr, SocketAddr)>> {
    tokio::time::timeout(timeout, read(stream))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "PROXY header timed out"))?
}

async fn read(stream: &mut TcpStream) -> io::Result<Option<(SocketAddr, SocketAddr)>> {
    let mut head = vec![0u8; 8];
    stream.read_exact(&mut head).await?;
    if head.starts_with(b"PROXY ") {
        // v1: one text line; read it byte by byte so nothing after CRLF is consumed.
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n") {
            if head.len() >= V1_MAX {
                return Err(invalid("v1 line too long"));
            }
            stream.read_exact(&mut byte).await?;
            head.push(byte[0]);
        }
        let header =
            ppp::v1::Header::try_from(head.as_slice()).map_err(|e| invalid(&e.to_string()))?;
        return Ok(match header.addresses {
            ppp::v1::Addresses::Tcp4(a) => Some((
                SocketAddr::new(a.source_address.into(), a.source_port),
                SocketAddr::new(a.destination_address.into(), a.destination_port),
            )),
            ppp::v1::Addresses::Tcp6(a) => Some((
                SocketAddr::new(a.source_address.into(), a.source_port),
                SocketAddr::new(a.destination_address.into(), a.destination_port),
            )),
            ppp::v1::Addresses::Unknown => None,
        });
    }
    if head[..] != V2_SIGNATURE[..8] {
        return Err(invalid("missing"));
    }
    head.resize(16, 0);
    stream.read_exact(&mut head[8..]).await?;
    let len = usize::from(u16::from_be_bytes([head[14], head[15]]));
    if 16 + len > V2_MAX {
        return Err(invalid("v2 header too long"));
    }
    head.resize(16 + len, 0);
    stream.read_exact(&mut head[16..]).await?;
    let header = ppp::v2::Header::try_from(head.as_slice()).map_err(|e| invalid(&e.to_string()))?;
    if header.command == ppp::v2::Command::Local {
        return Ok(None);
    }
    Ok(match header.addresses {
        ppp::v2::Addresses::IPv4(a) => Some((
            SocketAddr::new(a.source_address.into(), a.source_port),
            SocketAddr::new(a.destination_address.into(), a.destination_port),
        )),
        ppp::v2::Addresses::IPv6(a) => Some((
            SocketAddr::new(a.source_address.into(), a.source_port),
            SocketAddr::new(a.destination_address.into(), a.destination_port),
        )),
        ppp::v2::Addresses::Unspecified | ppp::v2::Addresses::Unix(_) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    async fn pair(bytes: Vec<u8>) -> (TcpStream, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut c = TcpStream::connect(addr).await.unwrap();
            c.write_all(&bytes).await.unwrap();
            let mut rest = Vec::new();
            let _ = c.read_to_end(&mut rest).await;
        });
        (listener.accept().await.unwrap().0, client)
    }

    #[tokio::test]
    async fn v1_and_v2_name_the_client_and_leave_the_rest() {
        let (mut s, _c) =
            pair(b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 25\r\nEHLO x\r\n".to_vec()).await;
        let (src, dst) = read_header(&mut s, Duration::from_secs(5))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(src, "192.0.2.7:40000".parse().unwrap());
        assert_eq!(dst, "198.51.100.1:25".parse().unwrap());
        let mut rest = [0u8; 8];
        s.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"EHLO x\r\n");

        let src: SocketAddr = "[2001:db8::5]:1234".parse().unwrap();
        let dst: SocketAddr = "[2001:db8::1]:993".parse().unwrap();
        let mut v2 = ppp::v2::Builder::with_addresses(
            ppp::v2::Version::Two | ppp::v2::Command::Proxy,
            ppp::v2::Protocol::Stream,
            (src, dst),
        )
        .write_tlv(ppp::v2::Type::NoOp, b"pad")
        .unwrap()
        .build()
        .unwrap();
        v2.extend_from_slice(b"\x16\x03\x01");
        let (mut s, _c) = pair(v2).await;
        assert_eq!(
            read_header(&mut s, Duration::from_secs(5)).await.unwrap(),
            Some((src, dst))
        );
        let mut rest = [0u8; 3];
        s.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"\x16\x03\x01");
    }

    #[tokio::test]
    async fn garbage_and_silence_are_refused() {
        let (mut s, _c) = pair(b"EHLO attacker.example\r\n".to_vec()).await;
        assert!(read_header(&mut s, Duration::from_secs(5)).await.is_err());
        let (mut s, _c) = pair(b"PROXY TCP4 1.2.3.4".to_vec()).await;
        assert!(read_header(&mut s, Duration::from_millis(200))
            .await
            .is_err());
        let (mut s, _c) = pair(format!("PROXY {}\r\n", "x".repeat(200)).into_bytes()).await;
        assert!(read_header(&mut s, Duration::from_secs(5)).await.is_err());
    }

    #[test]
    fn trust_matches_networks_and_mapped_addresses() {
        let t = ProxyTrust::new(vec!["10.0.0.0/8".parse().unwrap()]);
        assert!(t.trusts("10.1.2.3".parse().unwrap()));
        assert!(t.trusts("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!t.trusts("11.0.0.1".parse().unwrap()));
    }
}
