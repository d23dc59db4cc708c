//! Large messages stored in chunks and appended from a spool file, on SQLite and on PostgreSQL
//! (`DATABASE_URL`): byte-identical reads through every reader, dedup, quota, and deletion of the
//! chunks with the last reference.

mod common;

use common::store_with_user;

use postern_store::testing::TestDb;
use postern_store::{BlobSource, StoredBytes};
use postern_store::{Content, FlagOp, Flags, Incoming, Spool, StoreError, BLOB_CHUNK_SIZE};

both_backends!(
    spooled_message_reads_back_identical,
    identical_spooled_messages_are_stored_once,
    expunge_deletes_chunks,
    small_messages_stay_inline,
    over_quota_spooled_append_leaves_nothing,
    large_smtp_message_is_chunked_for_the_queue,
);

/// A MIME message of about `size` bytes: a text part and a base64 attachment whose lines differ,
/// so chunk boundaries fall at arbitrary places.
fn big_message(size: usize, seed: u8) -> Vec<u8> {
    let mut m = format!(
        "From: Alice <alice@example.test>\r\nTo: bob@example.test\r\nSubject: big {seed}\r\n\
         Message-ID: <big{seed}@example.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nSee attachment.\r\n\
         --b\r\nContent-Type: application/octet-stream; name=\"data.bin\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n"
    )
    .into_bytes();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut i = usize::from(seed);
    while m.len() < size {
        for _ in 0..76 {
            m.push(alphabet[i % 64]);
            i = i.wrapping_mul(31).wrapping_add(7);
        }
        m.extend_from_slice(b"\r\n");
    }
    m.extend_from_slice(b"--b--\r\n");
    m
}

async fn spool_of(bytes: &[u8]) -> Spool {
    let mut spool = Spool::create(None).await.unwrap();
    // Written in uneven pieces, as a network literal arrives.
    for piece in bytes.chunks(65_537) {
        spool.write(piece).await.unwrap();
    }
    assert_eq!(spool.len(), bytes.len() as u64);
    spool
}

async fn spooled_message_reads_back_identical(db: &TestDb) {
    let (store, alice) = store_with_user(db, 0).await;
    let inbox = store.mailbox(alice, "INBOX").await.unwrap().unwrap();
    let raw = big_message(3 * 1024 * 1024, 1);
    let flags = Flags::system(Flags::SEEN);
    let uid = store
        .append_spooled(&inbox, spool_of(&raw).await, &flags, 1_700_000_000)
        .await
        .unwrap();
    assert_eq!(uid, 1);
    assert_eq!(
        db.count_rows("blob_chunks").await,
        4,
        "3 MiB in 1 MiB chunks"
    );
    let meta = store.list_messages(&inbox).await.unwrap();
    assert_eq!(meta[0].size, raw.len() as i64);
    assert_eq!(meta[0].flags, flags);
    assert_eq!(meta[0].internal_date, 1_700_000_000);
    assert!(store.message_raw(&inbox, uid).await.unwrap().unwrap() == raw);
    let details = store.message_details(&inbox, &[uid], true).await.unwrap();
    assert!(details[0].raw.as_deref() == Some(&raw[..]));
    let parsed = &details[0].parsed;
    assert_eq!(parsed.envelope.subject.as_deref(), Some("big 1"));
    let Content::Multipart(parts) = &parsed.body.content else {
        panic!("multipart expected: {:?}", parsed.body);
    };
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[1].encoding, "BASE64");
    assert_eq!(parsed.body.end as usize, raw.len());
    // Without raw bytes, only the stored parse is read.
    let details = store.message_details(&inbox, &[uid], false).await.unwrap();
    assert!(details[0].raw.is_none());
    assert_eq!(&details[0].parsed, parsed);
}

async fn identical_spooled_messages_are_stored_once(db: &TestDb) {
    let (store, alice) = store_with_user(db, 0).await;
    let inbox = store.mailbox(alice, "INBOX").await.unwrap().unwrap();
    let sent = store.mailbox(alice, "Sent").await.unwrap().unwrap();
    let raw = big_message(2 * 1024 * 1024 + 5, 2);
    for mailbox in [&inbox, &inbox, &sent] {
        store
            .append_spooled(mailbox, spool_of(&raw).await, &Flags::default(), 0)
            .await
            .unwrap();
    }
    assert_eq!(db.count_rows("blobs").await, 1);
    assert_eq!(db.count_rows("blob_chunks").await, 3);
    // Each copy is charged to the quota (as IMAP sees sizes), though stored once.
    let used = store
        .user("alice@example.test")
        .await
        .unwrap()
        .unwrap()
        .used_bytes;
    assert_eq!(used, 3 * raw.len() as i64);
    // The same bytes appended from memory share the blob too.
    store
        .append(&sent, &raw, &Flags::default(), 0)
        .await
        .unwrap();
    assert_eq!(db.count_rows("blobs").await, 1);
    assert!(store.message_raw(&sent, 2).await.unwrap().unwrap() == raw);
}

