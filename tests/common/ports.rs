//! Ports for programs that must be told their port before they bind (Pebble, BIND, Dovecot, or a
//! Postern whose DNS port goes into its own config as the resolver).
//!
//! A port the kernel hands out for `bind(0)` is in the ephemeral range, where every outgoing
//! connection of every process on the machine also takes its local port: between releasing such a
//! port and the program binding it, another test's connection can take it ("Address already in
//! use", seen with two test runs on one machine). So ports come from below the ephemeral range,
//! which the kernel never assigns on its own, are checked free for both TCP and UDP, and are never
//! handed out twice by one test process.

use std::collections::HashSet;
use std::net::{TcpListener, UdpSocket};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// The lowest port handed out (well above the registered services tests might meet).
const LOWEST: u16 = 10_000;

/// Ports this process handed out already.
static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A port on 127.0.0.1 that is free for TCP and UDP now and outside the kernel's ephemeral range.
pub fn free_port() -> u16 {
    let (ephemeral_low, _) = ephemeral_range();
    let span = u32::from(ephemeral_low.saturating_sub(LOWEST).max(1));
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default()
        ^ (u64::from(std::process::id()) << 32);
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let given = given.get_or_insert_with(HashSet::new);
    for _ in 0..10_000 {
        // xorshift64: a different sequence per process and per call.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let port = LOWEST + (seed % u64::from(span)) as u16;
        if given.contains(&port) {
            continue;
        }
        let tcp = TcpListener::bind(("127.0.0.1", port));
        let udp = UdpSocket::bind(("127.0.0.1", port));
        if tcp.is_ok() && udp.is_ok() {
            given.insert(port);
            return port;
        }
    }
    panic!("no free port between {LOWEST} and {ephemeral_low} on 127.0.0.1");
}

/// The kernel's ephemeral port range (`net.ipv4.ip_local_port_range`), Linux's default if unread.
fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|p| p.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32_768, 60_999))
}
