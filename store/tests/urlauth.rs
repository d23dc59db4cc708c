//! URLAUTH access keys (RFC 4467 §3): tokens verify only for the rump and mailbox they were made
//! for, RESETKEY and mailbox deletion invalidate them; on SQLite and PostgreSQL.

mod common;

use common::store_with_user;
use postern_store::testing::TestDb;

both_backends!(tokens_bind_rump_mailbox_and_key);

async fn tokens_bind_rump_mailbox_and_key(db: &TestDb) {
    let (store, alice) = store_with_user(db, 0).await;
    let inbox = store.mailbox(alice, "INBOX").await.unwrap().unwrap();
    let other = store.create_mailbox(alice, "Other", None).await.unwrap();
    let rump = "imap://alice@example.test/INBOX/;uid=1;urlauth=anonymous";
    let token = store.urlauth_token(&inbox, rump).await.unwrap();
    assert_eq!(token.len(), 64, "{token}");
    // The key is made once: the same rump gets the same token.
    assert_eq!(store.urlauth_token(&inbox, rump).await.unwrap(), token);
    assert!(store.urlauth_verify(&inbox, rump, &token).await.unwrap());
    // Another rump, another mailbox's key, a flipped digit, not hex: all refused.
    assert!(!store
        .urlauth_verify(&inbox, &rump.replace("uid=1", "uid=2"), &token)
        .await
        .unwrap());
    assert!(!store.urlauth_verify(&other, rump, &token).await.unwrap());
    let other_token = store.urlauth_token(&other, rump).await.unwrap();
    assert_ne!(other_token, token);
    let mut flipped = token.clone().into_bytes();
    flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
    let flipped = String::from_utf8(flipped).unwrap();
    assert!(!store.urlauth_verify(&inbox, rump, &flipped).await.unwrap());
    assert!(!store.urlauth_verify(&inbox, rump, "zz").await.unwrap());
    assert!(!store.urlauth_verify(&inbox, rump, "").await.unwrap());
    // RESETKEY of one mailbox leaves the other's key.
    store
        .reset_urlauth_keys(alice, Some(inbox.id))
        .await
        .unwrap();
    assert!(!store.urlauth_verify(&inbox, rump, &token).await.unwrap());
    assert!(store
        .urlauth_verify(&other, rump, &other_token)
        .await
        .unwrap());
    let new_token = store.urlauth_token(&inbox, rump).await.unwrap();
    assert_ne!(new_token, token);
    // RESETKEY of all mailboxes.
    store.reset_urlauth_keys(alice, None).await.unwrap();
    assert!(!store
        .urlauth_verify(&other, rump, &other_token)
        .await
        .unwrap());
    assert!(!store
        .urlauth_verify(&inbox, rump, &new_token)
        .await
        .unwrap());
    // A deleted and re-created mailbox does not inherit the key.
    let other_token = store.urlauth_token(&other, rump).await.unwrap();
    store.delete_mailbox(&other).await.unwrap();
    let again = store.create_mailbox(alice, "Other", None).await.unwrap();
    assert!(!store
        .urlauth_verify(&again, rump, &other_token)
        .await
        .unwrap());
}