async fn expunge_deletes_chunks(db: &TestDb) {
    let (store, alice) = store_with_user(db, 0).await;
    let inbox = store.mailbox(alice, "INBOX").await.unwrap().unwrap();
    let raw = big_message(3 * 1024 * 1024, 3);
    for _ in 0..2 {
        store
            .append_spooled(&inbox, spool_of(&raw).await, &Flags::default(), 0)
            .await
            .unwrap();
    }
    let deleted = Flags::system(Flags::DELETED);
    store
        .set_flags(&inbox, &[1], FlagOp::Add, &deleted)
        .await
        .unwrap();
    assert_eq!(store.expunge(&inbox, None).await.unwrap(), [1]);
    assert_eq!(
        db.count_rows("blob_chunks").await,
        4,
        "UID 2 still needs them"
    );
    store
        .set_flags(&inbox, &[2], FlagOp::Add, &deleted)
        .await
        .unwrap();
    assert_eq!(store.expunge(&inbox, None).await.unwrap(), [2]);
    assert_eq!(db.count_rows("blobs").await, 0);
    assert_eq!(db.count_rows("blob_chunks").await, 0);
    // Removing a user (and its mailboxes) deletes chunks as well.
    store
        .append_spooled(&inbox, spool_of(&raw).await, &Flags::default(), 0)
        .await
        .unwrap();
    assert_eq!(db.count_rows("blob_chunks").await, 4);
    store.remove_user("alice@example.test").await.unwrap();
    assert_eq!(db.count_rows("blobs").await, 0);
    assert_eq!(db.count_rows("blob_chunks").await, 0);
}

async fn small_messages_stay_inline(db: &TestDb) {
    let (store, alice) = store_with_user(db, 0).await;
    let inbox = store.mailbox(alice, "INBOX").await.unwrap().unwrap();
    let raw = big_message(BLOB_CHUNK_SIZE - 100, 4);
    assert!(raw.len() <= BLOB_CHUNK_SIZE);
    store
        .append_spooled(&inbox, spool_of(&raw).await, &Flags::default(), 0)
        .await
        .unwrap();
    store
        .append(&inbox, b"Subject: tiny\r\n\r\nhi\r\n", &Flags::default(), 0)
        .await
        .unwrap();
    assert_eq!(db.count_rows("blobs").await, 2);
    assert_eq!(db.count_rows("blob_chunks").await, 0);
    assert!(store.message_raw(&inbox, 1).await.unwrap().unwrap() == raw);
    // An empty spool is an empty message, stored inline.
    store
        .append_spooled(&inbox, spool_of(b"").await, &Flags::default(), 0)
        .await
        .unwrap();
    assert_eq!(store.message_raw(&inbox, 3).await.unwrap().unwrap(), b"");
}

async fn over_quota_spooled_append_leaves_nothing(db: &TestDb) {
    let (store, alice) = store_with_user(db, 2 * 1024 * 1024).await;
    let inbox = store.mailbox(alice, "INBOX").await.unwrap().unwrap();
    let raw = big_message(3 * 1024 * 1024, 5);
    let result = store
        .append_spooled(&inbox, spool_of(&raw).await, &Flags::default(), 0)
        .await;
    assert!(
        matches!(result, Err(StoreError::OverQuota(_))),
        "{result:?}"
    );
    assert_eq!(db.count_rows("messages").await, 0);
    assert_eq!(db.count_rows("blobs").await, 0);
    assert_eq!(db.count_rows("blob_chunks").await, 0);
    let user = store.user("alice@example.test").await.unwrap().unwrap();
    assert_eq!(user.used_bytes, 0);
}

async fn large_smtp_message_is_chunked_for_the_queue(db: &TestDb) {
    let (store, alice) = store_with_user(db, 0).await;
    let raw = big_message(3 * 1024 * 1024 + 17, 6);
    let remote = vec!["z@remote.test".to_owned()];
    let accepted = store
        .accept(Incoming {
            raw: BlobSource::Bytes(&raw),
            internal_date: 0,
            local: &[postern_store::LocalCopy::new(alice, "INBOX")],
            sender: "alice@example.test",
            remote: &remote,
            remote_dsn: &[],
            expires_at: i64::MAX,
        })
        .await
        .unwrap();
    assert_eq!(db.count_rows("blob_chunks").await, 4);
    let id = accepted.queued[0];
    // A chunked blob to send comes out into a spool file, one chunk at a time.
    match store.queue_message(id, None).await.unwrap() {
        StoredBytes::File(file) => {
            assert_eq!(file.len(), raw.len() as u64);
            assert!(file.map().unwrap().unwrap()[..] == raw[..]);
        }
        StoredBytes::Memory(_) => panic!("a chunked blob to send is not spooled"),
    }
    let inbox = store.mailbox(alice, "INBOX").await.unwrap().unwrap();
    assert!(store.message_raw(&inbox, 1).await.unwrap().unwrap() == raw);
    store
        .set_flags(&inbox, &[1], FlagOp::Add, &Flags::system(Flags::DELETED))
        .await
        .unwrap();
    store.expunge(&inbox, None).await.unwrap();
    assert_eq!(
        db.count_rows("blob_chunks").await,
        4,
        "the queue still needs them"
    );
    store.remove_queue(id).await.unwrap();
    assert_eq!(db.count_rows("blob_chunks").await, 0);
}
