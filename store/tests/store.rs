//! Store API tests, each run on SQLite and on PostgreSQL (`DATABASE_URL`).

use std::collections::BTreeSet;

mod common;

use common::store_with_user;

use postern_store::testing::TestDb;
use postern_store::{BlobSource, Store, StoredBytes};
use postern_store::{
    Change, DeliveryOutcome, DnsJournal, DnsRrset, FlagOp, Flags, Incoming, LocalCopy,
    MailboxEvent, Resolution, SessionKind, StoreError,
};

both_backends!(
    domains_crud_and_uniqueness,
    users_and_authentication,
    default_mailboxes_and_creation,
    recipient_resolution,
    accept_delivers_and_queues_in_one_transaction,
    blobs_are_shared_and_freed,
    quota_is_enforced,
    flags_and_modseq,
    expunge_only_deleted,
    concurrent_uid_allocation_never_repeats,
    changes_are_published,
    queue_lifecycle,
    queue_claims_never_overlap,
    dns_records_and_changes,
    admins_and_sessions,
    migrations_are_idempotent,
    user_sessions,
    dns_record_update,
    dns_rrsets_replaced_with_journal,
    copy_move_and_details,
    rename_delete_subscribe,
    recent_is_claimed_once,
);

/// INBOX copies for `users`.
fn inbox_copies(users: &[i64]) -> Vec<LocalCopy> {
    LocalCopy::all(users, "INBOX")
}

fn incoming<'a>(raw: &'a [u8], local: &'a [LocalCopy], remote: &'a [String]) -> Incoming<'a> {
    Incoming {
        raw: BlobSource::Bytes(raw),
        internal_date: 1_700_000_000,
        local,
        sender: "sender@remote.test",
        remote,
        remote_dsn: &[],
        expires_at: i64::MAX,
    }
}

async fn domains_crud_and_uniqueness(db: &TestDb) {
    let store = db.open().await;
    let d = store.add_domain("Example.TEST.").await.unwrap();
    assert_eq!(d.name, "example.test");
    assert!(matches!(
        store.add_domain("EXAMPLE.test").await,
        Err(StoreError::Exists(_))
    ));
    assert!(matches!(
        store.add_domain("bad_domain!").await,
        Err(StoreError::Invalid { .. })
    ));
    store.add_domain("b.test").await.unwrap();
    let names: Vec<_> = store
        .list_domains()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, ["b.test", "example.test"]);
    assert_eq!(
        store.domain("EXAMPLE.TEST").await.unwrap().map(|d| d.id),
        Some(d.id)
    );
    store.remove_domain("b.test").await.unwrap();
    assert!(matches!(
        store.remove_domain("b.test").await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.list_domains().await.unwrap().len(), 1);
}

async fn users_and_authentication(db: &TestDb) {
    let (store, _) = store_with_user(db, 0).await;
    assert!(matches!(
        store.add_user("ALICE@example.test", "x", 0).await,
        Err(StoreError::Exists(_))
    ));
    assert!(matches!(
        store.add_user("bob@nowhere.test", "x", 0).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.add_user("bob@example.test", "", 0).await,
        Err(StoreError::Invalid { .. })
    ));

    let u = store
        .authenticate("Alice@Example.test", "pw-alice")
        .await
        .unwrap()
        .expect("login");
    assert_eq!(u.address.to_string(), "alice@example.test");
    assert!(store
        .authenticate("alice@example.test", "wrong")
        .await
        .unwrap()
        .is_none());
    assert!(store
        .authenticate("nobody@example.test", "pw-alice")
        .await
        .unwrap()
        .is_none());
    assert!(store
        .authenticate("not an address", "pw")
        .await
        .unwrap()
        .is_none());

    store
        .set_password("alice@example.test", "new-pw")
        .await
        .unwrap();
    assert!(store
        .authenticate("alice@example.test", "pw-alice")
        .await
        .unwrap()
        .is_none());
    assert!(store
        .authenticate("alice@example.test", "new-pw")
        .await
        .unwrap()
        .is_some());

    store
        .set_disabled("alice@example.test", true)
        .await
        .unwrap();
    assert!(store
        .authenticate("alice@example.test", "new-pw")
        .await
        .unwrap()
        .is_none());
    store
        .set_disabled("alice@example.test", false)
        .await
        .unwrap();

    store.set_quota("alice@example.test", 1000).await.unwrap();
    assert_eq!(
        store
            .user("alice@example.test")
            .await
            .unwrap()
            .unwrap()
            .quota_bytes,
        1000
    );
    assert!(store.set_quota("alice@example.test", -1).await.is_err());

    store
        .add_user("bob@example.test", "pw-bob", 0)
        .await
        .unwrap();
    let all: Vec<_> = store
        .list_users(None)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.address.to_string())
        .collect();
    assert_eq!(all, ["alice@example.test", "bob@example.test"]);
    let bob = store.user("bob@example.test").await.unwrap().unwrap();
    assert_eq!(store.user_by_id(bob.id).await.unwrap(), Some(bob.clone()));
    store.remove_user("bob@example.test").await.unwrap();
    assert!(store.user("bob@example.test").await.unwrap().is_none());
    assert!(store.user_by_id(bob.id).await.unwrap().is_none());
    assert!(matches!(
        store.remove_user("bob@example.test").await,
        Err(StoreError::NotFound(_))
    ));
}

