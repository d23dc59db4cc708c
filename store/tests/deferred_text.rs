//! The body text of a delivered message is indexed after the commit (migration 0033): SEARCH
//! finds it before the background indexer has written it (the search indexes its mailbox's
//! pending messages first, and only them), the indexer empties the backlog, and an expunged
//! message leaves nothing pending. Each test runs on SQLite and on PostgreSQL (`DATABASE_URL`).

use std::collections::HashSet;
use std::time::{Duration, Instant};

mod common;

use common::store_with_user;

use postern_store::testing::TestDb;
use postern_store::{BlobSource, Flags, Incoming, LocalCopy, Mailbox, Store, TextKey};

both_backends!(
    delivered_text_is_indexed_after_the_commit,
    search_indexes_the_pending_messages_of_its_mailbox,
    expunged_pending_messages_leave_nothing_behind,
);

/// A quoted-printable body and a base64 attachment whose decoded text is what SEARCH matches.
const ENCODED: &[u8] = b"From: carol@example.test\r\n\
To: alice@example.test\r\n\
Subject: =?utf-8?q?K=C3=B6ln?=\r\n\
X-Custom: tracking-7731\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Die Cr=C3=A8me br=C3=BBl=C3=A9e.\r\n\
--b1\r\n\
Content-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
SGVsbG9Xb3JsZC1iaW5hcnk=\r\n\
--b1--\r\n";

/// A plain message of about 100 KiB whose one distinctive word is near its end.
fn large() -> Vec<u8> {
    let mut raw = b"From: dave@example.test\r\nSubject: report\r\n\r\n".to_vec();
    for n in 0..1300 {
        raw.extend_from_slice(
            format!("{n:05} the quick brown fox jumps over the dog\r\n").as_bytes(),
        );
    }
    raw.extend_from_slice(b"closing zanzibar line\r\n");
    raw
}

async fn deliver(store: &Store, copies: &[LocalCopy], raw: &[u8]) {
    store
        .accept(Incoming {
            raw: BlobSource::Bytes(raw),
            internal_date: 1,
            local: copies,
            sender: "sender@remote.test",
            remote: &[],
            remote_dsn: &[],
            expires_at: i64::MAX,
        })
        .await
        .unwrap();
}

async fn uids(store: &Store, mailbox: &Mailbox, key: TextKey, needle: &str) -> Vec<i64> {
    let found: HashSet<i64> = store.search_text(mailbox, key, needle).await.unwrap();
    let mut v: Vec<i64> = found.into_iter().collect();
    v.sort_unstable();
    v
}

/// Waits (60 s at most) until no blob waits for its body text.
async fn backlog_done(db: &TestDb) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while db.count_rows("blob_text_pending").await > 0 {
        assert!(Instant::now() < deadline, "the indexer left blobs pending");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Turns every indexed blob back into a pending one, as a delivery leaves it.
async fn make_pending(db: &TestDb) {
    if db.is_postgres() {
        db.execute("UPDATE blob_index SET body_text = ''").await;
    } else {
        db.execute("DELETE FROM blob_text").await;
    }
    db.execute("INSERT INTO blob_text_pending (hash) SELECT hash FROM blob_index")
        .await;
}

/// What a search of `inbox` finds, whichever of the search and the indexer wrote the text.
async fn check_searches(store: &Store, inbox: &Mailbox) {
    use TextKey::*;
    for (key, needle, want) in [
        (Body, "crème brûlée", vec![1]),
        (Body, "CRÈME", vec![1]),
        (Body, "zanzibar", vec![2]),
        (Body, "fox jumps", vec![2]),
        (Body, "helloworld", vec![]),
        (Body, "sgvsbg9", vec![]),
        (Body, "tracking-7731", vec![]),
        (Text, "tracking-7731", vec![1]),
        (Text, "zanzibar", vec![2]),
        (Text, "br", vec![1, 2]),
        (Subject, "köln", vec![1]),
        (Body, "", vec![1, 2]),
    ] {
        assert_eq!(
            uids(store, inbox, key, needle).await,
            want,
            "{key:?} {needle:?}"
        );
    }
}

async fn delivered_text_is_indexed_after_the_commit(db: &TestDb) {
    let (store, user) = store_with_user(db, 0).await;
    let inbox = store.mailbox(user, "INBOX").await.unwrap().unwrap();
    let copy = [LocalCopy::new(user, "INBOX")];
    deliver(&store, &copy, ENCODED).await;
    deliver(&store, &copy, &large()).await;
    // Found at once, pending or not.
    check_searches(&store, &inbox).await;
    backlog_done(db).await;
    if !db.is_postgres() {
        assert_eq!(db.count_rows("blob_text").await, 2);
    }
    check_searches(&store, &inbox).await;
    // FETCH of a header section reads the row written with the message.
    let headers = store.message_headers(&inbox, &[2]).await.unwrap();
    assert!(headers[0].1.ends_with(b"Subject: report\r\n\r\n"));
}

async fn search_indexes_the_pending_messages_of_its_mailbox(db: &TestDb) {
    let (store, user) = store_with_user(db, 0).await;
    let inbox = store.mailbox(user, "INBOX").await.unwrap().unwrap();
    let archive = store.mailbox(user, "Archive").await.unwrap().unwrap();
    // Stored with their texts (APPEND starts no indexer), then made pending as deliveries leave
    // them: only the search can index them now.
    let none = Flags::default();
    store.append(&inbox, ENCODED, &none, 1).await.unwrap();
    store.append(&inbox, &large(), &none, 1).await.unwrap();
    let note = b"Subject: old\r\n\r\nan archived note\r\n";
    store.append(&archive, note, &none, 1).await.unwrap();
    make_pending(db).await;
    assert_eq!(db.count_rows("blob_text_pending").await, 3);
    check_searches(&store, &inbox).await;
    assert_eq!(
        db.count_rows("blob_text_pending").await,
        1,
        "the other mailbox's message stays pending"
    );
    assert_eq!(
        uids(&store, &archive, TextKey::Body, "archived note").await,
        vec![1]
    );
    assert_eq!(db.count_rows("blob_text_pending").await, 0);
    // The backlog at start covers pending texts too.
    make_pending(db).await;
    assert_eq!(store.index_backlog().await.unwrap(), 3);
    assert_eq!(db.count_rows("blob_text_pending").await, 0);
    check_searches(&store, &inbox).await;
}

async fn expunged_pending_messages_leave_nothing_behind(db: &TestDb) {
    let (store, user) = store_with_user(db, 0).await;
    let inbox = store.mailbox(user, "INBOX").await.unwrap().unwrap();
    let deleted = LocalCopy {
        user_id: user,
        folder: "INBOX".into(),
        flags: Flags {
            system: Flags::DELETED,
            ..Flags::default()
        },
    };
    for n in 0..20 {
        let raw = format!("Subject: gone {n}\r\n\r\nsoon expunged {n}\r\n");
        deliver(&store, std::slice::from_ref(&deleted), raw.as_bytes()).await;
    }
    // Expunged while the indexer may be writing their texts.
    assert_eq!(store.expunge(&inbox, None).await.unwrap().len(), 20);
    backlog_done(db).await;
    assert_eq!(db.count_rows("blob_index").await, 0);
    assert!(uids(&store, &inbox, TextKey::Body, "expunged")
        .await
        .is_empty());
    deliver(
        &store,
        &[LocalCopy::new(user, "INBOX")],
        b"Subject: kept\r\n\r\nstill here\r\n",
    )
    .await;
    assert_eq!(uids(&store, &inbox, TextKey::Body, "still").await, vec![21]);
}
