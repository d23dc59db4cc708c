//! End-to-end test of `postern import imap` on SQLite and PostgreSQL against a private Dovecot on
//! loopback: folders (nested, non-ASCII, under a \Noselect parent), flags, keywords, INTERNALDATEs,
//! an 8-bit and a large message, copied by the real binary and compared through Postern's IMAP
//! (imaplib) byte for byte; a second run imports nothing, a run after one more message imports
//! only it, flags changed at the source are carried over (next to flags changed here; messages
//! deleted there are kept), and an unreachable source or a wrong password is a clear error with a
//! non-zero exit.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{imap_script_command, ports::free_port, run_with_stdin, Db, Instance};

both_backends!(import_imap, hostile_source);

/// A private Dovecot serving `bob@source.test` (password `source pw`) on 127.0.0.1 with a
/// self-signed certificate for `localhost`: IMAP (STARTTLS offered, plain LOGIN allowed) and
/// IMAPS; killed on drop.
struct Dovecot {
    child: Child,
    port: u16,
    tls_port: u16,
    cert: std::path::PathBuf,
    log: std::path::PathBuf,
}

impl Dovecot {
    fn start(dir: &Path) -> Dovecot {
        assert!(
            Path::new("/usr/sbin/dovecot").exists(),
            "dovecot is missing: install dovecot-imapd (.ci/run does)"
        );
        let (port, tls_port) = (free_port(), free_port());
        let (cert, key) = common::pebble::write_cert(&dir.join("tls"), &["localhost"]);
        let mail = dir.join("mail");
        std::fs::create_dir_all(&mail).expect("mkdir");
        // Dovecot will not deliver as root: the mail belongs to its own `dovecot` user, who must
        // be able to reach the directory.
        let chown = Command::new("chown")
            .args(["-R", "dovecot:dovecot"])
            .arg(&mail)
            .status()
            .expect("chown");
        assert!(chown.success());
        for d in [dir, dir.parent().expect("parent")] {
            let mut perms = std::fs::metadata(d).expect("stat").permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
            std::fs::set_permissions(d, perms).expect("chmod");
        }
        std::fs::write(dir.join("passwd"), "bob@source.test:{PLAIN}source pw\n").expect("passwd");
        let d = dir.display();
        let log = dir.join("dovecot.log");
        let conf = format!(
            "protocols = imap\nlisten = 127.0.0.1\nbase_dir = {d}/run\nstate_dir = {d}/state\n\
             log_path = {d}/dovecot.log\nssl = yes\nssl_cert = <{}\nssl_key = <{}\ndisable_plaintext_auth = no\n\
             auth_mechanisms = plain login\ndefault_internal_user = dovecot\n\
             default_internal_group = dovecot\ndefault_login_user = dovenull\nfirst_valid_uid = 1\n\
             mail_location = maildir:{d}/mail/%u\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {d}/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = uid=dovecot gid=dovecot home={d}/mail/%u\n}}\n\
             service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n\
             \x20 inet_listener imaps {{\n    address = 127.0.0.1\n    port = {tls_port}\n  }}\n}}\n",
            cert.display(),
            key.display(),
        );
        let conf_path = dir.join("dovecot.conf");
        std::fs::write(&conf_path, conf).expect("write dovecot.conf");
        let child = Command::new("/usr/sbin/dovecot")
            .arg("-F")
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dovecot");
        let mut dovecot = Dovecot {
            child,
            port,
            tls_port,
            cert,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                dovecot.child.try_wait().expect("wait").is_none(),
                "dovecot exited: {}",
                dovecot.log()
            );
            assert!(
                Instant::now() < deadline,
                "dovecot not listening: {}",
                dovecot.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        dovecot
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // SIGTERM lets the master stop its children; kill it if it does not.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the helper script with `mode`, failing with its output unless it passes; its stdout.
fn script(server: &common::Server, dovecot: &Dovecot, mode: &str) -> String {
    let out = imap_script_command(
        server,
        "import_imap.py",
        &[("SOURCE_PORT", dovecot.port.to_string())],
    )
    .arg(mode)
    .output()
    .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "import_imap.py {mode} failed:\n{stdout}\n{}\ndovecot log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        dovecot.log()
    );
    stdout
}

/// `postern import imap --from FROM [--ca CA] alice@example.test` with `password` on stdin.
fn import(inst: &Instance, from: &str, ca: Option<&Path>, password: &str) -> std::process::Output {
    let mut cmd = inst.cli(&["import", "imap", "--from", from, "alice@example.test"]);
    if let Some(ca) = ca {
        cmd.arg("--ca").arg(ca);
    }
    run_with_stdin(cmd, password)
}

/// [`import`] that must succeed; its stdout.
fn import_ok(inst: &Instance, dovecot: &Dovecot, from: &str) -> String {
    let out = import(inst, from, Some(&dovecot.cert), "source pw\n");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "import failed: {stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        dovecot.log()
    );
    stdout
}

async fn import_imap(db: Db) {
    let inst = Instance::new(db, &["imap", "imaps"], "").await;
    inst.ok(&["domain", "add", "example.test"], "");
    inst.ok(&["user", "add", "alice@example.test"], "password\n");
    let dovecot = Dovecot::start(&inst.dir.path().join("dovecot"));
    let server = inst.start();
    script(&server, &dovecot, "fill");
    // Over STARTTLS (offered on the plain port), the certificate checked against --ca.
    let from = format!("imap://bob@source.test@localhost:{}", dovecot.port);
    let stdout = import_ok(&inst, &dovecot, &from);
    assert!(stdout.contains("imported 22 message(s)"), "{stdout}");
    let tls_logins = |log: String| {
        log.lines()
            .filter(|l| l.contains("Login: user=<bob@source.test>") && l.contains(", TLS,"))
            .count()
    };
    assert_eq!(tls_logins(dovecot.log()), 1, "STARTTLS: {}", dovecot.log());
    assert!(
        stdout.contains("Projects/2026 (new folder): imported 4, 0 already there"),
        "{stdout}"
    );
    assert_eq!(script(&server, &dovecot, "compare"), "22\nok\n");

    // A second run fetches and stores nothing.
    let again = import_ok(&inst, &dovecot, &from);
    assert!(again.contains("imported 0 message(s)"), "{again}");
    assert!(
        again.contains("INBOX: imported 0, 6 already there"),
        "{again}"
    );
    assert_eq!(script(&server, &dovecot, "compare"), "22\nok\n");

    // One more message at the source: only it is imported (this time over implicit TLS).
    script(&server, &dovecot, "more");
    let dry = inst.ok(
        &[
            "import",
            "imap",
            "--from",
            &from,
            "--ca",
            &dovecot.cert.to_string_lossy(),
            "--dry-run",
            "alice@example.test",
        ],
        "source pw\n",
    );
    assert!(dry.contains("would import 1 message(s)"), "{dry}");
    let imaps = format!("imaps://bob@source.test@localhost:{}", dovecot.tls_port);
    let third = import_ok(&inst, &dovecot, &imaps);
    assert!(third.contains("imported 1 message(s)"), "{third}");
    assert!(
        third.contains("INBOX: imported 1, 6 already there"),
        "{third}"
    );
    assert_eq!(script(&server, &dovecot, "compare"), "23\nok\n");

    // Without --ca the self-signed certificate is refused.
    let untrusted = import(&inst, &imaps, None, "source pw\n");
    let err = String::from_utf8_lossy(&untrusted.stderr);
    assert!(
        !untrusted.status.success() && err.contains("TLS with localhost"),
        "{err}"
    );

    // A folder the source cannot open is named in an error; the others are imported, the
    // command exits non-zero, and the next run brings the folder in.
    script(&server, &dovecot, "broken");
    let folder = inst.dir.path().join("dovecot/mail/bob@source.test/.Broken");
    let mode = |m: u32| {
        let mut perms = std::fs::metadata(&folder).expect("stat").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, m);
        std::fs::set_permissions(&folder, perms).expect("chmod");
    };
    mode(0o000);
    let partial = import(&inst, &from, Some(&dovecot.cert), "source pw\n");
    let (out, err) = (
        String::from_utf8_lossy(&partial.stdout),
        String::from_utf8_lossy(&partial.stderr),
    );
    assert!(!partial.status.success(), "{out}{err}");
    assert!(
        err.contains("error: folder Broken: EXAMINE failed"),
        "{err}"
    );
    assert!(out.contains("INBOX: imported 1, 7 already there"), "{out}");
    mode(0o700);
    let fourth = import_ok(&inst, &dovecot, &from);
    assert!(fourth.contains("imported 1 message(s)"), "{fourth}");
    assert!(
        fourth.contains("Broken: imported 1, 0 already there"),
        "{fourth}"
    );
    assert_eq!(script(&server, &dovecot, "compare"), "25\nok\n");

