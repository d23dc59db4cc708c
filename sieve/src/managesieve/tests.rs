//! The framer and the session together, without a socket: bytes in, responses out.

use postern_store::testing::TestDb;
use postern_store::Store;

use super::frame::Framer;
use super::session::{Next, Session, SessionConfig};

/// Feeds `input` through a framer sized for the session's state and returns each reply (as
/// text) with the step that follows it.
async fn drive(session: &mut Session, store: &Store, input: &[u8]) -> Vec<(String, Next)> {
    let (max, drop_oversized) = session.literal_limit();
    let mut framer = Framer::new(max, drop_oversized);
    framer.push(input);
    let mut out = Vec::new();
    while let Some(frame) = framer.next_frame() {
        let reply = session.frame(store, frame).await;
        out.push((
            String::from_utf8_lossy(&reply.bytes).into_owned(),
            reply.next,
        ));
        if reply.next == Next::Close {
            break;
        }
        let (max, drop_oversized) = session.literal_limit();
        framer.set_literal_max(max, drop_oversized);
    }
    out
}

async fn store() -> (TestDb, Store) {
    let db = TestDb::sqlite();
    let store = db.open().await;
    store.add_domain("example.test").await.unwrap();
    store
        .add_user("alice@example.test", "pw-alice", 0)
        .await
        .unwrap();
    (db, store)
}

fn session(tls: bool) -> Session {
    Session::new(
        "127.0.0.1".parse().unwrap(),
        tls,
        SessionConfig {
            require_tls_for_auth: true,
        },
    )
}

#[tokio::test]
async fn tls_comes_before_authentication() {
    let (_db, store) = store().await;
    let mut s = session(false);
    let caps = String::from_utf8(s.capabilities()).unwrap();
    assert!(caps.contains("\"SASL\" \"\"\r\n") && caps.contains("\"STARTTLS\"\r\n"));
    assert!(caps.ends_with("OK\r\n"), "{caps}");
    let out = drive(&mut s, &store, b"AUTHENTICATE \"PLAIN\" \"AGFsaWNlQGV4YW1wbGUudGVzdABwdy1hbGljZQ==\"\r\nLISTSCRIPTS\r\nSTARTTLS\r\n").await;
    assert!(out[0].0.starts_with("NO (ENCRYPT-NEEDED)"), "{out:?}");
    assert!(out[1].0.starts_with("NO "), "{out:?}");
    assert_eq!(out[2].1, Next::StartTls);
    let caps = String::from_utf8(s.tls_established()).unwrap();
    assert!(
        caps.contains("\"SASL\" \"PLAIN\"") && !caps.contains("STARTTLS"),
        "{caps}"
    );
    let out = drive(&mut s, &store, b"STARTTLS\r\n").await;
    assert!(out[0].0.starts_with("NO"), "no second STARTTLS: {out:?}");
}

#[tokio::test]
async fn scripts_round_trip_after_login() {
    let (_db, store) = store().await;
    let mut s = session(true);
    // AGFsaWNl... = base64("\0alice@example.test\0pw-alice"), sent after the empty challenge.
    let out = drive(
        &mut s,
        &store,
        b"AUTHENTICATE \"PLAIN\"\r\n{40+}\r\nAGFsaWNlQGV4YW1wbGUudGVzdABwdy1hbGljZQ==\r\n",
    )
    .await;
    assert_eq!(out[0].0, "\"\"\r\n");
    assert!(out[1].0.starts_with("OK"), "{out:?}");
    assert_eq!(
        s.user().map(|u| u.address.to_string()).as_deref(),
        Some("alice@example.test")
    );
    let script = "require \"fileinto\";\r\nfileinto \"Junk\";\r\n";
    let input = format!(
        "PUTSCRIPT \"main\" {{{}+}}\r\n{script}\r\nSETACTIVE \"main\"\r\nGETSCRIPT \"main\"\r\nLISTSCRIPTS\r\nNOOP \"t1\"\r\nDELETESCRIPT \"main\"\r\nLOGOUT\r\n",
        script.len()
    );
    let out = drive(&mut s, &store, input.as_bytes()).await;
    assert!(
        out[0].0.starts_with("OK") && out[1].0.starts_with("OK"),
        "{out:?}"
    );
    assert_eq!(
        out[2].0,
        format!("{{{}}}\r\n{script}\r\nOK\r\n", script.len())
    );
    assert_eq!(out[3].0, "\"main\" ACTIVE\r\nOK\r\n");
    assert_eq!(out[4].0, "OK (TAG \"t1\") \"Done\"\r\n");
    assert!(out[5].0.starts_with("NO (ACTIVE)"), "{out:?}");
    assert_eq!(out[6].1, Next::Close);
}

#[tokio::test]
async fn hostile_input_before_login_ends_the_session() {
    let (_db, store) = store().await;
    let mut s = session(true);
    let out = drive(&mut s, &store, b"AUTHENTICATE \"PLAIN\" {100000+}\r\n").await;
    assert!(out[0].0.starts_with("BYE"), "{out:?}");
    assert_eq!(out[0].1, Next::Close);
    let out = drive(&mut s, &store, &[b'x'; 9000]).await;
    assert!(
        out[0].0.starts_with("BYE") && out[0].1 == Next::Close,
        "{out:?}"
    );
}
