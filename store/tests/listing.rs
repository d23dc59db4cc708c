//! Searched, paged user and alias lists (the admin UI's users and aliases pages).

mod common;

use postern_store::testing::TestDb;

async fn users_are_searched_and_paged(db: &TestDb) {
    let store = db.open().await;
    store.add_domain("example.test").await.unwrap();
    store.add_domain("other.test").await.unwrap();
    for a in [
        "carol@example.test",
        "a%62c@example.test",
        "abc@example.test",
        "a_c@other.test",
        "Bob@other.test",
    ] {
        store.add_user(a, "pw", 0).await.unwrap();
    }
    let addresses = |p: &postern_store::Page<postern_store::User>| {
        p.items
            .iter()
            .map(|u| u.address.to_string())
            .collect::<Vec<_>>()
    };
    let all = store.find_users("", 0, 100).await.unwrap();
    assert_eq!(all.total, 5);
    let first = store.find_users("", 0, 2).await.unwrap();
    let second = store.find_users("", 2, 2).await.unwrap();
    let third = store.find_users("", 4, 2).await.unwrap();
    assert_eq!((first.total, second.total, third.total), (5, 5, 5));
    let paged: Vec<String> = [first, second, third].iter().flat_map(addresses).collect();
    assert_eq!(paged, addresses(&all), "pages split the list in order");
    assert_eq!(paged.len(), 5);
    assert!(store.find_users("", 10, 2).await.unwrap().items.is_empty());
    // Wildcards of LIKE are searched literally; case does not matter; the domain is searched.
    let found = store.find_users("A%6", 0, 10).await.unwrap();
    assert_eq!(addresses(&found), ["a%62c@example.test"]);
    assert_eq!(found.total, 1);
    assert_eq!(
        addresses(&store.find_users("a_c", 0, 10).await.unwrap()),
        ["a_c@other.test"]
    );
    assert_eq!(
        store.find_users("OTHER.test", 0, 10).await.unwrap().total,
        2
    );
    assert_eq!(store.find_users("nobody", 0, 10).await.unwrap().total, 0);
    store.close().await;
}

async fn aliases_are_searched_and_paged(db: &TestDb) {
    let store = db.open().await;
    store.add_domain("example.test").await.unwrap();
    for i in 0..7 {
        store
            .add_alias(&format!("list{i}@example.test"), "owner@remote.test")
            .await
            .unwrap();
    }
    store
        .add_alias("@example.test", "catchall@remote.test")
        .await
        .unwrap();
    let page = store.find_aliases("", 3, 3).await.unwrap();
    assert_eq!(page.total, 8);
    let sources: Vec<&str> = page.items.iter().map(|a| a.source.as_str()).collect();
    assert_eq!(
        sources,
        [
            "list2@example.test",
            "list3@example.test",
            "list4@example.test"
        ]
    );
    let by_destination = store.find_aliases("CATCHALL", 0, 10).await.unwrap();
    assert_eq!(by_destination.total, 1);
    assert_eq!(by_destination.items[0].source, "@example.test");
    assert_eq!(store.find_aliases("list6", 0, 10).await.unwrap().total, 1);
    store.close().await;
}

both_backends!(users_are_searched_and_paged, aliases_are_searched_and_paged);
