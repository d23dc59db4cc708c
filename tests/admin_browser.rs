//! The admin UI in a real browser: headless Debian chromium, driven by playwright-core
//! (tests/browser/admin.mjs), against the real binary: forms, row actions on odd local parts,
//! the domain page, paging and search, success and row error messages, token revoke, and every
//! main page at 390 px. Screenshots of the main pages are saved in
//! `target/tmp/screenshots-{Sqlite,Postgres}/`. Needs `chromium` and `npm ci --prefix tests/browser` (`.ci/run` does both).

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

both_backends!(admin_ui_in_chromium);

async fn admin_ui_in_chromium(db: Db) {
    let inst = Instance::new(
        db,
        &["admin", "dns", "smtp", "imaps"],
        &example_dns(&repo_path("zones")),
    )
    .await;
    let server = inst.start();
    let password = server.first_admin_password();
    // 120 aliases (plus the one the browser adds) for the paging and search checks.
    let store = postern_store::Store::open(&inst.db.url).await.unwrap();
    store.add_domain("bulk.test").await.unwrap();
    for i in 0..120 {
        store
            .add_alias(&format!("list{i:03}@bulk.test"), "owner@remote.test")
            .await
            .unwrap();
    }
    store.close().await;
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("screenshots-{db:?}"));
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
        "domain",
        "users-390",
    ] {
        let png = shots.join(format!("{page}.png"));
        let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
        assert!(size > 1000, "{} missing or empty", png.display());
    }
    assert_domain_page(&seen);
    let script = seen["vacationScript"].as_str().unwrap_or("");
    assert!(
        script.contains("vacation :days 7 :subject \"Out of office\"")
            && script.contains("Back on Monday.\n.\nGrüße ${hex:22}A${hex:22}")
            && script.contains("\"2027-01-06\""),
        "the /account form shows the generated script: {seen}"
    );
    assert!(
        seen["vacationNotice"]
            .as_str()
            .unwrap_or("")
            .contains("saved"),
        "{seen}"
    );
    assert!(
        seen["forwardError"].as_str().unwrap_or("").contains("loop"),
        "{seen}"
    );
    for (path, width) in seen["narrow"].as_object().expect("390 px widths") {
        assert!(
            width.as_i64().unwrap_or(9999) <= 390,
            "{path} scrolls sideways at 390 px: {width}"
        );
    }
    assert_eq!(
        seen["narrow"].as_object().map(|o| o.len()),
        Some(9),
        "{seen}"
    );
    assert!(
        seen["rowError"].as_str().unwrap_or("").contains("quota"),
        "{seen}"
    );
    assert!(
        !seen["dnsRowError"].as_str().unwrap_or("").is_empty(),
        "{seen}"
    );
    assert!(
        seen["disabledNotice"]
            .as_str()
            .unwrap_or("")
            .contains("Disabled a%62c@example.test"),
        "{seen}"
    );
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

/// The domain page of example.test as the browser saw it: per view, the zone file's records, the
/// admin record added in the UI (internal view only) and the DKIM keys published for mail; the
/// DKIM keys; the records to publish elsewhere; the client setup links.
fn assert_domain_page(seen: &serde_json::Value) {
    let rows = |view: &str| -> Vec<Vec<String>> {
        seen["domainServed"][view]
            .as_array()
            .unwrap_or_else(|| panic!("no {view} records: {seen}"))
            .iter()
            .map(|r| {
                r.as_array()
                    .expect("row")
                    .iter()
                    .map(|c| c.as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .collect()
    };
    let has = |rows: &[Vec<String>], want: [&str; 5]| rows.iter().any(|r| r == &want);
    let internal = rows("internal");
    let external = rows("external");
    assert!(
        has(
            &internal,
            [
                "zone-file",
                "example.test.",
                "MX",
                "3600",
                "10 mail.example.test."
            ]
        ),
        "{internal:?}"
    );
    assert!(
        has(
            &internal,
            ["admin", "browser.example.test.", "A", "60", "10.9.9.9"]
        ),
        "{internal:?}"
    );
    assert!(
        !external.iter().any(|r| r[1] == "browser.example.test."),
        "the admin record is in the internal view only: {external:?}"
    );
    for view in [&internal, &external] {
        assert!(
            view.iter().any(|r| r[0] == "mail"
                && r[1] == "pst1r._domainkey.example.test."
                && r[2] == "TXT"
                && r[4].starts_with("\"v=DKIM1; k=rsa; p=")),
            "DKIM key published for mail: {view:?}"
        );
        assert!(
            view.iter().all(|r| r[1].ends_with("example.test.")),
            "only names of the domain: {view:?}"
        );
    }
    assert_eq!(
        seen["dkim"],
        serde_json::json!(["pst1e", "pst1r"]),
        "{seen}"
    );
    let publish = seen["publish"].as_str().unwrap_or("");
    assert!(
        publish.contains("example.test. 3600 IN MX 10 mail.example.test.")
            && publish.contains("pst1e._domainkey.example.test. 3600 IN TXT \"v=DKIM1; k=ed25519;"),
        "{publish}"
    );
    let links = seen["clientLinks"].to_string();
    assert!(
        links.contains("/mail/config-v1.1.xml?emailaddress=you%40example.test")
            && links.contains("https://mta-sts.example.test/.well-known/mta-sts.txt"),
        "{links}"
    );
}
