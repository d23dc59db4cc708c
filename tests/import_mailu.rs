//! End-to-end test of `postern import mailu` on SQLite and PostgreSQL: a fake Mailu installation
//! (its SQLite database from `tests/fixtures/mailu.py` with Mailu's tables, Dovecot Maildirs with
//! folders, flags, keywords, Sieve scripts and a corrupt file, a DKIM key) is imported by the
//! real binary. Then: a dry run before changed nothing; users log in over IMAP with their Mailu
//! passwords (every hash scheme) and their hashes become Argon2id; messages, flags and folders are
//! there; aliases (several destinations, the `%` wildcard, `%`/`_` patterns, the alternative
//! domain) resolve at SMTP RCPT; the DKIM key is active under its selector; forward and auto-reply
//! settings become account settings that act once per message at delivery, hostile texts
//! reproduced exactly; Sieve scripts are stored and active; what cannot be imported is named; a
//! second run imports nothing twice.

mod common;
mod smtp_support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use common::{imap_script, repo_path, Db, Instance};
use postern_store::{DkimAlgorithm, DkimState, Flags, Resolution, Store};
use smtp_support::{inbox, wait_inbox, Raw};

both_backends!(import_mailu);

fn write(path: &Path, bytes: &[u8], mtime: i64) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, bytes).expect("write");
    let file = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open");
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(mtime as u64);
    file.set_modified(when).expect("set mtime");
}

fn maildir_folder(dir: &Path) {
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).expect("mkdir");
    }
}

/// The Mailu volumes under `root`: data/main.db, mail/, dkim/. Returns the DKIM public key
/// (base64 SubjectPublicKeyInfo) of the key it wrote.
fn fake_mailu(root: &Path) -> String {
    std::fs::create_dir_all(root.join("data")).expect("mkdir");
    let out = Command::new("python3")
        .arg(repo_path("tests/fixtures/mailu.py"))
        .arg(root.join("data/main.db"))
        .output()
        .expect("run python3");
    assert!(out.status.success(), "{out:?}");

    let alice = root.join("mail/alice@example.test");
    maildir_folder(&alice);
    write(&alice.join("dovecot-keywords"), b"0 work\n1 $Label1\n", 1);
    write(
        &alice.join("cur/1700000001.M1P1.mailu:2,FSa"),
        b"Subject: one\r\n\r\nfirst\r\n",
        1_700_000_001,
    );
    write(
        &alice.join("new/1700000002.M2P2.mailu"),
        b"Subject: two\r\n\r\nsecond\r\n",
        1_700_000_002,
    );
    write(
        &alice.join("cur/1700000003.M3P3.mailu:2,S"),
        b"\0\0\0\0\0\0\0\0",
        1_700_000_003,
    );
    for (folder, subject, flags) in [(".Sent", "sent", "S"), (".Archive.2024", "old", "RS")] {
        let dir = alice.join(folder);
        maildir_folder(&dir);
        write(
            &dir.join(format!("cur/1600000000.M9P9.mailu:2,{flags}")),
            format!("Subject: {subject}\r\n\r\nx\r\n").as_bytes(),
            1_600_000_000,
        );
    }
    write(
        &alice.join("sieve/own.sieve"),
        b"require \"fileinto\";\nif header :contains \"subject\" \"news\" { fileinto \"Archive\"; }\n",
        1,
    );
    write(&alice.join("sieve/old.sieve"), b"keep;\n", 1);
    std::os::unix::fs::symlink("sieve/own.sieve", alice.join(".dovecot.sieve")).expect("link");
    let dave = root.join("mail/dave@other.test");
    maildir_folder(&dave);
    write(
        &dave.join("new/1700000010.M1P1.mailu"),
        b"Subject: dave\n\nhi\n",
        1_700_000_010,
    );
    maildir_folder(&root.join("mail/ghost@example.test"));
    let grace = root.join("mail/grace@other.test");
    maildir_folder(&grace);
    write(&grace.join("new/1.M1P1.mailu"), b"Subject: g\n\n", 1);

    std::fs::create_dir_all(root.join("dkim")).expect("mkdir");
    let key = root.join("dkim/example.test.dkim.key");
    let out = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "{out:?}");
    let out = Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(&key)
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "{out:?}");
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(out.stdout)
}

/// Every mailbox of a user with its messages: (name, [(bytes, system flags, keywords, date)]).
type Contents = Vec<(String, Vec<(Vec<u8>, i64, Vec<String>, i64)>)>;

async fn contents(store: &Store, address: &str) -> Contents {
    let user = store.user(address).await.expect("user").expect("exists");
    let mut all = Vec::new();
    for mailbox in store.list_mailboxes(user.id).await.expect("list") {
        let mut messages = Vec::new();
        for m in store.list_messages(&mailbox).await.expect("messages") {
            let raw = store.message_raw(&mailbox, m.uid).await.expect("raw");
            let keywords = m.flags.keywords.iter().cloned().collect();
            messages.push((raw.expect("raw"), m.flags.system, keywords, m.internal_date));
        }
        all.push((mailbox.name, messages));
    }
    all
}

