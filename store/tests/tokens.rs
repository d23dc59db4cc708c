//! API tokens (scopes, expiry, listing without secrets, revocation, last use) and the admin
//! account commands (password change, removal), on SQLite and PostgreSQL.

mod common;

use postern_store::testing::TestDb;
use postern_store::{SessionKind, Store, StoreError, TokenScope};

both_backends!(
    tokens_scopes_expiry_and_revocation,
    admin_password_and_removal
);

async fn tokens_scopes_expiry_and_revocation(db: &TestDb) {
    let store = Store::open(&db.url).await.unwrap();
    let admin = store.add_admin("root", "admin-pw").await.unwrap();
    let full = store
        .create_session(admin.id, SessionKind::ApiToken, "legacy", 0)
        .await
        .unwrap();
    let metrics = store
        .create_token(admin.id, "prometheus", TokenScope::Metrics, None)
        .await
        .unwrap();
    let read = store
        .create_token(admin.id, "audit", TokenScope::Read, Some(3600))
        .await
        .unwrap();
    // The shortest lifetime (one second): the test waits for it to pass.
    let short = store
        .create_token(admin.id, "short", TokenScope::Admin, Some(1))
        .await
        .unwrap();
    let s = store.session(&full).await.unwrap().unwrap();
    assert_eq!(
        (s.kind, s.scope),
        (SessionKind::ApiToken, TokenScope::Admin)
    );
    assert_eq!(
        store.session(&metrics).await.unwrap().unwrap().scope,
        TokenScope::Metrics
    );
    assert_eq!(
        store.session(&read).await.unwrap().unwrap().scope,
        TokenScope::Read
    );

    let list = store.list_tokens().await.unwrap();
    assert_eq!(list.len(), 4);
    let by_label = |l: &str| list.iter().find(|t| t.label == l).unwrap().clone();
    assert_eq!(by_label("prometheus").scope, TokenScope::Metrics);
    assert_eq!(by_label("prometheus").expires_at, None);
    let audit = by_label("audit");
    assert!(audit.expires_at.unwrap() > audit.created_at + 3000);
    assert_eq!(audit.admin, "root");
    for t in &list {
        assert_eq!(t.id.len(), 16);
        for secret in [&full, &metrics, &read, &short] {
            assert!(
                !secret.starts_with(&t.id),
                "an id must not be a prefix of the secret"
            );
        }
    }

    // Last use is recorded.
    assert_eq!(audit.last_used_at, None);
    store.touch_token(&read).await.unwrap();
    assert!(by_id(&store, &audit.id).await.last_used_at.is_some());

    // Expiry: refused once past, still listed until revoked.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while store.session(&short).await.unwrap().is_some() {
        assert!(std::time::Instant::now() < deadline, "token never expired");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(store
        .list_tokens()
        .await
        .unwrap()
        .iter()
        .any(|t| t.label == "short"));

    // Revocation by id.
    store
        .revoke_token(&by_label("prometheus").id)
        .await
        .unwrap();
    assert!(store.session(&metrics).await.unwrap().is_none());
    assert!(matches!(
        store.revoke_token(&by_label("prometheus").id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.revoke_token("zz").await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.list_tokens().await.unwrap().len(), 3);
    // Browser sessions are not tokens.
    store
        .create_session(admin.id, SessionKind::Browser, "", 3600)
        .await
        .unwrap();
    assert_eq!(store.list_tokens().await.unwrap().len(), 3);
    store.close().await;
}

async fn by_id(store: &Store, id: &str) -> postern_store::ApiToken {
    store
        .list_tokens()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.id == id)
        .unwrap()
}

async fn admin_password_and_removal(db: &TestDb) {
    let store = Store::open(&db.url).await.unwrap();
    let root = store.add_admin("root", "old-pw").await.unwrap();
    let browser = store
        .create_session(root.id, SessionKind::Browser, "", 3600)
        .await
        .unwrap();
    let token = store
        .create_token(root.id, "t", TokenScope::Read, None)
        .await
        .unwrap();
    store.set_admin_password("root", "new-pw").await.unwrap();
    assert!(store
        .authenticate_admin("root", "new-pw")
        .await
        .unwrap()
        .is_some());
    assert!(store
        .authenticate_admin("root", "old-pw")
        .await
        .unwrap()
        .is_none());
    assert!(
        store.session(&browser).await.unwrap().is_none(),
        "browser sessions end"
    );
    assert!(
        store.session(&token).await.unwrap().is_some(),
        "tokens stay"
    );
    assert!(matches!(
        store.set_admin_password("ghost", "x").await,
        Err(StoreError::NotFound(_))
    ));

    assert!(
        matches!(
            store.remove_admin("root").await,
            Err(StoreError::Invalid { .. })
        ),
        "the last administrator stays"
    );
    let other = store.add_admin("other", "pw").await.unwrap();
    let other_token = store
        .create_token(other.id, "o", TokenScope::Admin, None)
        .await
        .unwrap();
    store.remove_admin("other").await.unwrap();
    assert!(store.session(&other_token).await.unwrap().is_none());
    assert!(matches!(
        store.remove_admin("other").await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.list_admins().await.unwrap(), vec![root]);
    store.close().await;
}
