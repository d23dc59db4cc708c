//! The search index (migration 0022): rows written with every stored message and deleted with
//! it, SEARCH text keys matching decoded text (base64 and quoted-printable parts, charsets, HTML)
//! and never the encoded bytes of binary parts, blobs stored before the index indexed on first
//! use. Each test runs on SQLite and on PostgreSQL (`DATABASE_URL`).

use std::collections::HashSet;

mod common;

use common::store_with_user;

use postern_store::testing::TestDb;
use postern_store::{Flags, Mailbox, Store, TextKey};

both_backends!(
    index_rows_follow_stored_bytes,
    search_matches_decoded_text_only,
    blobs_stored_before_the_index_are_indexed,
    header_keys_match_pattern_characters_literally,
    messages_stored_after_the_backlog_are_found,
    header_keys_through_trigrams,
    header_trigrams_of_messages_stored_before_migration_0032,
    header_batches_are_exact,
);

/// A multipart message: a quoted-printable text body, a base64 text/plain attachment, and a
/// binary attachment whose base64 ("SGVsbG9Xb3JsZC1iaW5hcnk=") spells "Hello World-binary".
const MIXED: &[u8] = b"From: =?utf-8?q?J=C3=BCrgen?= <juergen@example.test>\r\n\
To: Alice <alice@example.test>\r\n\
Cc: carol@example.test\r\n\
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\r\n\
X-Custom: tracking-7731\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Die Cr=C3=A8me br=C3=BBl=C3=A9e kostet 50% \"off\" heute.=\r\n\
Weiter im selben Absatz.\r\n\
--b1\r\n\
Content-Type: text/plain; charset=utf-8; name=notes.txt\r\n\
Content-Disposition: attachment; filename=notes.txt\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
U2VjcmV0IHBsYW46IG1lZXQgYXQgdGhlIGxpZ2h0aG91c2Uu\r\n\
--b1\r\n\
Content-Type: application/octet-stream; name=blob.bin\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
SGVsbG9Xb3JsZC1iaW5hcnk=\r\n\
--b1--\r\n";

/// An HTML-only message.
const HTML: &[u8] = b"From: Bob <bob@example.test>\r\n\
To: alice@example.test\r\n\
Bcc: hidden@example.test\r\n\
Subject: Newsletter\r\n\
Content-Type: text/html; charset=iso-8859-1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
<html><body><p>Sch=F6nes <b>Wochenende</b></p></body></html>\r\n";

/// A plain message.
const PLAIN: &[u8] = b"From: carol@example.test\r\nTo: alice@example.test\r\nSubject: lunch\r\n\r\nSee you at noon.\r\n";

async fn uids(store: &Store, mailbox: &Mailbox, key: TextKey, needle: &str) -> Vec<i64> {
    let found: HashSet<i64> = store.search_text(mailbox, key, needle).await.unwrap();
    let mut v: Vec<i64> = found.into_iter().collect();
    v.sort_unstable();
    v
}

/// Rows in the index tables: `blob_index`, and on SQLite the FTS5 table too (same count) and the
/// trigram index of the header texts (`blob_fields`, migration 0032), which must match the
/// blob_index rows it indexes (FTS5's integrity check with its content table).
async fn index_rows(db: &TestDb) -> i64 {
    let n = db.count_rows("blob_index").await;
    if !db.is_postgres() {
        assert_eq!(
            db.count_rows("blob_text").await,
            n,
            "FTS rows follow blob_index"
        );
        db.execute("INSERT INTO blob_fields (blob_fields, rank) VALUES ('integrity-check', 1)")
            .await;
    }
    n
}

