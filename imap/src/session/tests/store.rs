//! Session tests over the real store (SQLite, PostgreSQL where named): login with its limiter and
//! password hashes, changes from the store's bus as the shell subscribes to it, a change made
//! through another store handle.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use imap_codec::decode::Decoder;
use imap_codec::encode::Encoder;
use imap_codec::{CommandCodec, ResponseCodec};
use postern_store::testing::TestDb;
use postern_store::{Change, Flags, LoginConfig, Store};
use tokio::sync::broadcast;

use crate::config::ImapConfig;
use crate::session::{Next, Session};

/// A session as the shell runs it: with its subscription to the store's change bus from login on.
struct Client {
    store: Store,
    s: Session,
    changes: Option<broadcast::Receiver<Change>>,
}

async fn setup(db: &TestDb, tls: bool) -> (Store, Client) {
    let limits = LoginConfig {
        failures_per_address: 3,
        ..LoginConfig::default()
    };
    let store = Store::open_with(&db.url, limits).await.unwrap();
    store.add_domain("example.test").await.unwrap();
    store.add_user("alice@example.test", "pw", 0).await.unwrap();
    store.add_user("bob@example.test", "pw", 0).await.unwrap();
    let session = Session::new(
        store.clone(),
        Arc::new(ImapConfig::default()),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        tls,
        postern_store::unix_now,
    );
    let client = Client {
        store: store.clone(),
        s: session,
        changes: None,
    };
    (store, client)
}

async fn run(c: &mut Client, line: &str) -> (String, Next) {
    let bytes = format!("{line}\r\n").into_bytes();
    let (rest, cmd) = CommandCodec::default().decode(&bytes).expect("parses");
    assert!(rest.is_empty());
    let s = &mut c.s;
    let mut reply = s.command(cmd, &mut c.changes).await;
    if c.changes.is_none() && s.user().is_some() {
        c.changes = Some(c.store.subscribe());
    }
    let mut text = String::new();
    if reply.next == Next::Fetch {
        while let Some(batch) = s.fetch_batch().await {
            text.push_str(&String::from_utf8(batch).unwrap());
        }
        reply = s.fetch_done(&mut c.changes).await;
    }
    let codec = ResponseCodec::default();
    for r in &reply.responses {
        text.push_str(&String::from_utf8(codec.encode(r).dump()).unwrap());
    }
    (text, reply.next)
}

#[tokio::test]
async fn login_is_refused_without_tls_and_rate_limited() {
    let db = TestDb::sqlite();
    let (_store, mut s) = setup(&db, false).await;
    let (out, _) = run(&mut s, "a CAPABILITY").await;
    assert!(
        out.contains("LOGINDISABLED") && out.contains("STARTTLS"),
        "{out}"
    );
    let (out, _) = run(&mut s, "b LOGIN alice@example.test pw").await;
    assert!(out.starts_with("b NO [PRIVACYREQUIRED]"), "{out}");
    let (out, next) = run(&mut s, "c STARTTLS").await;
    assert!(out.starts_with("c OK"), "{out}");
    assert_eq!(next, Next::StartTls);
    s.s.tls_established();
    for i in 0..3 {
        let (out, _) = run(&mut s, &format!("d{i} LOGIN alice@example.test wrong")).await;
        assert!(out.contains("AUTHENTICATIONFAILED"), "{out}");
    }
    let (out, _) = run(&mut s, "e LOGIN alice@example.test pw").await;
    assert!(out.contains("UNAVAILABLE"), "locked out: {out}");
}

