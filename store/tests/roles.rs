//! Role addresses (postmaster, abuse): a user or exact alias wins, else the configured role
//! mailbox or the first user; never a catch-all. On SQLite and PostgreSQL.

mod common;

use std::collections::BTreeSet;

use common::store_with_user;
use postern_store::testing::TestDb;
use postern_store::Resolution;

both_backends!(role_addresses_are_never_caught_all);

fn local(ids: &[i64]) -> Resolution {
    Resolution::Deliver {
        local: ids.iter().copied().collect(),
        remote: BTreeSet::new(),
    }
}

async fn role_addresses_are_never_caught_all(db: &TestDb) {
    let (store, alice) = store_with_user(db, 0).await;
    let bob = store
        .add_user("bob@example.test", "pw-bob", 0)
        .await
        .unwrap()
        .id;
    store
        .add_alias("@example.test", "bob@example.test")
        .await
        .unwrap();
    // Unconfigured: the first user, not the catch-all.
    for role in [
        None,
        Some("postmaster@example.test"),
        Some("Abuse@Example.test"),
    ] {
        assert_eq!(
            store.resolve_role(role, None).await.unwrap(),
            local(&[alice])
        );
    }
    // Configured mailbox, resolved like any recipient (here through an alias).
    store
        .add_alias("admins@example.test", "bob@example.test")
        .await
        .unwrap();
    assert_eq!(
        store
            .resolve_role(Some("postmaster@example.test"), Some("admins@example.test"))
            .await
            .unwrap(),
        local(&[bob])
    );
    // An explicit alias of the role address wins over the mailbox.
    store
        .add_alias("abuse@example.test", "alice@example.test")
        .await
        .unwrap();
    assert_eq!(
        store
            .resolve_role(Some("abuse@example.test"), Some("bob@example.test"))
            .await
            .unwrap(),
        local(&[alice])
    );
    assert_eq!(
        store
            .resolve_role(Some("postmaster@other.test"), None)
            .await
            .unwrap(),
        Resolution::NotHosted
    );
}
