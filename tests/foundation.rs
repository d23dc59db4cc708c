//! End-to-end tests of the foundation: `postern serve` lifecycle and signals, the management CLI,
//! and configuration checks, against the real binary on SQLite and PostgreSQL.

mod common;

use common::{Db, Instance, POSTERN};

both_backends!(
    serve_starts_and_stops_cleanly,
    management_cli,
    sighup_reloads_or_keeps_config,
    sighup_applies_limits_and_names_restart_keys
);

async fn serve_starts_and_stops_cleanly(db: Db) {
    let inst = Instance::new(db, &[], "").await;
    let server = inst.start();
    let log = server.log();
    assert!(
        log.contains("created a self-signed TLS certificate"),
        "{log}"
    );
    assert!(
        !log.contains('\x1b'),
        "no ANSI colour codes when stderr is not a terminal: {log:?}"
    );
    assert!(inst.data_dir().join("tls/cert.pem").exists());
    assert!(inst.data_dir().join("listeners.json").exists());
    let status = server.stop();
    assert!(status.success(), "exit status {status}");
    assert!(
        !inst.data_dir().join("listeners.json").exists(),
        "listeners.json removed on exit"
    );
    // Second start reuses the certificate.
    let server = inst.start();
    assert!(
        !server.log().contains("created a self-signed"),
        "{}",
        server.log()
    );
    assert!(server.stop().success());
}

async fn management_cli(db: Db) {
    let inst = Instance::new(db, &[], "").await;
    assert_eq!(
        inst.ok(&["domain", "add", "Example.TEST"], ""),
        "added domain example.test\n"
    );
    let dup = inst.run(&["domain", "add", "example.test"], "");
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("domain example.test already exists"));
    inst.ok(&["domain", "add", "other.test"], "");
    assert_eq!(
        inst.ok(&["domain", "list"], ""),
        "example.test\nother.test\n"
    );

    assert_eq!(
        inst.ok(
            &["user", "add", "alice@example.test", "--quota", "1M"],
            "s3cret pass\n"
        ),
        "added user alice@example.test\n"
    );
    let no_domain = inst.run(&["user", "add", "bob@nowhere.test"], "pw\n");
    assert!(!no_domain.status.success());
    assert!(String::from_utf8_lossy(&no_domain.stderr).contains("domain nowhere.test not found"));
    let empty = inst.run(&["user", "add", "bob@example.test"], "\n");
    assert!(!empty.status.success(), "empty password refused");
    // Passwords never come from the command line.
    let argv = inst.run(&["user", "add", "bob@example.test", "--password", "x"], "");
    assert!(!argv.status.success());
    assert_eq!(
        inst.ok(&["user", "list"], ""),
        "alice@example.test\tused 0 of 1048576 bytes\n"
    );
    inst.ok(&["user", "passwd", "alice@example.test"], "new pass\n");

    inst.ok(
        &["alias", "add", "info@example.test", "alice@example.test"],
        "",
    );
    inst.ok(&["alias", "add", "@example.test", "alice@example.test"], "");
    assert_eq!(
        inst.ok(&["alias", "list", "example.test"], ""),
        "@example.test\talice@example.test\ninfo@example.test\talice@example.test\n"
    );
    inst.ok(&["alias", "remove", "@example.test"], "");
    assert_eq!(
        inst.ok(&["alias", "list"], ""),
        "info@example.test\talice@example.test\n"
    );

    // The CLI and a server share the database: what one writes, the other reads.
    let store = postern_store::Store::open(&inst.db.url).await.unwrap();
    assert!(store
        .authenticate("alice@example.test", "new pass")
        .await
        .unwrap()
        .is_some());
    assert!(store
        .authenticate("alice@example.test", "s3cret pass")
        .await
        .unwrap()
        .is_none());
    store.close().await;

    inst.ok(&["user", "remove", "alice@example.test"], "");
    inst.ok(&["domain", "remove", "other.test"], "");
    assert_eq!(inst.ok(&["domain", "list"], ""), "example.test\n");
    assert_eq!(inst.ok(&["user", "list"], ""), "");
}