async fn default_mailboxes_and_creation(db: &TestDb) {
    let (store, uid) = store_with_user(db, 0).await;
    let boxes = store.list_mailboxes(uid).await.unwrap();
    let mut got: Vec<_> = boxes
        .iter()
        .map(|m| (m.name.as_str(), m.special_use.as_deref()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("Archive", Some("\\Archive")),
            ("Drafts", Some("\\Drafts")),
            ("INBOX", None),
            ("Junk", Some("\\Junk")),
            ("Sent", Some("\\Sent")),
            ("Trash", Some("\\Trash")),
        ]
    );
    let inbox = store
        .mailbox(uid, "inbox")
        .await
        .unwrap()
        .expect("INBOX case-insensitive");
    assert_eq!(inbox.name, "INBOX");
    assert_eq!(inbox.uidnext, 1);
    assert!(inbox.uidvalidity > 0 && inbox.uidvalidity <= i64::from(u32::MAX));
    let work = store
        .create_mailbox(uid, "Work/Projects", None)
        .await
        .unwrap();
    assert_eq!(work.name, "Work/Projects");
    assert!(matches!(
        store.create_mailbox(uid, "Work/Projects", None).await,
        Err(StoreError::Exists(_))
    ));
    assert!(store.create_mailbox(uid, "a//b", None).await.is_err());
    // Another user's mailbox of the same name is a different mailbox and invisible to the first.
    let bob = store.add_user("bob@example.test", "pw", 0).await.unwrap();
    assert!(store
        .mailbox(bob.id, "Work/Projects")
        .await
        .unwrap()
        .is_none());
}

async fn recipient_resolution(db: &TestDb) {
    let (store, alice) = store_with_user(db, 0).await;
    let bob = store
        .add_user("bob@example.test", "pw", 0)
        .await
        .unwrap()
        .id;
    let carol = store
        .add_user("carol@example.test", "pw", 0)
        .await
        .unwrap()
        .id;
    store
        .add_alias("team@example.test", "alice@example.test")
        .await
        .unwrap();
    store
        .add_alias("team@example.test", "bob@example.test")
        .await
        .unwrap();
    store
        .add_alias("team@example.test", "friend@remote.test")
        .await
        .unwrap();
    store
        .add_alias("loop1@example.test", "loop2@example.test")
        .await
        .unwrap();
    store
        .add_alias("loop2@example.test", "loop1@example.test")
        .await
        .unwrap();
    store
        .add_alias("copy@example.test", "carol@example.test")
        .await
        .unwrap();
    store
        .add_alias("carol@example.test", "carol@example.test")
        .await
        .unwrap();
    store
        .add_alias("carol@example.test", "carol@remote.test")
        .await
        .unwrap();
    assert!(matches!(
        store
            .add_alias("team@example.test", "bob@example.test")
            .await,
        Err(StoreError::Exists(_))
    ));
    assert!(matches!(
        store
            .add_alias("x@nothosted.test", "bob@example.test")
            .await,
        Err(StoreError::NotFound(_))
    ));
    let counts = store.counts().await.unwrap();
    assert_eq!(
        (counts.domains, counts.users, counts.aliases),
        (1, 3, 8),
        "refused aliases are not counted"
    );

    let deliver = |l: &[i64], r: &[&str]| Resolution::Deliver {
        local: l.iter().copied().collect(),
        remote: r.iter().map(|s| s.to_string()).collect(),
    };
    assert_eq!(
        store.resolve_recipient("alice@example.test").await.unwrap(),
        deliver(&[alice], &[])
    );
    assert_eq!(
        store
            .resolve_recipient("Alice+news@EXAMPLE.test")
            .await
            .unwrap(),
        deliver(&[alice], &[])
    );
    assert_eq!(
        store.resolve_recipient("team@example.test").await.unwrap(),
        deliver(&[alice, bob], &["friend@remote.test"])
    );
    assert_eq!(
        store
            .resolve_recipient("team+x@example.test")
            .await
            .unwrap(),
        deliver(&[alice, bob], &["friend@remote.test"])
    );
    // An alias naming its own address keeps a local copy and forwards (a common "keep and forward").
    assert_eq!(
        store.resolve_recipient("copy@example.test").await.unwrap(),
        deliver(&[carol], &["carol@remote.test"])
    );
    assert_eq!(
        store
            .resolve_recipient("nobody@example.test")
            .await
            .unwrap(),
        Resolution::Unknown
    );
    assert_eq!(
        store.resolve_recipient("loop1@example.test").await.unwrap(),
        Resolution::Unknown
    );
    assert_eq!(
        store.resolve_recipient("x@remote.test").await.unwrap(),
        Resolution::NotHosted
    );
    assert_eq!(
        store.resolve_recipient("garbage").await.unwrap(),
        Resolution::Unknown
    );

    // Catch-all applies only where no user or alias matches.
    store
        .add_alias("@example.test", "bob@example.test")
        .await
        .unwrap();
    assert_eq!(
        store
            .resolve_recipient("nobody@example.test")
            .await
            .unwrap(),
        deliver(&[bob], &[])
    );
    assert_eq!(
        store.resolve_recipient("alice@example.test").await.unwrap(),
        deliver(&[alice], &[])
    );
    let aliases = store.list_aliases(Some("example.test")).await.unwrap();
    assert!(aliases
        .iter()
        .any(|a| a.source == "@example.test" && a.destination == "bob@example.test"));
    store.remove_alias("@example.test", None).await.unwrap();
    assert_eq!(
        store
            .resolve_recipient("nobody@example.test")
            .await
            .unwrap(),
        Resolution::Unknown
    );

    // Disabled users receive nothing.
    store.set_disabled("bob@example.test", true).await.unwrap();
    assert_eq!(
        store.resolve_recipient("team@example.test").await.unwrap(),
        deliver(&[alice], &["friend@remote.test"])
    );
    assert_eq!(
        store.resolve_recipient("bob@example.test").await.unwrap(),
        Resolution::Unknown
    );
    store
        .remove_alias("team@example.test", Some("friend@remote.test"))
        .await
        .unwrap();
    assert!(matches!(
        store
            .remove_alias("team@example.test", Some("friend@remote.test"))
            .await,
        Err(StoreError::NotFound(_))
    ));
}