async fn index_rows_follow_stored_bytes(db: &TestDb) {
    let (store, user) = store_with_user(db, 0).await;
    let inbox = store.mailbox(user, "INBOX").await.unwrap().unwrap();
    let archive = store.mailbox(user, "Archive").await.unwrap().unwrap();
    let u1 = store
        .append(&inbox, MIXED, &Flags::default(), 1)
        .await
        .unwrap();
    store
        .append(&inbox, PLAIN, &Flags::default(), 1)
        .await
        .unwrap();
    assert_eq!(index_rows(db).await, 2);
    // The same bytes again (COPY, a second APPEND) share the blob and its index row.
    store.copy_messages(&inbox, &[u1], &archive).await.unwrap();
    store
        .append(&archive, MIXED, &Flags::default(), 1)
        .await
        .unwrap();
    assert_eq!(index_rows(db).await, 2);
    let used = || async {
        store
            .user("alice@example.test")
            .await
            .unwrap()
            .unwrap()
            .used_bytes
    };
    assert_eq!(
        used().await,
        (3 * MIXED.len() + PLAIN.len()) as i64,
        "the index is not charged to the quota"
    );

    let headers = store.message_headers(&inbox, &[u1, 99]).await.unwrap();
    assert_eq!(headers.len(), 1);
    assert!(headers[0].1.starts_with(b"From: =?utf-8?q?J"));
    assert!(headers[0].1.ends_with(b"boundary=\"b1\"\r\n\r\n"));

    // Expunging every copy of the bytes removes their index rows; the rest stay.
    for mailbox in [&inbox, &archive] {
        let all: Vec<i64> = store
            .list_messages(mailbox)
            .await
            .unwrap()
            .iter()
            .map(|m| m.uid)
            .filter(|&u| mailbox.id != inbox.id || u == u1)
            .collect();
        store
            .set_flags(
                mailbox,
                &all,
                postern_store::FlagOp::Add,
                &Flags::system(Flags::DELETED),
            )
            .await
            .unwrap();
        store.expunge(mailbox, None).await.unwrap();
    }
    assert_eq!(index_rows(db).await, 1);
    assert_eq!(used().await, PLAIN.len() as i64);
    // Deleting a mailbox deletes its messages' index rows too.
    let left: Vec<i64> = store
        .list_messages(&inbox)
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    store.move_messages(&inbox, &left, &archive).await.unwrap();
    store.delete_mailbox(&archive).await.unwrap();
    assert_eq!(index_rows(db).await, 0);
}

async fn search_matches_decoded_text_only(db: &TestDb) {
    let (store, user) = store_with_user(db, 0).await;
    let inbox = store.mailbox(user, "INBOX").await.unwrap().unwrap();
    let mixed = store
        .append(&inbox, MIXED, &Flags::default(), 1)
        .await
        .unwrap();
    let html = store
        .append(&inbox, HTML, &Flags::default(), 1)
        .await
        .unwrap();
    let plain = store
        .append(&inbox, PLAIN, &Flags::default(), 1)
        .await
        .unwrap();
    let check = |key: TextKey, needle: &'static str, want: Vec<i64>| {
        let store = store.clone();
        let inbox = inbox.clone();
        async move {
            assert_eq!(
                uids(&store, &inbox, key, needle).await,
                want,
                "{key:?} {needle:?}"
            );
        }
    };
    use TextKey::*;
    // Quoted-printable, with a soft line break and UTF-8, case-insensitive beyond ASCII.
    check(Body, "CRÈME BRÛLÉE", vec![mixed]).await;
    check(Body, "heute.weiter", vec![mixed]).await;
    // The base64 text attachment is searched decoded...
    check(Body, "meet at the LIGHTHOUSE", vec![mixed]).await;
    check(Text, "lighthouse", vec![mixed]).await;
    check(Body, "U2VjcmV0", vec![]).await;
    // ...the binary attachment not at all: its base64 is no text.
    check(Body, "SGVsbG9Xb3JsZC1iaW5hcnk", vec![]).await;
    check(Text, "SGVsbG9", vec![]).await;
    check(Body, "hello world-binary", vec![]).await;
    // HTML as text, decoded from ISO-8859-1.
    check(Body, "schönes wochenende", vec![html]).await;
    check(Body, "<b>", vec![]).await;
    // Characters that are syntax in FTS5 queries or LIKE patterns are plain text.
    check(Body, "50% \"off\"", vec![mixed]).await;
    check(Body, "5_%", vec![]).await;
    check(Body, "\"", vec![mixed]).await;
    check(Body, "%", vec![mixed]).await;
    check(Body, "\\", vec![]).await;
    // Strings shorter than a trigram.
    check(Body, "é", vec![mixed]).await;
    check(Body, "oo", vec![plain]).await;
    check(Text, "7", vec![mixed]).await;
    check(Body, "", vec![mixed, html, plain]).await;
    // TEXT covers the header (raw and decoded); BODY does not.
    check(Text, "TRACKING-7731", vec![mixed]).await;
    check(Body, "tracking-7731", vec![]).await;
    check(Text, "grüße aus", vec![mixed]).await;
    check(Text, "noon", vec![plain]).await;
    // Header fields, decoded.
    check(Subject, "GRÜSSE", vec![]).await;
    check(Subject, "grüße aus köln", vec![mixed]).await;
    check(Subject, "L", vec![mixed, html, plain]).await;
    check(From, "jürgen", vec![mixed]).await;
    check(From, "carol@", vec![plain]).await;
    check(To, "alice <alice@", vec![mixed]).await;
    check(To, "example.test", vec![mixed, html, plain]).await;
    check(Cc, "CAROL", vec![mixed]).await;
    check(Bcc, "hidden", vec![html]).await;
    check(Bcc, "alice", vec![]).await;
}

