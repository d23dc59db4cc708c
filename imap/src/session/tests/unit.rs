//! Per-command session tests over the in-memory [`MockStore`]: no database, no password hash,
//! the time from a fixed clock, and the store's changes passed in by the test as the shell would.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use imap_codec::decode::Decoder;
use imap_codec::encode::Encoder;
use imap_codec::{CommandCodec, ResponseCodec};
use postern_store::{Change, FlagOp, Flags, Service};

use super::mock::{MockStore, FAILURES_BEFORE_THROTTLE};
use crate::config::ImapConfig;
use crate::mail_store::MailStore;
use crate::session::{Next, Session};

/// The fixed clock: 2009-02-13 23:31:30 UTC.
const NOW: i64 = 1_234_567_890;

fn fixed_clock() -> i64 {
    NOW
}

const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 7));

/// A store with alice (password `pw`) and a session over it, TLS on or off.
fn setup(tls: bool) -> (MockStore, i64, Session<MockStore>) {
    let store = MockStore::default();
    let alice = store.add_user("alice@example.test", "pw");
    let session = Session::new(
        store.clone(),
        Arc::new(ImapConfig::default()),
        PEER,
        tls,
        fixed_clock,
    );
    (store, alice, session)
}

/// Runs one command (its bytes given without the final CRLF) with `changes` passed in as
/// published meanwhile, and returns everything sent back, encoded.
async fn run_with(s: &mut Session<MockStore>, line: &str, mut changes: Vec<Change>) -> String {
    let bytes = format!("{line}\r\n").into_bytes();
    let (rest, cmd) = CommandCodec::default().decode(&bytes).expect("parses");
    assert!(rest.is_empty());
    let mut reply = s.command(cmd, &mut changes).await;
    let mut text = String::from_utf8(std::mem::take(&mut reply.raw)).unwrap();
    if reply.next == Next::Fetch {
        while let Some(batch) = s.fetch_batch().await {
            text.push_str(&String::from_utf8(batch).unwrap());
        }
        reply = s.fetch_done(&mut Vec::new()).await;
    }
    let codec = ResponseCodec::default();
    for r in &reply.responses {
        text.push_str(&String::from_utf8(codec.encode(r).dump()).unwrap());
    }
    text
}

async fn run(s: &mut Session<MockStore>, line: &str) -> String {
    run_with(s, line, Vec::new()).await
}

async fn logged_in_with_inbox(messages: &[(&[u8], i64)]) -> (MockStore, i64, Session<MockStore>) {
    let (store, alice, mut s) = setup(true);
    let inbox = store.get(alice, "INBOX");
    for (raw, system) in messages {
        store
            .append(&inbox, raw, &Flags::system(*system), 1_000_000_000)
            .await
            .unwrap();
    }
    store.take_published();
    let out = run(&mut s, "a LOGIN alice@example.test pw").await;
    assert!(out.starts_with("a OK [CAPABILITY"), "{out}");
    (store, alice, s)
}

#[tokio::test]
async fn login_succeeds_fails_and_is_throttled() {
    let (store, _, mut s) = setup(true);
    let out = run(&mut s, "a LOGIN alice@example.test wrong").await;
    assert_eq!(out, "a NO [AUTHENTICATIONFAILED] Invalid credentials\r\n");
    assert!(s.user().is_none());
    let out = run(&mut s, "b LOGIN alice@example.test pw").await;
    assert!(out.starts_with("b OK [CAPABILITY IMAP4REV1 "), "{out}");
    assert!(
        out.contains(" NAMESPACE ") && !out.contains("AUTH=PLAIN"),
        "{out}"
    );
    assert_eq!(
        s.user().map(|u| u.address.to_string()).as_deref(),
        Some("alice@example.test")
    );
    let out = run(&mut s, "c LOGIN alice@example.test pw").await;
    assert!(out.starts_with("c BAD"), "already authenticated: {out}");
    // The session names its service and the client to the store's login service.
    assert_eq!(
        store.attempts(),
        vec![
            (Service::Imap, PEER, "alice@example.test".to_owned()),
            (Service::Imap, PEER, "alice@example.test".to_owned()),
        ]
    );

    // Throttled: the right password is refused as a temporary failure (RFC 5530 UNAVAILABLE).
    let (_, _, mut s) = setup(true);
    for i in 0..FAILURES_BEFORE_THROTTLE {
        let out = run(&mut s, &format!("d{i} LOGIN alice@example.test nope")).await;
        assert!(out.contains("[AUTHENTICATIONFAILED]"), "{out}");
    }
    let out = run(&mut s, "e LOGIN alice@example.test pw").await;
    assert!(out.starts_with("e NO [UNAVAILABLE]"), "{out}");
    assert!(s.user().is_none());
}