#[tokio::test]
async fn select_fetch_store_expunge_and_updates() {
    let db = TestDb::sqlite();
    let (store, mut s) = setup(&db, true).await;
    let (out, _) = run(&mut s, "a LOGIN alice@example.test pw").await;
    assert!(out.starts_with("a OK [CAPABILITY"), "{out}");
    let user = store.user("alice@example.test").await.unwrap().unwrap();
    let inbox = store.mailbox(user.id, "INBOX").await.unwrap().unwrap();
    let raw = b"From: Bob <bob@example.test>\r\nSubject: hello\r\n\r\nbody\r\n";
    store
        .append(&inbox, raw, &Flags::default(), 1_700_000_000)
        .await
        .unwrap();

    let (out, _) = run(&mut s, "b SELECT INBOX").await;
    assert!(out.contains("* 1 EXISTS\r\n* 1 RECENT\r\n"), "{out}");
    assert!(
        out.contains("[UNSEEN 1]") && out.contains("b OK [READ-WRITE]"),
        "{out}"
    );
    let (out, _) = run(
        &mut s,
        "c FETCH 1 (UID RFC822.SIZE ENVELOPE BODY.PEEK[TEXT])",
    )
    .await;
    assert!(out.contains(&format!("RFC822.SIZE {}", raw.len())), "{out}");
    assert!(
        out.contains("\"hello\" ((\"Bob\" NIL \"bob\" \"example.test\"))"),
        "{out}"
    );
    assert!(out.contains("BODY[TEXT] {6}\r\nbody\r\n"), "{out}");

    // Another session's append and flag change arrive as untagged responses on NOOP.
    store
        .append(&inbox, raw, &Flags::default(), 1)
        .await
        .unwrap();
    store
        .set_flags(
            &inbox,
            &[1],
            postern_store::FlagOp::Add,
            &Flags::system(Flags::FLAGGED),
        )
        .await
        .unwrap();
    let (out, _) = run(&mut s, "d NOOP").await;
    assert!(out.contains("* 2 EXISTS"), "{out}");
    assert!(
        out.contains("* 1 FETCH (FLAGS (\\Flagged \\Recent) UID 1)"),
        "{out}"
    );

    // EXPUNGE by another session is not reported during FETCH (RFC 3501 §7.4.1), then on NOOP.
    store
        .set_flags(
            &inbox,
            &[1],
            postern_store::FlagOp::Add,
            &Flags::system(Flags::DELETED),
        )
        .await
        .unwrap();
    store.expunge(&inbox, None).await.unwrap();
    let (out, _) = run(&mut s, "e FETCH 1:* (FLAGS)").await;
    assert!(!out.contains("EXPUNGE"), "{out}");
    let (out, _) = run(&mut s, "f NOOP").await;
    assert!(out.contains("* 1 EXPUNGE"), "{out}");
    let (out, _) = run(&mut s, "g UID STORE 2,99 +FLAGS (\\Seen)").await;
    assert!(
        out.contains("* 1 FETCH (FLAGS (\\Seen \\Recent) UID 2)") && out.contains("g OK"),
        "{out}"
    );
}

#[tokio::test]
async fn other_users_mailboxes_do_not_exist() {
    let db = TestDb::sqlite();
    let (store, mut s) = setup(&db, true).await;
    let bob = store.user("bob@example.test").await.unwrap().unwrap();
    store.create_mailbox(bob.id, "Private", None).await.unwrap();
    run(&mut s, "a LOGIN alice@example.test pw").await;
    let (out, _) = run(&mut s, "b SELECT Private").await;
    assert!(out.starts_with("b NO [NONEXISTENT]"), "{out}");
    let (out, _) = run(&mut s, "c LIST \"\" *").await;
    assert!(!out.contains("Private"), "{out}");
}

#[tokio::test]
async fn idle_reports_changes_and_ends_on_done() {
    let db = TestDb::sqlite();
    let (store, mut s) = setup(&db, true).await;
    run(&mut s, "a LOGIN alice@example.test pw").await;
    run(&mut s, "b SELECT INBOX").await;
    let (out, next) = run(&mut s, "c IDLE").await;
    assert_eq!((out.as_str(), next), ("+ idling\r\n", Next::Idle));
    let user = store.user("alice@example.test").await.unwrap().unwrap();
    let inbox = store.mailbox(user.id, "INBOX").await.unwrap().unwrap();
    store
        .append(&inbox, b"Subject: x\r\n\r\n.\r\n", &Flags::default(), 1)
        .await
        .unwrap();
    // As the shell waits: each change received is passed in until one is due.
    let rx = s.changes.as_mut().expect("subscribed at login");
    let change = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
        .await
        .expect("change noticed")
        .expect("bus open");
    s.s.changes(&[change]);
    assert!(s.s.push_due(true));
    let updates = s.s.idle_updates(&mut s.changes).await;
    assert_eq!(
        String::from_utf8_lossy(&updates),
        "* 1 EXISTS\r\n* 1 RECENT\r\n",
        "EXISTS and RECENT"
    );
    let done = s.s.idle_done(&mut s.changes).await;
    assert_eq!(done.next, Next::Continue);
    assert_eq!(done.responses.len(), 1);
}

