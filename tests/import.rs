//! End-to-end tests of `postern import maildir|mbox` on SQLite and PostgreSQL: Maildir++ and mbox
//! fixtures with nested folders, flags, keywords, dates, quoted `From ` lines, a message without
//! a final newline and hostile names (modified UTF-7, `/`, `%`, non-UTF-8, a symbolic link out of
//! the tree), imported by the real binary; the result is read back through the store (exact bytes,
//! flags, keywords, internal dates), through IMAP (imaplib) and as mbsync pulls it; a second run
//! and `--dry-run` change nothing.

mod common;

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use common::{imap_script, Db, Instance};
use postern_store::{Flags, Store};

both_backends!(
    import_maildir,
    import_mbox,
    import_mbox_huge_line_and_garbage
);

/// One stored message: exact bytes, system flags, keywords, internal date.
type Stored = (Vec<u8>, i64, Vec<String>, i64);

/// Every message of the user, per mailbox name, in UID order.
async fn contents(store: &Store, address: &str) -> BTreeMap<String, Vec<Stored>> {
    let user = store.user(address).await.expect("user").expect("exists");
    let mut all = BTreeMap::new();
    for mailbox in store.list_mailboxes(user.id).await.expect("list") {
        let mut messages = Vec::new();
        for m in store.list_messages(&mailbox).await.expect("messages") {
            let raw = store
                .message_raw(&mailbox, m.uid)
                .await
                .expect("raw")
                .expect("raw");
            let keywords = m.flags.keywords.iter().cloned().collect();
            messages.push((raw, m.flags.system, keywords, m.internal_date));
        }
        all.insert(mailbox.name, messages);
    }
    all
}

async fn instance(db: Db, users: &[&str]) -> Instance {
    let inst = Instance::new(db, &["imap", "imaps"], "").await;
    inst.ok(&["domain", "add", "example.test"], "");
    for u in users {
        inst.ok(&["user", "add", u], "password\n");
    }
    inst
}

fn write(path: &Path, bytes: &[u8], mtime: Option<i64>) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, bytes).expect("write");
    if let Some(t) = mtime {
        let file = std::fs::File::options()
            .write(true)
            .open(path)
            .expect("open");
        let when = SystemTime::UNIX_EPOCH + Duration::from_secs(t as u64);
        file.set_modified(when).expect("set mtime");
    }
}

fn maildir_folder(dir: &Path) {
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).expect("mkdir");
    }
}

