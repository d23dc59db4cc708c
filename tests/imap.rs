//! End-to-end IMAP tests against the real binary on SQLite and PostgreSQL: Python imaplib scripts
//! under tests/imap/ cover every command, IDLE between sessions, the fixture corpus's ENVELOPE and
//! BODYSTRUCTURE, isolation between users and the security rules; mbsync syncs both ways.

mod common;

use std::process::{Command, Stdio};

use common::{imap_script, imap_script_command, repo_path, Db, Instance, Server};
use postern_store::{BlobSource, Incoming, Store};

both_backends!(
    imap_commands,
    imap_idle_between_sessions,
    imap_corpus_envelope_and_bodystructure,
    imap_isolation_between_users,
    imap_security,
    imap_mbsync_both_ways,
    imap_large_append_is_streamed,
    imap_command_limits,
    imap_subscriptions,
    imap_compliance,
    imap_fetch_is_streamed,
    imap_search_index,
    imap_extensions,
    imap_compress,
    imap_search_context,
    imap_urlauth,
    imap_notify,
    imap_qresync,
);

/// IMAP settings for tests: small literal limit.
const IMAP_CONFIG: &str = "[imap]\nmax_message_size = 1048576\n";

/// An instance with IMAP on both ports, domain example.test and the given users (password
/// "password"; alice has a 1 MiB quota).
async fn instance(db: Db, users: &[&str], extra: &str) -> (Instance, Server) {
    instance_with(db, users, &format!("{IMAP_CONFIG}{extra}")).await
}

/// Like [`instance`] with the whole extra configuration given (alice has a 1 MiB quota, dave
/// 4 MiB).
async fn instance_with(db: Db, users: &[&str], config: &str) -> (Instance, Server) {
    let inst = Instance::new(db, &["imap", "imaps"], config).await;
    inst.ok(&["domain", "add", "example.test"], "");
    for u in users {
        let mut args = vec!["user", "add", u];
        if u.starts_with("alice") {
            args.extend(["--quota", "1M"]);
        } else if u.starts_with("dave") {
            args.extend(["--quota", "4M"]);
        }
        inst.ok(&args, "password\n");
    }
    let server = inst.start();
    (inst, server)
}

/// Delivers `raw` to the user's INBOX the way SMTP does.
async fn deliver(store: &Store, address: &str, raw: &[u8]) {
    let user = store.user(address).await.unwrap().unwrap();
    let outcome = store
        .accept(Incoming {
            raw: BlobSource::Bytes(raw),
            internal_date: 1_700_000_000,
            local: &[postern_store::LocalCopy::new(user.id, "INBOX")],
            sender: "sender@example.org",
            remote: &[],
            remote_dsn: &[],
            expires_at: i64::MAX,
        })
        .await
        .unwrap();
    assert_eq!(outcome.local.len(), 1);
}

async fn imap_commands(db: Db) {
    let (_inst, server) = instance(db, &["alice@example.test"], "").await;
    imap_script(&server, "commands.py", &[]);
    assert!(server.stop().success());
}

async fn imap_idle_between_sessions(db: Db) {
    let (_inst, server) = instance(db, &["alice@example.test"], "").await;
    imap_script(&server, "idle.py", &[]);
}

async fn imap_corpus_envelope_and_bodystructure(db: Db) {
    let (inst, server) = instance(db, &["alice@example.test"], "").await;
    let store = Store::open(&inst.db.url).await.unwrap();
    let dir = repo_path("tests/fixtures/mail");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in &files {
        deliver(&store, "alice@example.test", &std::fs::read(f).unwrap()).await;
    }
    store.close().await;
    imap_script(
        &server,
        "corpus.py",
        &[("FIXTURES", dir.display().to_string())],
    );
}

/// LIST wildcards, CREATE depth, SEARCH size and sequence numbers are bounded (issue 12).
async fn imap_command_limits(db: Db) {
    let (_inst, server) = instance(db, &["alice@example.test"], "").await;
    imap_script(&server, "limits.py", &[]);
}

/// Subscriptions are names that outlive mailboxes: CREATE/DELETE leave them alone, LSUB `%`
/// rule, `\NonExistent` in LIST (SUBSCRIBED) (RFC 3501 §6.3.6-9, RFC 5258 §3.1).
async fn imap_subscriptions(db: Db) {
    let (_inst, server) = instance(db, &["alice@example.test"], "").await;
    imap_script(&server, "subscribe.py", &[]);
}

/// SEARCH text keys match decoded text from the search index, header FETCHes read only the
/// header block and return the same bytes (issue 12).
async fn imap_search_index(db: Db) {
    let (_inst, server) = instance(db, &["alice@example.test"], "").await;
    imap_script(&server, "search_index.py", &[]);
}