#[tokio::test]
async fn login_without_tls_never_reaches_the_store() {
    let (store, _, mut s) = setup(false);
    let out = run(&mut s, "a LOGIN alice@example.test pw").await;
    assert!(out.starts_with("a NO [PRIVACYREQUIRED]"), "{out}");
    let out = run(
        &mut s,
        "b AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABwdw==",
    )
    .await;
    assert!(out.starts_with("b NO [PRIVACYREQUIRED]"), "{out}");
    assert!(store.attempts().is_empty());
}

#[tokio::test]
async fn authenticate_plain_with_initial_response_logs_in() {
    let (_, _, mut s) = setup(true);
    // "\0alice@example.test\0pw"
    let out = run(
        &mut s,
        "a AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABwdw==",
    )
    .await;
    assert!(out.starts_with("a OK [CAPABILITY"), "{out}");
    assert!(s.user().is_some());
}

#[tokio::test]
async fn select_then_fetch_flags() {
    let (_, _, mut s) = logged_in_with_inbox(&[
        (b"Subject: one\r\n\r\n1\r\n", Flags::SEEN),
        (b"Subject: two\r\n\r\n2\r\n", 0),
    ])
    .await;
    let out = run(&mut s, "b SELECT INBOX").await;
    assert!(out.contains("* 2 EXISTS\r\n* 2 RECENT\r\n"), "{out}");
    assert!(out.contains("* OK [UNSEEN 2] "), "{out}");
    assert!(out.contains("b OK [READ-WRITE] SELECT completed"), "{out}");
    let out = run(&mut s, "c FETCH 1:* (FLAGS)").await;
    assert_eq!(
        out,
        "* 1 FETCH (FLAGS (\\Seen \\Recent))\r\n* 2 FETCH (FLAGS (\\Recent))\r\nc OK FETCH completed\r\n"
    );
    let out = run(&mut s, "d UID FETCH 2 (FLAGS)").await;
    assert!(
        out.starts_with("* 2 FETCH (UID 2 FLAGS (\\Recent))\r\n"),
        "{out}"
    );
    let out = run(&mut s, "e FETCH 3 (FLAGS)").await;
    assert!(out.starts_with("e BAD"), "no message 3: {out}");
}

#[tokio::test]
async fn store_changes_flags_and_reports_them() {
    let (store, alice, mut s) = logged_in_with_inbox(&[(b"Subject: one\r\n\r\n1\r\n", 0)]).await;
    run(&mut s, "b SELECT INBOX").await;
    let out = run(&mut s, "c STORE 1 +FLAGS (\\Flagged $Work)").await;
    assert!(out.starts_with("* FLAGS ("), "new keyword announced: {out}");
    assert!(
        out.contains("* 1 FETCH (FLAGS (\\Flagged $Work \\Recent) UID 1)\r\nc OK"),
        "{out}"
    );
    let out = run(&mut s, "d STORE 1 -FLAGS.SILENT (\\Flagged)").await;
    assert_eq!(out, "d OK STORE completed\r\n");
    let inbox = store.get(alice, "INBOX");
    let flags = &store.metas(inbox.id)[0].flags;
    assert_eq!(flags.system, 0);
    assert!(flags.keywords.contains("$Work"));
}

#[tokio::test]
async fn expunge_reports_and_removes_deleted_messages() {
    let (store, alice, mut s) = logged_in_with_inbox(&[
        (b"Subject: one\r\n\r\n1\r\n", Flags::DELETED),
        (b"Subject: two\r\n\r\n2\r\n", 0),
        (b"Subject: three\r\n\r\n3\r\n", Flags::DELETED),
    ])
    .await;
    let out = run(&mut s, "b EXAMINE INBOX").await;
    assert!(out.contains("b OK [READ-ONLY]"), "{out}");
    let out = run(&mut s, "c EXPUNGE").await;
    assert!(out.starts_with("c NO [READ-ONLY]"), "{out}");
    run(&mut s, "d SELECT INBOX").await;
    // UID EXPUNGE removes only the named messages (RFC 4315 §2.1).
    let out = run(&mut s, "e UID EXPUNGE 3").await;
    assert_eq!(out, "* 3 EXPUNGE\r\ne OK EXPUNGE completed\r\n");
    let out = run(&mut s, "f EXPUNGE").await;
    assert_eq!(out, "* 1 EXPUNGE\r\nf OK EXPUNGE completed\r\n");
    let inbox = store.get(alice, "INBOX");
    let left: Vec<i64> = store.metas(inbox.id).iter().map(|m| m.uid).collect();
    assert_eq!(left, vec![2]);
    let out = run(&mut s, "g FETCH 1 (UID)").await;
    assert!(out.starts_with("* 1 FETCH (UID 2)"), "{out}");
}

