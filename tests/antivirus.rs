//! End-to-end tests of virus scanning at the end of DATA with a real clamd (Debian's
//! `clamav-daemon`) whose only signature is a hash of the EICAR test file, so no signature
//! download is needed: infected mail is refused with 554 5.7.1 over MX and submission, or
//! quarantined; clean mail passes; a stopped clamd fails open or closed as configured; on SQLite
//! and PostgreSQL.

mod common;
mod smtp_support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::{Db, Server};
use smtp_support::{folder, hosted, inbox, swaks, transcript, PASSWORD};

both_backends!(infected_mail_is_refused, infected_mail_is_quarantined);

/// The EICAR anti-virus test file (eicar.org): harmless, detected by every scanner.
const EICAR: &str = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/// EICAR's MD5 (hex) and size: the one `.hdb` signature our clamd loads.
const EICAR_MD5: &str = "44d88612fea8a8f36de82e1278abb02f";

/// A clamd of our own in a temporary directory, killed on drop.
struct Clamd {
    child: Child,
    socket: PathBuf,
    dir: tempfile::TempDir,
}

impl Clamd {
    /// Starts clamd with a database of one signature and waits until its socket answers PING.
    fn start() -> Clamd {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("db");
        std::fs::create_dir(&db).unwrap();
        std::fs::write(
            db.join("postern-test.hdb"),
            format!("{EICAR_MD5}:{}:Postern-Test-EICAR\n", EICAR.len()),
        )
        .unwrap();
        let socket = dir.path().join("clamd.sock");
        let config = dir.path().join("clamd.conf");
        std::fs::write(
            &config,
            format!(
                "LocalSocket {}\nDatabaseDirectory {}\nTemporaryDirectory {}\nForeground yes\n\
                 LogFile {}\nStreamMaxLength 64K\n",
                socket.display(),
                db.display(),
                dir.path().display(),
                dir.path().join("clamd.log").display()
            ),
        )
        .unwrap();
        let child = Command::new("clamd")
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run clamd (Debian package clamav-daemon)");
        let mut clamd = Clamd { child, socket, dir };
        let deadline = Instant::now() + Duration::from_secs(120);
        while !ping(&clamd.socket) {
            if let Ok(Some(status)) = clamd.child.try_wait() {
                panic!("clamd exited ({status}): {}", clamd.log());
            }
            assert!(
                Instant::now() < deadline,
                "clamd not ready: {}",
                clamd.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        clamd
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("clamd.log")).unwrap_or_default()
    }

    /// The `[smtp.antivirus]` table naming this clamd.
    fn config(&self, rest: &str) -> String {
        format!(
            "[smtp.antivirus]\nclamd = \"unix:{}\"\ntimeout_secs = 20\n{rest}",
            self.socket.display()
        )
    }

    /// Stops clamd and waits until its socket no longer answers.
    fn stop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
        assert!(!ping(&self.socket));
    }
}