/// MULTIAPPEND (RFC 3502), BINARY (RFC 3516), SEARCHRES (RFC 5182) and CATENATE (RFC 4469),
/// hostile sets, URLs and literal8s included (issue 12).
async fn imap_extensions(db: Db) {
    let (_inst, server) = instance(db, &["alice@example.test"], "").await;
    imap_script(&server, "extensions.py", &[]);
    assert!(server.stop().success());
}

/// CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267): live searches follow other sessions' changes,
/// PARTIAL, CANCELUPDATE, and thousands of updating searches meet the per-session cap (issue 12).
async fn imap_search_context(db: Db) {
    let (_inst, server) = instance(db, &["alice@example.test"], "").await;
    imap_script(&server, "search_context.py", &[]);
    assert!(server.stop().success());
}

/// URLAUTH (RFC 4467): URLs only for one's own mailboxes, forged or altered tokens, access
/// identifiers, expiry and RESETKEY between two users (issue 12).
async fn imap_urlauth(db: Db) {
    let (_inst, server) = instance(db, &["alice@example.test", "bob@example.test"], "").await;
    imap_script(&server, "urlauth.py", &[]);
    assert!(server.stop().success());
}

/// NOTIFY (RFC 5465): pushes between commands, MailboxName and SubscriptionChange, MessageNew's
/// FETCH of new messages (§5.2, a flood of them too), BADEVENT, BAD fetch attributes and the
/// bounds on what a session registers (issue 12).
async fn imap_notify(db: Db) {
    let (_inst, server) = instance(db, &["alice@example.test"], "").await;
    imap_script(&server, "notify.py", &[]);
    assert!(server.stop().success());
}

/// QRESYNC (RFC 7162 §3.2): SELECT resynchronization, VANISHED for expunges and in UID FETCH.
async fn imap_qresync(db: Db) {
    let (_inst, server) = instance(db, &["alice@example.test"], "").await;
    imap_script(&server, "qresync.py", &[]);
    assert!(server.stop().success());
}

/// COMPRESS=DEFLATE (RFC 4978) over TLS, pipelining across the switch, a decompression bomb and
/// corrupt DEFLATE data (issue 12).
async fn imap_compress(db: Db) {
    let (_inst, server) = instance(db, &["alice@example.test"], "").await;
    imap_script(
        &server,
        "compress.py",
        &[("SERVER_PID", server.pid().to_string())],
    );
    assert!(server.stop().success());
}

/// Smaller RFC 3501 points imaptest checks: invalid modified UTF-7 names get NO, EXAMINE's RECENT
/// agrees with STATUS.
async fn imap_compliance(db: Db) {
    let (_inst, server) = instance(db, &["alice@example.test"], "").await;
    imap_script(&server, "compliance.py", &[]);
}

async fn imap_isolation_between_users(db: Db) {
    let (_inst, server) = instance(db, &["alice@example.test", "bob@example.test"], "").await;
    imap_script(&server, "isolation.py", &[]);
}

async fn imap_security(db: Db) {
    let (_inst, server) = instance(
        db,
        &["alice@example.test"],
        "[login]\nfailures_per_address = 4\n",
    )
    .await;
    imap_script(&server, "security.py", &[]);
}

/// APPENDs of about 5 MiB (synchronizing and LITERAL+) are streamed to a spool file and stored in
/// chunks; what the script appended is all the database holds afterwards (the refused ones left
/// no blob and no chunk behind) and no spool file is left over.
async fn imap_large_append_is_streamed(db: Db) {
    let (inst, server) = instance_with(
        db,
        &["carol@example.test", "dave@example.test"],
        "[imap]\nmax_message_size = 62914560\n",
    )
    .await;
    imap_script(&server, "large_append.py", &[]);
    // Two 5,243,000-byte messages in 6 chunks each, and one 300,000-byte message inline.
    assert_eq!(inst.db.count_rows("blobs").await, 3, "{}", server.log());
    assert_eq!(inst.db.count_rows("blob_chunks").await, 12);
    let spool = inst.data_dir().join("spool");
    let left: Vec<_> = std::fs::read_dir(&spool).unwrap().collect();
    assert!(left.is_empty(), "spool files left over: {left:?}");
    assert!(server.stop().success());
}

/// FETCH 1:* (BODY.PEEK[]) over 128 MiB of mail, read by a slow client, is written message by
/// message, and SEARCH BODY/TEXT reads it a batch at a time: the server's peak RSS (VmHWM) grows by
/// far less than what it sends or searches.
async fn imap_fetch_is_streamed(db: Db) {
    let (inst, server) = instance_with(
        db,
        &["erin@example.test"],
        "[imap]\nmax_message_size = 4194304\n",
    )
    .await;
    let store = Store::open(&inst.db.url).await.unwrap();
    let count = 64;
    for n in 0..count {
        let line = format!("message {n:04} ").repeat(7) + "\r\n";
        let body = line.repeat(2 * 1024 * 1024 / line.len());
        let raw = format!("Subject: big {n}\r\nFrom: a@example.org\r\n\r\n{body}");
        deliver(&store, "erin@example.test", raw.as_bytes()).await;
    }
    store.close().await;
    imap_script(
        &server,
        "fetch_stream.py",
        &[
            ("SERVER_PID", server.pid().to_string()),
            ("COUNT", count.to_string()),
        ],
    );
    assert!(server.stop().success());
}

