//! Mailbox hierarchy rules (IMAP CREATE/RENAME limits), each run on SQLite and PostgreSQL.

mod common;

use common::store_with_user;

use postern_store::testing::TestDb;
use postern_store::{Store, StoreError, MAX_MAILBOX_DEPTH, MAX_MAILBOX_NAME_BYTES};

both_backends!(
    create_path_creates_parents_atomically,
    create_path_is_bounded,
    rename_respects_depth_limit,
    subscriptions_outlive_mailboxes,
);

async fn names(store: &Store, uid: i64) -> Vec<String> {
    let mut names: Vec<String> = store
        .list_mailboxes(uid)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    names.sort();
    names
}

async fn create_path_creates_parents_atomically(db: &TestDb) {
    let (store, uid) = store_with_user(db, 0).await;
    let before = names(&store, uid).await;
    store.create_mailbox_path(uid, "A/B/C").await.unwrap();
    for n in ["A", "A/B", "A/B/C"] {
        assert!(store.mailbox(uid, n).await.unwrap().is_some(), "{n}");
    }
    // Existing parents are kept, a missing middle level is filled in.
    store.create_mailbox_path(uid, "A/X/Y").await.unwrap();
    assert!(store.mailbox(uid, "A/X").await.unwrap().is_some());
    assert!(matches!(
        store.create_mailbox_path(uid, "A/B/C").await,
        Err(StoreError::Exists(_))
    ));
    // A failure on the last level (it exists) rolls back the parents created before it.
    store.create_mailbox_path(uid, "P/Q").await.unwrap();
    let p = store.mailbox(uid, "P").await.unwrap().unwrap();
    store.delete_mailbox(&p).await.unwrap();
    assert!(matches!(
        store.create_mailbox_path(uid, "P/Q").await,
        Err(StoreError::Exists(_))
    ));
    assert!(store.mailbox(uid, "P").await.unwrap().is_none());
    let mut expected = before.clone();
    expected.extend(["A", "A/B", "A/B/C", "A/X", "A/X/Y", "P/Q"].map(String::from));
    expected.sort();
    assert_eq!(names(&store, uid).await, expected);
}

async fn create_path_is_bounded(db: &TestDb) {
    let (store, uid) = store_with_user(db, 0).await;
    let before = names(&store, uid).await;
    let deepest = vec!["d"; MAX_MAILBOX_DEPTH].join("/");
    store.create_mailbox_path(uid, &deepest).await.unwrap();
    assert_eq!(
        names(&store, uid).await.len(),
        before.len() + MAX_MAILBOX_DEPTH
    );
    store.delete_all_but(&before, uid).await;
    for name in [
        vec!["e"; MAX_MAILBOX_DEPTH + 1].join("/"),
        vec!["f"; 600].join("/"),
        "g".repeat(MAX_MAILBOX_NAME_BYTES + 1),
    ] {
        assert!(matches!(
            store.create_mailbox_path(uid, &name).await,
            Err(StoreError::Invalid { .. })
        ));
    }
    assert_eq!(names(&store, uid).await, before);
}

async fn rename_respects_depth_limit(db: &TestDb) {
    let (store, uid) = store_with_user(db, 0).await;
    store.create_mailbox_path(uid, "R/S/T").await.unwrap();
    let deep = vec!["r"; MAX_MAILBOX_DEPTH - 1].join("/");
    // R would fit at depth 32, but R/S/T would not: nothing is renamed.
    assert!(store.rename_mailbox(uid, "R", &deep).await.is_err());
    assert!(store.mailbox(uid, "R/S/T").await.unwrap().is_some());
}

async fn subscriptions_outlive_mailboxes(db: &TestDb) {
    let (store, uid) = store_with_user(db, 0).await;
    let defaults: Vec<String> = postern_store::DEFAULT_MAILBOXES
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    assert_eq!(
        store
            .subscriptions(uid)
            .await
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        {
            let mut d = defaults.clone();
            d.sort();
            d
        }
    );
    // CREATE does not subscribe; the mirror on the mailbox row agrees with the list.
    let work = store.create_mailbox_path(uid, "Work/A").await.unwrap();
    assert!(!work.subscribed);
    assert!(!store.subscriptions(uid).await.unwrap().contains("Work/A"));
    assert!(store.set_subscription(uid, "Work/A", true).await.unwrap());
    assert!(!store.set_subscription(uid, "Work/A", true).await.unwrap());
    assert!(
        store
            .mailbox(uid, "Work/A")
            .await
            .unwrap()
            .unwrap()
            .subscribed
    );
    // RENAME carries the subscription; DELETE keeps it; re-CREATE is subscribed again.
    store.rename_mailbox(uid, "Work", "Jobs").await.unwrap();
    let subs = store.subscriptions(uid).await.unwrap();
    assert!(subs.contains("Jobs/A") && !subs.contains("Work/A"));
    let a = store.mailbox(uid, "Jobs/A").await.unwrap().unwrap();
    assert!(a.subscribed);
    store.delete_mailbox(&a).await.unwrap();
    assert!(store.subscriptions(uid).await.unwrap().contains("Jobs/A"));
    assert!(
        store
            .create_mailbox_path(uid, "Jobs/A")
            .await
            .unwrap()
            .subscribed
    );
    assert!(store.set_subscription(uid, "Jobs/A", false).await.unwrap());
    assert!(!store.set_subscription(uid, "Jobs/A", false).await.unwrap());
    assert!(
        !store
            .mailbox(uid, "Jobs/A")
            .await
            .unwrap()
            .unwrap()
            .subscribed
    );
}

trait Cleanup {
    async fn delete_all_but(&self, keep: &[String], uid: i64);
}

impl Cleanup for Store {
    async fn delete_all_but(&self, keep: &[String], uid: i64) {
        for m in self.list_mailboxes(uid).await.unwrap() {
            if !keep.contains(&m.name) {
                self.delete_mailbox(&m).await.unwrap();
            }
        }
    }
}