async fn blobs_stored_before_the_index_are_indexed(db: &TestDb) {
    let (store, user) = store_with_user(db, 0).await;
    let inbox = store.mailbox(user, "INBOX").await.unwrap().unwrap();
    let archive = store.mailbox(user, "Archive").await.unwrap().unwrap();
    let mixed = store
        .append(&inbox, MIXED, &Flags::default(), 1)
        .await
        .unwrap();
    let plain = store
        .append(&archive, PLAIN, &Flags::default(), 1)
        .await
        .unwrap();
    // As an older release left them: bytes without index rows.
    db.execute("DELETE FROM blob_index").await;
    assert_eq!(index_rows(db).await, 0);
    // The first search of a mailbox indexes its messages, and only them.
    assert_eq!(
        uids(&store, &inbox, TextKey::Body, "lighthouse").await,
        vec![mixed]
    );
    assert_eq!(index_rows(db).await, 1);
    // A header fetch indexes what it reads.
    let headers = store.message_headers(&archive, &[plain]).await.unwrap();
    assert!(headers[0].1.ends_with(b"Subject: lunch\r\n\r\n"));
    assert_eq!(index_rows(db).await, 2);
    assert_eq!(store.index_backlog().await.unwrap(), 0);
    db.execute("DELETE FROM blob_index").await;
    assert_eq!(store.index_backlog().await.unwrap(), 2);
    assert_eq!(index_rows(db).await, 2);
    assert_eq!(
        uids(&store, &archive, TextKey::Text, "noon").await,
        vec![plain]
    );
}

/// A message whose header fields hold characters that are syntax in `LIKE` patterns (PostgreSQL
/// matches the header keys with `LIKE` through a trigram index, migration 0026).
const PATTERNS: &[u8] = b"From: \"100% Sure_Ltd\" <sales_desk@example.test>\r\n\
To: back\\slash@example.test\r\n\
Cc: under_score@example.test\r\n\
Subject: 50% off_now \\ back\r\n\
\r\n\
Body.\r\n";

