//! The admin UI in a real browser: headless Debian chromium, driven by playwright-core
//! (tests/browser/admin.mjs), against the real binary. Screenshots of the main pages are saved in
//! `target/tmp/screenshots/`. Needs `chromium` and `npm ci --prefix tests/browser` (`.ci/run` does both).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{dig, example_dns, repo_path, Db, Instance};

/// Runs the browser script; panics with its output if it fails.
fn run_browser(base: &str, password: &str, shots: &PathBuf, extra: &[&str]) -> serde_json::Value {
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: apt-get install chromium (bash .ci/run does)"
    );
    assert!(
        repo_path("tests/browser/node_modules/playwright-core").exists(),
        "playwright-core is missing: npm ci --prefix tests/browser (bash .ci/run does)"
    );
    let out = Command::new("node")
        .arg(repo_path("tests/browser/admin.mjs"))
        .args([base, password])
        .arg(shots)
        .args(extra)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim().lines().last().unwrap_or("")).expect("JSON result")
}

#[tokio::test]
async fn admin_ui_in_chromium() {
    let inst = Instance::new(
        Db::Sqlite,
        &["admin", "dns", "smtp", "imaps"],
        &example_dns(&repo_path("zones")),
    )
    .await;
    let server = inst.start();
    let password = server.first_admin_password();
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    let seen = run_browser(
        &format!("http://{}", server.addr("admin")),
        &password,
        &shots,
        &["--dns-view", "internal"],
    );
    assert_eq!(seen["ok"], true);
    assert_eq!(seen["crossSiteLogin"], 403, "cross-site login POST refused");
    assert!(
        seen["domainError"]
            .as_str()
            .unwrap_or("")
            .contains("only letters"),
        "{seen}"
    );
    for page in [
        "login",
        "dashboard",
        "domains",
        "users",
        "aliases",
        "dns",
        "queue",
        "account",
    ] {
        let png = shots.join(format!("{page}.png"));
        let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
        assert!(size > 1000, "{} missing or empty", png.display());
    }
    let store = postern_store::Store::open(&inst.db.url).await.unwrap();
    let alice = store
        .authenticate("alice@example.test", "alice-browser-pw")
        .await
        .unwrap()
        .expect("user made in the UI");
    assert_eq!(alice.quota_bytes, 100 << 20);
    // Disable/Delete clicked on the rows of odd local parts reached exactly those users.
    let mut users: Vec<(String, bool)> = store
        .list_users(Some("example.test"))
        .await
        .unwrap()
        .into_iter()
        .map(|u| (u.address.to_string(), u.disabled))
        .collect();
    let mut expected = vec![
        ("a%62c@example.test".to_owned(), true),
        ("abc@example.test".to_owned(), false),
        ("alice@example.test".to_owned(), false),
        ("s/t@example.test".to_owned(), true),
    ];
    users.sort();
    expected.sort();
    assert_eq!(users, expected, "browser saw {}", seen["oddUsers"]);
    assert_eq!(
        store.resolve_recipient("info@example.test").await.unwrap(),
        postern_store::Resolution::Deliver {
            local: [alice.id].into(),
            remote: Default::default()
        }
    );
    // The token made on the dashboard was revoked there, after a confirmation.
    let token = seen["browserToken"].as_str().expect("token shown once");
    assert_eq!(token.len(), 64, "{seen}");
    assert!(store.session(token).await.unwrap().is_none(), "revoked");
    assert!(
        seen["revokeDialog"]
            .as_str()
            .unwrap_or("")
            .contains("Revoke the API token \"browser-metrics\""),
        "{seen}"
    );
    store.close().await;

    // The record added in the UI is served in the internal view only, at once.
    let dns = server.addr("dns");
    assert_eq!(
        dig(dns, "127.0.0.2", &["browser.example.test", "A"]),
        ["10.9.9.9"]
    );
    assert!(dig(dns, "127.0.0.3", &["browser.example.test", "A"]).is_empty());

    // The user made in the UI receives mail sent with swaks (through the alias) and reads it
    // over IMAP.
    let smtp = server.addr("smtp");
    let out = Command::new("swaks")
        .args([
            "--server",
            &smtp.ip().to_string(),
            "--port",
            &smtp.port().to_string(),
        ])
        .args([
            "--from",
            "sender@remote.test",
            "--to",
            "info@example.test",
            "--header",
            "Subject: made in the browser",
        ])
        .args(["--body", "hello alice", "--helo", "client.remote.test"])
        .output()
        .expect("swaks");
    assert!(
        out.status.success(),
        "swaks: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let imaps = server.addr("imaps");
    let script = format!(
        "import imaplib, ssl\n\
         ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE\n\
         m = imaplib.IMAP4_SSL('{}', {}, ssl_context=ctx)\n\
         m.login('alice@example.test', 'alice-browser-pw')\n\
         m.select('INBOX')\n\
         typ, data = m.search(None, 'SUBJECT', '\"made in the browser\"')\n\
         print(len(data[0].split()))\n\
         m.logout()\n",
        imaps.ip(),
        imaps.port()
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "imaplib: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "1",
        "the message is in INBOX"
    );
    assert!(server.stop().success());
}
