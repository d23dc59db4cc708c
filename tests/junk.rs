//! End-to-end test of the learning junk filter: mail delivered over SMTP, trained over IMAP
//! (Python imaplib: UID MOVE into Junk and Archive, STORE +FLAGS $Junk / $NotJunk), after which
//! the next spam-like message lands in the trained user's Junk with `$Junk` and a ham-like one
//! in INBOX, while an untrained user's copy of the same message stays in INBOX; moving a message
//! back out of Junk retrains it; on SQLite and PostgreSQL.

mod common;
mod smtp_support;

use common::{imap_script, Db, Instance, Server};
use postern_store::{JunkTraining, Store};
use smtp_support::{swaks, transcript};

both_backends!(imap_training_files_the_next_message);

const SPAM_WORDS: [&str; 12] = [
    "cheap",
    "pills",
    "casino",
    "winner",
    "bitcoin",
    "lottery",
    "prize",
    "credit",
    "loan",
    "guaranteed",
    "discount",
    "unsubscribe",
];

const HAM_WORDS: [&str; 12] = [
    "project", "schedule", "review", "notes", "lunch", "budget", "report", "team", "tomorrow",
    "agenda", "draft", "deadline",
];

/// The `i`th spam-like or ham-like message: subject, sender and a body of words from its list.
fn message(spam: bool, i: usize) -> (String, String, String) {
    let words = if spam { SPAM_WORDS } else { HAM_WORDS };
    let body: Vec<&str> = (0..14)
        .map(|j| words[(i * 5 + j * 7) % words.len()])
        .collect();
    if spam {
        (
            format!("promo{i}@deals.test"),
            format!("{} offer {i}", words[i % words.len()]),
            format!("{}. Click now!", body.join(" ")),
        )
    } else {
        (
            "colleague@work.test".to_owned(),
            format!("meeting {i}"),
            format!("Hi, {}. Thanks, Pat", body.join(" ")),
        )
    }
}

fn send(server: &Server, to: &[&str], (from, subject, body): (String, String, String)) {
    let to = to.join(",");
    let o = swaks(
        server.addr("smtp"),
        &[
            "--from",
            &from,
            "--to",
            &to,
            "--header",
            &format!("Subject: {subject}"),
            "--header",
            &format!("From: <{from}>"),
            "--body",
            &body,
        ],
    );
    assert!(
        transcript(&o).contains("<-  250 2.0.0 Ok"),
        "{}",
        transcript(&o)
    );
}

/// Subjects and keywords of the messages in `address`'s mailbox `name`.
async fn mailbox(store: &Store, address: &str, name: &str) -> Vec<(String, bool)> {
    let user = store.user(address).await.unwrap().unwrap();
    let mailbox = store.mailbox(user.id, name).await.unwrap().unwrap();
    let mut out = Vec::new();
    for m in store.list_messages(&mailbox).await.unwrap() {
        let raw = store.message_raw(&mailbox, m.uid).await.unwrap().unwrap();
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let subject = raw
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap_or("")
            .to_owned();
        out.push((subject, m.flags.keywords.contains("$Junk")));
    }
    out
}

async fn training(store: &Store, address: &str) -> JunkTraining {
    let user = store.user(address).await.unwrap().unwrap();
    store.junk_training(user.id).await.unwrap()
}

async fn imap_training_files_the_next_message(db: Db) {
    let inst = Instance::new(
        db,
        &["smtp", "imap", "imaps"],
        "[smtp.junk]\nmin_spam = 5\nmin_ham = 5\nthreshold = 0.9\n",
    )
    .await;
    inst.ok(&["domain", "add", "example.test"], "");
    for u in ["alice@example.test", "carol@example.test"] {
        inst.ok(&["user", "add", u], "password\n");
    }
    let server = inst.start();
    for i in 0..6 {
        send(&server, &["alice@example.test"], message(true, i));
        send(&server, &["alice@example.test"], message(false, i));
    }
    let store = Store::open(&inst.db.url).await.unwrap();
    assert_eq!(
        mailbox(&store, "alice@example.test", "INBOX").await.len(),
        12
    );
    assert_eq!(
        mailbox(&store, "alice@example.test", "Junk").await,
        vec![],
        "untrained: nothing is filed as junk"
    );

    imap_script(&server, "junk_train.py", &[("MODE", "train".into())]);
    assert_eq!(
        training(&store, "alice@example.test").await,
        JunkTraining { spam: 6, ham: 6 }
    );

    // One message to both: alice's statistics file her copy into Junk, carol has none.
    send(
        &server,
        &["alice@example.test", "carol@example.test"],
        message(true, 6),
    );
    send(&server, &["alice@example.test"], message(false, 6));
    let junk = mailbox(&store, "alice@example.test", "Junk").await;
    let spam_subject = message(true, 6).1;
    assert!(
        junk.contains(&(spam_subject.clone(), true)),
        "{junk:?}\n{}",
        server.log()
    );
    let inbox = mailbox(&store, "alice@example.test", "INBOX").await;
    assert!(
        inbox.contains(&("meeting 6".to_owned(), false)),
        "{inbox:?}"
    );
    assert!(!inbox.iter().any(|(s, _)| *s == spam_subject));
    assert_eq!(
        mailbox(&store, "carol@example.test", "INBOX").await,
        vec![(spam_subject, false)],
        "carol's copy: untrained, so INBOX"
    );
    assert!(mailbox(&store, "carol@example.test", "Junk")
        .await
        .is_empty());
    assert_eq!(
        training(&store, "carol@example.test").await,
        JunkTraining::default()
    );

    // Hostile input for a trained account: broken MIME, 8-bit garbage and a 100 KB word are
    // still delivered (scored on what can be read).
    let hostile = inst.dir.path().join("hostile.eml");
    let mut raw = b"From: <x@deals.test>\r\nSubject: =?utf-8?B?!!!?=\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=\"nope\"\r\n\r\n--other\r\n\
        Content-Transfer-Encoding: base64\r\n\r\n%%%not base64\r\n"
        .to_vec();
    raw.extend_from_slice(&[0xff, 0xfe, 0x80, b'\r', b'\n']);
    raw.extend_from_slice(&b"a".repeat(100_000));
    raw.extend_from_slice(b"\r\n");
    std::fs::write(&hostile, raw).unwrap();
    let o = swaks(
        server.addr("smtp"),
        &[
            "--from",
            "x@deals.test",
            "--to",
            "alice@example.test",
            "--data",
            &hostile.display().to_string(),
        ],
    );
    assert!(
        transcript(&o).contains("<-  250 2.0.0 Ok"),
        "{}",
        server.log()
    );

    // Moving a trained spam message back out of Junk retrains it as ham, without counting twice.
    imap_script(&server, "junk_train.py", &[("MODE", "move_back".into())]);
    assert_eq!(
        training(&store, "alice@example.test").await,
        JunkTraining { spam: 5, ham: 7 }
    );
    store.close().await;
    server.stop();
}
