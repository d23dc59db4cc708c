//! The login service on both databases: outcomes, the shared per-address budget under
//! concurrency, and the upgrade of old password hashes on login.

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use postern_store::testing::{legacy_hash, set_stored_hash, stored_hash, TestDb};
use postern_store::{LoginAttempt, LoginConfig, LoginOutcome, Service, Store};

both_backends!(
    outcomes,
    parallel_attempts_never_exceed_the_budget,
    one_budget_for_every_service,
    old_hashes_are_upgraded_on_login,
    distributed_guessing_never_locks_the_account,
);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn attempt<'a>(
    service: Service,
    client: &str,
    username: &'a str,
    password: &'a str,
) -> LoginAttempt<'a> {
    LoginAttempt {
        service,
        client: ip(client),
        username,
        password,
    }
}

/// A store whose account bucket never slows anything, so that only the address rule applies.
async fn open(db: &TestDb) -> Store {
    open_with(
        db,
        LoginConfig {
            account_attempts_per_minute: 1000,
            ..LoginConfig::default()
        },
    )
    .await
}

/// A store with login limits `config`, domain example.test and alice (password `pw-alice`).
async fn open_with(db: &TestDb, config: LoginConfig) -> Store {
    let store = Store::open_with(&db.url, config).await.unwrap();
    store.add_domain("example.test").await.unwrap();
    store
        .add_user("alice@example.test", "pw-alice", 0)
        .await
        .unwrap();
    store
}

async fn outcomes(db: &TestDb) {
    let store = open(db).await;
    let user = match store
        .login(attempt(
            Service::Imap,
            "192.0.2.1",
            "Alice@Example.test",
            "pw-alice",
        ))
        .await
    {
        LoginOutcome::Success(u) => u,
        other => panic!("{other:?}"),
    };
    assert_eq!(user.address.to_string(), "alice@example.test");
    for (name, pw) in [
        ("alice@example.test", "wrong"),
        ("nobody@example.test", "pw-alice"),
        ("not an address", "pw"),
    ] {
        assert_eq!(
            store
                .login(attempt(Service::Smtp, "192.0.2.1", name, pw))
                .await,
            LoginOutcome::Failed,
            "{name}"
        );
    }
    store
        .set_disabled("alice@example.test", true)
        .await
        .unwrap();
    assert_eq!(
        store
            .login(attempt(
                Service::Imap,
                "192.0.2.1",
                "alice@example.test",
                "pw-alice"
            ))
            .await,
        LoginOutcome::Failed,
        "a disabled user cannot log in"
    );
    store.add_admin("root", "admin-pw").await.unwrap();
    assert!(matches!(
        store.login_admin(attempt(Service::AdminWeb, "192.0.2.1", "root", "admin-pw")).await,
        LoginOutcome::Success(a) if a.username == "root"
    ));
    assert_eq!(
        store
            .login_admin(attempt(
                Service::AdminWeb,
                "192.0.2.1",
                "alice@example.test",
                "pw-alice"
            ))
            .await,
        LoginOutcome::Failed,
        "a mail user is no administrator"
    );
}