async fn sighup_reloads_or_keeps_config(db: Db) {
    let inst = Instance::new(db, &[], "").await;
    let server = inst.start();
    let good = std::fs::read_to_string(&inst.config).unwrap();
    std::fs::write(&inst.config, format!("{good}\nbogus_key = 1\n")).unwrap();
    server.signal(libc::SIGHUP);
    server.wait_for_log("reload refused");
    assert!(
        server.log().contains("unknown field `bogus_key`"),
        "{}",
        server.log()
    );
    std::fs::write(
        &inst.config,
        good.replace("log_level = \"info\"", "log_level = \"debug\""),
    )
    .unwrap();
    server.signal(libc::SIGHUP);
    server.wait_for_log("configuration reloaded");
    assert!(server.stop().success());
}

/// The EHLO reply of the SMTP listener at `addr`, read until its last line.
fn ehlo(addr: std::net::SocketAddr) -> String {
    use std::io::{BufRead, BufReader, Write};
    let stream = std::net::TcpStream::connect(addr).expect("connect smtp");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut read_reply = || {
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("read reply");
            assert!(!line.is_empty(), "connection closed after {reply:?}");
            reply.push_str(&line);
            if line.as_bytes().get(3) == Some(&b' ') {
                return reply;
            }
        }
    };
    read_reply();
    (&stream)
        .write_all(b"EHLO client.test\r\n")
        .expect("send EHLO");
    let reply = read_reply();
    let _ = (&stream).write_all(b"QUIT\r\n");
    reply
}

/// The IMAP greeting (it carries the capabilities) of the listener at `addr`.
fn imap_greeting(addr: std::net::SocketAddr) -> String {
    use std::io::{BufRead, BufReader};
    let stream = std::net::TcpStream::connect(addr).expect("connect imap");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .expect("read greeting");
    line
}

/// SIGHUP applies a changed SMTP limit and IMAP setting to new sessions (the SIZE advertised in
/// EHLO changes, LOGINDISABLED goes from the IMAP capabilities) and names a changed listener,
/// which only a restart can apply, instead of ignoring it (issue 13 bug 4).
async fn sighup_applies_limits_and_names_restart_keys(db: Db) {
    let inst = Instance::new(
        db,
        &["smtp", "imap", "admin"],
        "[smtp]\nmax_message_size = 100000\n[imap]\nlogin_disabled_without_tls = true\n",
    )
    .await;
    let server = inst.start();
    assert!(ehlo(server.addr("smtp")).contains("SIZE 100000"));
    assert!(imap_greeting(server.addr("imap")).contains("LOGINDISABLED"));
    let good = std::fs::read_to_string(&inst.config).unwrap();
    let changed = good
        .replace("max_message_size = 100000", "max_message_size = 123456")
        .replace(
            "login_disabled_without_tls = true",
            "login_disabled_without_tls = false",
        )
        .replace(
            "admin = [\"127.0.0.1:0\"]",
            "admin = [\"127.0.0.1:0\", \"[::1]:0\"]",
        );
    assert_ne!(changed, good);
    std::fs::write(&inst.config, changed).unwrap();
    server.signal(libc::SIGHUP);
    server.wait_for_log("configuration reloaded");
    let log = server.log();
    assert!(
        log.contains("listeners.admin changed: restart to apply"),
        "{log}"
    );
    assert!(!log.contains("smtp.max_message_size changed"), "{log}");
    let reply = ehlo(server.addr("smtp"));
    assert!(reply.contains("SIZE 123456"), "{reply}\n{log}");
    let greeting = imap_greeting(server.addr("imap"));
    assert!(
        !greeting.contains("LOGINDISABLED") && greeting.contains("AUTH=PLAIN"),
        "{greeting}"
    );
    assert!(server.stop().success());
}

