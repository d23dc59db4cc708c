//! Shared helpers of the store's integration tests.
#![allow(dead_code)] // Each test file uses a different part.

use postern_store::testing::TestDb;
use postern_store::Store;

/// A store on `db` with domain `example.test` and user `alice@example.test` (password
/// `pw-alice`, quota `quota` bytes, 0 = unlimited); returns the store and alice's id.
pub async fn store_with_user(db: &TestDb, quota: i64) -> (Store, i64) {
    let store = db.open().await;
    store.add_domain("example.test").await.unwrap();
    let user = store
        .add_user("alice@example.test", "pw-alice", quota)
        .await
        .unwrap();
    (store, user.id)
}

/// Generates `sqlite::NAME` and `postgres::NAME` tokio tests calling `NAME(&TestDb)`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let db = postern_store::testing::TestDb::sqlite();
                super::$name(&db).await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let db = postern_store::testing::TestDb::postgres().await;
                super::$name(&db).await;
            })*
        }
    };
}
