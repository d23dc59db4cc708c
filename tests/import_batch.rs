//! End-to-end tests of `postern import` batches and re-runs on SQLite and PostgreSQL, with the real
//! binary: an import killed (SIGKILL) mid-run resumes with no duplicate and no loss, quota
//! accounting included, and a quota that fills up mid-batch stores exactly what fits; Maildir and
//! mbox flags changed at the source are carried over by a re-run while changes made here stay;
//! hostile input: malformed Maildir file names, a 1 GiB mbox line without a newline (refused, with
//! bounded memory), `From ` lines inside bodies (mboxrd quoting).

mod common;

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Db, Instance};
use postern_store::{FlagOp, Flags, Mailbox, Store};

both_backends!(
    import_killed_resumes,
    import_resyncs_flags,
    import_hostile_input
);

async fn instance(db: Db, users: &[&str]) -> Instance {
    let inst = Instance::new(db, &["imap"], "").await;
    inst.ok(&["domain", "add", "example.test"], "");
    for u in users {
        inst.ok(&["user", "add", u], "password\n");
    }
    inst
}

fn maildir_folder(dir: &Path) {
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).expect("mkdir");
    }
}

async fn inbox(store: &Store, address: &str) -> Mailbox {
    let user = store.user(address).await.expect("user").expect("exists");
    store
        .mailbox(user.id, "INBOX")
        .await
        .expect("mailbox")
        .expect("INBOX")
}

/// Every message of INBOX in UID order: bytes, system flags, keywords.
async fn messages(store: &Store, address: &str) -> Vec<(Vec<u8>, i64, Vec<String>)> {
    let mailbox = inbox(store, address).await;
    let mut all = Vec::new();
    for m in store.list_messages(&mailbox).await.expect("list") {
        let raw = store
            .message_raw(&mailbox, m.uid)
            .await
            .expect("raw")
            .expect("raw");
        all.push((raw, m.flags.system, m.flags.keywords.into_iter().collect()));
    }
    all
}

/// The multiset of byte strings.
fn counted(all: impl IntoIterator<Item = Vec<u8>>) -> BTreeMap<Vec<u8>, usize> {
    let mut counts = BTreeMap::new();
    for bytes in all {
        *counts.entry(bytes).or_default() += 1;
    }
    counts
}

/// Kills `postern import maildir` once its first batches are committed and before it is done,
/// then runs it again: every source message is there exactly once (the five identical files
/// five times), the quota accounting matches, and a third run imports nothing.
async fn import_killed_resumes(db: Db) {
    let inst = instance(db, &["alice@example.test", "bob@example.test"]).await;
    let addr = "alice@example.test";
    let root = inst.dir.path().join("Maildir");
    maildir_folder(&root);
    const N: usize = 3000;
    let mut source = Vec::new();
    for i in 0..N {
        // Five copies of one message: five messages, told apart by their occurrence number.
        let body = if i % 600 == 0 {
            "Subject: the same\n\nsame bytes\n".to_owned()
        } else {
            format!("Subject: message {i}\n\n{}\n", "text ".repeat(200 + i % 50))
        };
        std::fs::write(
            root.join(format!("cur/{}.M{i}.host:2,S", 1_700_000_000 + i)),
            &body,
        )
        .expect("write");
        source.push(body.into_bytes());
    }
    let root_arg = root.to_str().expect("utf-8 path");
    let store = inst.db.open().await;
    let mailbox = inbox(&store, addr).await;
    let mut child = inst
        .cli(&["import", "maildir", addr, root_arg])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn import");
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let stored = store.list_messages(&mailbox).await.expect("list").len();
        if stored >= 300 {
            break;
        }
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the import ended before it could be killed"
        );
        assert!(Instant::now() < deadline, "no batch committed in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        child.try_wait().expect("wait").is_none(),
        "the import ended before it could be killed"
    );
    child.kill().expect("kill");
    child.wait().expect("reap");
    let at_kill = store.list_messages(&mailbox).await.expect("list").len();
    assert!((300..N).contains(&at_kill), "{at_kill} stored when killed");

    let out = inst.ok(&["import", "maildir", addr, root_arg], "");
    let rest = N - at_kill;
    assert!(
        out.contains(&format!("imported {rest} message(s)")),
        "{out}"
    );
    assert!(out.contains(&format!("{at_kill} already there")), "{out}");
    let all = messages(&store, addr).await;
    assert_eq!(all.len(), N);
    assert_eq!(
        counted(all.iter().map(|m| m.0.clone())),
        counted(source.clone()),
        "every source message exactly once"
    );
    assert!(all.iter().all(|m| m.1 == Flags::SEEN));
    let uids: Vec<i64> = store
        .list_messages(&mailbox)
        .await
        .expect("list")
        .iter()
        .map(|m| m.uid)
        .collect();
    assert!(uids.windows(2).all(|w| w[0] < w[1]));
    let user = store.user(addr).await.expect("user").expect("exists");
    let total: usize = source.iter().map(Vec::len).sum();
    assert_eq!(
        user.used_bytes, total as i64,
        "quota charged once per message"
    );
    assert_eq!(store.imported_keys(&mailbox).await.expect("keys").len(), N);
    let again = inst.ok(&["import", "maildir", addr, root_arg], "");
    assert!(again.contains("imported 0 message(s)"), "{again}");
    assert_eq!(store.list_messages(&mailbox).await.expect("list").len(), N);

    // bob's quota fills up within the batch: what fits is stored, the rest is named and not.
    store
        .set_quota("bob@example.test", 10_000)
        .await
        .expect("quota");
    let small = inst.dir.path().join("Small");
    maildir_folder(&small);
    let mut size = 0;
    for i in 0..20 {
        let body = format!("Subject: {i:02}\n\n{}\n", "x".repeat(980));
        size = body.len();
        std::fs::write(small.join(format!("cur/{i:02}.M.h:2,")), body).expect("write");
    }
    let over = inst.run(
        &[
            "import",
            "maildir",
            "bob@example.test",
            small.to_str().expect("utf-8"),
        ],
        "",
    );
    let stderr = String::from_utf8_lossy(&over.stderr);
    assert!(!over.status.success(), "{stderr}");
    assert!(stderr.contains("over quota"), "{stderr}");
    let bob = messages(&store, "bob@example.test").await;
    let bob_user = store
        .user("bob@example.test")
        .await
        .expect("user")
        .expect("exists");
    let stored: usize = bob.iter().map(|m| m.0.len()).sum();
    assert_eq!(bob.len(), 10_000 / size, "{stderr}");
    assert_eq!(bob_user.used_bytes, stored as i64);
    assert!(
        stderr.matches("over quota").count() == 20 - bob.len(),
        "{stderr}"
    );
}

