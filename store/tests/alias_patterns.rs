//! Pattern aliases (`*` and `?` in the local part): they apply only where no user or exact alias
//! does, the longest matching pattern wins, and the catch-all comes last. On SQLite and
//! PostgreSQL.

mod common;

use std::collections::BTreeSet;

use common::store_with_user;
use postern_store::testing::TestDb;
use postern_store::Resolution;

both_backends!(pattern_aliases_resolve_after_users_and_exact_aliases);

fn remote(addresses: &[&str]) -> Resolution {
    Resolution::Deliver {
        local: BTreeSet::new(),
        remote: addresses.iter().map(|a| a.to_string()).collect(),
    }
}

async fn pattern_aliases_resolve_after_users_and_exact_aliases(db: &TestDb) {
    let (store, alice) = store_with_user(db, 0).await;
    for (source, destination) in [
        ("sales-*@example.test", "sales@remote.test"),
        ("sales-eu-*@example.test", "eu@remote.test"),
        ("sales-eu-*@example.test", "eu2@remote.test"),
        ("*-sales@example.test", "suffix@remote.test"),
        ("a?b@example.test", "one@remote.test"),
        ("x*y@example.test", "xy@remote.test"),
        ("sales-fixed@example.test", "exact@remote.test"),
        ("sales-*@example.test", "alice@example.test"),
        ("@example.test", "catchall@remote.test"),
    ] {
        store.add_alias(source, destination).await.unwrap();
    }
    store
        .add_user("sales-bob@example.test", "pw", 0)
        .await
        .unwrap();
    let listed: Vec<String> = store
        .list_aliases(Some("example.test"))
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.source)
        .collect();
    assert!(
        listed.contains(&"sales-*@example.test".to_owned()),
        "{listed:?}"
    );

    let resolve = |a: &'static str| {
        let store = store.clone();
        async move { store.resolve_recipient(a).await.unwrap() }
    };
    let sales = Resolution::Deliver {
        local: BTreeSet::from([alice]),
        remote: BTreeSet::from(["sales@remote.test".to_owned()]),
    };
    assert_eq!(resolve("sales-x@example.test").await, sales);
    assert_eq!(resolve("Sales-X+tag@Example.test").await, sales);
    assert_eq!(resolve("sales-@example.test").await, sales);
    assert_eq!(
        resolve("sales-eu-north@example.test").await,
        remote(&["eu2@remote.test", "eu@remote.test"]),
        "the longest pattern wins"
    );
    assert_eq!(
        resolve("sales-fixed@example.test").await,
        remote(&["exact@remote.test"]),
        "an exact alias wins"
    );
    let Resolution::Deliver { local, remote: r } = resolve("sales-bob@example.test").await else {
        panic!("user");
    };
    assert!(
        r.is_empty() && local.len() == 1 && !local.contains(&alice),
        "a user wins"
    );
    assert_eq!(
        resolve("eu-sales@example.test").await,
        remote(&["suffix@remote.test"])
    );
    assert_eq!(
        resolve("axb@example.test").await,
        remote(&["one@remote.test"])
    );
    assert_eq!(
        resolve("xy@example.test").await,
        remote(&["xy@remote.test"])
    );
    assert_eq!(
        resolve("xzzzy@example.test").await,
        remote(&["xy@remote.test"])
    );
    for other in [
        "ab@example.test",
        "axxb@example.test",
        "sales@example.test",
        "xyz@example.test",
    ] {
        assert_eq!(
            resolve(other).await,
            remote(&["catchall@remote.test"]),
            "{other}"
        );
    }
    assert_eq!(
        resolve("alice@example.test").await,
        Resolution::Deliver {
            local: BTreeSet::from([alice]),
            remote: BTreeSet::new()
        }
    );
    store
        .remove_alias("sales-*@example.test", None)
        .await
        .unwrap();
    assert_eq!(
        resolve("sales-x@example.test").await,
        remote(&["catchall@remote.test"])
    );
}
