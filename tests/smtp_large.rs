//! Large messages end to end: a 24 MiB message through the MX, a large one through submission
//! (DKIM-signed) and one sent in BDAT chunks whose boundaries split CRLF pairs arrive byte for
//! byte as sent when read back over IMAP, with only the header fields Postern puts before them.
//! Hostile clients: an endless DATA line is drained and refused with 552, a client that stalls
//! mid-DATA is timed out, and neither leaves a spool file open or on disk; files left in the spool
//! directory by a crash are removed at start. (Memory under load is a benchmark:
//! `bench/smtp-large.sh`.)

mod common;
mod smtp_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Db, Instance, Server};
use smtp_support::{alice_server, python, Raw, PASSWORD};

both_backends!(
    large_messages_arrive_byte_exact,
    hostile_data_leaves_no_spool_behind
);

/// Sends the three messages and checks them over IMAP; prints `ok`.
const SEND_AND_FETCH: &str = r#"
import base64, imaplib, os, smtplib, socket, ssl, sys
smtp_port, submissions_port, imap_port, password = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

def message(subject, size, sender):
    head = (f"From: <{sender}>\r\nTo: <alice@example.test>\r\nSubject: {subject}\r\n"
            f"Date: Mon, 7 Dec 2026 06:00:00 +0000\r\nMessage-ID: <{subject}@example.test>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
            "Content-Type: text/plain\r\n\r\n").encode()
    lines = []
    for i in range(3000):
        if i % 7 == 0:
            lines.append(b".\r\n")            # a line that is only a dot
        elif i % 3 == 0:
            lines.append(b"." + bytes([33 + i % 90]) * 997 + b"\r\n")
        else:
            lines.append(bytes([33 + i % 90]) * 998 + b"\r\n")
    text = b"".join(lines) + b"..\r\n.\r\n"
    attach = b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    tail = b"\r\n--b--\r\n"
    room = size - len(head) - len(text) - len(attach) - len(tail)
    raw = base64.encodebytes(os.urandom(room)).replace(b"\n", b"\r\n")[:room]
    if raw.endswith(b"\r"):
        raw = raw[:-1] + b"A"
    return head + text + attach + raw + tail

mx = message("via-mx", 24 << 20, "someone@elsewhere.test")
sub = message("via-submission", 12 << 20, "alice@example.test")
bdat = message("via-bdat", 6 << 20, "someone@elsewhere.test")

with smtplib.SMTP("127.0.0.1", smtp_port, timeout=300) as s:
    s.sendmail("someone@elsewhere.test", ["alice@example.test"], mx)
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP_SSL("127.0.0.1", submissions_port, context=ctx, timeout=300) as s:
    s.login("alice@example.test", password)
    s.sendmail("alice@example.test", ["alice@example.test"], sub)

# BDAT (RFC 3030) in chunks of an odd size, so that chunk boundaries fall inside CRLF pairs.
c = socket.create_connection(("127.0.0.1", smtp_port), timeout=300)
f = c.makefile("rb")
def reply():
    lines = []
    while True:
        line = f.readline().decode()
        lines.append(line)
        if line[3:4] != "-":
            return "".join(lines)
assert reply().startswith("220")
for cmd in ["EHLO client.test", "MAIL FROM:<someone@elsewhere.test>", "RCPT TO:<alice@example.test>"]:
    c.sendall(cmd.encode() + b"\r\n")
    r = reply()
    assert r.startswith("250"), r
    if cmd.startswith("EHLO"):
        assert "CHUNKING" in r, r
step = 999_999
for start in range(0, len(bdat), step):
    chunk = bdat[start:start + step]
    last = start + step >= len(bdat)
    c.sendall(f"BDAT {len(chunk)}{' LAST' if last else ''}\r\n".encode() + chunk)
    r = reply()
    assert r.startswith("250"), r
c.sendall(b"QUIT\r\n")
c.close()