async fn accept_delivers_and_queues_in_one_transaction(db: &TestDb) {
    let (store, alice) = store_with_user(db, 0).await;
    let raw = b"From: a@remote.test\r\nSubject: hi\r\n\r\nbody\r\n";
    let remote = vec!["x@remote.test".to_owned(), "y@remote.test".to_owned()];
    let acc = store
        .accept(incoming(raw, &inbox_copies(&[alice]), &remote))
        .await
        .unwrap();
    let inbox = store.mailbox(alice, "INBOX").await.unwrap().unwrap();
    assert_eq!(
        acc.local,
        [DeliveryOutcome::Delivered {
            user_id: alice,
            mailbox_id: inbox.id,
            uid: 1
        }]
    );
    assert_eq!(acc.queued.len(), 2);
    assert_eq!(inbox.uidnext, 2);
    let msgs = store.list_messages(&inbox).await.unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].uid, 1);
    assert_eq!(msgs[0].size, raw.len() as i64);
    assert_eq!(msgs[0].internal_date, 1_700_000_000);
    assert_eq!(msgs[0].flags, Flags::default());
    assert_eq!(
        store.message_raw(&inbox, 1).await.unwrap().as_deref(),
        Some(&raw[..])
    );
    assert_eq!(store.message_raw(&inbox, 2).await.unwrap(), None);
    let q = store.list_queue().await.unwrap();
    assert_eq!(
        q.iter().map(|e| e.recipient.as_str()).collect::<Vec<_>>(),
        ["x@remote.test", "y@remote.test"]
    );
    assert_eq!(queued_bytes(&store, q[0].id).await, raw);
    // A folder that exists gets the message; one that does not falls back to INBOX.
    let junk = [LocalCopy::new(alice, "Junk")];
    store.accept(incoming(b"spam", &junk, &[])).await.unwrap();
    let junk_box = store.mailbox(alice, "Junk").await.unwrap().unwrap();
    assert_eq!(store.list_messages(&junk_box).await.unwrap().len(), 1);
    let nowhere = [LocalCopy::new(alice, "NoSuchFolder")];
    store.accept(incoming(b"x", &nowhere, &[])).await.unwrap();
    assert_eq!(store.list_messages(&inbox).await.unwrap().len(), 2);
}