#[tokio::test]
async fn wrong_state_and_unsupported_commands_are_bad() {
    let db = TestDb::sqlite();
    let (_store, mut s) = setup(&db, true).await;
    let (out, _) = run(&mut s, "a SELECT INBOX").await;
    assert!(out.starts_with("a BAD"), "{out}");
    run(&mut s, "b LOGIN alice@example.test pw").await;
    let (out, _) = run(&mut s, "c FETCH 1 FLAGS").await;
    assert!(out.starts_with("c BAD"), "{out}");
    let (out, _) = run(&mut s, "d SELECT INBOX (QRESYNC (1 1))").await;
    assert!(out.starts_with("d BAD"), "{out}");
}

/// Feeds one AUTHENTICATE data line (given in clear, sent base64) and returns the encoded replies.
async fn auth_line(c: &mut Client, clear: &[u8]) -> (String, Next) {
    use base64::Engine;
    let line = format!(
        "{}\r\n",
        base64::engine::general_purpose::STANDARD.encode(clear)
    );
    let (_, data) = imap_codec::AuthenticateDataCodec::default()
        .decode(line.as_bytes())
        .expect("parses");
    let reply = c.s.authenticate_data(data).await;
    let codec = ResponseCodec::default();
    let text = reply
        .responses
        .iter()
        .map(|r| String::from_utf8(codec.encode(r).dump()).unwrap())
        .collect();
    (text, reply.next)
}

#[tokio::test]
async fn authenticate_plain_and_login() {
    let db = TestDb::sqlite();
    let (_store, mut s) = setup(&db, true).await;
    let (out, _) = run(&mut s, "a CAPABILITY").await;
    assert!(out.contains("AUTH=PLAIN AUTH=LOGIN"), "{out}");
    // LOGIN: "Username:" and "Password:" challenges, then the tagged result.
    let (out, next) = run(&mut s, "b AUTHENTICATE LOGIN").await;
    assert_eq!(
        (out.as_str(), next),
        ("+ VXNlcm5hbWU6\r\n", Next::Authenticate)
    );
    let (out, next) = auth_line(&mut s, b"alice@example.test").await;
    assert_eq!(
        (out.as_str(), next),
        ("+ UGFzc3dvcmQ6\r\n", Next::Authenticate)
    );
    let (out, next) = auth_line(&mut s, b"pw").await;
    assert!(out.starts_with("b OK [CAPABILITY"), "{out}");
    assert_eq!(next, Next::Continue);

    // PLAIN without an initial response; an authzid naming someone else is refused.
    // The database is bound to a name: a temporary would delete its directory at the end of this
    // statement, and any connection the pool opened later failed ("Cannot check logins now").
    let db2 = TestDb::sqlite();
    let (_store, mut s) = setup(&db2, true).await;
    let (out, _) = run(&mut s, "c AUTHENTICATE PLAIN").await;
    assert_eq!(out, "+ \r\n");
    let (out, _) = auth_line(&mut s, b"bob@example.test\0alice@example.test\0pw").await;
    assert!(out.starts_with("c NO [AUTHORIZATIONFAILED]"), "{out}");
    let (out, _) = run(&mut s, "d AUTHENTICATE PLAIN").await;
    assert_eq!(out, "+ \r\n");
    let (out, _) = auth_line(&mut s, b"\0alice@example.test\0pw").await;
    assert!(out.starts_with("d OK"), "{out}");
}