#[tokio::test]
async fn append_takes_its_internal_date_from_the_clock() {
    let (store, alice, mut s) = logged_in_with_inbox(&[]).await;
    let message = "Subject: new\r\n\r\nbody\r\n";
    let out = run(
        &mut s,
        &format!(
            "b APPEND INBOX (\\Seen) {{{}+}}\r\n{message}",
            message.len()
        ),
    )
    .await;
    let inbox = store.get(alice, "INBOX");
    assert_eq!(
        out,
        format!(
            "b OK [APPENDUID {} 1] APPEND completed\r\n",
            inbox.uidvalidity
        )
    );
    // A date the client gives wins over the clock.
    let out = run(
        &mut s,
        &format!(
            "c APPEND INBOX \"01-Jan-2020 00:00:00 +0000\" {{{}+}}\r\n{message}",
            message.len()
        ),
    )
    .await;
    assert!(out.starts_with("c OK [APPENDUID"), "{out}");
    let metas = store.metas(inbox.id);
    assert_eq!(
        metas.iter().map(|m| m.internal_date).collect::<Vec<_>>(),
        vec![NOW, 1_577_836_800]
    );
    assert_eq!(metas[0].flags.system, Flags::SEEN);
    run(&mut s, "d SELECT INBOX").await;
    let out = run(&mut s, "e FETCH 1 (INTERNALDATE)").await;
    assert!(
        out.starts_with("* 1 FETCH (INTERNALDATE \"13-Feb-2009 23:31:30 +0000\")"),
        "{out}"
    );
}

#[tokio::test]
async fn changes_passed_in_become_exists_and_expunge() {
    let (store, alice, mut s) = logged_in_with_inbox(&[(b"Subject: one\r\n\r\n1\r\n", 0)]).await;
    run(&mut s, "b SELECT INBOX").await;
    let inbox = store.get(alice, "INBOX");

    // Another session appends. Until the change is passed in, the session knows nothing of it.
    store
        .append(&inbox, b"Subject: two\r\n\r\n2\r\n", &Flags::default(), 5)
        .await
        .unwrap();
    let appended = store.take_published();
    assert_eq!(appended.len(), 1);
    let out = run(&mut s, "c CAPABILITY").await;
    assert!(!out.contains("EXISTS"), "{out}");
    let out = run_with(&mut s, "d CAPABILITY", appended).await;
    assert!(out.contains("* 2 EXISTS\r\n* 2 RECENT\r\nd OK"), "{out}");

    // Another session expunges: not during FETCH (RFC 3501 §7.4.1), on the next command that may.
    store
        .set_flags(&inbox, &[1], FlagOp::Add, &Flags::system(Flags::DELETED))
        .await
        .unwrap();
    store.expunge(&inbox, None).await.unwrap();
    let expunged = store.take_published();
    let out = run_with(&mut s, "e FETCH 1:* (UID)", expunged).await;
    assert!(!out.contains("EXPUNGE"), "{out}");
    assert!(out.contains("* 1 FETCH (UID 1)"), "{out}");
    let out = run(&mut s, "f CAPABILITY").await;
    assert!(out.contains("* 1 EXPUNGE\r\nf OK"), "{out}");

    // While idling, what the shell passes in is reported once it is due.
    store
        .append(&inbox, b"Subject: three\r\n\r\n3\r\n", &Flags::default(), 6)
        .await
        .unwrap();
    assert!(!s.push_due(true));
    s.changes(&store.take_published());
    assert!(s.watching() && s.push_due(true));
    let updates = s.idle_updates(&mut Vec::new()).await;
    assert_eq!(
        String::from_utf8_lossy(&updates),
        "* 2 EXISTS\r\n* 2 RECENT\r\n"
    );
    // A change to another mailbox is nothing to the selected one.
    let other = store.add_mailbox(alice, "Other");
    store
        .append(&other, b"Subject: x\r\n\r\nx\r\n", &Flags::default(), 7)
        .await
        .unwrap();
    s.changes(&store.take_published());
    assert!(!s.push_due(true));
    // Lost changes make the session look again.
    s.changes_lost();
    assert!(s.push_due(true));
    assert!(s.idle_updates(&mut Vec::new()).await.is_empty());
}