/// A re-run carries flags changed at the source since the last run over, for Maildir (file
/// names, `new/` to `cur/`, `dovecot-keywords`) and mbox (`Status:`, `X-Status:`,
/// `X-Keywords:`, the message found again although those header fields changed), and keeps a
/// flag set here meanwhile.
async fn import_resyncs_flags(db: Db) {
    let inst = instance(db, &["alice@example.test", "bob@example.test"]).await;
    let addr = "alice@example.test";
    let root = inst.dir.path().join("Maildir");
    maildir_folder(&root);
    std::fs::write(root.join("dovecot-keywords"), "0 work\n1 later\n").expect("write");
    let files = [
        ("cur/1.M1.h:2,S", "Subject: a\n\na\n"),
        ("cur/2.M2.h:2,FS", "Subject: b\n\nb\n"),
        ("new/3.M3.h", "Subject: c\n\nc\n"),
        ("cur/4.M4.h:2,Sa", "Subject: d\n\nd\n"),
    ];
    for (name, text) in files {
        std::fs::write(root.join(name), text).expect("write");
    }
    let root_arg = root.to_str().expect("utf-8 path");
    let out = inst.ok(&["import", "maildir", addr, root_arg], "");
    assert!(out.contains("imported 4 message(s)"), "{out}");
    let store = inst.db.open().await;
    let mailbox = inbox(&store, addr).await;
    let by_subject =
        |all: Vec<(Vec<u8>, i64, Vec<String>)>| -> BTreeMap<String, (i64, Vec<String>)> {
            all.into_iter()
                .map(|(raw, flags, kw)| {
                    let text = String::from_utf8_lossy(&raw).into_owned();
                    let subject = text.lines().next().unwrap_or_default().to_owned();
                    (subject, (flags, kw))
                })
                .collect()
        };
    let before = by_subject(messages(&store, addr).await);
    assert_eq!(before["Subject: d"], (Flags::SEEN, vec!["work".to_owned()]));
    assert_eq!(before["Subject: c"], (0, vec![]));
    // Here, the user answers a; there, the flags of all four change.
    let uid_a = store.list_messages(&mailbox).await.expect("list")[0].uid;
    store
        .set_flags(
            &mailbox,
            &[uid_a],
            FlagOp::Add,
            &Flags::system(Flags::ANSWERED),
        )
        .await
        .expect("flags");
    for (from, to) in [
        ("cur/1.M1.h:2,S", "cur/1.M1.h:2,"),
        ("cur/2.M2.h:2,FS", "cur/2.M2.h:2,S"),
        ("new/3.M3.h", "cur/3.M3.h:2,RS"),
        ("cur/4.M4.h:2,Sa", "cur/4.M4.h:2,Sb"),
    ] {
        std::fs::rename(root.join(from), root.join(to)).expect("rename");
    }
    let again = inst.ok(&["import", "maildir", addr, root_arg], "");
    assert!(again.contains("imported 0 message(s)"), "{again}");
    assert!(
        again.contains(
            "INBOX: imported 0, 4 already there (4 with flags changed at the source, updated)"
        ),
        "{again}"
    );
    let after = by_subject(messages(&store, addr).await);
    assert_eq!(
        after["Subject: a"],
        (Flags::ANSWERED, vec![]),
        "\\Seen removed there, \\Answered set here kept"
    );
    assert_eq!(after["Subject: b"], (Flags::SEEN, vec![]));
    assert_eq!(after["Subject: c"], (Flags::SEEN | Flags::ANSWERED, vec![]));
    assert_eq!(after["Subject: d"], (Flags::SEEN, vec!["later".to_owned()]));
    let third = inst.ok(&["import", "maildir", addr, root_arg], "");
    assert!(
        third.contains("INBOX: imported 0, 4 already there\n"),
        "{third}"
    );

    // mbox: the mail reader rewrote the flag header fields.
    let mbox = inst.dir.path().join("INBOX.mbox");
    let first =
        "From x Thu Jan  1 00:00:00 1970\nStatus: O\nX-Keywords: work\nSubject: one\n\none\n\n\
                 From x Thu Jan  1 00:00:01 1970\nStatus: RO\nX-Status: F\nSubject: two\n\ntwo\n";
    std::fs::write(&mbox, first).expect("write");
    let bob = "bob@example.test";
    let mbox_arg = mbox.to_str().expect("utf-8");
    let out = inst.ok(&["import", "mbox", bob, mbox_arg], "");
    assert!(out.contains("imported 2 message(s)"), "{out}");
    let imported = messages(&store, bob).await;
    assert_eq!(imported[0].1, 0);
    assert_eq!(imported[0].2, vec!["work".to_owned()]);
    assert_eq!(imported[1].1, Flags::SEEN | Flags::FLAGGED);
    let second = "From x Thu Jan  1 00:00:00 1970\nStatus: RO\nX-Status: A\nX-Keywords:\nSubject: one\n\none\n\n\
                  From x Thu Jan  1 00:00:01 1970\nStatus: O\nSubject: two\n\ntwo\n";
    std::fs::write(&mbox, second).expect("write");
    let again = inst.ok(&["import", "mbox", bob, mbox_arg], "");
    assert!(again.contains("imported 0 message(s)"), "{again}");
    assert!(
        again.contains("(2 with flags changed at the source, updated)"),
        "{again}"
    );
    let resynced = messages(&store, bob).await;
    assert_eq!(resynced.len(), 2, "found again, not imported twice");
    assert_eq!(
        resynced[0].0, imported[0].0,
        "the stored bytes stay as imported"
    );
    assert_eq!(
        (resynced[0].1, resynced[0].2.clone()),
        (Flags::SEEN | Flags::ANSWERED, vec![])
    );
    assert_eq!((resynced[1].1, resynced[1].2.clone()), (0, vec![]));
}