async fn blobs_are_shared_and_freed(db: &TestDb) {
    let (store, alice) = store_with_user(db, 0).await;
    let bob = store
        .add_user("bob@example.test", "pw", 0)
        .await
        .unwrap()
        .id;
    let raw = b"Subject: shared\r\n\r\nsame bytes\r\n";
    store
        .accept(incoming(raw, &inbox_copies(&[alice, bob]), &[]))
        .await
        .unwrap();
    let a_inbox = store.mailbox(alice, "INBOX").await.unwrap().unwrap();
    let b_inbox = store.mailbox(bob, "INBOX").await.unwrap().unwrap();
    store
        .set_flags(&a_inbox, &[1], FlagOp::Add, &Flags::system(Flags::DELETED))
        .await
        .unwrap();
    assert_eq!(store.expunge(&a_inbox, None).await.unwrap(), [1]);
    assert_eq!(store.message_raw(&a_inbox, 1).await.unwrap(), None);
    assert_eq!(
        store.message_raw(&b_inbox, 1).await.unwrap().as_deref(),
        Some(&raw[..])
    );
    // The queue keeps bytes alive too; after the last reference goes, so do the bytes.
    let remote = vec!["z@remote.test".to_owned()];
    let acc = store.accept(incoming(raw, &[], &remote)).await.unwrap();
    store
        .set_flags(&b_inbox, &[1], FlagOp::Add, &Flags::system(Flags::DELETED))
        .await
        .unwrap();
    store.expunge(&b_inbox, None).await.unwrap();
    assert_eq!(queued_bytes(&store, acc.queued[0]).await, raw);
    store.remove_queue(acc.queued[0]).await.unwrap();
    assert!(matches!(
        store.queue_message(acc.queued[0], None).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn quota_is_enforced(db: &TestDb) {
    let (store, alice) = store_with_user(db, 0).await;
    let bob = store
        .add_user("bob@example.test", "pw", 0)
        .await
        .unwrap()
        .id;
    store.set_quota("alice@example.test", 100).await.unwrap();
    let big = vec![b'x'; 60];
    let acc = store
        .accept(incoming(&big, &inbox_copies(&[alice, bob]), &[]))
        .await
        .unwrap();
    assert!(matches!(acc.local[0], DeliveryOutcome::Delivered { .. }));
    let acc = store
        .accept(incoming(&big, &inbox_copies(&[alice, bob]), &[]))
        .await
        .unwrap();
    assert_eq!(acc.local[0], DeliveryOutcome::OverQuota { user_id: alice });
    assert!(
        matches!(acc.local[1], DeliveryOutcome::Delivered { .. }),
        "others still get it"
    );
    assert_eq!(
        store
            .user("alice@example.test")
            .await
            .unwrap()
            .unwrap()
            .used_bytes,
        60
    );
    let inbox = store.mailbox(alice, "INBOX").await.unwrap().unwrap();
    assert!(matches!(
        store.append(&inbox, &big, &Flags::default(), 0).await,
        Err(StoreError::OverQuota(_))
    ));
    // Expunge frees quota.
    store
        .set_flags(&inbox, &[1], FlagOp::Add, &Flags::system(Flags::DELETED))
        .await
        .unwrap();
    store.expunge(&inbox, None).await.unwrap();
    assert_eq!(
        store
            .user("alice@example.test")
            .await
            .unwrap()
            .unwrap()
            .used_bytes,
        0
    );
    store
        .append(&inbox, &big, &Flags::default(), 0)
        .await
        .unwrap();
}

async fn flags_and_modseq(db: &TestDb) {
    let (store, alice) = store_with_user(db, 0).await;
    let inbox = store.mailbox(alice, "INBOX").await.unwrap().unwrap();
    let kw = Flags {
        system: Flags::SEEN,
        keywords: ["$Forwarded".to_owned()].into(),
    };
    assert_eq!(store.append(&inbox, b"one", &kw, 5).await.unwrap(), 1);
    assert_eq!(
        store
            .append(&inbox, b"two", &Flags::default(), 6)
            .await
            .unwrap(),
        2
    );
    let before = store
        .mailbox(alice, "INBOX")
        .await
        .unwrap()
        .unwrap()
        .highestmodseq;

    let changed = store
        .set_flags(
            &inbox,
            &[1, 2, 99],
            FlagOp::Add,
            &Flags::system(Flags::FLAGGED),
        )
        .await
        .unwrap();
    assert_eq!(changed.len(), 2, "unknown UID 99 ignored");
    assert!(changed
        .iter()
        .all(|m| m.modseq == before + 1 && m.flags.system & Flags::FLAGGED != 0));
    assert_eq!(
        changed[0].flags.keywords,
        BTreeSet::from(["$Forwarded".to_owned()])
    );

    // No real change: no new MODSEQ.
    assert!(store
        .set_flags(&inbox, &[1], FlagOp::Add, &Flags::system(Flags::FLAGGED))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .mailbox(alice, "INBOX")
            .await
            .unwrap()
            .unwrap()
            .highestmodseq,
        before + 1
    );

    let changed = store
        .set_flags(&inbox, &[1], FlagOp::Remove, &kw)
        .await
        .unwrap();
    assert_eq!(changed[0].flags, Flags::system(Flags::FLAGGED));
    let changed = store
        .set_flags(&inbox, &[2], FlagOp::Replace, &Flags::system(Flags::DRAFT))
        .await
        .unwrap();
    assert_eq!(changed[0].flags, Flags::system(Flags::DRAFT));
    assert_eq!(changed[0].modseq, before + 3);
    let listed = store.list_messages(&inbox).await.unwrap();
    assert_eq!(listed[1].flags, Flags::system(Flags::DRAFT));
}

async fn expunge_only_deleted(db: &TestDb) {
    let (store, alice) = store_with_user(db, 0).await;
    let inbox = store.mailbox(alice, "INBOX").await.unwrap().unwrap();
    for i in 0..4u8 {
        store
            .append(&inbox, &[b'm', i], &Flags::default(), 0)
            .await
            .unwrap();
    }
    store
        .set_flags(
            &inbox,
            &[1, 2, 4],
            FlagOp::Add,
            &Flags::system(Flags::DELETED),
        )
        .await
        .unwrap();
    assert_eq!(
        store.expunge(&inbox, Some(&[2, 3])).await.unwrap(),
        [2],
        "UID EXPUNGE limits to the set"
    );
    assert_eq!(store.expunge(&inbox, None).await.unwrap(), [1, 4]);
    assert!(store.expunge(&inbox, None).await.unwrap().is_empty());
    let uids: Vec<_> = store
        .list_messages(&inbox)
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(uids, [3]);
    // UIDs are never reused after expunge.
    assert_eq!(
        store
            .append(&inbox, b"new", &Flags::default(), 0)
            .await
            .unwrap(),
        5
    );
}

async fn concurrent_uid_allocation_never_repeats(db: &TestDb) {
    let (store, alice) = store_with_user(db, 0).await;
    let inbox = store.mailbox(alice, "INBOX").await.unwrap().unwrap();
    let mut tasks = Vec::new();
    for i in 0..40u32 {
        let (store, inbox) = (store.clone(), inbox.clone());
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                store
                    .append(&inbox, format!("msg {i}").as_bytes(), &Flags::default(), 0)
                    .await
                    .unwrap()
            } else {
                let raw = format!("delivered {i}");
                let acc = store
                    .accept(incoming(raw.as_bytes(), &inbox_copies(&[alice]), &[]))
                    .await
                    .unwrap();
                match acc.local[0] {
                    DeliveryOutcome::Delivered { uid, .. } => uid,
                    ref other => panic!("{other:?}"),
                }
            }
        }));
    }
    let mut uids = Vec::new();
    for t in tasks {
        uids.push(t.await.unwrap());
    }
    uids.sort();
    assert_eq!(uids, (1..=40).collect::<Vec<i64>>());
    let listed: Vec<_> = store
        .list_messages(&inbox)
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(listed, uids);
    assert_eq!(
        store
            .mailbox(alice, "INBOX")
            .await
            .unwrap()
            .unwrap()
            .uidnext,
        41
    );
}

