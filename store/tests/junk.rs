//! The junk filter's statistics: training and retraining without double counting, per-user
//! isolation, scoring once trained, and pruning that keeps the tables bounded; on SQLite and
//! PostgreSQL.

mod common;

use common::store_with_user;
use postern_store::testing::TestDb;
use postern_store::BlobSource;
use postern_store::{Incoming, JunkClass, JunkTraining, LocalCopy, Tokens};

both_backends!(
    trains_retrains_and_scores,
    trains_stored_messages_and_prunes
);

fn message(spam: bool, i: usize) -> Tokens {
    let text = if spam {
        format!("From: deals{i}@bulk.example\r\nSubject: cheap pills casino offer {i}\r\n\r\nBuy cheap pills now, win the casino jackpot, unsubscribe {i}\r\n")
    } else {
        format!("From: colleague@work.example\r\nSubject: meeting notes {i}\r\n\r\nHere are the notes from the project meeting, see you tomorrow {i}\r\n")
    };
    Tokens::of(text.as_bytes())
}

async fn trains_retrains_and_scores(db: &TestDb) {
    let (store, alice) = store_with_user(db, 0).await;
    let bob = store
        .add_user("bob@example.test", "pw", 0)
        .await
        .unwrap()
        .id;
    let min = JunkTraining { spam: 3, ham: 3 };
    assert_eq!(
        store
            .junk_probability(alice, &message(true, 0), min)
            .await
            .unwrap(),
        None
    );
    for i in 0..3 {
        for spam in [true, false] {
            let class = if spam {
                JunkClass::Spam
            } else {
                JunkClass::Ham
            };
            let key = format!("{spam}-{i}");
            assert!(store
                .train_tokens(alice, &key, &message(spam, i), class)
                .await
                .unwrap());
            assert!(
                !store
                    .train_tokens(alice, &key, &message(spam, i), class)
                    .await
                    .unwrap(),
                "no double count"
            );
        }
    }
    assert_eq!(
        store.junk_training(alice).await.unwrap(),
        JunkTraining { spam: 3, ham: 3 }
    );
    let p_spam = store
        .junk_probability(alice, &message(true, 9), min)
        .await
        .unwrap()
        .unwrap();
    let p_ham = store
        .junk_probability(alice, &message(false, 9), min)
        .await
        .unwrap()
        .unwrap();
    assert!(p_spam > 0.9 && p_ham < 0.1, "{p_spam} {p_ham}");
    // Bob trained nothing: alice's statistics are hers alone.
    assert_eq!(
        store
            .junk_probability(bob, &message(true, 9), min)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.junk_token_count(bob).await.unwrap(), 0);
    // Retraining a spam message as ham moves it between the classes.
    assert!(store
        .train_tokens(alice, "true-0", &message(true, 0), JunkClass::Ham)
        .await
        .unwrap());
    assert_eq!(
        store.junk_training(alice).await.unwrap(),
        JunkTraining { spam: 2, ham: 4 }
    );
    assert_eq!(
        store
            .junk_probability(alice, &message(true, 9), min)
            .await
            .unwrap(),
        None,
        "below the minimum again"
    );
    let lower = JunkTraining { spam: 2, ham: 2 };
    let p = store
        .junk_probability(alice, &message(true, 9), lower)
        .await
        .unwrap()
        .unwrap();
    assert!(p < p_spam, "{p} < {p_spam}");
}

async fn trains_stored_messages_and_prunes(db: &TestDb) {
    let (store, alice) = store_with_user(db, 0).await;
    let raw = b"From: deals@bulk.example\r\nSubject: cheap pills\r\n\r\nBuy cheap pills now\r\n";
    store
        .accept(Incoming {
            raw: BlobSource::Bytes(raw),
            internal_date: 0,
            local: &LocalCopy::all(&[alice], "INBOX"),
            sender: "deals@bulk.example",
            remote: &[],
            remote_dsn: &[],
            expires_at: 0,
        })
        .await
        .unwrap();
    let inbox = store.mailbox(alice, "INBOX").await.unwrap().unwrap();
    assert_eq!(
        store
            .train_junk(&inbox, &[1, 99], JunkClass::Spam)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .train_junk(&inbox, &[1], JunkClass::Spam)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .train_junk(&inbox, &[1], JunkClass::Ham)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.junk_training(alice).await.unwrap(),
        JunkTraining { spam: 0, ham: 1 }
    );
    let before = store.junk_token_count(alice).await.unwrap();
    assert!(before > 3, "{before}");
    // Tokens of a message trained away and back are rare; long unseen, they are pruned. The
    // message still exists, so its trained mark stays: training it again is still no change.
    store
        .prune_junk(alice, postern_store::unix_now() + 365 * 24 * 3600)
        .await
        .unwrap();
    assert_eq!(store.junk_token_count(alice).await.unwrap(), 0);
    assert_eq!(
        store
            .train_junk(&inbox, &[1], JunkClass::Ham)
            .await
            .unwrap(),
        0
    );
    store
        .prune_junk(alice, postern_store::unix_now())
        .await
        .unwrap();
}
