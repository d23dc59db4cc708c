//! Response-rate limiting end to end: a UDP flood from 127.0.0.5 is limited (drops and
//! TC=1 slips) while 127.0.0.6, asking the same question at the same time, is answered, and
//! TCP is never limited.

mod common;

use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};

const FLOOD: usize = 200;
const RATE: usize = 5;

fn config() -> String {
    format!(
        r#"
[dns]
zones_dir = "zones"

[[dns.view]]
name = "external"
match_clients = ["any"]
rrl = {{ responses_per_second = {RATE}, slip = 2, window = 5, ipv4_prefix_length = 32 }}

[[dns.view.zone]]
name = "example.test"
file = "external/example.test.zone"
"#
    )
}

fn query(id: u16) -> Vec<u8> {
    let mut msg = Message::query();
    msg.metadata.id = id;
    msg.add_query(Query::query(
        Name::from_ascii("www.example.test.").expect("name"),
        RecordType::A,
    ));
    msg.to_vec().expect("encode")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_flood_is_limited_per_client() {
    let t = start(&config()).await;
    let port = t.port;
    let flood = tokio::task::spawn_blocking(move || {
        let socket = std::net::UdpSocket::bind("127.0.0.5:0").expect("bind 127.0.0.5");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let started = Instant::now();
        for id in 0..FLOOD {
            socket
                .send_to(&query(id as u16), server_addr(port))
                .expect("send");
        }
        (socket, started)
    });
    let (socket, started) = flood.await.expect("flood");
    // Every query ends as exactly one response or one drop: wait for that, not for a time.
    let (mut answered, mut slipped) = (0usize, 0usize);
    let mut buf = vec![0u8; 2048];
    let deadline = Instant::now() + Duration::from_secs(30);
    let server = t.server.clone();
    let socket = tokio::task::spawn_blocking(move || {
        loop {
            let dropped = server.counters().rrl_dropped as usize;
            if answered + slipped + dropped >= FLOOD || Instant::now() > deadline {
                break;
            }
            if let Ok(len) = socket.recv(&mut buf) {
                let msg = Message::from_vec(&buf[..len]).expect("response decodes");
                if msg.truncation {
                    assert!(msg.answers.is_empty(), "a slip carries no records");
                    slipped += 1;
                } else {
                    assert_eq!(msg.answers.len(), 1);
                    answered += 1;
                }
            }
        }
        (answered, slipped)
    });
    let (answered, slipped) = socket.await.expect("receive");
    // Every query was handled by now, so no bucket refilled for longer than this.
    let elapsed = started.elapsed();
    let c = t.server.counters();
    let dropped = c.rrl_dropped as usize;
    assert_eq!(answered + slipped + dropped, FLOOD, "{c:?}");
    // The bucket starts full (RATE) and refills RATE per second while the flood is handled.
    let allowed = RATE * (elapsed.as_secs() as usize + 2);
    assert!(
        answered <= allowed,
        "{answered} answered, at most {allowed}"
    );
    assert!(answered >= 1);
    assert!(slipped >= 1 && dropped >= 1, "{c:?}");
    assert_eq!(c.rrl_slipped as usize, slipped, "{c:?}");
    assert_eq!(c.rrl_limited, c.rrl_dropped + c.rrl_slipped);

    // Another client asking the same question is not limited.
    let other = dig(t.port, "127.0.0.6", &["www.example.test", "A"]).await;
    assert_eq!(status(&other), "NOERROR", "{other}");
    assert_eq!(rdata(&other, "ANSWER"), vec!["192.0.2.80"], "{other}");
    assert!(!flags(&other).contains(&"tc"), "{other}");
    // The flooding address still gets answers over TCP, which RRL never limits.
    let tcp = dig(t.port, "127.0.0.5", &["+tcp", "www.example.test", "A"]).await;
    assert_eq!(rdata(&tcp, "ANSWER"), vec!["192.0.2.80"], "{tcp}");
}
