//! Delivery status notification parameters (RFC 3461) kept with queue entries, on SQLite and
//! PostgreSQL (`DATABASE_URL`).

mod common;

use postern_store::testing::TestDb;
use postern_store::BlobSource;
use postern_store::{DsnRequest, Incoming};

both_backends!(dsn_parameters_are_queued_per_recipient);

async fn dsn_parameters_are_queued_per_recipient(db: &TestDb) {
    let store = db.open().await;
    let remote = vec!["a@remote.test".to_owned(), "b@remote.test".to_owned()];
    let asked = DsnRequest {
        notify: Some("SUCCESS,DELAY".into()),
        orcpt: Some("Orig+ Name@example.test".into()),
        ret: Some("HDRS".into()),
        envid: Some("QQ 314159".into()),
    };
    // Only the first recipient has parameters; the second gets none.
    let accepted = store
        .accept(Incoming {
            raw: BlobSource::Bytes(b"Subject: x\r\n\r\nbody\r\n"),
            internal_date: 0,
            local: &[],
            sender: "s@example.test",
            remote: &remote,
            remote_dsn: std::slice::from_ref(&asked),
            expires_at: i64::MAX,
        })
        .await
        .unwrap();
    let queue = store.list_queue().await.unwrap();
    assert_eq!(queue.len(), 2);
    let a = queue
        .iter()
        .find(|e| e.recipient == "a@remote.test")
        .unwrap();
    let b = queue
        .iter()
        .find(|e| e.recipient == "b@remote.test")
        .unwrap();
    assert_eq!(a.dsn, asked);
    assert_eq!(b.dsn, DsnRequest::default());
    assert!(!a.delay_notified && !b.delay_notified);
    store.mark_delay_notified(a.id).await.unwrap();
    let queue = store.list_queue().await.unwrap();
    let a = queue
        .iter()
        .find(|e| e.recipient == "a@remote.test")
        .unwrap();
    assert!(a.delay_notified);
    let claimed = store
        .claim_queue("n", i64::MAX - 1, i64::MAX, 10)
        .await
        .unwrap();
    assert!(claimed.iter().any(|e| e.delay_notified && e.dsn == asked));
    for id in accepted.queued {
        store.remove_queue(id).await.unwrap();
    }
    // An entry removed meanwhile (delivered, deleted by the operator) is no error.
    store.mark_delay_notified(a.id).await.unwrap();
    assert!(store.list_queue().await.unwrap().is_empty());
}
