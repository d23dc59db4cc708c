//! Sending NOTIFY (RFC 1996) to a zone's `also_notify` secondaries when its serial changes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, Record, RecordType};
use tokio::net::UdpSocket;

/// Attempts per secondary (RFC 1996 §3.6: retransmit until answered, a few times).
const ATTEMPTS: u32 = 5;
/// Wait for the first answer; doubled after each attempt.
const FIRST_WAIT: Duration = Duration::from_millis(500);

/// The NOTIFY message for a zone: opcode NOTIFY, AA, question `<zone> IN SOA`, and the new
/// SOA in the answer section as a hint (RFC 1996 §3.7).
pub fn notify_message(id: u16, origin: &Name, soa: &Record) -> Message {
    let mut msg = Message::new(id, MessageType::Query, OpCode::Notify);
    msg.metadata.authoritative = true;
    msg.add_query(Query::query(origin.clone(), RecordType::SOA));
    msg.add_answer(soa.clone());
    msg
}

/// Sends NOTIFY to every target, each in its own task, retrying until acknowledged.
pub fn spawn_notifies(
    handle: &tokio::runtime::Handle,
    origin: Name,
    soa: Record,
    targets: Vec<SocketAddr>,
) {
    for target in targets {
        let origin = origin.clone();
        let soa = soa.clone();
        handle.spawn(async move {
            match notify_one(&origin, &soa, target).await {
                Ok(()) => tracing::info!(zone = %origin, %target, "NOTIFY acknowledged"),
                Err(e) => tracing::warn!(zone = %origin, %target, "NOTIFY failed: {e}"),
            }
        });
    }
}

async fn notify_one(origin: &Name, soa: &Record, target: SocketAddr) -> Result<(), String> {
    let bind: SocketAddr = match target.ip() {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(bind).await.map_err(|e| e.to_string())?;
    socket.connect(target).await.map_err(|e| e.to_string())?;
    let id: u16 = rand::random();
    let packet = notify_message(id, origin, soa)
        .to_vec()
        .map_err(|e| e.to_string())?;
    let mut wait = FIRST_WAIT;
    let mut buf = vec![0u8; 4096];
    for _ in 0..ATTEMPTS {
        // A refused port (ICMP) shows up as an error on send or recv: keep retrying.
        let _ = socket.send(&packet).await;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Err(_)) => {
                    tokio::time::sleep_until(deadline).await;
                    break;
                }
                Ok(Ok(n)) => {
                    if let Ok(reply) = Message::from_vec(&buf[..n]) {
                        if reply.id == id && reply.message_type == MessageType::Response {
                            return Ok(());
                        }
                    }
                }
            }
        }
        wait *= 2;
    }
    Err(format!("no answer after {ATTEMPTS} attempts"))
}
