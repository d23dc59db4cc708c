//! Who may send as which address on submission: own address and +tag, aliases that reach the
//! user (not a catch-all), and the explicit per-user send-as list; on SQLite and PostgreSQL.

mod common;

use common::store_with_user;
use postern_store::testing::TestDb;
use postern_store::StoreError;

both_backends!(send_as_rules_and_list);

async fn send_as_rules_and_list(db: &TestDb) {
    let (store, alice) = store_with_user(db, 0).await;
    store.add_domain("b.test").await.unwrap();
    store
        .add_user("bob@example.test", "pw-bob", 0)
        .await
        .unwrap();
    store
        .add_alias("info@example.test", "alice@example.test")
        .await
        .unwrap();
    store
        .add_alias("team@b.test", "info@example.test")
        .await
        .unwrap();
    store
        .add_alias("@example.test", "alice@example.test")
        .await
        .unwrap();
    let me = "alice@example.test";
    let may = |a: &'static str| {
        let store = store.clone();
        async move { store.may_send_as(alice, me, a).await.unwrap() }
    };
    assert!(may("alice@example.test").await);
    assert!(may("Alice+news@Example.TEST").await);
    assert!(may("info@example.test").await, "alias to her");
    assert!(may("team@b.test").await, "alias chain reaching her");
    assert!(!may("bob@example.test").await, "another user");
    assert!(!may("ceo@b.test").await, "another hosted domain");
    assert!(
        !may("random@example.test").await,
        "the catch-all does not count"
    );
    assert!(!may("not an address").await);

    store.add_send_as(me, "CEO@b.test").await.unwrap();
    store.add_send_as(me, "me@gmail.test").await.unwrap();
    assert!(may("ceo@b.test").await);
    assert!(may("ceo+x@b.test").await, "+tag of a listed address");
    assert!(matches!(
        store.add_send_as(me, "ceo@b.test").await,
        Err(StoreError::Exists(_))
    ));
    assert!(matches!(
        store.add_send_as("nobody@example.test", "x@b.test").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.add_send_as(me, "no-at-sign").await.is_err());
    assert_eq!(
        store.list_send_as(me).await.unwrap(),
        ["ceo@b.test", "me@gmail.test"]
    );
    // Bob's list is his own.
    assert!(!store
        .may_send_as(alice + 1, "bob@example.test", "ceo@b.test")
        .await
        .unwrap());
    store.remove_send_as(me, "ceo@b.test").await.unwrap();
    assert!(!may("ceo@b.test").await);
    assert!(matches!(
        store.remove_send_as(me, "ceo@b.test").await,
        Err(StoreError::NotFound(_))
    ));
    // Removing the user removes the list.
    store.remove_user(me).await.unwrap();
    store
        .add_user("alice@example.test", "pw-alice", 0)
        .await
        .unwrap();
    assert!(store.list_send_as(me).await.unwrap().is_empty());
}
