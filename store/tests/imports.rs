//! The import API on SQLite and PostgreSQL: a message is stored with its source key in one
//! transaction, the same key is never stored twice in a mailbox (but may be in another), a message
//! over quota stores neither the message nor the key, and deleting the mailbox forgets its keys.

mod common;

use common::store_with_user;
use postern_store::testing::TestDb;
use postern_store::{Flags, Spool, StoreError};

both_backends!(import_records_source_keys);

async fn spool(bytes: &[u8]) -> Spool {
    let mut spool = Spool::create(None).await.unwrap();
    spool.write(bytes).await.unwrap();
    spool
}

async fn import_records_source_keys(db: &TestDb) {
    let (store, alice) = store_with_user(db, 100).await;
    let inbox = store.mailbox(alice, "INBOX").await.unwrap().unwrap();
    let raw = b"Subject: imported\n\nhi\n";
    let flags = Flags::system(Flags::SEEN);
    assert!(!store.was_imported(&inbox, "k#1").await.unwrap());
    let uid = store
        .import_spooled(&inbox, spool(raw).await, &flags, 42, "k#1")
        .await
        .unwrap();
    assert_eq!(uid, Some(1));
    assert!(store.was_imported(&inbox, "k#1").await.unwrap());
    let again = store
        .import_spooled(&inbox, spool(raw).await, &flags, 42, "k#1")
        .await
        .unwrap();
    assert_eq!(again, None, "same key, same mailbox: nothing stored");
    let meta = store.list_messages(&inbox).await.unwrap();
    assert_eq!(meta.len(), 1);
    assert_eq!(
        (meta[0].internal_date, meta[0].flags.system),
        (42, Flags::SEEN)
    );
    assert_eq!(store.message_raw(&inbox, 1).await.unwrap().unwrap(), raw);

    let sent = store.mailbox(alice, "Sent").await.unwrap().unwrap();
    assert!(!store.was_imported(&sent, "k#1").await.unwrap());
    let big = vec![b'x'; 200];
    let over = store
        .import_spooled(&sent, spool(&big).await, &flags, 0, "big#1")
        .await;
    assert!(matches!(over, Err(StoreError::OverQuota(_))), "{over:?}");
    assert!(
        !store.was_imported(&sent, "big#1").await.unwrap(),
        "rolled back"
    );

    let scratch = store.create_mailbox(alice, "Scratch", None).await.unwrap();
    store
        .import_spooled(&scratch, spool(b"a\n").await, &flags, 0, "s#1")
        .await
        .unwrap();
    store.delete_mailbox(&scratch).await.unwrap();
    let scratch = store.create_mailbox(alice, "Scratch", None).await.unwrap();
    assert!(!store.was_imported(&scratch, "s#1").await.unwrap());
}
