//! A group whose messages fail in different ways: a recipient over quota (inside the group: the
//! quota is charged message by message) and a recipient without INBOX (a failing statement, so
//! the group is stored again message by message) do not fail the other messages; on SQLite and
//! PostgreSQL.

use super::Pending;
use crate::blobs::content_hash;
use crate::delivery::{parse_for_storage, DeliveryOutcome, Incoming, LocalCopy};
use crate::search_index::BodyText;
use crate::testing::TestDb;
use crate::{Store, StoreError};

/// A pending message of `size` bytes (subject `subject`) for `users`' INBOXes and `remote`.
async fn pending(subject: &str, size: usize, users: &[i64], remote: &[String]) -> Pending {
    let mut raw = format!("Subject: {subject}\r\n\r\n").into_bytes();
    raw.resize(size, b'x');
    let local = LocalCopy::all(users, "INBOX");
    let m = Incoming {
        raw: crate::BlobSource::Bytes(&raw),
        internal_date: 1,
        local: &local,
        sender: "a@remote.test",
        remote,
        remote_dsn: &[],
        expires_at: 2,
    };
    let parsed = parse_for_storage(&raw, BodyText::Deferred)
        .await
        .expect("parse");
    Pending::new(&m, &raw, content_hash(&raw), parsed)
}

/// How many messages `user_id`'s INBOX holds.
async fn inbox_len(store: &Store, user_id: i64) -> usize {
    let inbox = store.mailbox(user_id, "INBOX").await.unwrap().unwrap();
    store.list_messages(&inbox).await.unwrap().len()
}

/// A store with domain `example.test` and one user per `(local part, quota)`; their ids.
async fn store_with(db: &TestDb, users: &[(&str, i64)]) -> (Store, Vec<i64>) {
    let store = db.open().await;
    store.add_domain("example.test").await.unwrap();
    let mut ids = Vec::new();
    for (local, quota) in users {
        let address = format!("{local}@example.test");
        ids.push(store.add_user(&address, "pw", *quota).await.unwrap().id);
    }
    (store, ids)
}

async fn quota_inside_a_group(db: &TestDb) {
    let (store, ids) = store_with(db, &[("alice", 100), ("bob", 0)]).await;
    let (alice, bob) = (ids[0], ids[1]);
    let remote = vec!["x@remote.test".to_owned()];
    let group = vec![
        pending("one", 60, &[alice], &[]).await,
        pending("two", 60, &[alice, bob], &[]).await,
        pending("three", 30, &[alice], &remote).await,
    ];
    let outcomes = store.store_group(&group).await;
    let outcomes: Vec<_> = outcomes.into_iter().map(|o| o.unwrap()).collect();
    assert!(matches!(
        outcomes[0].local[0],
        DeliveryOutcome::Delivered { .. }
    ));
    assert_eq!(
        outcomes[1].local[0],
        DeliveryOutcome::OverQuota { user_id: alice }
    );
    assert!(matches!(
        outcomes[1].local[1],
        DeliveryOutcome::Delivered { .. }
    ));
    assert!(matches!(
        outcomes[2].local[0],
        DeliveryOutcome::Delivered { .. }
    ));
    assert_eq!(outcomes[2].queued.len(), 1);
    let used = store
        .user("alice@example.test")
        .await
        .unwrap()
        .unwrap()
        .used_bytes;
    assert_eq!(used, 90, "charged for what was stored, in order");
    assert_eq!(
        (inbox_len(&store, alice).await, inbox_len(&store, bob).await),
        (2, 1)
    );
}

async fn failing_message_does_not_fail_the_group(db: &TestDb) {
    let (store, ids) = store_with(db, &[("alice", 50), ("bob", 0), ("carol", 0)]).await;
    let (alice, bob, carol) = (ids[0], ids[1], ids[2]);
    db.execute(&format!("DELETE FROM mailboxes WHERE user_id = {carol}"))
        .await;
    let group = vec![
        pending("for bob", 40, &[bob], &[]).await,
        pending("too big for alice", 60, &[alice], &[]).await,
        pending("for carol", 40, &[carol], &[]).await,
        pending("for bob too", 40, &[bob], &[]).await,
    ];
    let mut outcomes = store.store_group(&group).await.into_iter();
    let mut next = || outcomes.next().expect("one outcome per message");
    assert!(matches!(
        next().unwrap().local[0],
        DeliveryOutcome::Delivered { .. }
    ));
    assert_eq!(
        next().unwrap().local[0],
        DeliveryOutcome::OverQuota { user_id: alice }
    );
    assert!(matches!(next(), Err(StoreError::NotFound(_))), "no INBOX");
    assert!(matches!(
        next().unwrap().local[0],
        DeliveryOutcome::Delivered { .. }
    ));
    assert_eq!(inbox_len(&store, bob).await, 2, "each stored once");
    assert_eq!(inbox_len(&store, alice).await, 0);
    assert_eq!(
        db.count_rows("blobs").await,
        2,
        "the failed message left nothing"
    );
    let used = store
        .user("bob@example.test")
        .await
        .unwrap()
        .unwrap()
        .used_bytes;
    assert_eq!(used, 80);
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn quota_inside_a_group() {
        super::quota_inside_a_group(&crate::testing::TestDb::sqlite()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failing_message_does_not_fail_the_group() {
        let db = crate::testing::TestDb::sqlite();
        super::failing_message_does_not_fail_the_group(&db).await;
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn quota_inside_a_group() {
        super::quota_inside_a_group(&crate::testing::TestDb::postgres().await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failing_message_does_not_fail_the_group() {
        let db = crate::testing::TestDb::postgres().await;
        super::failing_message_does_not_fail_the_group(&db).await;
    }
}