async fn header_keys_match_pattern_characters_literally(db: &TestDb) {
    let (store, user) = store_with_user(db, 0).await;
    let inbox = store.mailbox(user, "INBOX").await.unwrap().unwrap();
    let odd = store
        .append(&inbox, PATTERNS, &Flags::default(), 1)
        .await
        .unwrap();
    let plain = store
        .append(&inbox, PLAIN, &Flags::default(), 1)
        .await
        .unwrap();
    use TextKey::*;
    for (key, needle, want) in [
        (Subject, "50% OFF_NOW", vec![odd]),
        (Subject, "%", vec![odd]),
        (Subject, "_", vec![odd]),
        (Subject, "\\", vec![odd]),
        (Subject, "\\ back", vec![odd]),
        (Subject, "5_%", vec![]),
        (Subject, "off%now", vec![]),
        (Subject, "l_nch", vec![]),
        (Subject, "lunch", vec![plain]),
        (Subject, "", vec![odd, plain]),
        (From, "100% sure_ltd", vec![odd]),
        (From, "sales_desk@", vec![odd]),
        (From, "sales%desk", vec![]),
        (To, "back\\slash", vec![odd]),
        (To, "back%slash", vec![]),
        (Cc, "under_score", vec![odd]),
        (Cc, "under score", vec![]),
        (Bcc, "%", vec![]),
    ] {
        assert_eq!(
            uids(&store, &inbox, key, needle).await,
            want,
            "{key:?} {needle:?}"
        );
    }
}

/// SEARCH stops looking for unindexed blobs once the backlog is indexed: what is stored after
/// that (APPEND, COPY, MOVE) is found all the same, and what is expunged is gone.
async fn messages_stored_after_the_backlog_are_found(db: &TestDb) {
    let (store, user) = store_with_user(db, 0).await;
    let inbox = store.mailbox(user, "INBOX").await.unwrap().unwrap();
    let archive = store.mailbox(user, "Archive").await.unwrap().unwrap();
    assert_eq!(store.index_backlog().await.unwrap(), 0);
    let mixed = store
        .append(&inbox, MIXED, &Flags::default(), 1)
        .await
        .unwrap();
    let plain = store
        .append(&inbox, PLAIN, &Flags::default(), 1)
        .await
        .unwrap();
    assert_eq!(
        uids(&store, &inbox, TextKey::Subject, "LUNCH").await,
        vec![plain]
    );
    assert_eq!(
        uids(&store, &inbox, TextKey::Body, "lighthouse").await,
        vec![mixed]
    );
    store
        .copy_messages(&inbox, &[mixed], &archive)
        .await
        .unwrap();
    store
        .move_messages(&inbox, &[plain], &archive)
        .await
        .unwrap();
    let in_archive = store.list_messages(&archive).await.unwrap();
    let archived: Vec<i64> = in_archive.iter().map(|m| m.uid).collect();
    assert_eq!(archived.len(), 2);
    assert_eq!(
        uids(&store, &archive, TextKey::From, "example.test").await,
        archived
    );
    assert_eq!(
        uids(&store, &archive, TextKey::Text, "noon").await,
        vec![archived[1]]
    );
    assert!(uids(&store, &inbox, TextKey::Subject, "lunch")
        .await
        .is_empty());
    let headers = store.message_headers(&archive, &archived).await.unwrap();
    assert_eq!(headers.len(), 2);
    assert!(headers[1].1.ends_with(b"Subject: lunch\r\n\r\n"));
}

/// Encoded words (RFC 2047: B and Q, adjacent words joined), non-ASCII, a folded Subject, and a
/// Subject full of FTS5 query syntax and `LIKE` pattern characters.
const ENCODED: &[u8] = b"From: =?iso-8859-1?q?Ren=E9_Fran=E7ois?= <rene@example.test>\r\n\
To: =?utf-8?b?w5xtbGF1dCBUw7Zyw7Zr?= <umlaut@example.test>\r\n\
Subject: =?utf-8?b?w5xuw69jw7Zkw6k=?= =?utf-8?q?_Stra=C3=9Fe_=E6=9D=B1=E4=BA=AC?=\r\n\
\r\n\
Body.\r\n";

const SYNTAX: &[u8] = b"From: syntax@example.test\r\n\
Subject: Re: \"quoted\" AND NEAR(x y) OR col:umn * ^start -minus {braces} 50%_off\r\n\
\r\n\
Body.\r\n";

const FOLDED: &[u8] = b"From: Invoice Desk <billing@example.test>\r\n\
Subject: invoice\r\n continued here\r\n\
\r\n\
Body.\r\n";

