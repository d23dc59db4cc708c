//! DKIM keys and greylisting, on SQLite and PostgreSQL.

mod common;

use base64::Engine;
use postern_store::testing::TestDb;
use postern_store::{Change, DkimAlgorithm, DkimState, Greylist};

both_backends!(
    new_domain_has_signing_keys,
    two_step_rotation,
    imported_key_signs_under_its_selector,
    greylisting
);

async fn new_domain_has_signing_keys(db: &TestDb) {
    let store = db.open().await;
    let mut changes = store.subscribe();
    store.add_domain("example.test").await.unwrap();
    let keys = store.dkim_keys("example.test").await.unwrap();
    assert_eq!(
        keys.iter().map(|k| k.selector.as_str()).collect::<Vec<_>>(),
        ["pst1e", "pst1r"]
    );
    let signing = store.signing_keys("EXAMPLE.test").await.unwrap();
    assert_eq!(
        signing.iter().map(|k| k.algorithm).collect::<Vec<_>>(),
        [DkimAlgorithm::Rsa, DkimAlgorithm::Ed25519]
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    let rsa = &signing[0];
    assert!(
        ring::signature::RsaKeyPair::from_pkcs8(&rsa.private_pkcs8).is_ok(),
        "RSA key is PKCS#8"
    );
    let rsa_public = b64.decode(&rsa.public_key).unwrap();
    assert!(
        (290..300).contains(&rsa_public.len()),
        "2048-bit SubjectPublicKeyInfo, got {} bytes",
        rsa_public.len()
    );
    assert!(
        rsa.txt().starts_with("v=DKIM1; k=rsa; p=MIIB"),
        "{}",
        rsa.txt()
    );
    let ed = &signing[1];
    let pair =
        ring::signature::Ed25519KeyPair::from_pkcs8(&ed.private_pkcs8).expect("Ed25519 PKCS#8");
    assert_eq!(
        b64.decode(&ed.public_key).unwrap(),
        ring::signature::KeyPair::public_key(&pair).as_ref()
    );
    assert!(ed.txt().starts_with("v=DKIM1; k=ed25519; p="));
    assert!(
        !format!("{rsa:?}").contains(&b64.encode(&rsa.private_pkcs8)[..20]),
        "Debug hides the private key"
    );
    let change = tokio::time::timeout(std::time::Duration::from_secs(10), changes.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(change, Change::MailDomains);
    // Every view's records move when a domain's published records change: the bus says so.
    store.rotate_dkim("example.test").await.unwrap();
    let change = tokio::time::timeout(std::time::Duration::from_secs(10), changes.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(change, Change::MailDomains);
    // Keys go with their domain.
    store.remove_domain("example.test").await.unwrap();
    assert!(store.dkim_keys("example.test").await.unwrap().is_empty());
}

async fn two_step_rotation(db: &TestDb) {
    let store = db.open().await;
    store.add_domain("example.test").await.unwrap();
    let first: Vec<_> = store
        .signing_keys("example.test")
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.selector)
        .collect();
    assert!(
        !store.rotate_dkim("example.test").await.unwrap(),
        "step one only publishes"
    );
    assert_eq!(
        store
            .signing_keys("example.test")
            .await
            .unwrap()
            .iter()
            .map(|k| &k.selector)
            .collect::<Vec<_>>(),
        first.iter().collect::<Vec<_>>()
    );
    let next: Vec<_> = store
        .dkim_keys("example.test")
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.state == DkimState::Next)
        .map(|k| k.selector)
        .collect();
    assert_eq!(next, ["pst2e", "pst2r"]);
    assert!(
        store.rotate_dkim("example.test").await.unwrap(),
        "step two switches"
    );
    let signing: Vec<_> = store
        .signing_keys("example.test")
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.selector)
        .collect();
    assert_eq!(signing, ["pst2r", "pst2e"]);
    let retired: Vec<_> = store
        .dkim_keys("example.test")
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.state == DkimState::Retired)
        .map(|k| k.selector)
        .collect();
    assert_eq!(retired, ["pst1e", "pst1r"], "old keys stay published");
    assert_eq!(
        store.purge_retired_dkim(0).await.unwrap(),
        0,
        "not old enough"
    );
    assert_eq!(store.purge_retired_dkim(i64::MAX).await.unwrap(), 2);
    assert_eq!(store.dkim_keys("example.test").await.unwrap().len(), 2);
    assert!(store.rotate_dkim("nowhere.test").await.is_err());
}

