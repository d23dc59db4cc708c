//! Shared helpers of the store's integration tests.

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