/// A second process (this test, with its own Store) appends; the server's IDLE session sees it
/// through PostgreSQL LISTEN/NOTIFY, without polling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_imap_idle_sees_other_process() {
    use std::io::BufRead;
    let (inst, server) = instance(Db::Postgres, &["alice@example.test"], "").await;
    let mut child = imap_script_command(&server, "idle_wait.py", &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "idling\n", "{}", server.log());
    let store = Store::open(&inst.db.url).await.unwrap();
    deliver(
        &store,
        "alice@example.test",
        b"Subject: from afar\r\n\r\nhi\r\n",
    )
    .await;
    let out = child.wait_with_output().unwrap();
    line.clear();
    stdout.read_line(&mut line).unwrap();
    assert!(
        out.status.success() && line == "ok\n",
        "{line}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
}

/// Runs mbsync with `config`; returns its stdout+stderr.
fn mbsync(config: &std::path::Path, dir: &std::path::Path) -> String {
    let out = Command::new("mbsync")
        .arg("-c")
        .arg(config)
        .arg("-a")
        .env("HOME", dir)
        .output()
        .expect("run mbsync (isync)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "mbsync failed:\n{text}");
    text
}

async fn imap_mbsync_both_ways(db: Db) {
    let (inst, server) = instance(db, &["alice@example.test"], "").await;
    let store = Store::open(&inst.db.url).await.unwrap();
    deliver(
        &store,
        "alice@example.test",
        b"From: a@example.org\r\nSubject: server side\r\nMessage-ID: <s1@example.org>\r\n\r\nfrom the server\r\n",
    )
    .await;
    let dir = inst.dir.path().join("mbsync");
    let maildir = dir.join("Mail");
    std::fs::create_dir_all(&maildir).unwrap();
    let config = dir.join("mbsyncrc");
    std::fs::write(
        &config,
        format!(
            "IMAPAccount postern\nHost 127.0.0.1\nPort {}\nUser alice@example.test\nPass password\n\
             SSLType IMAPS\nCertificateFile {}\n\n\
             IMAPStore remote\nAccount postern\n\n\
             MaildirStore local\nPath {}/\nInbox {}/INBOX\nSubFolders Verbatim\n\n\
             Channel sync\nFar :remote:\nNear :local:\nPatterns *\nCreate Both\nExpunge Both\n\
             SyncState *\nSync All\n",
            server.addr("imaps").port(),
            inst.data_dir().join("tls/cert.pem").display(),
            maildir.display(),
            maildir.display(),
        ),
    )
    .unwrap();
    mbsync(&config, &dir);
    let inbox_new = maildir.join("INBOX/new");
    let inbox_cur = maildir.join("INBOX/cur");
    let pulled: Vec<_> = std::fs::read_dir(&inbox_new)
        .unwrap()
        .chain(std::fs::read_dir(&inbox_cur).unwrap())
        .collect();
    assert_eq!(pulled.len(), 1, "server message pulled");
    // A message created locally goes up.
    std::fs::write(
        maildir.join("INBOX/new/1700000000.local.host"),
        "From: me@example.test\r\nSubject: local side\r\nMessage-ID: <l1@example.test>\r\n\r\nfrom the client\r\n",
    )
    .unwrap();
    let second = mbsync(&config, &dir);
    // The server's copy was marked seen by the first run's flag sync or stays unseen; either way
    // both messages are on both sides now.
    let user = store.user("alice@example.test").await.unwrap().unwrap();
    let inbox = store.mailbox(user.id, "INBOX").await.unwrap().unwrap();
    assert_eq!(
        store.list_messages(&inbox).await.unwrap().len(),
        2,
        "{second}"
    );
    // A third run finds nothing to do: neither side changes.
    let snapshot = |dir: &std::path::Path| {
        let mut names = Vec::new();
        for sub in ["new", "cur"] {
            for e in std::fs::read_dir(dir.join(sub)).unwrap() {
                names.push(e.unwrap().file_name());
            }
        }
        names.sort();
        names
    };
    let local_before = snapshot(&maildir.join("INBOX"));
    let server_before = store.list_messages(&inbox).await.unwrap();
    mbsync(&config, &dir);
    assert_eq!(snapshot(&maildir.join("INBOX")), local_before);
    assert_eq!(store.list_messages(&inbox).await.unwrap(), server_before);
    store.close().await;
}
