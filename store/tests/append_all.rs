//! Appending several messages in one transaction (IMAP MULTIAPPEND, RFC 3502), on SQLite and on
//! PostgreSQL (`DATABASE_URL`): consecutive UIDs, flags and dates per message, and all-or-nothing
//! when the set does not fit the quota as a whole.

mod common;

use common::store_with_user;

use postern_store::testing::TestDb;
use postern_store::{Flags, NewMessage, StoreError};

both_backends!(
    appends_every_message_in_order,
    over_quota_set_stores_nothing
);

fn message(n: usize, body_len: usize) -> Vec<u8> {
    format!(
        "From: a@example.test\r\nSubject: m{n}\r\n\r\n{}\r\n",
        "x".repeat(body_len)
    )
    .into_bytes()
}

async fn appends_every_message_in_order(db: &TestDb) {
    let (store, alice) = store_with_user(db, 0).await;
    let inbox = store.mailbox(alice, "INBOX").await.unwrap().unwrap();
    let raws: Vec<Vec<u8>> = (0..3).map(|n| message(n, 10)).collect();
    let seen = Flags::system(Flags::SEEN);
    let none = Flags::default();
    let set: Vec<NewMessage> = raws
        .iter()
        .enumerate()
        .map(|(i, raw)| NewMessage {
            raw,
            flags: if i == 1 { &seen } else { &none },
            internal_date: 1_000_000 + i as i64,
        })
        .collect();
    let uids = store.append_all(&inbox, &set).await.unwrap();
    assert_eq!(uids, vec![1, 2, 3]);
    let listed = store.list_messages(&inbox).await.unwrap();
    assert_eq!(listed.len(), 3);
    for (i, m) in listed.iter().enumerate() {
        assert_eq!(m.uid, uids[i]);
        assert_eq!(m.internal_date, 1_000_000 + i as i64);
        assert_eq!(m.flags.system & Flags::SEEN != 0, i == 1);
        assert_eq!(
            store.message_raw(&inbox, m.uid).await.unwrap().unwrap(),
            raws[i]
        );
    }
    let user = store.user("alice@example.test").await.unwrap().unwrap();
    assert_eq!(
        user.used_bytes,
        raws.iter().map(|r| r.len() as i64).sum::<i64>()
    );
    assert_eq!(
        store.append_all(&inbox, &[]).await.unwrap(),
        Vec::<i64>::new()
    );
}

async fn over_quota_set_stores_nothing(db: &TestDb) {
    let (store, alice) = store_with_user(db, 1000).await;
    let inbox = store.mailbox(alice, "INBOX").await.unwrap().unwrap();
    // Each message fits alone; together they do not.
    let raws: Vec<Vec<u8>> = (0..3).map(|n| message(n, 400)).collect();
    let none = Flags::default();
    let set: Vec<NewMessage> = raws
        .iter()
        .map(|raw| NewMessage {
            raw,
            flags: &none,
            internal_date: 0,
        })
        .collect();
    let result = store.append_all(&inbox, &set).await;
    assert!(
        matches!(result, Err(StoreError::OverQuota(_))),
        "{result:?}"
    );
    assert_eq!(db.count_rows("messages").await, 0);
    assert_eq!(db.count_rows("blobs").await, 0);
    let user = store.user("alice@example.test").await.unwrap().unwrap();
    assert_eq!(user.used_bytes, 0);
    assert_eq!(
        store.append_all(&inbox, &set[..2]).await.unwrap(),
        vec![1, 2]
    );
}