async fn parallel_attempts_never_exceed_the_budget(db: &TestDb) {
    let store = open(db).await;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let pw = format!("guess{i}");
                store
                    .login(attempt(
                        Service::Imap,
                        "192.0.2.20",
                        "alice@example.test",
                        &pw,
                    ))
                    .await
            })
        })
        .collect();
    let mut failed = 0;
    let mut throttled = 0;
    for t in tasks {
        match t.await.unwrap() {
            LoginOutcome::Failed => failed += 1,
            LoginOutcome::Throttled { retry_after } => {
                assert!(retry_after > Duration::from_secs(60), "{retry_after:?}");
                throttled += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        (failed, throttled),
        (10, 40),
        "at most 10 verifications per address"
    );
    // Even the right password is refused from that address now, unverified...
    assert!(matches!(
        store
            .login(attempt(
                Service::Smtp,
                "192.0.2.20",
                "alice@example.test",
                "pw-alice"
            ))
            .await,
        LoginOutcome::Throttled { .. }
    ));
    // ...while the real user elsewhere logs in at once.
    let started = Instant::now();
    assert!(matches!(
        store
            .login(attempt(
                Service::Smtp,
                "192.0.2.21",
                "alice@example.test",
                "pw-alice"
            ))
            .await,
        LoginOutcome::Success(_)
    ));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

async fn one_budget_for_every_service(db: &TestDb) {
    let store = open(db).await;
    store.add_admin("root", "admin-pw").await.unwrap();
    let client = "198.51.100.9";
    for i in 0..10 {
        let outcome = match i % 4 {
            0 => {
                store
                    .login(attempt(Service::Smtp, client, "alice@example.test", "x"))
                    .await
            }
            1 => {
                store
                    .login(attempt(Service::Imap, client, "alice@example.test", "x"))
                    .await
            }
            2 => {
                store
                    .login(attempt(Service::Account, client, "alice@example.test", "x"))
                    .await
            }
            _ => match store
                .login_admin(attempt(Service::AdminWeb, client, "root", "x"))
                .await
            {
                LoginOutcome::Failed => LoginOutcome::Failed,
                other => panic!("{other:?}"),
            },
        };
        assert_eq!(outcome, LoginOutcome::Failed, "attempt {i}");
    }
    assert!(matches!(
        store
            .login_admin(attempt(Service::AdminWeb, client, "root", "admin-pw"))
            .await,
        LoginOutcome::Throttled { .. }
    ));
    assert!(matches!(
        store
            .login(attempt(
                Service::Imap,
                client,
                "alice@example.test",
                "pw-alice"
            ))
            .await,
        LoginOutcome::Throttled { .. }
    ));
}

async fn old_hashes_are_upgraded_on_login(db: &TestDb) {
    let store = open(db).await;
    store.add_admin("root", "admin-pw").await.unwrap();
    let old_user = legacy_hash("pw-alice", 4096, 1);
    let old_admin = legacy_hash("admin-pw", 4096, 1);
    assert!(old_user.contains("m=4096,t=1"), "{old_user}");
    set_stored_hash(&store, "users", "alice@example.test", &old_user).await;
    set_stored_hash(&store, "admins", "root", &old_admin).await;

    // A failed login changes nothing.
    assert_eq!(
        store
            .login(attempt(
                Service::Imap,
                "192.0.2.1",
                "alice@example.test",
                "nope"
            ))
            .await,
        LoginOutcome::Failed
    );
    assert_eq!(
        stored_hash(&store, "users", "alice@example.test").await,
        old_user
    );

    assert!(matches!(
        store
            .login(attempt(
                Service::Imap,
                "192.0.2.1",
                "alice@example.test",
                "pw-alice"
            ))
            .await,
        LoginOutcome::Success(_)
    ));
    let new_user = stored_hash(&store, "users", "alice@example.test").await;
    assert!(
        new_user.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{new_user}"
    );
    assert!(matches!(
        store
            .login_admin(attempt(Service::AdminWeb, "192.0.2.1", "root", "admin-pw"))
            .await,
        LoginOutcome::Success(_)
    ));
    let new_admin = stored_hash(&store, "admins", "root").await;
    assert!(
        new_admin.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{new_admin}"
    );

    // The new hashes work, and a current hash is left alone.
    assert!(matches!(
        store
            .login(attempt(
                Service::Smtp,
                "192.0.2.1",
                "alice@example.test",
                "pw-alice"
            ))
            .await,
        LoginOutcome::Success(_)
    ));
    assert_eq!(
        stored_hash(&store, "users", "alice@example.test").await,
        new_user
    );
    assert!(matches!(
        store
            .login_admin(attempt(Service::AdminWeb, "192.0.2.1", "root", "admin-pw"))
            .await,
        LoginOutcome::Success(_)
    ));
}

/// The tester's finding: 36 wrong passwords over 4 addresses used to lock the real user out of
/// every new address. Now guessing only slows the guessers down.
async fn distributed_guessing_never_locks_the_account(db: &TestDb) {
    let config = LoginConfig {
        max_slowdown_secs: 0,
        ..LoginConfig::default()
    };
    let store = open_with(db, config).await;
    assert!(matches!(
        store
            .login(attempt(
                Service::Imap,
                "198.51.100.1",
                "alice@example.test",
                "pw-alice"
            ))
            .await,
        LoginOutcome::Success(_)
    ));
    let mut throttled = 0;
    for i in 0..36 {
        let client = format!("203.0.113.{}", i % 4);
        match store
            .login(attempt(
                Service::Smtp,
                &client,
                "alice@example.test",
                "guess",
            ))
            .await
        {
            LoginOutcome::Failed => {}
            LoginOutcome::Throttled { .. } => throttled += 1,
            other => panic!("{other:?}"),
        }
    }
    assert!(throttled > 0, "the guessers were slowed down");
    for client in ["198.51.100.1", "192.0.2.77"] {
        let started = Instant::now();
        assert!(
            matches!(
                store
                    .login(attempt(
                        Service::Imap,
                        client,
                        "alice@example.test",
                        "pw-alice"
                    ))
                    .await,
                LoginOutcome::Success(_)
            ),
            "known-good and fresh addresses still get in ({client})"
        );
        assert!(started.elapsed() < Duration::from_secs(20));
    }
}
