//! Concurrent writers on one user's mailboxes (what ten IMAP clients of one account do): every
//! operation succeeds, none deadlocks, and the quota stays equal to what is stored; on SQLite and
//! PostgreSQL.

mod common;

use common::store_with_user;
use postern_store::testing::TestDb;
use postern_store::{FlagOp, Flags, Mailbox, Store};

both_backends!(parallel_writers_on_one_account_never_fail);

/// Writers per run and rounds per writer: enough for two PostgreSQL transactions to take their row
/// locks in opposite orders many times over.
const WRITERS: usize = 8;
const ROUNDS: usize = 25;

fn flags(system: i64) -> Flags {
    Flags {
        system,
        keywords: Default::default(),
    }
}

/// One writer's round: append, flag, expunge, copy and move in both directions, as IMAP clients of
/// the same account do at the same time.
async fn round(store: &Store, inbox: &Mailbox, other: &Mailbox, writer: usize, n: usize) {
    let raw = format!("Subject: w{writer} r{n}\r\n\r\nbody {writer} {n}\r\n");
    let uid = store
        .append(inbox, raw.as_bytes(), &flags(0), 0)
        .await
        .unwrap();
    let all: Vec<i64> = (1..=uid).collect();
    store
        .set_flags(inbox, &all, FlagOp::Add, &flags(Flags::SEEN))
        .await
        .unwrap();
    let (from, to) = if (writer + n).is_multiple_of(2) {
        (inbox, other)
    } else {
        (other, inbox)
    };
    let from_uids: Vec<i64> = store
        .list_messages(from)
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    let half = &from_uids[..from_uids.len() / 2];
    store.move_messages(from, half, to).await.unwrap();
    store.copy_messages(to, &[uid], from).await.unwrap();
    store
        .set_flags(inbox, &all, FlagOp::Add, &flags(Flags::DELETED))
        .await
        .unwrap();
    store
        .set_flags(other, &[1, 2, 3], FlagOp::Add, &flags(Flags::DELETED))
        .await
        .unwrap();
    store.expunge(inbox, None).await.unwrap();
    store.expunge(other, Some(&[1, 2, 3])).await.unwrap();
}

async fn parallel_writers_on_one_account_never_fail(db: &TestDb) {
    let (store, alice) = store_with_user(db, 0).await;
    let inbox = store.mailbox(alice, "INBOX").await.unwrap().unwrap();
    let other = store.create_mailbox(alice, "Other", None).await.unwrap();
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let (store, inbox, other) = (store.clone(), inbox.clone(), other.clone());
        tasks.push(tokio::spawn(async move {
            for n in 0..ROUNDS {
                round(&store, &inbox, &other, writer, n).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut stored = 0;
    for mailbox in [&inbox, &other] {
        stored += store
            .list_messages(mailbox)
            .await
            .unwrap()
            .iter()
            .map(|m| m.size)
            .sum::<i64>();
    }
    let user = store.user("alice@example.test").await.unwrap().unwrap();
    assert_eq!(user.used_bytes, stored, "quota charged = bytes stored");
}