/// SEARCH SUBJECT/FROM/TO with strings of three or more characters, which SQLite looks up in the
/// trigram index of the header texts (migration 0032) and PostgreSQL in its trigram GIN index:
/// the same answers as a substring test on the decoded, folded text of that one field.
async fn header_keys_through_trigrams(db: &TestDb) {
    let (store, user) = store_with_user(db, 0).await;
    let inbox = store.mailbox(user, "INBOX").await.unwrap().unwrap();
    let append = |raw: &'static [u8]| {
        let (store, inbox) = (store.clone(), inbox.clone());
        async move {
            store
                .append(&inbox, raw, &Flags::default(), 1)
                .await
                .unwrap()
        }
    };
    let encoded = append(ENCODED).await;
    let syntax = append(SYNTAX).await;
    let folded = append(FOLDED).await;
    // The same bytes twice in one mailbox: one blob, two messages, both found.
    let folded_again = append(FOLDED).await;
    let long_subject = format!(
        "From: x@example.test\r\nSubject: {}needle-at-the-end\r\n\r\nBody.\r\n",
        "lorem ipsum ".repeat(300)
    );
    let long = store
        .append(&inbox, long_subject.as_bytes(), &Flags::default(), 1)
        .await
        .unwrap();
    use TextKey::*;
    for (key, needle, want) in [
        // Decoded and folded, beyond ASCII.
        (Subject, "ÜNÏCÖDÉ", vec![encoded]),
        (Subject, "ünïcödé straße 東京", vec![encoded]),
        (Subject, "straße 東", vec![encoded]),
        (Subject, "東京", vec![encoded]),
        (Subject, "=?utf-8", vec![]),
        (Subject, "w5xu", vec![]),
        (From, "RENÉ FRANÇOIS", vec![encoded]),
        (From, "ren=e9", vec![]),
        (To, "ümlaut török <umlaut@", vec![encoded]),
        // FTS5 query syntax is plain text.
        (Subject, "\"QUOTED\" and near(x y)", vec![syntax]),
        (Subject, "or col:umn * ^start -minus {braces}", vec![syntax]),
        (Subject, "\"quoted\"", vec![syntax]),
        (Subject, "* ^", vec![syntax]),
        (Subject, "near", vec![syntax]),
        // `LIKE` pattern characters are plain text.
        (Subject, "50%_off", vec![syntax]),
        (Subject, "0%_", vec![syntax]),
        (Subject, "d%n", vec![]),
        (Subject, "d_n", vec![]),
        (Subject, "50%xoff", vec![]),
        // One field, not the others; a folded line reads unfolded.
        (
            Subject,
            "invoice continued here",
            vec![folded, folded_again],
        ),
        (Subject, "invoice desk", vec![]),
        (From, "invoice desk", vec![folded, folded_again]),
        (Subject, "billing@", vec![]),
        (Cc, "example", vec![]),
        (Subject, "needle-at-the-end", vec![long]),
        (Subject, "ipsum needle", vec![long]),
        (Subject, "invoice continued here and more", vec![]),
    ] {
        assert_eq!(
            uids(&store, &inbox, key, needle).await,
            want,
            "{key:?} {needle:?}"
        );
    }
    // Expunged messages leave the index; the other copy of the same bytes stays found.
    store
        .set_flags(
            &inbox,
            &[folded, syntax],
            postern_store::FlagOp::Add,
            &Flags::system(Flags::DELETED),
        )
        .await
        .unwrap();
    store.expunge(&inbox, None).await.unwrap();
    assert_eq!(index_rows(db).await, 3);
    assert_eq!(
        uids(&store, &inbox, Subject, "continued").await,
        vec![folded_again]
    );
    assert!(uids(&store, &inbox, Subject, "near(x").await.is_empty());
}

