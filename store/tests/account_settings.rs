//! Vacation and forwarding settings: defaults, a round trip of normalised values, and the
//! forwarding loop rule (own address, `+tag`, an alias back to the user), and what a delivery
//! reads of them together with the active Sieve script and the junk training; on SQLite and
//! PostgreSQL.

mod common;

use common::store_with_user;
use postern_store::testing::TestDb;
use postern_store::{
    AccountSettings, DeliveryFilters, JunkClass, JunkTraining, StoreError, Tokens,
};

both_backends!(
    settings_round_trip,
    forwarding_may_not_loop,
    delivery_filters_in_one_read
);

async fn settings_round_trip(db: &TestDb) {
    let (store, alice) = store_with_user(db, 0).await;
    let defaults = store.account_settings(alice).await.unwrap();
    assert!(!defaults.reply_enabled && !defaults.forward_enabled && defaults.forward_keep);
    let wanted = AccountSettings {
        forward_enabled: true,
        forward_destination: "Bob@Example.ORG".into(),
        forward_keep: false,
        reply_enabled: true,
        reply_subject: "Away \"now\"".into(),
        reply_body: "Back on Monday.\n.\nGrüße\n".into(),
        reply_startdate: Some("2026-12-20".into()),
        reply_enddate: Some("2027-01-06".into()),
    };
    let stored = store.set_account_settings(alice, &wanted).await.unwrap();
    assert_eq!(stored.forward_destination, "bob@example.org");
    assert_eq!(stored.reply_body, "Back on Monday.\r\n.\r\nGrüße");
    assert_eq!(store.account_settings(alice).await.unwrap(), stored);
    // Saving again replaces; clearing the dates stores none.
    let off = AccountSettings {
        reply_startdate: None,
        reply_enddate: Some(String::new()),
        reply_enabled: false,
        ..stored.clone()
    };
    let stored = store.set_account_settings(alice, &off).await.unwrap();
    assert_eq!(stored.reply_enddate, None);
    assert_eq!(store.account_settings(alice).await.unwrap(), stored);
    // Invalid values change nothing.
    let bad = AccountSettings {
        reply_startdate: Some("2026-02-30".into()),
        ..stored.clone()
    };
    assert!(matches!(
        store.set_account_settings(alice, &bad).await,
        Err(StoreError::Invalid {
            what: "reply_startdate",
            ..
        })
    ));
    assert_eq!(store.account_settings(alice).await.unwrap(), stored);
}

async fn forwarding_may_not_loop(db: &TestDb) {
    let (store, alice) = store_with_user(db, 0).await;
    store
        .add_user("bob@example.test", "pw-bob", 0)
        .await
        .unwrap();
    store
        .add_alias("me@example.test", "alice@example.test")
        .await
        .unwrap();
    for own in [
        "alice@example.test",
        "ALICE+lists@example.test",
        "me@example.test",
    ] {
        let s = AccountSettings {
            forward_enabled: true,
            forward_destination: own.into(),
            ..AccountSettings::default()
        };
        assert!(
            matches!(
                store.set_account_settings(alice, &s).await,
                Err(StoreError::Invalid {
                    what: "forward_destination",
                    ..
                })
            ),
            "{own}"
        );
    }
    let s = AccountSettings {
        forward_enabled: true,
        forward_destination: "bob@example.test".into(),
        forward_keep: true,
        ..AccountSettings::default()
    };
    store.set_account_settings(alice, &s).await.unwrap();
}

/// [`Store::delivery_filters`] reads what [`Store::account_settings`],
/// [`Store::active_sieve_script`] and [`Store::junk_training`] read, in every combination of
/// saved and unsaved.
///
/// [`Store::delivery_filters`]: postern_store::Store::delivery_filters
/// [`Store::account_settings`]: postern_store::Store::account_settings
/// [`Store::active_sieve_script`]: postern_store::Store::active_sieve_script
/// [`Store::junk_training`]: postern_store::Store::junk_training
async fn delivery_filters_in_one_read(db: &TestDb) {
    let (store, alice) = store_with_user(db, 0).await;
    let separately = |store: postern_store::Store| async move {
        DeliveryFilters {
            settings: store.account_settings(alice).await.unwrap(),
            script: store.active_sieve_script(alice).await.unwrap(),
            junk: store.junk_training(alice).await.unwrap(),
        }
    };
    let nothing = store.delivery_filters(alice).await.unwrap();
    assert_eq!(nothing, separately(store.clone()).await);
    assert!(nothing.settings.forward_keep && nothing.script.is_none());
    assert_eq!(nothing.junk, JunkTraining::default());
    store
        .put_sieve_script(alice, "main", "keep;")
        .await
        .unwrap();
    store
        .put_sieve_script(alice, "other", "discard;")
        .await
        .unwrap();
    store
        .set_active_sieve_script(alice, Some("other"))
        .await
        .unwrap();
    let script_only = store.delivery_filters(alice).await.unwrap();
    assert_eq!(script_only, separately(store.clone()).await);
    assert_eq!(
        script_only.script.as_ref().map(|s| s.content.as_str()),
        Some("discard;")
    );
    let spam = b"From: a@example.org\r\nSubject: cheap pills\r\n\r\nbuy now\r\n";
    let ham = b"From: b@example.org\r\nSubject: minutes\r\n\r\nsee you monday\r\n";
    for (key, raw, class) in [
        ("s1", &spam[..], JunkClass::Spam),
        ("h1", &ham[..], JunkClass::Ham),
    ] {
        assert!(store
            .train_tokens(alice, key, &Tokens::of(raw), class)
            .await
            .unwrap());
    }
    assert!(store
        .train_tokens(
            alice,
            "s2",
            &Tokens::of(b"Subject: more pills\r\n\r\nnow\r\n"),
            JunkClass::Spam
        )
        .await
        .unwrap());
    let trained = store.delivery_filters(alice).await.unwrap();
    assert_eq!(trained, separately(store.clone()).await);
    assert_eq!(trained.junk, JunkTraining { spam: 2, ham: 1 });
    let vacation = AccountSettings {
        reply_enabled: true,
        reply_subject: "Away".into(),
        reply_body: "Back soon.".into(),
        ..AccountSettings::default()
    };
    store.set_account_settings(alice, &vacation).await.unwrap();
    let both = store.delivery_filters(alice).await.unwrap();
    assert_eq!(both, separately(store.clone()).await);
    assert!(both.settings.reply_enabled);
    store.set_active_sieve_script(alice, None).await.unwrap();
    let settings_only = store.delivery_filters(alice).await.unwrap();
    assert_eq!(settings_only, separately(store.clone()).await);
    assert!(settings_only.settings.reply_enabled && settings_only.script.is_none());
}