    // A wrong password and an unreachable source: clear errors, non-zero exits, nothing lost.
    let wrong = import(&inst, &from, Some(&dovecot.cert), "not it\n");
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        !wrong.status.success() && err.contains("logging in as bob@source.test"),
        "{err}"
    );
    let closed = format!("imap://bob@source.test@127.0.0.1:{}", free_port());
    let unreachable = import(&inst, &closed, None, "source pw\n");
    let err = String::from_utf8_lossy(&unreachable.stderr);
    assert!(
        !unreachable.status.success() && err.contains(&closed) && err.contains("connecting to"),
        "{err}"
    );
    let bad = import(&inst, "https://example.test", None, "x\n");
    assert!(!bad.status.success(), "a non-IMAP URL is refused");
    assert_eq!(script(&server, &dovecot, "compare"), "25\nok\n");

    // Flags changed at the source are carried over by the next run.
    script(&server, &dovecot, "flags");
    let synced = import_ok(&inst, &dovecot, &from);
    assert!(
        synced.contains(
            "INBOX: imported 0, 8 already there (2 with flags changed at the source, updated)"
        ),
        "{synced}"
    );
    assert!(
        synced.contains("Projects: imported 0, 4 already there (1 with flags"),
        "{synced}"
    );
    assert_eq!(script(&server, &dovecot, "compare"), "25\nok\n");
    let unchanged = import_ok(&inst, &dovecot, &from);
    assert!(!unchanged.contains("flags changed"), "{unchanged}");
    // A message deleted at the source stays here; a flag set here stays next to one set there.
    script(&server, &dovecot, "diverge");
    let diverged = import_ok(&inst, &dovecot, &from);
    assert!(
        diverged.contains(
            "INBOX: imported 0, 7 already there (1 with flags changed at the source, updated)"
        ),
        "{diverged}"
    );
    assert_eq!(script(&server, &dovecot, "diverged"), "ok\n");
    assert!(server.stop().success());
}