fn kw(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

async fn import_maildir(db: Db) {
    let inst = instance(db, &["alice@example.test"]).await;
    let root = inst.dir.path().join("Maildir");
    maildir_folder(&root);
    write(
        &root.join("dovecot-keywords"),
        b"0 work\n1 $Label2\n3 not an atom\n",
        None,
    );
    write(
        &root.join("new/1700000001.M1P1.old"),
        b"Subject: new\n\nhello\n",
        Some(1_700_000_001),
    );
    write(
        &root.join("cur/1700000002.M2P2.old,S=30:2,FPRSTab"),
        b"Subject: flagged\r\n\r\nbody\r\n",
        Some(1_700_000_002),
    );
    write(
        &root.join("cur/1700000003.M3P3.old:2,Sd"),
        b"Subject: no newline\n\nlast",
        Some(1_700_000_003),
    );
    write(&root.join("cur/.hidden:2,S"), b"Subject: hidden\n\n", None);
    let outside = inst.dir.path().join("outside");
    write(&outside, b"Subject: secret\n\nsecret\n", None);
    std::os::unix::fs::symlink(&outside, root.join("cur/1700000004.link:2,S")).expect("symlink");
    std::os::unix::fs::symlink(inst.dir.path(), root.join(".Linked")).expect("symlink dir");
    for (folder, name, date) in [
        (".Sent", "Subject: sent\n\n", 1_600_000_000),
        (".Sent Items", "Subject: sent\n\n", 1_600_000_000),
        (".Projects.2026", "Subject: nested\n\n", 1_600_000_001),
        (".K&AOQ-se", "Subject: utf7\n\n", 1_600_000_002),
        (".a&AC8-b", "Subject: slash\n\n", 1_600_000_003),
        (".100%", "Subject: percent\n\n", 1_600_000_004),
        (".Spam", "Subject: spam\n\n", 1_600_000_005),
        (".Deleted Messages", "Subject: deleted\n\n", 1_600_000_006),
    ] {
        let dir = root.join(folder);
        maildir_folder(&dir);
        write(&dir.join("cur/1.M1.x:2,S"), name.as_bytes(), Some(date));
    }
    let raw_name = std::ffi::OsStr::from_bytes(b".Caf\xe9");
    maildir_folder(&root.join(raw_name));
    write(
        &root.join(raw_name).join("new/2.M2.x"),
        b"Subject: latin1\n\n",
        Some(1_500_000_000),
    );

    let before = contents(&inst.db.open().await, "alice@example.test").await;
    let addr = "alice@example.test";
    let root_arg = root.to_str().expect("utf-8 path");
    let dry = inst.ok(&["import", "maildir", addr, root_arg, "--dry-run"], "");
    assert!(dry.contains("would import 12 message(s)"), "{dry}");
    assert!(
        dry.contains("Projects/2026 (new folder): would import 1"),
        "{dry}"
    );
    assert_eq!(
        contents(&inst.db.open().await, addr).await,
        before,
        "dry run changed nothing"
    );

    let out = inst.ok(&["import", "maildir", addr, root_arg], "");
    assert!(out.contains("imported 12 message(s)"), "{out}");
    let all = contents(&inst.db.open().await, addr).await;
    let inbox = &all["INBOX"];
    assert_eq!(inbox.len(), 3, "{inbox:?}");
    assert_eq!(
        inbox[0],
        (
            b"Subject: new\n\nhello\n".to_vec(),
            0,
            kw(&[]),
            1_700_000_001
        )
    );
    let all_flags = Flags::FLAGGED | Flags::ANSWERED | Flags::SEEN | Flags::DELETED;
    assert_eq!(
        inbox[1],
        (
            b"Subject: flagged\r\n\r\nbody\r\n".to_vec(),
            all_flags,
            kw(&["$Forwarded", "$Label2", "work"]),
            1_700_000_002
        )
    );
    assert_eq!(
        inbox[2],
        (
            b"Subject: no newline\n\nlast".to_vec(),
            Flags::SEEN,
            kw(&[]),
            1_700_000_003
        ),
        "keyword d is 'not an atom', which IMAP cannot carry"
    );
    for (mailbox, subject, date) in [
        ("Projects/2026", "nested", 1_600_000_001),
        ("K\u{e4}se", "utf7", 1_600_000_002),
        ("a_b", "slash", 1_600_000_003),
        ("100%", "percent", 1_600_000_004),
        ("Junk", "spam", 1_600_000_005),
        ("Trash", "deleted", 1_600_000_006),
    ] {
        let want = (
            format!("Subject: {subject}\n\n").into_bytes(),
            Flags::SEEN,
            kw(&[]),
            date,
        );
        assert_eq!(all[mailbox], vec![want], "{mailbox}");
    }
    let sent = (
        b"Subject: sent\n\n".to_vec(),
        Flags::SEEN,
        kw(&[]),
        1_600_000_000,
    );
    assert_eq!(
        all["Sent"],
        vec![sent.clone(), sent],
        ".Sent and .Sent Items both go to Sent, the same message from each"
    );
    assert_eq!(all["Caf\u{fffd}"].len(), 1);
    assert!(all.contains_key("Projects"), "parent created");
    assert!(!all.contains_key("Linked") && !all.contains_key("Spam"));
    let text: String = all
        .values()
        .flatten()
        .map(|m| String::from_utf8_lossy(&m.0).into_owned())
        .collect();
    assert!(!text.contains("secret") && !text.contains("hidden"));

    let again = inst.ok(&["import", "maildir", addr, root_arg], "");
    assert!(again.contains("imported 0 message(s)"), "{again}");
    assert_eq!(
        contents(&inst.db.open().await, addr).await,
        all,
        "second run imports nothing"
    );

    write(
        &root.join("cur/1700000005.M5P5.old:2,"),
        b"Subject: later\n\n",
        Some(1_700_000_005),
    );
    let more = inst.ok(&["import", "maildir", addr, root_arg], "");
    assert!(more.contains("imported 1 message(s)"), "{more}");
    assert_eq!(
        contents(&inst.db.open().await, addr).await["INBOX"].len(),
        4
    );

    let deep = format!(".{}", vec!["d"; 40].join("."));
    maildir_folder(&root.join(&deep));
    write(
        &root.join(&deep).join("cur/1.M1.x:2,S"),
        b"Subject: deep\n\n",
        None,
    );
    let skipped = inst.run(&["import", "maildir", addr, root_arg], "");
    let stderr = String::from_utf8_lossy(&skipped.stderr);
    assert!(skipped.status.success(), "{stderr}");
    assert!(stderr.contains("refused, skipped"), "{stderr}");
    assert!(String::from_utf8_lossy(&skipped.stdout).contains("imported 0 message(s)"));

    let server = inst.start();
    imap_script(&server, "imported.py", &[]);
    mbsync_sees_the_import(&inst, &server);
    assert!(server.stop().success());
}

/// mbsync pulls alice's imported mail into a fresh Maildir++: the same folders (their names on
/// the wire in modified UTF-7) and, in INBOX, the same bytes with the same system flags as the
/// source Maildir.
fn mbsync_sees_the_import(inst: &Instance, server: &common::Server) {
    let dir = inst.dir.path().join("mbsync");
    let local = dir.join("Mail");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let config = dir.join("mbsyncrc");
    let text = format!(
        "IMAPAccount postern\nHost 127.0.0.1\nPort {}\nUser alice@example.test\nPass password\n\
         SSLType IMAPS\nCertificateFile {}\n\nIMAPStore remote\nAccount postern\n\n\
         MaildirStore local\nInbox {}\nSubFolders Maildir++\n\n\
         Channel pull\nFar :remote:\nNear :local:\nPatterns *\nCreate Near\nExpunge None\n\
         Sync Pull\nSyncState *\n",
        server.addr("imaps").port(),
        inst.data_dir().join("tls/cert.pem").display(),
        local.display(),
    );
    std::fs::write(&config, text).expect("write mbsyncrc");
    let out = std::process::Command::new("mbsync")
        .arg("-c")
        .arg(&config)
        .arg("-a")
        .env("HOME", &dir)
        .output()
        .expect("run mbsync (isync)");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "mbsync failed:\n{log}");
    let mut folders: Vec<String> = std::fs::read_dir(&local)
        .expect("read Mail")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    for want in [
        ".K&AOQ-se",
        ".Projects.2026",
        ".Sent",
        ".Junk",
        ".100%",
        "cur",
    ] {
        assert!(
            folders.iter().any(|f| f == want),
            "{want} not in {folders:?}\n{log}"
        );
    }
    let mut pulled = Vec::new();
    for sub in ["new", "cur"] {
        for e in std::fs::read_dir(local.join(sub)).expect("read INBOX") {
            let path = e.expect("entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            let flags = name
                .rsplit_once(":2,")
                .map(|(_, f)| f.to_owned())
                .unwrap_or_default();
            // mbsync adds its X-TUID header and stores LF line ends in its Maildir.
            let text = String::from_utf8(std::fs::read(&path).expect("read")).expect("utf-8");
            let text = text.replace("\r\n", "\n");
            let text: String = text
                .split_inclusive('\n')
                .filter(|l| !l.starts_with("X-TUID: "))
                .collect();
            pulled.push((text.into_bytes(), flags));
        }
    }
    pulled.sort();
    let want = |bytes: &[u8], flags: &str| (bytes.to_vec(), flags.to_owned());
    let mut expected = vec![
        want(b"Subject: new\n\nhello\n", ""),
        want(b"Subject: flagged\n\nbody\n", "FPRST"),
        want(b"Subject: no newline\n\nlast", "S"),
        want(b"Subject: later\n\n", ""),
    ];
    expected.sort();
    assert_eq!(pulled, expected, "{log}");
}

const INBOX_MBOX: &[u8] = b"From alice@example.test Mon Dec  7 01:02:03 2026\n\
Status: RO\n\
X-Status: AF\n\
X-Keywords: work, $Label1\n\
Subject: one\n\
\n\
>From the start\n\
>>From quoted twice\n\
From the middle of a line is fine\n\
\n\
From bob@example.test Tue Jan  5 10:20:30 2021\n\
Subject: two\n\
\n\
two\n\
\n\
From bob@example.test Tue Jan  5 10:20:30 2021\n\
Subject: two\n\
\n\
two\n\
\n\
From carol@example.test Wed Jan  6 00:00:00 2021\n\
Subject: last\n\
\n\
no newline";

async fn import_mbox(db: Db) {
    let inst = instance(db, &["bob@example.test"]).await;
    let dir = inst.dir.path().join("Mail");
    write(&dir.join("Inbox"), INBOX_MBOX, None);
    write(
        &dir.join("Inbox.msf"),
        b"// <!-- <mdb:mork:z v=\"1.4\"/> -->",
        None,
    );
    write(
        &dir.join("Sent"),
        b"From x Thu Jan  1 00:00:00 1970\nStatus: R\nX-Status: T\n\nsent\n",
        None,
    );
    write(&dir.join("Lists"), b"", None);
    write(
        &dir.join("Lists.sbd/Rust"),
        b"From x Thu Jan  1 00:00:01 1970\n\nrust\n",
        None,
    );
    write(
        &dir.join("mutt/deep.mbox"),
        b"From x Thu Jan  1 00:00:02 1970\n\ndeep\n",
        None,
    );
    let addr = "bob@example.test";
    let path = dir.to_str().expect("utf-8 path");

    let before = contents(&inst.db.open().await, addr).await;
    let dry = inst.ok(&["import", "mbox", addr, path, "--dry-run"], "");
    assert!(dry.contains("would import 7 message(s)"), "{dry}");
    assert_eq!(
        contents(&inst.db.open().await, addr).await,
        before,
        "dry run changed nothing"
    );

    let out = inst.ok(&["import", "mbox", addr, path], "");
    assert!(out.contains("imported 7 message(s)"), "{out}");
    let all = contents(&inst.db.open().await, addr).await;
    let inbox = &all["INBOX"];
    assert_eq!(
        inbox.len(),
        4,
        "the duplicate is a second message: {inbox:?}"
    );
    assert_eq!(
        inbox[0],
        (
            b"Status: RO\nX-Status: AF\nX-Keywords: work, $Label1\nSubject: one\n\nFrom the start\n>From quoted twice\nFrom the middle of a line is fine\n".to_vec(),
            Flags::SEEN | Flags::ANSWERED | Flags::FLAGGED,
            kw(&["$Label1", "work"]),
            1_796_605_323
        )
    );
    assert_eq!(
        inbox[1],
        (b"Subject: two\n\ntwo\n".to_vec(), 0, kw(&[]), 1_609_842_030)
    );
    assert_eq!(inbox[1], inbox[2]);
    assert_eq!(
        inbox[3],
        (
            b"Subject: last\n\nno newline".to_vec(),
            0,
            kw(&[]),
            1_609_891_200
        )
    );
    assert_eq!(
        all["Sent"],
        vec![(
            b"Status: R\nX-Status: T\n\nsent\n".to_vec(),
            Flags::SEEN | Flags::DRAFT,
            kw(&[]),
            0
        )]
    );
    assert_eq!(all["Lists"], vec![]);
    assert_eq!(
        all["Lists/Rust"],
        vec![(b"\nrust\n".to_vec(), 0, kw(&[]), 1)]
    );
    assert_eq!(
        all["mutt/deep"],
        vec![(b"\ndeep\n".to_vec(), 0, kw(&[]), 2)]
    );
    assert!(!all.keys().any(|k| k.contains("msf")));

    let again = inst.ok(&["import", "mbox", addr, path], "");
    assert!(again.contains("imported 0 message(s)"), "{again}");
    assert_eq!(contents(&inst.db.open().await, addr).await, all);

    let mboxo = inst.dir.path().join("old.mbox");
    write(
        &mboxo,
        b"From x Thu Jan  1 00:00:00 1970\n\n>From a\n>>From b\n",
        None,
    );
    let o = inst.ok(
        &[
            "import",
            "mbox",
            addr,
            mboxo.to_str().expect("utf-8"),
            "--mboxo",
        ],
        "",
    );
    assert!(o.contains("old (new folder): imported 1"), "{o}");
    let old = &contents(&inst.db.open().await, addr).await["old"];
    assert_eq!(old[0].0, b"\nFrom a\n>>From b\n");
}

/// A 20 MiB message that is one line without a newline, and a file that is no mbox at all.
async fn import_mbox_huge_line_and_garbage(db: Db) {
    let inst = instance(db, &["carol@example.test"]).await;
    let addr = "carol@example.test";
    let huge = inst.dir.path().join("huge");
    let mut bytes = b"From x Thu Jan  1 00:00:00 1970\nSubject: huge\n\n".to_vec();
    bytes.extend(std::iter::repeat_n(b'x', 20 << 20));
    write(&huge, &bytes, None);
    let out = inst.ok(&["import", "mbox", addr, huge.to_str().expect("utf-8")], "");
    assert!(out.contains("imported 1 message(s)"), "{out}");
    let all = contents(&inst.db.open().await, addr).await;
    assert_eq!(all["huge"][0].0.len(), bytes.len() - 32);

    let garbage = inst.dir.path().join("garbage");
    write(&garbage, b"\0\xff not an mbox\n", None);
    let failed = inst.run(
        &["import", "mbox", addr, garbage.to_str().expect("utf-8")],
        "",
    );
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("not an mbox"));
}
