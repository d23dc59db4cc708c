//! A message the store acknowledged survives the process being killed with SIGKILL right after,
//! on SQLite and on PostgreSQL. The test re-runs its own binary as the child that delivers and is
//! killed, so it needs its own `main` (harness = false in Cargo.toml).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use postern_store::testing::TestDb;
use postern_store::BlobSource;
use postern_store::{DeliveryOutcome, Incoming, Store};

const CHILD_ENV: &str = "POSTERN_CRASH_CHILD_URL";
const RAW: &[u8] = b"Subject: durable\r\n\r\nmust survive kill -9\r\n";

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    if let Ok(url) = std::env::var(CHILD_ENV) {
        rt.block_on(child(&url));
        return;
    }
    let mut passed = 0;
    let mut failed = 0;
    for backend in ["sqlite", "postgres"] {
        let result = std::panic::catch_unwind(|| {
            rt.block_on(async {
                let db = if backend == "sqlite" {
                    TestDb::sqlite()
                } else {
                    TestDb::postgres().await
                };
                acknowledged_message_survives_sigkill(&db).await;
            })
        });
        match result {
            Ok(()) => {
                println!("test crash::{backend}::acknowledged_message_survives_sigkill ... ok");
                passed += 1;
            }
            Err(_) => {
                println!("test crash::{backend}::acknowledged_message_survives_sigkill ... FAILED");
                failed += 1;
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}

/// The child: accept one message, report the UID, then wait to be killed.
async fn child(url: &str) {
    let store = Store::open(url).await.expect("child opens store");
    let user = store
        .user("alice@example.test")
        .await
        .unwrap()
        .expect("user");
    let acc = store
        .accept(Incoming {
            raw: BlobSource::Bytes(RAW),
            internal_date: 1,
            local: &[postern_store::LocalCopy::new(user.id, "INBOX")],
            sender: "",
            remote: &[],
            remote_dsn: &[],
            expires_at: 0,
        })
        .await
        .expect("accept");
    let DeliveryOutcome::Delivered { uid, .. } = acc.local[0] else {
        panic!("not delivered")
    };
    println!("ACK {uid}");
    std::future::pending::<()>().await;
}

async fn acknowledged_message_survives_sigkill(db: &TestDb) {
    let store = db.open().await;
    store.add_domain("example.test").await.unwrap();
    let user = store.add_user("alice@example.test", "pw", 0).await.unwrap();
    store.close().await;

    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, &db.url)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    let uid: i64 = line
        .strip_prefix("ACK ")
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("child said {line:?}"));

    let store = db.open().await;
    let inbox = store.mailbox(user.id, "INBOX").await.unwrap().unwrap();
    assert_eq!(
        store.message_raw(&inbox, uid).await.unwrap().as_deref(),
        Some(RAW)
    );
}
