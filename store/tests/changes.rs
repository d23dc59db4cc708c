//! The change bus under load, on SQLite and PostgreSQL: every change committed through one store
//! handle reaches the subscribers of another handle (another process or node in production: on
//! SQLite each handle has its own `change_log` watcher, as a second process on the file has).
//!
//! Each round commits one change and waits for it before the next, so every change is the last
//! one for a while: a watcher that read `change_log` too early for it has no later write to wake
//! it, and the round times out. That is how the flaky `changes_are_published` and
//! `store_records_are_served_at_once` tests failed ("change in time: Elapsed").

use std::time::{Duration, Instant};

use postern_store::testing::TestDb;
use postern_store::Change;
use tokio::sync::broadcast::error::RecvError;

mod common;

both_backends!(every_change_reaches_another_handle);

/// Commits one at a time; 5 to 10 s on a loaded 2-core machine. Without the doorbell (see
/// `store/src/changes.rs`) a round stalled within the first 100 or so in most runs.
const ROUNDS: usize = 500;

async fn every_change_reaches_another_handle(db: &TestDb) {
    let writer = db.open().await;
    let reader = db.open().await;
    let mut rx = reader.subscribe();
    for i in 0..ROUNDS {
        let view = format!("v{i}");
        writer
            .add_dns_record(&view, "www.example.test", "A", 300, "10.0.0.1")
            .await
            .unwrap();
        let deadline = tokio::time::Instant::from_std(Instant::now() + Duration::from_secs(20));
        loop {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Ok(Change::Dns { view: v })) if v == view => break,
                Ok(Ok(_)) | Ok(Err(RecvError::Lagged(_))) => continue,
                Ok(Err(RecvError::Closed)) => panic!("the change bus closed"),
                Err(_) => panic!(
                    "round {i}: the change to view {view} did not reach the other handle in 20 s"
                ),
            }
        }
    }
    writer.close().await;
    reader.close().await;
}
