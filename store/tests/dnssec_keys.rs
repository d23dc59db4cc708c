//! DNSSEC keys in the store: nodes that create a zone's first key at the same moment agree on
//! one (one DS for the parent), and key tags stay distinct per zone.

mod common;

use postern_store::testing::TestDb;
use postern_store::{DnssecKey, DnssecKeyState, DnssecRole, StoreError};

both_backends!(first_key_is_created_once, key_tags_are_distinct);

fn key(zone: &str, tag: u16) -> DnssecKey {
    DnssecKey {
        zone: zone.into(),
        key_tag: tag,
        algorithm: 13,
        role: DnssecRole::Csk,
        state: DnssecKeyState::Active,
        private_pkcs8: vec![tag as u8; 8],
        created_at: 0,
    }
}

async fn first_key_is_created_once(db: &TestDb) {
    // Eight "nodes", each with its own store handle, race to create example.test's first key.
    let mut nodes = Vec::new();
    for _ in 0..8 {
        nodes.push(db.open().await);
    }
    let tasks: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(i, store)| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .add_first_dnssec_key(&key("example.test", 100 + i as u16))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1, "exactly one node creates the first key");
    let keys = nodes[0].dnssec_keys("example.test").await.unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    // Another zone still gets its own first key.
    assert!(nodes[1]
        .add_first_dnssec_key(&key("other.test", 7))
        .await
        .unwrap());
}

async fn key_tags_are_distinct(db: &TestDb) {
    let store = db.open().await;
    store.add_dnssec_key(&key("example.test", 5)).await.unwrap();
    let again = store.add_dnssec_key(&key("example.test", 5)).await;
    assert!(matches!(again, Err(StoreError::Exists(_))), "{again:?}");
    store.add_dnssec_key(&key("other.test", 5)).await.unwrap();
    assert_eq!(store.all_dnssec_keys().await.unwrap().len(), 2);
}
