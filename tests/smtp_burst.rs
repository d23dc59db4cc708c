//! Durability under load: the server is killed (SIGKILL) in the middle of a burst of parallel
//! deliveries, while messages are being written together in group commits. After a restart every
//! message that got its `250` is in the mailbox exactly once, and no message is there twice
//! (`250` is sent only after the commit, RFC 5321 §6.1), and SEARCH BODY finds every one of them
//! (their body texts are indexed after the `250`: some were still pending at the kill), on SQLite
//! and PostgreSQL.

mod common;
mod smtp_support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Db;
use smtp_support::{hosted, inbox};

both_backends!(every_acknowledged_message_survives_kill_9_in_a_burst);

/// Parallel client connections.
const CLIENTS: usize = 8;

/// Acknowledged messages awaited before the kill: enough for several groups to have committed
/// while others are still being written.
const ACKED_BEFORE_KILL: usize = 60;

/// One SMTP reply (its last line), or `None` once the connection is gone.
fn reply(reader: &mut BufReader<TcpStream>) -> Option<String> {
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line.len() < 4 || line.as_bytes()[3] == b' ' {
            return Some(line.trim_end().to_owned());
        }
    }
}

/// Sends `line` and returns the reply.
fn cmd(stream: &mut TcpStream, reader: &mut BufReader<TcpStream>, line: &str) -> Option<String> {
    stream.write_all(format!("{line}\r\n").as_bytes()).ok()?;
    reply(reader)
}

/// Client `id`: sends messages with the subjects `burst <id> <n>` over one connection until the
/// connection breaks; returns the subjects answered `250`.
fn client(mx: SocketAddr, id: usize, acked: &AtomicUsize) -> Vec<String> {
    let mut done = Vec::new();
    let Ok(mut stream) = TcpStream::connect(mx) else {
        return done;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let Ok(clone) = stream.try_clone() else {
        return done;
    };
    let mut reader = BufReader::new(clone);
    if reply(&mut reader).is_none() || cmd(&mut stream, &mut reader, "EHLO c.test").is_none() {
        return done;
    }
    for n in 0.. {
        let subject = format!("burst {id} {n}");
        let steps = [
            ("MAIL FROM:<a@remote.test>".to_owned(), "250"),
            ("RCPT TO:<alice@example.test>".to_owned(), "250"),
            ("DATA".to_owned(), "354"),
            (
                format!("Subject: {subject}\r\n\r\nbody of {subject}\r\n."),
                "250",
            ),
        ];
        for (line, want) in &steps {
            match cmd(&mut stream, &mut reader, line) {
                Some(r) if r.starts_with(want) => {}
                _ => return done,
            }
        }
        done.push(subject);
        acked.fetch_add(1, Ordering::SeqCst);
    }
    done
}

async fn every_acknowledged_message_survives_kill_9_in_a_burst(db: Db) {
    let (inst, server) = hosted(db, "").await;
    let mx = server.addr("smtp");
    let acked = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| {
            let acked = acked.clone();
            std::thread::spawn(move || client(mx, id, &acked))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.load(Ordering::SeqCst) < ACKED_BEFORE_KILL {
        assert!(Instant::now() < deadline, "the burst did not get going");
        assert!(
            clients.iter().any(|c| !c.is_finished()),
            "every client stopped before the kill"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill();
    let mut acknowledged = Vec::new();
    for c in clients {
        acknowledged.extend(c.join().expect("client thread"));
    }
    let server = inst.start();
    let mut stored: HashMap<String, usize> = HashMap::new();
    for message in inbox(&inst, "alice@example.test").await {
        let subject = message
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .expect("a Subject")
            .to_owned();
        *stored.entry(subject).or_default() += 1;
    }
    assert!(acknowledged.len() >= ACKED_BEFORE_KILL);
    for subject in &acknowledged {
        assert_eq!(
            stored.get(subject),
            Some(&1),
            "{subject} was acknowledged: stored once"
        );
    }
    for (subject, n) in &stored {
        assert_eq!(*n, 1, "{subject} stored {n} times");
    }
    assert_eq!(
        body_matches(&inst, "Body OF burst").await,
        stored.len(),
        "SEARCH BODY finds every stored message"
    );
    assert!(server.stop().success());
}

/// How many messages of alice's INBOX SEARCH BODY `needle` finds.
async fn body_matches(inst: &common::Instance, needle: &str) -> usize {
    let store = postern_store::Store::open(&inst.db.url)
        .await
        .expect("open store");
    let user = store.user("alice@example.test").await.unwrap().unwrap();
    let inbox = store.mailbox(user.id, "INBOX").await.unwrap().unwrap();
    let found = store
        .search_text(&inbox, postern_store::TextKey::Body, needle)
        .await
        .unwrap();
    store.close().await;
    found.len()
}