/// Malformed Maildir file names import with the flags their valid part gives; an empty file is
/// named and skipped; a 1 GiB message that is one line without a newline is refused (larger than
/// `max_message_size`) without being held in memory or on disk; `From ` lines inside bodies are
/// unquoted as mboxrd says and never split a message unless they are separators.
async fn import_hostile_input(db: Db) {
    let inst = instance(db, &["alice@example.test", "bob@example.test"]).await;
    let addr = "alice@example.test";
    let root = inst.dir.path().join("Maildir");
    maildir_folder(&root);
    let names: [(&[u8], i64); 8] = [
        (b"cur/1.M1.h:2,SZ\x7f!", Flags::SEEN),
        (b"cur/2.M2.h:2,SSSS", Flags::SEEN),
        (b"cur/3.M3.h:1,S", 0),
        (b"cur/4.M4.h:2,S:2,F", Flags::FLAGGED),
        (b"cur/5.M5.h\nline:2,R", Flags::ANSWERED),
        (b"cur/6.M6.\xff\xfe:2,S", Flags::SEEN),
        (b"cur/:2,D", Flags::DRAFT),
        (b"cur/7.M7.h:2,abcz", 0),
    ];
    let mut want = Vec::new();
    for (i, (name, flags)) in names.iter().enumerate() {
        let text = format!("Subject: {i}\n\n{i}\n");
        let path = root.join(std::ffi::OsStr::from_bytes(name));
        std::fs::write(&path, &text).expect("write");
        want.push((text.into_bytes(), *flags, Vec::<String>::new()));
    }
    std::fs::write(root.join("cur/8.M8.h:2,S"), "").expect("write");
    std::fs::create_dir(root.join("cur/9.M9.h:2,S")).expect("mkdir");
    let out = inst.run(
        &["import", "maildir", addr, root.to_str().expect("utf-8")],
        "",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("8.M8.h:2,S: corrupt message file: the file is empty"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 8 message(s)"));
    let mut got = messages(&inst.db.open().await, addr).await;
    got.sort();
    want.sort();
    assert_eq!(got, want);

    // One message, then one whose single line runs for 1 GiB to the end of the file (a hole:
    // no disk space used).
    let huge = inst.dir.path().join("huge");
    let head = b"From x Thu Jan  1 00:00:00 1970\nSubject: before\n\nok\n\n\
                 From x Thu Jan  1 00:00:01 1970\nSubject: huge\n\n";
    std::fs::write(&huge, head).expect("write");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&huge)
        .expect("open");
    file.set_len(head.len() as u64 + (1 << 30)).expect("extend");
    drop(file);
    let (status, stderr, peak_kib) = run_measured(
        &inst,
        &[
            "import",
            "mbox",
            "bob@example.test",
            huge.to_str().expect("utf-8"),
        ],
    );
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "huge: message 2: the message is 1073741839 bytes, larger than max_message_size"
        ),
        "{stderr}"
    );
    assert!(
        peak_kib < 200 * 1024,
        "peak RSS {peak_kib} KiB reading a 1 GiB line"
    );
    let store = inst.db.open().await;
    let user = store
        .user("bob@example.test")
        .await
        .expect("user")
        .expect("exists");
    let folder = store
        .mailbox(user.id, "huge")
        .await
        .expect("mailbox")
        .expect("exists");
    let list = store.list_messages(&folder).await.expect("list");
    assert_eq!(list.len(), 1);
    let before = store.message_raw(&folder, list[0].uid).await.expect("raw");
    assert_eq!(before.expect("raw"), b"Subject: before\n\nok\n");

    // `From ` inside bodies (mboxrd): quoted ones lose one `>`, unquoted ones without a date and
    // `From:` stay as they are; only a `From ` line with a date separates.
    let quoting = inst.dir.path().join("quoting");
    std::fs::write(
        &quoting,
        "From a@b Mon Dec  7 01:02:03 2026\nSubject: quoting\n\n>From start\n>>From twice\n\
         >>>From thrice\nFrom: not a separator\nFrom nobody without a date\n From indented\n\
         >From x Mon Dec  7 01:02:03 2026\n\nFrom b@c Mon Dec  7 01:02:04 2026\nSubject: second\n\nx\n",
    )
    .expect("write");
    inst.ok(
        &[
            "import",
            "mbox",
            "bob@example.test",
            quoting.to_str().expect("utf-8"),
        ],
        "",
    );
    let folder = store
        .mailbox(user.id, "quoting")
        .await
        .expect("mailbox")
        .expect("exists");
    let list = store.list_messages(&folder).await.expect("list");
    assert_eq!(list.len(), 2);
    let first = store
        .message_raw(&folder, list[0].uid)
        .await
        .expect("raw")
        .expect("raw");
    assert_eq!(
        String::from_utf8_lossy(&first),
        "Subject: quoting\n\nFrom start\n>From twice\n>>From thrice\nFrom: not a separator\n\
         From nobody without a date\n From indented\nFrom x Mon Dec  7 01:02:03 2026\n"
    );
}

/// Runs a CLI command and returns its exit status, stderr and peak resident set size (KiB, from
/// `wait4`'s rusage of that child alone).
#[expect(
    clippy::zombie_processes,
    reason = "the child is reaped by wait4, which std's wait cannot give the rusage of"
)]
fn run_measured(inst: &Instance, args: &[&str]) -> (std::process::ExitStatus, String, i64) {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    let mut child = inst
        .cli(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it for the child we spawned.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child by its pid; status and usage point to live locals.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32, "wait4");
    (
        std::process::ExitStatus::from_raw(status),
        stderr,
        usage.ru_maxrss,
    )
}