fn rcpt(smtp: std::net::SocketAddr, address: &str) -> String {
    let mut c = Raw::connect(smtp);
    assert!(c.cmd("EHLO client.test").starts_with("250"));
    assert!(c.cmd("MAIL FROM:<sender@remote.test>").starts_with("250"));
    let reply = c.cmd(&format!("RCPT TO:<{address}>"));
    c.cmd("QUIT");
    reply
}

async fn import_mailu(db: Db) {
    let inst = Instance::new(db, &["imap", "imaps", "smtp"], "").await;
    let root = inst.dir.path().join("mailu");
    let dkim_public = fake_mailu(&root);
    let root_arg = root.to_str().expect("utf-8 path");

    let dry = inst.run(&["import", "mailu", root_arg, "--dry-run"], "");
    let dry_out = String::from_utf8_lossy(&dry.stdout);
    assert!(
        dry_out.contains("domain example.test: would add"),
        "{dry_out}"
    );
    assert!(
        dry_out.contains("user bob@example.test: would add"),
        "{dry_out}"
    );
    assert!(
        dry_out.contains("mail of alice@example.test: would import 5 message(s)"),
        "{dry_out}"
    );
    let store = inst.db.open().await;
    assert!(
        store.list_domains().await.expect("domains").is_empty(),
        "dry run added nothing"
    );

    let first = inst.run(&["import", "mailu", root_arg], "");
    let out = String::from_utf8_lossy(&first.stdout).into_owned();
    let err = String::from_utf8_lossy(&first.stderr).into_owned();
    assert!(
        !first.status.success(),
        "ivy's \"${{\", a pattern with `*` (twice: the alternative too) and one file fail: {out}\n{err}"
    );
    assert!(
        err.contains("error: forwarding and auto-reply of ivy@example.test: invalid reply_body"),
        "{err}"
    );
    assert!(
        err.contains("error: wildcard alias star*%@example.test: its pattern holds `*` or `?`"),
        "{err}"
    );
    let corrupt = root.join("mail/alice@example.test/cur/1700000003.M3P3.mailu:2,S");
    assert!(
        err.contains(&format!(
            "error: {}: corrupt message file",
            corrupt.display()
        )),
        "{err}"
    );
    assert!(err.contains("4 item(s) could not be imported"), "{err}");
    for line in [
        "user erin@other.test: added, disabled",
        "note: user alice@example.test was a Mailu global admin",
        "note: user carol@example.test had IMAP turned off",
        "alias sales-*@example.test -> alice@example.test: added",
        "alias *-team@example.test -> bob@example.test: added",
        "alias t?p*x@example.test -> carol@example.test: added",
        "alias sales-*@alt.test -> alice@example.test: added",
        "forwarding and auto-reply of hank@example.test: set",
        "skipped: alias old@example.test (disabled in Mailu)",
        "skipped: relayed domain relayed.test (via mx.relayed.test)",
        "skipped: 1 fetched account(s)",
        "skipped: 1 application token(s)",
        "ghost@example.test: no Mailu user of that name",
        "DKIM key dkim._domainkey.example.test: imported as the active key",
        "DKIM key dkim._domainkey.alt.test: imported as the active key",
        "imported 6 message(s) for 8 user(s)",
    ] {
        assert!(out.contains(line), "{line:?} missing from:\n{out}");
    }

    let names: Vec<String> = store
        .list_domains()
        .await
        .expect("domains")
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, ["alt.test", "example.test", "other.test"]);
    let users = store.list_users(None).await.expect("users");
    let summary: Vec<(String, i64, bool)> = users
        .iter()
        .map(|u| (u.address.to_string(), u.quota_bytes, u.disabled))
        .collect();
    assert_eq!(
        summary,
        [
            ("alice@example.test".to_owned(), 1_000_000_000, false),
            ("bob@example.test".to_owned(), 1_000_000_000, false),
            ("carol@example.test".to_owned(), 5_000_000, false),
            ("hank@example.test".to_owned(), 1_000_000_000, false),
            ("ivy@example.test".to_owned(), 1_000_000_000, false),
            ("dave@other.test".to_owned(), 0, false),
            ("erin@other.test".to_owned(), 1_000_000_000, true),
            ("grace@other.test".to_owned(), 1_000_000_000, false),
        ]
    );

    let alice = contents(&store, "alice@example.test").await;
    let find = |name: &str| {
        alice
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, m)| m.clone())
            .unwrap_or_else(|| panic!("{name} missing: {alice:?}"))
    };
    assert_eq!(
        find("INBOX"),
        [
            (
                b"Subject: one\r\n\r\nfirst\r\n".to_vec(),
                Flags::FLAGGED | Flags::SEEN,
                vec!["work".to_owned()],
                1_700_000_001
            ),
            (
                b"Subject: two\r\n\r\nsecond\r\n".to_vec(),
                0,
                vec![],
                1_700_000_002
            ),
        ]
    );
    assert_eq!(find("Sent").len(), 1);
    let archived = find("Archive/2024");
    assert_eq!(archived[0].1, Flags::ANSWERED | Flags::SEEN);
    let dave = contents(&store, "dave@other.test").await;
    let dave_inbox = dave.iter().find(|(n, _)| n == "INBOX").expect("INBOX");
    assert_eq!(dave_inbox.1.len(), 1);

    let keys = store.dkim_keys("example.test").await.expect("keys");
    for domain in ["example.test", "alt.test"] {
        let signing = store.signing_keys(domain).await.expect("signing");
        let rsa: Vec<_> = signing
            .iter()
            .filter(|k| k.algorithm == DkimAlgorithm::Rsa)
            .collect();
        assert_eq!(rsa.len(), 1, "{domain}: {signing:?}");
        assert_eq!(rsa[0].selector, "dkim");
        assert_eq!(rsa[0].public_key, dkim_public);
    }
    assert!(keys
        .iter()
        .any(|k| k.algorithm == DkimAlgorithm::Rsa && k.state == DkimState::Retired));

    let id = |address: &str| {
        let u = users.iter().find(|u| u.address.to_string() == address);
        u.expect("user").id
    };
    let bob = store
        .account_settings(id("bob@example.test"))
        .await
        .expect("settings");
    assert!(bob.forward_enabled && bob.forward_keep && bob.reply_enabled);
    assert_eq!(
        bob.forward_destination,
        "bob@elsewhere.test,carol@example.test"
    );
    assert_eq!(bob.reply_subject, "Out \"of\" office");
    assert_eq!(bob.reply_body, "Back soon.\r\nBob");
    assert_eq!(bob.reply_startdate.as_deref(), Some("2020-01-01"));
    assert_eq!(bob.reply_enddate, None);
    let hank = store
        .account_settings(id("hank@example.test"))
        .await
        .expect("settings");
    assert_eq!(hank.reply_subject, HANK_SUBJECT);
    assert_eq!(hank.reply_body, HANK_BODY);
    let ivy = store
        .account_settings(id("ivy@example.test"))
        .await
        .expect("settings");
    assert!(!ivy.reply_enabled, "ivy's settings were not imported");
    for (address, user) in [
        ("sales-x@example.test", "alice@example.test"),
        ("sales-x@alt.test", "alice@example.test"),
        ("eu-team@example.test", "bob@example.test"),
        ("tapbox@example.test", "carol@example.test"),
    ] {
        let Resolution::Deliver { local, .. } =
            store.resolve_recipient(address).await.expect("resolve")
        else {
            panic!("{address} does not resolve");
        };
        assert_eq!(
            local.into_iter().collect::<Vec<_>>(),
            [id(user)],
            "{address}"
        );
    }
    let alice_id = id("alice@example.test");
    let active = store.active_sieve_script(alice_id).await.expect("sieve");
    assert_eq!(active.expect("alice's own script").name, "own");
    let scripts: Vec<String> = store
        .list_sieve_scripts(alice_id)
        .await
        .expect("scripts")
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(scripts, ["old", "own"]);

    let server = inst.start();
    let smtp = server.addr("smtp");
    for (address, accepted) in [
        ("info@example.test", true),
        ("ext@example.test", true),
        ("anyone@other.test", true),
        ("alice@alt.test", true),
        ("info@alt.test", true),
        ("sales-x@example.test", true),
        ("x-team@example.test", true),
        ("tp-x@example.test", false),
        ("old@example.test", false),
        ("grace@other.test", true),
    ] {
        let reply = rcpt(smtp, address);
        assert_eq!(reply.starts_with("250"), accepted, "{address}: {reply}");
    }
    let logins = "alice@example.test alice secret\nbob@example.test bob secret\n\
                  carol@example.test carol secret\ndave@other.test dave secret\n\
                  grace@other.test secret\n";
    let fails = "alice@example.test alice secreT\nerin@other.test erin secret\n\
                 grace@other.test secreT\n";
    imap_script(
        &server,
        "mailu_logins.py",
        &[("LOGINS", logins.to_owned()), ("FAILS", fails.to_owned())],
    );
    for address in [
        "alice@example.test",
        "bob@example.test",
        "carol@example.test",
        "dave@other.test",
        "grace@other.test",
    ] {
        let hash = store.stored_password_hash(address).await.expect("hash");
        let hash = hash.expect("user");
        assert!(hash.starts_with("$argon2id$"), "{address}: {hash}");
    }
    let erin = store
        .stored_password_hash("erin@other.test")
        .await
        .expect("hash");
    assert!(
        erin.expect("erin").starts_with("{PBKDF2}"),
        "a refused login keeps the hash"
    );

    let (carol, grace) = ("carol@example.test", "grace@other.test");
    let (carol_had, grace_had) = (
        inbox(&inst, carol).await.len(),
        inbox(&inst, grace).await.len(),
    );
    to_hank(&server, "dave@other.test", "first");
    let replies = wait_inbox(&inst, "dave@other.test", 2).await;
    assert_eq!(replies.len(), 2, "one vacation reply: {replies:?}");
    hank_replied(&replies[1]);
    assert_eq!(
        wait_inbox(&inst, carol, carol_had + 1).await.len(),
        carol_had + 1
    );
    assert_eq!(
        wait_inbox(&inst, grace, grace_had + 1).await.len(),
        grace_had + 1
    );
    assert_eq!(
        wait_inbox(&inst, "hank@example.test", 1).await.len(),
        1,
        "a copy is kept"
    );

    let before = contents(&store, "alice@example.test").await;
    let path = |sub: &str| format!("{root_arg}/{sub}");
    let (db_file, mail, dkim) = (path("data/main.db"), path("mail"), path("dkim"));
    let explicit = [
        "import", "mailu", "--db", &db_file, "--mail", &mail, "--dkim", &dkim,
    ];
    let again = inst.run(&explicit, "");
    let again_out = String::from_utf8_lossy(&again.stdout);
    assert!(
        again_out.contains("imported 0 message(s) for 8 user(s)"),
        "{again_out}"
    );
    assert!(
        again_out.contains("user alice@example.test: already there"),
        "{again_out}"
    );
    assert!(again_out.contains("DKIM key dkim._domainkey.example.test: already there"));
    assert!(
        again_out.contains("forwarding and auto-reply of hank@example.test: already there"),
        "{again_out}"
    );
    assert!(!again_out.contains(": added"), "{again_out}");
    assert_eq!(contents(&store, "alice@example.test").await, before);
    let hash = store
        .stored_password_hash("bob@example.test")
        .await
        .expect("hash");
    assert!(
        hash.expect("bob").starts_with("$argon2id$"),
        "a re-run keeps new hashes"
    );
    let alice_had = inbox(&inst, "alice@example.test").await.len();
    to_hank(&server, "alice@example.test", "second");
    let alice_now = wait_inbox(&inst, "alice@example.test", alice_had + 1).await;
    hank_replied(alice_now.last().expect("reply"));
    assert_eq!(wait_inbox(&inst, "hank@example.test", 2).await.len(), 2);
    assert_eq!(
        wait_inbox(&inst, carol, carol_had + 2).await.len(),
        carol_had + 2
    );
    assert_eq!(
        wait_inbox(&inst, grace, grace_had + 2).await.len(),
        grace_had + 2
    );
    assert_eq!(
        inbox(&inst, "alice@example.test").await.len(),
        alice_had + 1
    );
    assert_eq!(inbox(&inst, "dave@other.test").await.len(), 2);
    assert!(server.stop().success());
}