/// A change committed through another store handle (another node, or a PostgreSQL NOTIFY not yet
/// received) is reported on the next NOOP: NOOP looks at the mailbox itself.
async fn noop_sees_a_change_made_elsewhere(db: TestDb) {
    let (store, mut s) = setup(&db, true).await;
    let (out, _) = run(&mut s, "a LOGIN alice@example.test pw").await;
    assert!(out.starts_with("a OK"), "{out}");
    let (out, _) = run(&mut s, "b SELECT INBOX").await;
    assert!(out.contains("* 0 EXISTS"), "{out}");
    let other = db.open().await;
    let user = store.user("alice@example.test").await.unwrap().unwrap();
    let inbox = other.mailbox(user.id, "INBOX").await.unwrap().unwrap();
    other
        .append(&inbox, b"Subject: x\r\n\r\nx\r\n", &Flags::default(), 1)
        .await
        .unwrap();
    let (out, _) = run(&mut s, "c NOOP").await;
    assert!(out.contains("* 1 EXISTS"), "{out}");
    other.expunge(&inbox, None).await.unwrap();
    other
        .set_flags(
            &inbox,
            &[1],
            postern_store::FlagOp::Add,
            &Flags::system(Flags::FLAGGED),
        )
        .await
        .unwrap();
    let (out, _) = run(&mut s, "d CHECK").await;
    assert!(out.contains("* 1 FETCH (FLAGS (\\Flagged"), "{out}");
}

#[tokio::test]
async fn noop_sees_a_change_made_elsewhere_sqlite() {
    noop_sees_a_change_made_elsewhere(TestDb::sqlite()).await;
}

#[tokio::test]
async fn noop_sees_a_change_made_elsewhere_postgres() {
    noop_sees_a_change_made_elsewhere(TestDb::postgres().await).await;
}

/// A FETCH of header fields only reads the stored header blocks batch by batch, the next batch
/// while one is answered (at most 4 MiB of messages per batch: here two messages of 1.5 MiB):
/// every message answers once, in order, with its own fields.
async fn header_fetch_over_several_batches(db: TestDb) {
    let (store, mut s) = setup(&db, true).await;
    let (out, _) = run(&mut s, "a LOGIN alice@example.test pw").await;
    assert!(out.starts_with("a OK"), "{out}");
    let user = store.user("alice@example.test").await.unwrap().unwrap();
    let inbox = store.mailbox(user.id, "INBOX").await.unwrap().unwrap();
    let padding = "0123456789abcdef".repeat(96 * 1024);
    for n in 1..=7 {
        let raw = format!(
            "From: sender{n}@example.test\r\nX-Other: {n}\r\nSubject: message {n}\r\n\
             Content-Type: application/octet-stream\r\n\r\n{padding}\r\n"
        );
        store
            .append(&inbox, raw.as_bytes(), &Flags::default(), 1)
            .await
            .unwrap();
    }
    let (out, _) = run(&mut s, "b SELECT INBOX").await;
    assert!(out.contains("* 7 EXISTS"), "{out}");
    let (out, _) = run(
        &mut s,
        "c UID FETCH 2:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])",
    )
    .await;
    let mut want = String::new();
    for n in 2..=7 {
        let fields = format!("From: sender{n}@example.test\r\nSubject: message {n}\r\n\r\n");
        want.push_str(&format!(
            "* {n} FETCH (UID {n} BODY[HEADER.FIELDS (SUBJECT FROM)] {{{}}}\r\n{fields})\r\n",
            fields.len()
        ));
    }
    want.push_str("c OK FETCH completed\r\n");
    assert_eq!(out, want);
}

#[tokio::test]
async fn header_fetch_over_several_batches_sqlite() {
    header_fetch_over_several_batches(TestDb::sqlite()).await;
}

#[tokio::test]
async fn header_fetch_over_several_batches_postgres() {
    header_fetch_over_several_batches(TestDb::postgres().await).await;
}
