//! Sieve script storage and the vacation reply log: one active script, limits that hold against
//! parallel uploads, RFC 5804 name rules, one reply per sender and period; on SQLite and PostgreSQL.

mod common;

use common::store_with_user;
use postern_store::testing::TestDb;
use postern_store::{StoreError, MAX_SIEVE_SCRIPTS, MAX_SIEVE_SCRIPT_BYTES};

both_backends!(
    scripts_and_active,
    limits_hold_in_parallel,
    vacation_once_per_period
);

async fn scripts_and_active(db: &TestDb) {
    let (store, alice) = store_with_user(db, 0).await;
    let bob = store
        .add_user("bob@example.test", "pw-bob", 0)
        .await
        .unwrap()
        .id;
    assert_eq!(store.active_sieve_script(alice).await.unwrap(), None);
    store
        .put_sieve_script(alice, "main", "keep;")
        .await
        .unwrap();
    store
        .put_sieve_script(alice, "Ünïcode name", "discard;")
        .await
        .unwrap();
    assert!(store
        .put_sieve_script(alice, "bad\nname", "keep;")
        .await
        .is_err());
    assert!(store.put_sieve_script(alice, "", "keep;").await.is_err());
    assert!(store
        .put_sieve_script(alice, "sep\u{2028}", "keep;")
        .await
        .is_err());
    store
        .set_active_sieve_script(alice, Some("main"))
        .await
        .unwrap();
    // Replacing keeps the active flag.
    store
        .put_sieve_script(alice, "main", "stop;")
        .await
        .unwrap();
    let active = store.active_sieve_script(alice).await.unwrap().unwrap();
    assert_eq!(
        (active.name.as_str(), active.content.as_str()),
        ("main", "stop;")
    );
    assert!(matches!(
        store.set_active_sieve_script(alice, Some("nope")).await,
        Err(StoreError::NotFound(_))
    ));
    store
        .set_active_sieve_script(alice, Some("Ünïcode name"))
        .await
        .unwrap();
    let list = store.list_sieve_scripts(alice).await.unwrap();
    let names: Vec<_> = list.iter().map(|s| (s.name.as_str(), s.active)).collect();
    assert_eq!(names, [("main", false), ("Ünïcode name", true)]);
    // The active script cannot be deleted; another can.
    assert!(matches!(
        store.delete_sieve_script(alice, "Ünïcode name").await,
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        store
            .rename_sieve_script(alice, "main", "Ünïcode name")
            .await,
        Err(StoreError::Exists(_))
    ));
    store
        .rename_sieve_script(alice, "Ünïcode name", "vacation")
        .await
        .unwrap();
    assert_eq!(
        store
            .active_sieve_script(alice)
            .await
            .unwrap()
            .unwrap()
            .name,
        "vacation"
    );
    store.delete_sieve_script(alice, "main").await.unwrap();
    assert!(matches!(
        store.delete_sieve_script(alice, "main").await,
        Err(StoreError::NotFound(_))
    ));
    // Bob sees none of Alice's scripts and cannot activate them.
    assert!(store.list_sieve_scripts(bob).await.unwrap().is_empty());
    assert_eq!(store.sieve_script(bob, "vacation").await.unwrap(), None);
    assert!(store
        .set_active_sieve_script(bob, Some("vacation"))
        .await
        .is_err());
    store.set_active_sieve_script(alice, None).await.unwrap();
    assert_eq!(store.active_sieve_script(alice).await.unwrap(), None);
    // Removing the user removes the scripts.
    store.remove_user("alice@example.test").await.unwrap();
    let again = store
        .add_user("alice@example.test", "pw", 0)
        .await
        .unwrap()
        .id;
    assert!(store.list_sieve_scripts(again).await.unwrap().is_empty());
}

async fn limits_hold_in_parallel(db: &TestDb) {
    let (store, alice) = store_with_user(db, 0).await;
    let big = "#".repeat(MAX_SIEVE_SCRIPT_BYTES + 1);
    assert!(store.sieve_have_space(alice, "x", big.len()).await.is_err());
    assert!(store.put_sieve_script(alice, "x", &big).await.is_err());
    let mut tasks = Vec::new();
    for i in 0..MAX_SIEVE_SCRIPTS + 8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .put_sieve_script(alice, &format!("s{i}"), "keep;")
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap().is_ok() {
            ok += 1;
        }
    }
    assert_eq!(ok, MAX_SIEVE_SCRIPTS);
    assert_eq!(
        store.list_sieve_scripts(alice).await.unwrap().len() as i64,
        MAX_SIEVE_SCRIPTS
    );
    assert!(store.sieve_have_space(alice, "new", 10).await.is_err());
    // Replacing an existing script (whichever won the race) is still allowed at the limit.
    let kept = store.list_sieve_scripts(alice).await.unwrap()[0]
        .name
        .clone();
    store.sieve_have_space(alice, &kept, 10).await.unwrap();
    store
        .put_sieve_script(alice, &kept, "discard;")
        .await
        .unwrap();
}

async fn vacation_once_per_period(db: &TestDb) {
    let (store, alice) = store_with_user(db, 0).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .record_vacation_reply(alice, "bob@x.test\nhandle", 86_400)
                .await
        }));
    }
    let mut sent = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() {
            sent += 1;
        }
    }
    assert_eq!(sent, 1, "one reply per sender and period, also in parallel");
    assert!(store
        .record_vacation_reply(alice, "carol@x.test\nhandle", 86_400)
        .await
        .unwrap());
    // A zero period (elapsed) allows the next reply.
    assert!(store
        .record_vacation_reply(alice, "bob@x.test\nhandle", 0)
        .await
        .unwrap());
}