/// Migration 0032 indexes the header texts of the messages already stored: a database as it was
/// before it (on SQLite without the trigram table and its triggers) is migrated again and
/// searched.
async fn header_trigrams_of_messages_stored_before_migration_0032(db: &TestDb) {
    let (store, user) = store_with_user(db, 0).await;
    let inbox = store.mailbox(user, "INBOX").await.unwrap().unwrap();
    let encoded = store
        .append(&inbox, ENCODED, &Flags::default(), 1)
        .await
        .unwrap();
    let folded = store
        .append(&inbox, FOLDED, &Flags::default(), 1)
        .await
        .unwrap();
    store.close().await;
    if !db.is_postgres() {
        db.execute("DROP TRIGGER blob_index_fields_inserted").await;
        db.execute("DROP TRIGGER blob_index_fields_deleted").await;
        db.execute("DROP TABLE blob_fields").await;
    }
    db.execute("DELETE FROM _sqlx_migrations WHERE version = 32")
        .await;
    let store = db.open().await;
    assert_eq!(index_rows(db).await, 2);
    assert_eq!(
        uids(&store, &inbox, TextKey::Subject, "straße").await,
        vec![encoded]
    );
    assert_eq!(
        uids(&store, &inbox, TextKey::From, "billing@example").await,
        vec![folded]
    );
    // Rows written after the migration are indexed by its trigger.
    let plain = store
        .append(&inbox, PLAIN, &Flags::default(), 1)
        .await
        .unwrap();
    assert_eq!(
        uids(&store, &inbox, TextKey::Subject, "lunch").await,
        vec![plain]
    );
    assert_eq!(index_rows(db).await, 3);
}

/// A header-only FETCH reads a batch of header blocks as one aggregated row (`header_blocks.rs`):
/// every block comes back byte for byte (8-bit and NUL bytes, commas, an empty body, blocks
/// shared by two messages), for the UIDs asked for only, with blobs not indexed yet indexed on
/// the way, whatever order the UIDs are asked in.
async fn header_batches_are_exact(db: &TestDb) {
    let (store, user) = store_with_user(db, 0).await;
    let inbox = store.mailbox(user, "INBOX").await.unwrap().unwrap();
    let mut messages: Vec<Vec<u8>> = Vec::new();
    for i in 0..40u32 {
        let mut m = format!("From: a{i}@example.test\r\nSubject: n\u{e9}, {i}, ").into_bytes();
        m.extend(std::iter::repeat_n(b'x', (i as usize * 37) % 500));
        m.extend_from_slice(b"\r\nX-Raw: \xe9\x00\xff,\r\n\r\n");
        if i % 3 != 0 {
            m.extend_from_slice(format!("body {i}\r\n").as_bytes());
        }
        messages.push(m);
    }
    // The same bytes twice: one blob, one index row, two messages.
    messages.push(messages[5].clone());
    let mut uids = Vec::new();
    for m in &messages {
        uids.push(store.append(&inbox, m, &Flags::default(), 1).await.unwrap());
    }
    let header_of = |m: &[u8]| {
        let end = m.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        m[..end].to_vec()
    };
    // Some blobs as an older release left them: without an index row.
    db.execute(
        "DELETE FROM blob_index WHERE hash IN \
         (SELECT blob_hash FROM messages WHERE uid % 7 = 2)",
    )
    .await;
    // Every other UID, backwards, with a duplicate and UIDs that do not exist.
    let mut asked: Vec<i64> = uids.iter().copied().step_by(2).rev().collect();
    asked.extend([uids[4], 0, 9999]);
    let got = store.message_headers(&inbox, &asked).await.unwrap();
    let expected: Vec<(i64, Vec<u8>)> = uids
        .iter()
        .zip(&messages)
        .step_by(2)
        .map(|(&uid, m)| (uid, header_of(m)))
        .collect();
    assert_eq!(got, expected);
    let all = store.message_headers(&inbox, &uids).await.unwrap();
    assert_eq!(all.len(), messages.len());
    for ((uid, block), (&want_uid, m)) in all.iter().zip(uids.iter().zip(&messages)) {
        assert_eq!(
            (*uid, block.as_slice()),
            (want_uid, header_of(m).as_slice())
        );
    }
    assert!(store.message_headers(&inbox, &[]).await.unwrap().is_empty());
    assert!(store
        .message_headers(&inbox, &[9999])
        .await
        .unwrap()
        .is_empty());
}
