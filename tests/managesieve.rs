//! End-to-end ManageSieve (RFC 5804) against the real binary on SQLite and PostgreSQL:
//! `sieve-connect` (a real client) does STARTTLS with certificate verification, AUTHENTICATE
//! PLAIN, upload, activate, list, download and delete; a raw-socket script
//! (tests/managesieve/protocol.py) covers the refusals, limits, hostile input, isolation between
//! users and the shared login limiter.

mod common;

use std::process::{Command, Output, Stdio};

use common::{repo_path, Db, Instance, Server};

both_backends!(managesieve_with_sieve_connect, managesieve_protocol_edges);

const PASSWORD: &str = "sieve-secret-pw";

/// An instance with ManageSieve (and IMAP, whose limiter budget it shares), domain example.test
/// and users alice and bob.
async fn instance(db: Db) -> (Instance, Server) {
    let inst = Instance::new(db, &["managesieve"], "").await;
    inst.ok(&["domain", "add", "example.test"], "");
    for u in ["alice@example.test", "bob@example.test"] {
        inst.ok(&["user", "add", u], &format!("{PASSWORD}\n"));
    }
    let server = inst.start();
    (inst, server)
}

/// Runs `sieve-connect` as alice with `args`, the password on a pipe (`--passwordfd 0`) and
/// TLS verified against the server's self-signed certificate.
fn sieve_connect(inst: &Instance, server: &Server, args: &[&str]) -> Output {
    use std::io::Write;
    let addr = server.addr("managesieve");
    let mut child = Command::new("sieve-connect")
        .args([
            "--nosrv",
            "-s",
            "127.0.0.1",
            "-p",
            &addr.port().to_string(),
            "-u",
            "alice@example.test",
            "--passwordfd",
            "0",
            "--tlscafile",
            &inst.data_dir().join("tls/cert.pem").display().to_string(),
            "--tlshostname",
            "mail.example.test",
            "--noclearauth",
            "--noclearchan",
        ])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sieve-connect is installed (Debian package sieve-connect)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .expect("password");
    child.wait_with_output().expect("sieve-connect")
}

fn assert_ok(out: &Output, what: &str, server: &Server) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "sieve-connect {what} failed:\nstdout:\n{stdout}\nstderr:\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    stdout
}

async fn managesieve_with_sieve_connect(db: Db) {
    let (inst, server) = instance(db).await;
    let dir = inst.dir.path();
    // A vacation script as the README shows it, with non-ASCII text and a line with only ".".
    let script = "require [\"vacation\", \"fileinto\"];\r\n\
        # Abwesenheitsnotiz: \u{e4}\u{f6}\u{fc}\r\n\
        if header :contains \"subject\" \"[spam]\" { fileinto \"Junk\"; stop; }\r\n\
        vacation :days 7 :subject \"Out of office\" text:\r\n\
        I am away until Monday.\r\n\
        ..\r\n\
        Gr\u{fc}\u{df}e\r\n\
        .\r\n;\r\n";
    let local = dir.join("vacation.sieve");
    std::fs::write(&local, script).unwrap();
    let local = local.display().to_string();
    assert_ok(
        &sieve_connect(
            &inst,
            &server,
            &[
                "--upload",
                "--localsieve",
                &local,
                "--remotesieve",
                "vacation",
            ],
        ),
        "upload",
        &server,
    );
    assert_ok(
        &sieve_connect(&inst, &server, &["--activate", "--remotesieve", "vacation"]),
        "activate",
        &server,
    );
    // A second script through the command loop (--exec), then a listing.
    let other = dir.join("other.sieve");
    std::fs::write(&other, "keep;\r\n").unwrap();
    let exec = dir.join("commands");
    std::fs::write(&exec, format!("upload {} other\nlist\n", other.display())).unwrap();
    let listed = assert_ok(
        &sieve_connect(&inst, &server, &["--exec", &exec.display().to_string()]),
        "exec upload + list",
        &server,
    );
    assert!(
        listed.contains("vacation") && listed.contains("other"),
        "listing: {listed}"
    );
    let listed = assert_ok(&sieve_connect(&inst, &server, &["--list"]), "list", &server);
    let active: Vec<&str> = listed
        .lines()
        .filter(|l| l.contains("ACTIVE") || l.contains("<-"))
        .collect();
    assert!(
        active.len() == 1 && active[0].contains("vacation"),
        "one active script, vacation: {listed}"
    );
    // Download: the bytes are the ones uploaded.
    let fetched = dir.join("fetched.sieve");
    assert_ok(
        &sieve_connect(
            &inst,
            &server,
            &[
                "--download",
                "--remotesieve",
                "vacation",
                "--localsieve",
                &fetched.display().to_string(),
            ],
        ),
        "download",
        &server,
    );
    assert_eq!(std::fs::read(&fetched).unwrap(), script.as_bytes());
    // A script that does not compile is refused, with the compiler's words.
    let bad = dir.join("bad.sieve");
    std::fs::write(&bad, "if true { fileinto \"x\"; }\r\n").unwrap();
    let out = sieve_connect(
        &inst,
        &server,
        &[
            "--upload",
            "--localsieve",
            &bad.display().to_string(),
            "--remotesieve",
            "bad",
        ],
    );
    assert!(!out.status.success(), "a bad script is refused");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("PUTSCRIPT(bad) failed: NO"), "{stderr}");
    // The active script cannot be deleted; after deactivation it can.
    let out = sieve_connect(&inst, &server, &["--delete", "--remotesieve", "vacation"]);
    assert!(!out.status.success(), "the active script is not deleted");
    assert_ok(
        &sieve_connect(&inst, &server, &["--deactivate"]),
        "deactivate",
        &server,
    );
    assert_ok(
        &sieve_connect(&inst, &server, &["--delete", "--remotesieve", "vacation"]),
        "delete",
        &server,
    );
    let listed = assert_ok(&sieve_connect(&inst, &server, &["--list"]), "list", &server);
    assert!(
        !listed.contains("vacation") && listed.contains("other"),
        "{listed}"
    );
    // The store holds exactly what the client left.
    let store = postern_store::Store::open(&inst.db.url).await.unwrap();
    let alice = store.user("alice@example.test").await.unwrap().unwrap();
    let scripts = store.list_sieve_scripts(alice.id).await.unwrap();
    assert_eq!(scripts.len(), 1);
    assert_eq!(scripts[0].name, "other");
    assert!(!scripts[0].active);
    store.close().await;
    assert!(server.stop().success());
}

async fn managesieve_protocol_edges(db: Db) {
    let (inst, server) = instance(db).await;
    let out = Command::new("python3")
        .arg(repo_path("tests/managesieve/protocol.py"))
        .env("SIEVE_PORT", server.addr("managesieve").port().to_string())
        .env("SIEVE_PASSWORD", PASSWORD)
        .env("SIEVE_CA", inst.data_dir().join("tls/cert.pem"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).ends_with("ok\n"),
        "protocol.py failed:\nstdout:\n{}\nstderr:\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    assert!(server.stop().success());
}