/// hank's Mailu auto-reply texts (as tests/fixtures/mailu.py writes them).
const HANK_SUBJECT: &str = "Out \"of\" office \\";
const HANK_BODY: &str = "Back \\\" soon, $5 {x} $\r\nGrüße ✓ \"quoted\" \\\r\n.\r\nend \\";

/// Sends a message from `from` to hank over the MX.
fn to_hank(server: &common::Server, from: &str, subject: &str) {
    let mut c = Raw::connect(server.addr("smtp"));
    assert!(c.cmd("EHLO client.test").starts_with("250"));
    assert!(c.cmd(&format!("MAIL FROM:<{from}>")).starts_with("250"));
    assert!(c.cmd("RCPT TO:<hank@example.test>").starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    let r = c.cmd(&format!(
        "From: <{from}>\r\nTo: <hank@example.test>\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@client.test>\r\n\r\nhello\r\n."
    ));
    assert!(r.starts_with("250"), "{r}");
    c.cmd("QUIT");
}

/// Checks that `reply` is hank's vacation reply with the hostile subject and text exactly.
fn hank_replied(reply: &str) {
    let parsed = mail_parser::MessageParser::default()
        .parse(reply.as_bytes())
        .expect("parse the reply");
    assert_eq!(parsed.subject(), Some(HANK_SUBJECT), "{reply}");
    let text = parsed.body_text(0).expect("text");
    assert_eq!(text.trim_end(), HANK_BODY.trim_end(), "{reply}");
    assert!(reply.contains("Auto-Submitted: auto-replied"), "{reply}");
}