impl Drop for Clamd {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Whether clamd at `socket` answers `zPING` with PONG.
fn ping(socket: &Path) -> bool {
    let Ok(mut s) = UnixStream::connect(socket) else {
        return false;
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    if s.write_all(b"zPING\0").is_err() {
        return false;
    }
    let mut reply = String::new();
    s.read_to_string(&mut reply).is_ok() && reply.starts_with("PONG")
}

/// A message from `from` with a text part and, if `infected`, EICAR as a base64 attachment.
fn message(dir: &Path, from: &str, subject: &str, infected: bool) -> PathBuf {
    let attachment = if infected {
        format!(
            "--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\
             Content-Disposition: attachment; filename=\"eicar.com\"\r\n\r\n{}\r\n",
            base64::engine::general_purpose::STANDARD.encode(EICAR)
        )
    } else {
        String::new()
    };
    let text = format!(
        "From: {from}\r\nTo: alice@example.test\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n\
         Please see the attachment.\r\n{attachment}--b1--\r\n"
    );
    let path = dir.join(format!("{subject}.eml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Sends `file` to alice over MX and returns swaks's transcript.
fn send_mx(server: &Server, file: &Path) -> String {
    transcript(&swaks(
        server.addr("smtp"),
        &[
            "--from",
            "sender@remote.test",
            "--to",
            "alice@example.test",
            "--data",
            &file.display().to_string(),
        ],
    ))
}

/// Sends `file` as alice to herself over submission (STARTTLS, AUTH) and returns the transcript.
fn send_submission(server: &Server, file: &Path) -> String {
    transcript(&swaks(
        server.addr("submission"),
        &[
            "--tls",
            "--auth",
            "PLAIN",
            "--auth-user",
            "alice@example.test",
            "--auth-password",
            PASSWORD,
            "--from",
            "alice@example.test",
            "--to",
            "alice@example.test",
            "--data",
            &file.display().to_string(),
        ],
    ))
}

async fn infected_mail_is_refused(db: Db) {
    let mut clamd = Clamd::start();
    let (inst, server) = hosted(
        db,
        &clamd.config("action = \"reject\"\non_error = \"tempfail\"\n"),
    )
    .await;
    let dir = inst.dir.path();
    let out = send_mx(&server, &message(dir, "s@remote.test", "mx-virus", true));
    assert!(
        out.contains("<** 554 5.7.1 Message rejected: virus found (Postern-Test-EICAR"),
        "{out}"
    );
    let out = send_submission(
        &server,
        &message(dir, "alice@example.test", "sub-virus", true),
    );
    assert!(out.contains("<~* 554 5.7.1"), "submission: {out}");
    let out = send_mx(&server, &message(dir, "s@remote.test", "clean", false));
    assert!(out.contains("<-  250 2.0.0 Ok"), "{out}");
    let bob = inbox(&inst, "alice@example.test").await;
    assert_eq!(bob.len(), 1, "only the clean message is stored");
    assert!(bob[0].contains("Subject: clean"));
    assert!(folder(&inst, "alice@example.test", "Junk").await.is_empty());

    // Larger than clamd's StreamMaxLength: no verdict, so on_error = "tempfail" answers 451.
    let big = dir.join("big.eml");
    let line = format!("{}\r\n", "clean text ".repeat(7));
    std::fs::write(
        &big,
        format!(
            "From: s@remote.test\r\nSubject: big\r\n\r\n{}",
            line.repeat(2000)
        ),
    )
    .unwrap();
    let out = send_mx(&server, &big);
    assert!(
        out.contains("<** 451 4.7.1"),
        "{}",
        &out[out.len().saturating_sub(600)..]
    );

    // clamd stopped: on_error = "tempfail" answers 451 4.7.1 and stores nothing.
    clamd.stop();
    let out = send_mx(&server, &message(dir, "s@remote.test", "unscanned", false));
    assert!(
        out.contains("<** 451 4.7.1 Virus scanner unavailable"),
        "{out}"
    );
    assert_eq!(inbox(&inst, "alice@example.test").await.len(), 1);
    server.wait_for_log("virus scan failed");
    server.stop();
}

async fn infected_mail_is_quarantined(db: Db) {
    let mut clamd = Clamd::start();
    let (inst, server) = hosted(db, &clamd.config("action = \"quarantine\"\n")).await;
    let dir = inst.dir.path();
    let out = send_mx(&server, &message(dir, "s@remote.test", "mx-virus", true));
    assert!(out.contains("<-  250 2.0.0 Ok"), "{out}");
    let junk = folder(&inst, "alice@example.test", "Junk").await;
    assert_eq!(junk.len(), 1);
    assert!(
        junk[0].starts_with("X-Postern-Virus: Postern-Test-EICAR"),
        "{}",
        junk[0]
    );
    assert!(inbox(&inst, "alice@example.test").await.is_empty());

    // clamd stopped: on_error = "accept" (the default) delivers unscanned.
    clamd.stop();
    let out = send_mx(&server, &message(dir, "s@remote.test", "unscanned", false));
    assert!(out.contains("<-  250 2.0.0 Ok"), "{out}");
    let bob = inbox(&inst, "alice@example.test").await;
    assert_eq!(bob.len(), 1);
    assert!(!bob[0].contains("X-Postern-Virus"));
    server.stop();
}