imap = imaplib.IMAP4("127.0.0.1", imap_port)
imap.login("alice@example.test", password)
imap.select("INBOX")
typ, data = imap.fetch("1:*", "(BODY.PEEK[])")
assert typ == "OK", typ
got = [part[1] for part in data if isinstance(part, tuple)]
assert len(got) == 3, len(got)
for sent, stored in zip([mx, sub, bdat], got):
    prefix = stored[:len(stored) - len(sent)]
    assert stored.endswith(sent), (len(sent), len(stored), stored[:2000])
    # Only header fields were put before the message, ending with this server's trace field.
    assert prefix.endswith(b"\r\n") and b"\r\n\r\n" not in prefix, prefix
    assert b"Received: from " in prefix, prefix
    if sent is sub:
        assert prefix.startswith(b"DKIM-Signature:"), prefix
    else:
        assert prefix.startswith(b"Authentication-Results: mail.example.test"), prefix
imap.logout()
print("ok")
"#;

/// A server with the MX, implicit-TLS submission and IMAP, and the user alice@example.test.
async fn server(db: Db, extra: &str) -> (Instance, Server) {
    let extra = format!("[imap]\nlogin_disabled_without_tls = false\n\n{extra}");
    alice_server(db, &["smtp", "submissions", "imap"], &extra).await
}

async fn large_messages_arrive_byte_exact(db: Db) {
    let (_inst, server) = server(db, "").await;
    let ports = ["smtp", "submissions", "imap"].map(|s| server.addr(s).port().to_string());
    let (ok, out) = python(SEND_AND_FETCH, &[&ports[0], &ports[1], &ports[2], PASSWORD]);
    assert!(
        ok && out.ends_with("ok\n"),
        "{out}\nserver log:\n{}",
        server.log()
    );
    assert_eq!(open_spool_files(&server), 0);
    assert!(server.stop().success());
}

/// Spool files the server process holds open (their names end in `(deleted)`: they have none).
fn open_spool_files(server: &Server) -> usize {
    let fds = std::fs::read_dir(format!("/proc/{}/fd", server.pid())).expect("fd list");
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().contains("/spool/"))
        .count()
}

/// Polls until the server holds no spool file open.
fn wait_no_spool_files(server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while open_spool_files(server) > 0 {
        assert!(Instant::now() < deadline, "spool files left open");
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn hostile_data_leaves_no_spool_behind(db: Db) {
    let (inst, server) = server(
        db,
        "[smtp]\nmax_message_size = 4194304\nidle_timeout_secs = 3\n",
    )
    .await;
    // A crash's leftover in the spool directory is gone once the server runs.
    let leftover = inst.data_dir().join("spool").join(".tmpLEFT");
    assert!(server.stop().success());
    std::fs::create_dir_all(leftover.parent().unwrap()).unwrap();
    std::fs::write(&leftover, b"half a message").unwrap();
    let server = inst.start();
    assert!(!leftover.exists(), "leftover spool file removed at start");

    // An endless line, past the size limit: drained, then 552, and the session goes on.
    let mut c = Raw::connect(server.addr("smtp"));
    assert!(c.cmd("EHLO client.test").starts_with("250"));
    assert!(c.cmd("MAIL FROM:<x@elsewhere.test>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<alice@example.test>").starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    let piece = vec![b'x'; 1 << 20];
    for _ in 0..6 {
        c.send(&piece);
    }
    c.send(b"\r\n.\r\n");
    let r = c.reply();
    assert!(r.starts_with("552 5.3.4"), "{r}");
    wait_no_spool_files(&server);
    assert!(c.cmd("NOOP").starts_with("250"));
    c.cmd("QUIT");

    // A client that stalls mid-DATA with 3 MiB sent: timed out, its spool file closed.
    let mut stalled = TcpStream::connect(server.addr("smtp")).unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stalled
        .write_all(b"EHLO c.test\r\nMAIL FROM:<x@elsewhere.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nSubject: stall\r\n\r\n")
        .unwrap();
    for _ in 0..3 {
        stalled.write_all(&piece).unwrap();
    }
    // Past 1 MiB the data is in a spool file (which this check sees).
    let deadline = Instant::now() + Duration::from_secs(60);
    while open_spool_files(&server) == 0 {
        assert!(
            Instant::now() < deadline,
            "no spool file while receiving 3 MiB"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut replies = Vec::new();
    stalled.read_to_end(&mut replies).unwrap();
    let replies = String::from_utf8_lossy(&replies);
    assert!(replies.contains("421 4.4.2"), "{replies}");
    wait_no_spool_files(&server);
    let spool = std::fs::read_dir(inst.data_dir().join("spool")).unwrap();
    assert_eq!(spool.count(), 0, "no spool file has a name");
    assert!(server.stop().success());
}