/// An RSA private key in PEM made by `openssl genrsa` (`-traditional`: PKCS#1).
fn openssl_key(pkcs1: bool) -> String {
    let mut cmd = std::process::Command::new("openssl");
    cmd.arg("genrsa");
    if pkcs1 {
        cmd.arg("-traditional");
    }
    let out = cmd.arg("2048").output().expect("run openssl");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).expect("PEM")
}

async fn imported_key_signs_under_its_selector(db: &TestDb) {
    let store = db.open().await;
    store.add_domain("example.test").await.unwrap();
    let pem = openssl_key(true);
    assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"), "{pem}");
    assert!(store
        .import_dkim_key("example.test", "dkim", &pem)
        .await
        .unwrap());
    let signing = store.signing_keys("example.test").await.unwrap();
    let names: Vec<(&str, DkimAlgorithm)> = signing
        .iter()
        .map(|k| (k.selector.as_str(), k.algorithm))
        .collect();
    assert_eq!(
        names,
        [
            ("dkim", DkimAlgorithm::Rsa),
            ("pst1e", DkimAlgorithm::Ed25519)
        ]
    );
    assert!(ring::signature::RsaKeyPair::from_pkcs8(&signing[0].private_pkcs8).is_ok());
    let keys = store.dkim_keys("example.test").await.unwrap();
    let old = keys.iter().find(|k| k.selector == "pst1r").unwrap();
    assert_eq!(old.state, DkimState::Retired, "still published");

    assert!(
        !store
            .import_dkim_key("example.test", "dkim", &pem)
            .await
            .unwrap(),
        "the same key again changes nothing"
    );
    let other = openssl_key(false);
    assert!(other.starts_with("-----BEGIN PRIVATE KEY-----"), "{other}");
    assert!(matches!(
        store.import_dkim_key("example.test", "dkim", &other).await,
        Err(postern_store::StoreError::Exists(_))
    ));
    for (selector, pem) in [
        ("dkim2", "not a key"),
        ("a.b", other.as_str()),
        ("", other.as_str()),
    ] {
        assert!(matches!(
            store.import_dkim_key("example.test", selector, pem).await,
            Err(postern_store::StoreError::Invalid { .. })
        ));
    }
    assert!(store
        .import_dkim_key("nowhere.test", "dkim", &other)
        .await
        .is_err());

    assert!(!store.rotate_dkim("example.test").await.unwrap());
    let selectors: Vec<String> = store
        .dkim_keys("example.test")
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.selector)
        .collect();
    assert_eq!(selectors, ["dkim", "pst1e", "pst1r", "pst2e", "pst2r"]);
}

async fn greylisting(db: &TestDb) {
    let store = db.open().await;
    let check = |delay, lifetime| {
        store.greylist(
            "192.0.2.0/24",
            "a@remote.test",
            "b@example.test",
            delay,
            lifetime,
        )
    };
    assert_eq!(
        check(300, 86400).await.unwrap(),
        Greylist::Defer(300),
        "first sight"
    );
    match check(300, 86400).await.unwrap() {
        Greylist::Defer(left) => assert!((299..=300).contains(&left), "{left}"),
        Greylist::Pass => panic!("an early retry passed"),
    }
    assert_eq!(
        check(0, 86400).await.unwrap(),
        Greylist::Pass,
        "retry after the delay"
    );
    assert_eq!(
        check(300, 86400).await.unwrap(),
        Greylist::Pass,
        "a triplet that passed keeps passing"
    );
    assert_eq!(
        store
            .greylist(
                "192.0.2.0/24",
                "A@REMOTE.test",
                "b@example.test",
                300,
                86400
            )
            .await
            .unwrap(),
        Greylist::Pass,
        "addresses compare case-insensitively"
    );
    assert_eq!(
        store
            .greylist(
                "198.51.100.0/24",
                "a@remote.test",
                "b@example.test",
                300,
                86400
            )
            .await
            .unwrap(),
        Greylist::Defer(300)
    );
    // A triplet unused for longer than its lifetime starts over.
    assert_eq!(check(300, -1).await.unwrap(), Greylist::Defer(300));
}