/// Output into a closed pipe (`postern domain list | head -0`) ends quietly with status 0 instead
/// of a panic (issue 13 bug 3), and `check` ends its report with a newline.
#[tokio::test]
async fn cli_output_survives_a_closed_pipe() {
    let inst = Instance::new(Db::Sqlite, &[], "").await;
    for d in ["a.test", "b.test", "c.test"] {
        inst.ok(&["domain", "add", d], "");
    }
    for args in [&["domain", "list"][..], &["check"], &["user", "list"]] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        // The reader is gone before the command starts: its first write fails with EPIPE.
        drop(reader);
        let out = inst
            .cli(args)
            .stdin(std::process::Stdio::null())
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("run postern");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
    }
    let out = inst.ok(&["domain", "list"], "");
    assert_eq!(out, "a.test\nb.test\nc.test\n");
    let report = inst.ok(&["check"], "");
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(
        lines,
        [
            "dns: 0 zones, 0 errors, 0 warnings".to_owned(),
            format!("{}: configuration OK", inst.config.display())
        ],
        "{report:?}"
    );
    assert!(report.ends_with('\n'));
}

#[test]
fn bad_config_is_rejected_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("postern.toml");
    std::fs::write(
        &path,
        "data_dir = \"d\"\n[listeners]\nsmtp = [\"127.0.0.1:2525\"]\nimap = [\"not-an-address\"]\n",
    )
    .unwrap();
    for cmd in ["check", "serve"] {
        let out = std::process::Command::new(POSTERN)
            .arg("--config")
            .arg(&path)
            .arg(cmd)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("{}:4:9:", path.display())),
            "{cmd}: {err}"
        );
        assert!(err.contains("invalid socket address"), "{cmd}: {err}");
    }
    let missing = std::process::Command::new(POSTERN)
        .args(["--config", "/nonexistent/p.toml", "check"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/p.toml: cannot read"));
}

/// Values serde accepts but later checks refuse, and `[dns]` cross-references, are reported by
/// `check` and `serve` with file:line:column too (issue 13 bug 5).
#[test]
fn later_config_errors_have_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("postern.toml");
    let dns = "[dns]\nzones_dir = \".\"\n";
    // `serve` builds the DNS configuration only with a DNS listener.
    let listen = "[listeners]\ndns = [\"127.0.0.1:0\"]\n";
    let cases = [
        (
            "[smtp]\nmax_line_length = 100\n".to_owned(),
            "2:19: smtp.max_line_length = 100: must be 512 to 4096 bytes",
        ),
        (
            "[mail]\n\ndmarc_policy = \"drop\"\n".to_owned(),
            "3:16: mail.dmarc_policy \"drop\": use none, quarantine or reject",
        ),
        (
            format!("{dns}[[dns.view]]\nname = \"inside\"\n[mail.views.outside]\naddresses = []\n"),
            "5:13: mail.views.outside: there is no [[dns.view]] named \"outside\"",
        ),
        (
            format!("{dns}[[dns.view]]\nname = \"inside\"\nmatch_clients = [\"nosuch\"]\n{listen}"),
            "5:17: dns config: view `inside` match_clients: unknown acl `nosuch`",
        ),
        (
            format!("{dns}[[dns.tsig_key]]\nname = \"xfr\"\nsecret = \"abc def=\"\n{listen}"),
            "5:10: dns config: tsig_key `xfr`: the secret must be base64",
        ),
    ];
    for (text, expected) in &cases {
        std::fs::write(&path, text).unwrap();
        for cmd in ["check", "serve"] {
            let mut child = std::process::Command::new(POSTERN)
                .arg("--config")
                .arg(&path)
                .arg(cmd)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            // A server that starts despite the error would run forever: give it a deadline.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while child.try_wait().unwrap().is_none() {
                if std::time::Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("{cmd} {text}: still running after 60 s");
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            let out = child.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{cmd} {text}: {err}");
            assert!(
                err.contains(&format!("{}:{expected}", path.display())),
                "{cmd} {text}: {err}"
            );
        }
    }
}

#[test]
fn database_url_comes_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("postern.toml");
    std::fs::write(&path, "database_url = \"sqlite:///nonexistent-dir/x.db\"\n").unwrap();
    let url = format!("sqlite://{}/env.db", dir.path().display());
    let out = std::process::Command::new(POSTERN)
        .arg("--config")
        .arg(&path)
        .args(["domain", "add", "env.test"])
        .env("POSTERN_DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("env.db").exists());
}
