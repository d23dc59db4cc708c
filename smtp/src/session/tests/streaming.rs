//! Message data is handed out in pieces as it arrives (never held whole), byte for byte the
//! same however the client's writes split it, and dropped by the caller when the message will not
//! be delivered.

use super::*;

fn large_config(bare_line_endings: BareLineEndings) -> Arc<SessionConfig> {
    Arc::new(SessionConfig {
        max_message_size: 4 << 20,
        bare_line_endings,
        ..(*config()).clone()
    })
}

/// An MX session with a transaction for alice, after DATA's 354.
fn in_data(bare_line_endings: BareLineEndings) -> T {
    let mut t = T::with_config(large_config(bare_line_endings), Listener::Mx, false);
    let r =
        t.send(b"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n");
    assert_eq!(codes(&r), ["250", "250", "250", "354"], "{r}");
    t
}

/// The message as delivered, without this server's `Received:` header.
fn without_trace(message: &[u8]) -> &[u8] {
    let text = message
        .windows(2)
        .enumerate()
        .filter(|(_, w)| *w == b"\r\n")
        .map(|(i, _)| i + 2)
        .find(|&i| message.get(i) != Some(&b'\t'))
        .unwrap();
    assert!(message.starts_with(b"Received: from c.test"));
    &message[text..]
}

#[test]
fn data_is_handed_out_while_it_arrives() {
    let mut t = in_data(BareLineEndings::Normalize);
    let line = format!("{}\r\n", "y".repeat(998));
    t.send(b"Subject: big\r\n\r\n");
    let mut most_held = 0;
    for _ in 0..3000 {
        t.send(line.as_bytes());
        let held = t.s.txn.as_ref().map_or(0, |x| x.body.held()) + t.s.data_out.len();
        most_held = most_held.max(held);
    }
    assert!(
        most_held <= 2 * line.len(),
        "the session held {most_held} bytes"
    );
    assert!(t.receiving.len() > 2_900_000, "handed out before the end");
    assert_eq!(t.send(b".\r\n"), "250 2.0.0 Ok: queued as ID1\r\n");
    let body = without_trace(&t.delivered[0].message);
    assert_eq!(body.len(), 16 + 3000 * line.len());
}

#[test]
fn every_split_of_the_input_gives_the_same_message() {
    // Dot-stuffing, bare line endings and the terminator at every possible read boundary.
    let wire: &[u8] =
        b"Subject: s\r\n\r\n..dot\r\nbare\nlf\rcr\r\n..\r\n...\r\nend\r\r\n\r\n.\r\nQUIT\r\n";
    let want: &[u8] = b"Subject: s\r\n\r\n.dot\r\nbare\r\nlf\r\ncr\r\n.\r\n..\r\nend\r\n\r\n\r\n";
    for split in 0..wire.len() {
        let mut t = in_data(BareLineEndings::Normalize);
        let mut r = t.send(&wire[..split]);
        r.push_str(&t.send(&wire[split..]));
        assert_eq!(codes(&r), ["250", "221"], "split at {split}: {r}");
        assert_eq!(
            without_trace(&t.delivered[0].message),
            want,
            "split at {split}"
        );
    }
}

#[test]
fn a_long_header_section_is_released_at_its_limit() {
    let mut t = in_data(BareLineEndings::Normalize);
    let field = format!("X-Long: {}\r\n", "z".repeat(990));
    for _ in 0..(super::body::HEAD_LIMIT / field.len() + 10) {
        t.send(field.as_bytes());
    }
    assert!(!t.receiving.is_empty(), "no longer held back");
    assert!(t.s.txn.as_ref().unwrap().body.held() < 2 * field.len());
    assert_eq!(
        t.send(b"\r\nbody\r\n.\r\n"),
        "250 2.0.0 Ok: queued as ID1\r\n"
    );
}

#[test]
fn refused_or_reset_messages_are_discarded() {
    // Bare LF refused by configuration: what was handed out is dropped before the 550.
    let mut t = in_data(BareLineEndings::Reject);
    t.send(format!("Subject: x\r\n\r\n{}\r\n", "a".repeat(5000)).as_bytes());
    assert!(!t.receiving.is_empty());
    assert_eq!(t.s.next_event(), Event::NeedInput);
    t.s.receive(b"bare\nline\r\n");
    assert_eq!(t.s.next_event(), Event::DiscardMessage);
    assert!(t.send(b".\r\n").starts_with("550 5.5.2"));
    assert!(t.delivered.is_empty());

    // Too big: dropped at once, refused after the end of the data.
    let mut t = in_data(BareLineEndings::Normalize);
    t.send(b"Subject: x\r\n\r\n");
    let chunk = vec![b'b'; 1 << 20];
    for _ in 0..5 {
        t.send(&chunk);
    }
    assert!(t.receiving.is_empty(), "dropped once over the limit");
    assert_eq!(t.send(b"\r\n.\r\n"), "552 5.3.4 Message too big\r\n");

    // A BDAT transaction reset between chunks.
    let mut t = T::with_config(
        large_config(BareLineEndings::Normalize),
        Listener::Mx,
        false,
    );
    t.send(b"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<alice@example.test>\r\n");
    t.send(b"BDAT 20\r\nSubject: x\r\n\r\n123456");
    assert!(!t.receiving.is_empty());
    t.s.receive(b"RSET\r\n");
    assert_eq!(t.s.next_event(), Event::DiscardMessage);
    assert_eq!(t.s.next_event(), Event::NeedInput);
    assert_eq!(t.out(), "250 2.0.0 Ok\r\n");
}