/// A source that is not an IMAP server, and one that announces a literal too large to hold: clear
/// errors and non-zero exits.
async fn hostile_source(db: Db) {
    use std::io::{BufRead, BufReader, Write};
    let inst = Instance::new(db, &[], "").await;
    inst.ok(&["domain", "add", "example.test"], "");
    inst.ok(&["user", "add", "alice@example.test"], "password\n");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let fake = std::thread::spawn(move || {
        let (mut garbage, _) = listener.accept().expect("accept");
        garbage
            .write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            .expect("write");
        drop(garbage);
        let (stream, _) = listener.accept().expect("accept");
        let mut writer = stream.try_clone().expect("clone");
        writer.write_all(b"* OK fake\r\n").expect("write");
        let mut lines = BufReader::new(stream).lines();
        while let Some(Ok(line)) = lines.next() {
            let tag = line.split(' ').next().unwrap_or_default().to_owned();
            let upper = line.to_ascii_uppercase();
            let reply = if upper.contains(" CAPABILITY") {
                format!("* CAPABILITY IMAP4rev1\r\n{tag} OK done\r\n")
            } else if upper.contains(" LOGIN ") {
                format!("{tag} OK logged in\r\n")
            } else if upper.contains(" LIST ") {
                "* LIST () \"/\" {999999999}\r\n".to_owned()
            } else {
                format!("{tag} BAD what\r\n")
            };
            if writer.write_all(reply.as_bytes()).is_err() {
                break;
            }
        }
    });
    let from = format!("imap://bob@127.0.0.1:{port}");
    let http = import(&inst, &from, None, "pw\n");
    let err = String::from_utf8_lossy(&http.stderr);
    assert!(
        !http.status.success() && err.contains("not an IMAP server greeting"),
        "{err}"
    );
    let huge = import(&inst, &from, None, "pw\n");
    let err = String::from_utf8_lossy(&huge.stderr);
    assert!(
        !huge.status.success() && err.contains("larger than"),
        "{err}"
    );
    fake.join().expect("fake server");
}