#[tokio::test]
async fn enable_and_namespace() {
    let (_, _, mut s) = logged_in_with_inbox(&[]).await;
    let out = run(&mut s, "b ENABLE CONDSTORE UTF8=ACCEPT X-UNKNOWN").await;
    assert_eq!(
        out,
        "* ENABLED CONDSTORE UTF8=ACCEPT\r\nb OK ENABLE completed\r\n"
    );
    let out = run(&mut s, "c NAMESPACE").await;
    assert_eq!(
        out,
        "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\nc OK NAMESPACE completed\r\n"
    );
}

#[tokio::test]
async fn copy_and_move_answer_copyuid() {
    let (store, alice, mut s) = logged_in_with_inbox(&[
        (b"Subject: one\r\n\r\n1\r\n", 0),
        (b"Subject: two\r\n\r\n2\r\n", Flags::FLAGGED),
    ])
    .await;
    let other = store.add_mailbox(alice, "Other");
    run(&mut s, "b SELECT INBOX").await;
    let out = run(&mut s, "c COPY 2 Other").await;
    assert_eq!(
        out,
        format!(
            "c OK [COPYUID {} 2 1] COPY completed\r\n",
            other.uidvalidity
        )
    );
    let out = run(&mut s, "d MOVE 1 Other").await;
    assert!(
        out.starts_with(&format!("* OK [COPYUID {} 1 2] ", other.uidvalidity)),
        "{out}"
    );
    assert!(out.contains("* 1 EXPUNGE\r\nd OK MOVE completed"), "{out}");
    let moved = store.metas(other.id);
    assert_eq!(moved.len(), 2);
    assert_eq!(moved[0].flags.system, Flags::FLAGGED);
    assert_eq!(store.metas(store.get(alice, "INBOX").id).len(), 1);
    let out = run(&mut s, "e COPY 1 Nowhere").await;
    assert!(out.starts_with("e NO [TRYCREATE]"), "{out}");
}

#[tokio::test]
async fn status_and_list_read_the_store() {
    let (store, alice, mut s) = logged_in_with_inbox(&[
        (b"Subject: one\r\n\r\n1\r\n", Flags::SEEN),
        (b"Subject: two\r\n\r\n2\r\n", 0),
    ])
    .await;
    store.add_mailbox(alice, "Archive");
    let out = run(&mut s, "b STATUS INBOX (MESSAGES UNSEEN RECENT UIDNEXT)").await;
    assert!(
        out.starts_with("* STATUS INBOX (MESSAGES 2 UNSEEN 1 RECENT 2 UIDNEXT 3)\r\n"),
        "{out}"
    );
    let out = run(&mut s, "c CREATE Archive").await;
    assert!(out.starts_with("c NO [ALREADYEXISTS]"), "{out}");
    let out = run(&mut s, "d CREATE Projects").await;
    assert_eq!(out, "d OK CREATE completed\r\n");
    let out = run(&mut s, "e LIST \"\" *").await;
    let names: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("* LIST "))
        .filter_map(|l| l.rsplit(' ').next())
        .collect();
    assert_eq!(names, vec!["Archive", "INBOX", "Projects"], "{out}");
}

/// Runs a command read by `ext_command` (NOTIFY), as the shell would, and returns the reply.
async fn run_ext(s: &mut Session<MockStore>, line: &str) -> String {
    let bytes = format!("{line}\r\n").into_bytes();
    let reply = match crate::ext_command::parse(&bytes).expect("an extension command") {
        Ok((tag, cmd)) => s.ext_command(tag, cmd, &mut Vec::new()).await,
        Err(why) => return format!("BAD {why}"),
    };
    let mut text = String::from_utf8(reply.raw).unwrap();
    let codec = ResponseCodec::default();
    for r in &reply.responses {
        text.push_str(&String::from_utf8(codec.encode(r).dump()).unwrap());
    }
    text
}

/// NOTIFY's FETCH responses for new messages, batch by batch, until none is left.
async fn notify_fetches(s: &mut Session<MockStore>) -> Vec<String> {
    let mut batches = Vec::new();
    while let Some(batch) = s.notify_fetch_batch().await {
        batches.push(String::from_utf8(batch).unwrap());
    }
    assert!(!s.notify_fetch_due());
    batches
}

