//! The import API on SQLite and PostgreSQL: a batch stores its messages with their source keys in
//! one transaction, in order, with ascending UIDs; a key is never stored twice in a mailbox (not
//! from an earlier batch, not twice in one batch) but may be in another; a message over quota
//! stores neither the message nor the key while later ones that fit are stored; a large
//! (chunked, spooled) message goes in the same batch; deleting the mailbox forgets its keys.

mod common;

use common::store_with_user;
use postern_store::testing::TestDb;
use postern_store::{Flags, ImportBytes, ImportItem, Spool, StoreError};

both_backends!(import_batches_record_source_keys);

fn item(bytes: &[u8], key: &str, date: i64) -> ImportItem {
    ImportItem {
        bytes: ImportBytes::Memory(bytes.to_vec()),
        flags: Flags::system(Flags::SEEN),
        internal_date: date,
        source_key: key.to_owned(),
    }
}

async fn spooled(bytes: &[u8], key: &str) -> ImportItem {
    let mut spool = Spool::create(None).await.unwrap();
    spool.write(bytes).await.unwrap();
    ImportItem {
        bytes: ImportBytes::Spooled(spool),
        flags: Flags::default(),
        internal_date: 7,
        source_key: key.to_owned(),
    }
}

async fn import_batches_record_source_keys(db: &TestDb) {
    let (store, alice) = store_with_user(db, 3 << 19).await;
    let inbox = store.mailbox(alice, "INBOX").await.unwrap().unwrap();
    let raw = b"Subject: imported\n\nhi\n";
    let large = vec![b'x'; (1 << 20) + 10];
    let too_big = vec![b'y'; 2 << 20];
    let batch = vec![
        item(raw, "k#1", 42),
        item(raw, "k#1", 42),
        item(b"Subject: same bytes, other key\n\n", "k#2", 43),
        spooled(&too_big, "too-big#1").await,
        spooled(&large, "large#1").await,
        item(b"Subject: last\n\n", "k#3", 44),
    ];
    let outcomes = store.import_batch(&inbox, batch).await.unwrap();
    let got: Vec<String> = outcomes.iter().map(|o| format!("{o:?}")).collect();
    assert_eq!(
        &got[..3],
        ["Ok(Some(1))", "Ok(None)", "Ok(Some(2))"],
        "{got:?}"
    );
    assert!(
        matches!(outcomes[3], Err(StoreError::OverQuota(_))),
        "{got:?}"
    );
    assert_eq!(&got[4..], ["Ok(Some(3))", "Ok(Some(4))"], "{got:?}");
    let meta = store.list_messages(&inbox).await.unwrap();
    assert_eq!(meta.len(), 4);
    assert_eq!(
        (meta[0].internal_date, meta[0].flags.system),
        (42, Flags::SEEN)
    );
    assert_eq!(store.message_raw(&inbox, 1).await.unwrap().unwrap(), raw);
    assert_eq!(store.message_raw(&inbox, 3).await.unwrap().unwrap(), large);
    assert_eq!(meta[2].internal_date, 7);
    let keys = store.imported_keys(&inbox).await.unwrap();
    let mut names: Vec<&str> = keys.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["k#1", "k#2", "k#3", "large#1"],
        "no key of the refused one"
    );
    assert_eq!(keys["k#1"], Some(Flags::system(Flags::SEEN)));
    let user = store.user("alice@example.test").await.unwrap().unwrap();
    let stored: i64 = meta.iter().map(|m| m.size).sum();
    assert_eq!(user.used_bytes, stored);

    let again = store
        .import_batch(&inbox, vec![item(raw, "k#1", 42), item(b"new\n", "k#4", 0)])
        .await
        .unwrap();
    let got: Vec<String> = again.iter().map(|o| format!("{o:?}")).collect();
    assert_eq!(
        got,
        ["Ok(None)", "Ok(Some(5))"],
        "a key from an earlier batch"
    );

    let sent = store.mailbox(alice, "Sent").await.unwrap().unwrap();
    let other = store
        .import_batch(&sent, vec![item(raw, "k#1", 42)])
        .await
        .unwrap();
    assert_eq!(format!("{:?}", other[0]), "Ok(Some(1))", "another mailbox");

    let scratch = store.create_mailbox(alice, "Scratch", None).await.unwrap();
    store
        .import_batch(&scratch, vec![item(b"a\n", "s#1", 0)])
        .await
        .unwrap();
    store.delete_mailbox(&scratch).await.unwrap();
    let scratch = store.create_mailbox(alice, "Scratch", None).await.unwrap();
    assert!(store.imported_keys(&scratch).await.unwrap().is_empty());
}