async fn changes_are_published(db: &TestDb) {
    let (store, alice) = store_with_user(db, 0).await;
    // A second handle stands for a second Postern node on PostgreSQL, the same process on SQLite.
    // A second handle with its own change feed stands for a second process on the same
    // database: LISTEN/NOTIFY on PostgreSQL, the watched change_log on SQLite.
    let other = db.open().await;
    let mut rx = other.subscribe();
    let inbox = store.mailbox(alice, "INBOX").await.unwrap().unwrap();
    store
        .append(&inbox, b"x", &Flags::default(), 0)
        .await
        .unwrap();
    store
        .add_dns_record("internal", "www.example.test", "A", 300, "10.0.0.5")
        .await
        .unwrap();
    match wait(&mut rx).await {
        Change::Mailbox {
            user_id,
            mailbox_id,
            event,
            modseq,
        } => {
            assert_eq!(
                (user_id, mailbox_id, event),
                (alice, inbox.id, MailboxEvent::Appended)
            );
            assert_eq!(
                modseq,
                store
                    .mailbox(alice, "INBOX")
                    .await
                    .unwrap()
                    .unwrap()
                    .highestmodseq
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        wait(&mut rx).await,
        Change::Dns {
            view: "internal".into()
        }
    );
}

async fn wait(rx: &mut tokio::sync::broadcast::Receiver<Change>) -> Change {
    tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
        .await
        .expect("change in time")
        .unwrap()
}

/// The bytes of a small queued message (kept in memory).
async fn queued_bytes(store: &Store, id: i64) -> Vec<u8> {
    match store.queue_message(id, None).await.unwrap() {
        StoredBytes::Memory(bytes) => bytes,
        StoredBytes::File(_) => panic!("a small queued message is spooled"),
    }
}

async fn queue_lifecycle(db: &TestDb) {
    let store = db.open().await;
    let remote = vec!["r@remote.test".to_owned()];
    let msg = Incoming {
        expires_at: 5000,
        ..incoming(b"queued", &[], &remote)
    };
    let id = store.accept(msg).await.unwrap().queued[0];
    assert_eq!(
        store.counts().await.unwrap(),
        postern_store::Counts {
            queue: postern_store::QueueCounts {
                new: 1,
                deferred: 0
            },
            ..Default::default()
        }
    );
    let now = postern_store::unix_now();
    let due = store.claim_queue("a", now, now + 900, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].id, due[0].attempts, due[0].size, due[0].expires_at),
        (id, 0, 6, 5000)
    );
    assert_eq!(due[0].sender, "sender@remote.test");
    // Claimed: nobody else gets it until the lease ends (a worker that died).
    assert!(store
        .claim_queue("a", now, now + 900, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .claim_queue("a", now + 900, now + 1800, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    store
        .defer_queue(id, "451 try later", now + 600)
        .await
        .unwrap();
    assert!(store
        .claim_queue("a", now, now + 900, 10)
        .await
        .unwrap()
        .is_empty());
    let e = &store.list_queue().await.unwrap()[0];
    assert_eq!(
        (e.attempts, e.last_error.as_deref()),
        (1, Some("451 try later"))
    );
    assert_eq!(
        store.counts().await.unwrap().queue,
        postern_store::QueueCounts {
            new: 0,
            deferred: 1
        }
    );
    store.retry_queue(id).await.unwrap();
    assert_eq!(
        store
            .claim_queue("a", postern_store::unix_now(), now + 900, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    // Node "a" starts again after a crash: it takes back its own lease at once; node "b" does
    // not take back a lease of "a", and a deferred entry is no lease.
    assert_eq!(store.reclaim_queue("b", now).await.unwrap(), 0);
    assert_eq!(store.reclaim_queue("a", now).await.unwrap(), 1);
    assert_eq!(store.list_queue().await.unwrap()[0].next_attempt, now);
    assert_eq!(store.reclaim_queue("a", now).await.unwrap(), 0);
    let claimed = store.claim_queue("b", now, now + 900, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(store.reclaim_queue("a", now).await.unwrap(), 0);
    store.defer_queue(id, "451 again", now + 600).await.unwrap();
    assert_eq!(store.reclaim_queue("b", now).await.unwrap(), 0);
    store.remove_queue(id).await.unwrap();
    assert!(store.list_queue().await.unwrap().is_empty());
    assert_eq!(store.counts().await.unwrap().queue.total(), 0);
    assert!(matches!(
        store.defer_queue(id, "x", 0).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.retry_queue(id).await,
        Err(StoreError::NotFound(_))
    ));
}

/// Two nodes (two stores on one database) claiming due queue entries at the same time never get
/// the same entry, and together get all of them.
async fn queue_claims_never_overlap(db: &TestDb) {
    let node_a = db.open().await;
    let node_b = db.open().await;
    let remote: Vec<String> = (0..30).map(|i| format!("r{i}@remote.test")).collect();
    let queued = node_a
        .accept(incoming(b"fan-out", &[], &remote))
        .await
        .unwrap()
        .queued;
    assert_eq!(queued.len(), 30);
    let now = postern_store::unix_now();
    let mut tasks = Vec::new();
    for store in [node_a.clone(), node_b.clone(), node_a, node_b] {
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = store.claim_queue("n", now, now + 900, 4).await.unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|e| e.id));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    let mut expected = queued;
    expected.sort();
    assert_eq!(all, expected, "each entry claimed exactly once");
}

/// The views of the next `n` DNS changes on the bus, in order (20 s for each).
async fn dns_changes(rx: &mut tokio::sync::broadcast::Receiver<Change>, n: usize) -> Vec<String> {
    let mut views = Vec::new();
    while views.len() < n {
        let change = tokio::time::timeout(std::time::Duration::from_secs(20), rx.recv())
            .await
            .expect("a DNS change in 20 s")
            .expect("the change bus is open");
        if let Change::Dns { view } = change {
            views.push(view);
        }
    }
    views
}

/// Every change of a view's records is announced on the change bus with its view: that is how
/// the DNS servers (of every node) learn to serve it under a new serial.
async fn dns_records_and_changes(db: &TestDb) {
    let store = db.open().await;
    let mut rx = store.subscribe();
    let r = store
        .add_dns_record("internal", "WWW.Example.test", "a", 300, "10.0.0.5")
        .await
        .unwrap();
    assert_eq!(
        (r.name.as_str(), r.rtype.as_str()),
        ("www.example.test.", "A")
    );
    assert!(matches!(
        store
            .add_dns_record("internal", "www.example.test.", "A", 60, "10.0.0.5")
            .await,
        Err(StoreError::Exists(_))
    ));
    store
        .add_dns_record("external", "www.example.test", "A", 300, "192.0.2.5")
        .await
        .unwrap();
    assert!(matches!(
        store
            .add_dns_record("internal", "x.test", "NS", 300, "ns.")
            .await,
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        store
            .add_dns_record("internal", "x.test", "A", -1, "1.2.3.4")
            .await,
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        store
            .add_dns_record("internal", "x.test", "A", 1, " ")
            .await,
        Err(StoreError::Invalid { .. })
    ));
    assert_eq!(
        store.dns_records(Some("internal")).await.unwrap(),
        vec![r.clone()]
    );
    assert_eq!(store.dns_records(None).await.unwrap().len(), 2);
    assert_eq!(dns_changes(&mut rx, 2).await, ["internal", "external"]);
    store.remove_dns_record(r.id).await.unwrap();
    assert_eq!(dns_changes(&mut rx, 1).await, ["internal"]);
    assert!(store
        .dns_records(Some("internal"))
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        store.remove_dns_record(r.id).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn admins_and_sessions(db: &TestDb) {
    let store = db.open().await;
    let admin = store.add_admin("root", "admin-pw").await.unwrap();
    assert!(matches!(
        store.add_admin("root", "x").await,
        Err(StoreError::Exists(_))
    ));
    assert!(store.add_admin("bad name", "x").await.is_err());
    assert_eq!(
        store.authenticate_admin("root", "admin-pw").await.unwrap(),
        Some(admin.clone())
    );
    assert_eq!(
        store.authenticate_admin("root", "nope").await.unwrap(),
        None
    );
    assert_eq!(
        store.authenticate_admin("ghost", "admin-pw").await.unwrap(),
        None
    );
    assert_eq!(store.list_admins().await.unwrap(), vec![admin.clone()]);

    let secret = store
        .create_session(admin.id, SessionKind::Browser, "", 3600)
        .await
        .unwrap();
    let s = store.session(&secret).await.unwrap().expect("live session");
    assert_eq!((s.admin, s.kind), (admin.clone(), SessionKind::Browser));
    assert_eq!(s.csrf_token.len(), 64);
    assert!(store.session("not-a-secret").await.unwrap().is_none());
    let expired = store
        .create_session(admin.id, SessionKind::Browser, "", -1)
        .await
        .unwrap();
    assert!(store.session(&expired).await.unwrap().is_none());
    let token = store
        .create_session(admin.id, SessionKind::ApiToken, "ci", 0)
        .await
        .unwrap();
    assert_eq!(
        store.session(&token).await.unwrap().unwrap().kind,
        SessionKind::ApiToken
    );
    store.delete_session(&secret).await.unwrap();
    assert!(store.session(&secret).await.unwrap().is_none());
    assert!(
        store.session(&token).await.unwrap().is_some(),
        "other sessions unaffected"
    );
}

async fn migrations_are_idempotent(db: &TestDb) {
    let (store, _) = store_with_user(db, 0).await;
    store.close().await;
    let again = db.open().await;
    assert!(again.user("alice@example.test").await.unwrap().is_some());
}

async fn user_sessions(db: &TestDb) {
    let (store, alice) = store_with_user(db, 0).await;
    let secret = store.create_user_session(alice, 3600).await.unwrap();
    let s = store.user_session(&secret).await.unwrap().expect("live");
    assert_eq!(
        (s.user_id, s.address.as_str()),
        (alice, "alice@example.test")
    );
    assert_eq!(s.csrf_token.len(), 64);
    assert!(store.user_session("bogus").await.unwrap().is_none());
    let expired = store.create_user_session(alice, -1).await.unwrap();
    assert!(store.user_session(&expired).await.unwrap().is_none());
    store
        .set_disabled("alice@example.test", true)
        .await
        .unwrap();
    assert!(
        store.user_session(&secret).await.unwrap().is_none(),
        "disabled users lose their sessions"
    );
    store
        .set_disabled("alice@example.test", false)
        .await
        .unwrap();
    store.delete_user_session(&secret).await.unwrap();
    assert!(store.user_session(&secret).await.unwrap().is_none());
}

async fn dns_record_update(db: &TestDb) {
    let store = db.open().await;
    let mut rx = store.subscribe();
    let r = store
        .add_dns_record("internal", "www.example.test", "A", 300, "10.0.0.5")
        .await
        .unwrap();
    store
        .add_dns_record("internal", "www.example.test", "A", 300, "10.0.0.6")
        .await
        .unwrap();
    let u = store
        .update_dns_record(r.id, 60, " 10.0.0.7 ")
        .await
        .unwrap();
    assert_eq!(
        (u.ttl, u.data.as_str(), u.name.as_str()),
        (60, "10.0.0.7", "www.example.test.")
    );
    assert_eq!(dns_changes(&mut rx, 3).await, ["internal"; 3]);
    assert!(matches!(
        store.update_dns_record(r.id, 60, "10.0.0.6").await,
        Err(StoreError::Exists(_))
    ));
    assert!(matches!(
        store.update_dns_record(r.id, -5, "10.0.0.8").await,
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        store.update_dns_record(9999, 60, "10.0.0.8").await,
        Err(StoreError::NotFound(_))
    ));
}

async fn dns_rrsets_replaced_with_journal(db: &TestDb) {
    let store = db.open().await;
    let mut rx = store.subscribe();
    store
        .add_dns_record("internal", "h.dyn.example.test", "A", 300, "10.0.0.5")
        .await
        .unwrap();
    let journal = |from: u32, added: &str| DnsJournal {
        zone: "example.test.".into(),
        from_serial: from,
        to_serial: from + 1,
        removed: String::new(),
        added: added.into(),
    };
    // One update: the A RRset replaced, a PTR-like type the admin UI does not offer added.
    store
        .replace_dns_rrsets(
            "internal",
            &[
                DnsRrset {
                    name: "H.dyn.example.test".into(),
                    rtype: "A".into(),
                    records: vec![(60, "10.0.0.6".into()), (60, "10.0.0.7".into())],
                },
                DnsRrset {
                    name: "h.dyn.example.test.".into(),
                    rtype: "sshfp".into(),
                    records: vec![(60, "1 1 0123456789abcdef".into())],
                },
            ],
            &journal(100, "h.dyn.example.test. 60 A 10.0.0.6\n"),
        )
        .await
        .unwrap();
    let records = store.dns_records(Some("internal")).await.unwrap();
    let got: Vec<(&str, &str, i64)> = records
        .iter()
        .map(|r| (r.rtype.as_str(), r.data.as_str(), r.ttl))
        .collect();
    assert_eq!(
        got,
        [
            ("A", "10.0.0.6", 60),
            ("A", "10.0.0.7", 60),
            ("SSHFP", "1 1 0123456789abcdef", 60)
        ]
    );
    assert_eq!(dns_changes(&mut rx, 2).await, ["internal"; 2]);
    // An empty RRset deletes it; a bad record rolls the whole update back.
    let bad = store
        .replace_dns_rrsets(
            "internal",
            &[
                DnsRrset {
                    name: "h.dyn.example.test".into(),
                    rtype: "A".into(),
                    records: Vec::new(),
                },
                DnsRrset {
                    name: "h.dyn.example.test".into(),
                    rtype: "TXT".into(),
                    records: vec![(-1, "\"x\"".into())],
                },
            ],
            &journal(101, ""),
        )
        .await;
    assert!(matches!(bad, Err(StoreError::Invalid { .. })));
    assert_eq!(store.dns_records(Some("internal")).await.unwrap().len(), 3);
    assert_eq!(store.dns_journal("internal").await.unwrap().len(), 1);
    store
        .replace_dns_rrsets(
            "internal",
            &[DnsRrset {
                name: "h.dyn.example.test".into(),
                rtype: "A".into(),
                records: Vec::new(),
            }],
            &journal(101, ""),
        )
        .await
        .unwrap();
    assert_eq!(store.dns_records(Some("internal")).await.unwrap().len(), 1);
    let entries = store.dns_journal("internal").await.unwrap();
    assert_eq!(
        entries.iter().map(|e| e.from_serial).collect::<Vec<_>>(),
        [100, 101]
    );
    assert_eq!(entries[0].added, "h.dyn.example.test. 60 A 10.0.0.6\n");
    assert!(store.dns_journal("external").await.unwrap().is_empty());
}

async fn copy_move_and_details(db: &TestDb) {
    let (store, uid) = store_with_user(db, 0).await;
    let inbox = store.mailbox(uid, "INBOX").await.unwrap().unwrap();
    let raw = b"From: A <a@x.test>\r\nSubject: hi\r\n\r\nbody\r\n";
    let u1 = store
        .append(&inbox, raw, &Flags::system(Flags::SEEN), 1_700_000_000)
        .await
        .unwrap();
    let u2 = store
        .append(&inbox, b"Subject: two\r\n\r\nx\r\n", &Flags::default(), 1)
        .await
        .unwrap();
    let details = store
        .message_details(&inbox, &[u2, u1, 99], true)
        .await
        .unwrap();
    assert_eq!(details.len(), 2);
    assert_eq!(details[0].uid, u1);
    assert_eq!(details[0].parsed.envelope.subject.as_deref(), Some("hi"));
    assert_eq!(details[0].raw.as_deref(), Some(&raw[..]));
    assert!(
        store.message_details(&inbox, &[u1], false).await.unwrap()[0]
            .raw
            .is_none()
    );

    let archive = store.mailbox(uid, "Archive").await.unwrap().unwrap();
    let pairs = store
        .copy_messages(&inbox, &[u1, 77], &archive)
        .await
        .unwrap();
    assert_eq!(pairs, vec![(u1, 1)]);
    let copied = store.list_messages(&archive).await.unwrap();
    assert_eq!(copied[0].flags, Flags::system(Flags::SEEN));
    assert_eq!(copied[0].internal_date, 1_700_000_000);
    let used = store
        .user("alice@example.test")
        .await
        .unwrap()
        .unwrap()
        .used_bytes;
    assert_eq!(used, 2 * raw.len() as i64 + 19);

    let trash = store.mailbox(uid, "Trash").await.unwrap().unwrap();
    let moved = store
        .move_messages(&inbox, &[u1, u2], &trash)
        .await
        .unwrap();
    assert_eq!(moved, vec![(u1, 1), (u2, 2)]);
    assert!(store.list_messages(&inbox).await.unwrap().is_empty());
    assert_eq!(store.list_messages(&trash).await.unwrap().len(), 2);
    let after = store
        .user("alice@example.test")
        .await
        .unwrap()
        .unwrap()
        .used_bytes;
    assert_eq!(after, used, "a move does not change the quota");

    // Mailboxes of another user are never a valid target.
    let bob = store.add_user("bob@example.test", "pw", 0).await.unwrap();
    let bob_inbox = store.mailbox(bob.id, "INBOX").await.unwrap().unwrap();
    assert!(store.copy_messages(&trash, &[1], &bob_inbox).await.is_err());
    assert!(store.list_messages(&bob_inbox).await.unwrap().is_empty());
    assert!(store
        .mailbox_by_id(bob.id, trash.id)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .mailbox_by_id(uid, trash.id)
            .await
            .unwrap()
            .unwrap()
            .name,
        "Trash"
    );
}

async fn rename_delete_subscribe(db: &TestDb) {
    let (store, uid) = store_with_user(db, 0).await;
    store.create_mailbox(uid, "Work", None).await.unwrap();
    store.create_mailbox(uid, "Work/A", None).await.unwrap();
    let renamed = store.rename_mailbox(uid, "Work", "Jobs").await.unwrap();
    assert_eq!(renamed.name, "Jobs");
    assert!(store.mailbox(uid, "Jobs/A").await.unwrap().is_some());
    assert!(store.mailbox(uid, "Work/A").await.unwrap().is_none());
    assert!(matches!(
        store.rename_mailbox(uid, "Jobs", "Sent").await,
        Err(StoreError::Exists(_))
    ));
    assert!(store.rename_mailbox(uid, "Jobs", "Jobs/B").await.is_err());

    let inbox = store.mailbox(uid, "INBOX").await.unwrap().unwrap();
    store
        .append(&inbox, b"Subject: x\r\n\r\n.\r\n", &Flags::default(), 1)
        .await
        .unwrap();
    let old = store.rename_mailbox(uid, "INBOX", "Old").await.unwrap();
    assert_eq!(store.list_messages(&old).await.unwrap().len(), 1);
    assert!(store.list_messages(&inbox).await.unwrap().is_empty());

    assert!(store.delete_mailbox(&inbox).await.is_err());
    store.delete_mailbox(&old).await.unwrap();
    assert!(store.mailbox(uid, "Old").await.unwrap().is_none());
    let used = store
        .user("alice@example.test")
        .await
        .unwrap()
        .unwrap()
        .used_bytes;
    assert_eq!(used, 0);

    let jobs = store.mailbox(uid, "Jobs").await.unwrap().unwrap();
    store.set_subscribed(&jobs, false).await.unwrap();
    assert!(
        !store
            .mailbox(uid, "Jobs")
            .await
            .unwrap()
            .unwrap()
            .subscribed
    );
}

async fn recent_is_claimed_once(db: &TestDb) {
    let (store, uid) = store_with_user(db, 0).await;
    let inbox = store.mailbox(uid, "INBOX").await.unwrap().unwrap();
    for _ in 0..2 {
        store
            .append(&inbox, b"Subject: r\r\n\r\n.\r\n", &Flags::default(), 1)
            .await
            .unwrap();
    }
    assert_eq!(store.claim_recent(&inbox).await.unwrap(), 1..3);
    assert!(
        store.claim_recent(&inbox).await.unwrap().is_empty(),
        "nothing left"
    );
    store
        .append(&inbox, b"Subject: r\r\n\r\n.\r\n", &Flags::default(), 1)
        .await
        .unwrap();
    assert_eq!(store.claim_recent(&inbox).await.unwrap(), 3..4);
}