#[tokio::test]
async fn notify_fetches_new_messages_of_the_selected_mailbox() {
    let (store, alice, mut s) = logged_in_with_inbox(&[(b"Subject: old\r\n\r\n0\r\n", 0)]).await;
    let inbox = store.get(alice, "INBOX");
    run(&mut s, "b SELECT INBOX").await;
    let out = run_ext(
        &mut s,
        "c NOTIFY SET (selected (MessageNew (UID FLAGS BODY.PEEK[HEADER.FIELDS (Subject)]) \
MessageExpunge))",
    )
    .await;
    assert_eq!(out, "c OK NOTIFY completed\r\n");
    let raw = b"From: b@example.test\r\nSubject: hello\r\n\r\nbody\r\n";
    store
        .append(&inbox, raw, &Flags::default(), 7)
        .await
        .unwrap();
    s.changes(&store.take_published());
    assert!(s.push_due(false));
    let updates = s.push_updates(&mut Vec::new()).await;
    assert_eq!(
        String::from_utf8_lossy(&updates),
        "* 2 EXISTS\r\n* 2 RECENT\r\n"
    );
    assert!(s.notify_fetch_due());
    assert_eq!(
        notify_fetches(&mut s).await,
        [
            "* 2 FETCH (UID 2 FLAGS (\\Recent) BODY[HEADER.FIELDS (Subject)] {18}\r\n\
Subject: hello\r\n\r\n)\r\n"
        ]
    );
    // EXISTS reported by a command: the FETCH follows it too.
    store
        .append(&inbox, b"Subject: 3\r\n\r\n3\r\n", &Flags::default(), 8)
        .await
        .unwrap();
    let out = run_with(&mut s, "d NOOP", store.take_published()).await;
    assert!(out.starts_with("* 3 EXISTS\r\n"), "{out}");
    let fetched = notify_fetches(&mut s).await.concat();
    assert!(
        fetched.starts_with("* 3 FETCH (UID 3 FLAGS (\\Recent) BODY[HEADER"),
        "{fetched}"
    );
    // Without fetch attributes, EXISTS alone.
    run_ext(
        &mut s,
        "e NOTIFY SET (selected (MessageNew MessageExpunge))",
    )
    .await;
    store
        .append(&inbox, b"Subject: 4\r\n\r\n4\r\n", &Flags::default(), 9)
        .await
        .unwrap();
    s.changes(&store.take_published());
    assert!(!s.push_updates(&mut Vec::new()).await.is_empty());
    assert!(!s.notify_fetch_due() && notify_fetches(&mut s).await.is_empty());
}

#[tokio::test]
async fn notify_fetch_sets_seen_and_batches_a_flood() {
    let (store, alice, mut s) = logged_in_with_inbox(&[]).await;
    let inbox = store.get(alice, "INBOX");
    run(&mut s, "b SELECT INBOX").await;
    // Other filters may not carry fetch attributes; invalid ones are BAD.
    for bad in [
        "c NOTIFY SET (personal (MessageNew (UID) MessageExpunge))",
        "c NOTIFY SET (selected (MessageNew (UID BOGUS) MessageExpunge))",
        "c NOTIFY SET (selected (MessageNew (ALL) MessageExpunge))",
    ] {
        assert!(run_ext(&mut s, bad).await.starts_with("BAD "), "{bad}");
    }
    // Without PEEK the message is seen, as FETCH makes it (Dovecot does the same).
    let out = run_ext(
        &mut s,
        "d NOTIFY SET (selected (MessageNew (UID BODY[TEXT]) MessageExpunge))",
    )
    .await;
    assert_eq!(out, "d OK NOTIFY completed\r\n");
    for i in 0..250 {
        let raw = format!("Subject: {i}\r\n\r\nbody {i}\r\n");
        store
            .append(&inbox, raw.as_bytes(), &Flags::default(), 7)
            .await
            .unwrap();
    }
    s.changes(&store.take_published());
    let updates = s.push_updates(&mut Vec::new()).await;
    assert!(String::from_utf8_lossy(&updates).starts_with("* 250 EXISTS\r\n"));
    let batches = notify_fetches(&mut s).await;
    assert_eq!(batches.len(), 3, "at most 100 messages a batch");
    let all = batches.concat();
    for i in 0..250 {
        let line = format!(
            "* {} FETCH (UID {} BODY[TEXT] {{{}}}\r\nbody {i}\r\n FLAGS (\\Seen \\Recent))\r\n",
            i + 1,
            i + 1,
            format!("body {i}\r\n").len()
        );
        assert!(all.contains(&line), "{line}");
    }
    assert_eq!(all.matches(" FETCH (").count(), 250);
    assert!(store
        .metas(inbox.id)
        .iter()
        .all(|m| m.flags.system & Flags::SEEN != 0));
    // The \Seen this session set is not reported again.
    s.changes(&store.take_published());
    let out = run(&mut s, "e NOOP").await;
    assert_eq!(out, "e OK Done\r\n");
}
