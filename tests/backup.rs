//! End-to-end test of `postern backup DIR`, `postern backup --verify DIR` and `postern restore
//! DIR` with the real binary on SQLite and PostgreSQL: a level 0 backup taken while SMTP
//! deliveries run, a level 1 once they stop, restored into a new store on the *other* backend; a
//! server started on the restored store then shows every message (bytes, flags, UIDs,
//! UIDVALIDITY) through IMAP, and every user, alias, DNS record and queue entry through the admin
//! API, and DKIM keys through `postern dns records`, equal to the original's.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::http::Api;
use common::{repo_path, Db, Instance, Server};
use serde_json::{json, Value};

both_backends!(backup_under_load_restores_on_the_other_backend);

const PASSWORD: &str = "backup pw";

const ZONE: &str =
    "$TTL 300\n@ SOA ns1.example.test. hostmaster.example.test. 1 3600 600 86400 300\n\
                    @ NS ns1.example.test.\nns1 A 192.0.2.1\n";

/// The configuration of a server: its DNS serves example.test (so that records can be added
/// through the API) on `dns_port`, which is also the MX's resolver: it answers at once, and
/// refuses remote domains, so the queue defers them (and retries after an hour).
fn config(zones: &Path, dns_port: u16) -> String {
    std::fs::write(zones.join("example.test.zone"), ZONE).expect("zone file");
    format!(
        "[smtp]\nresolver = \"127.0.0.1:{dns_port}\"\nretry_initial_secs = 3600\n\n\
         [dns]\nzones_dir = \"{}\"\n\n[[dns.view]]\nname = \"all\"\nmatch_clients = [\"any\"]\n\n\
         [[dns.view.zone]]\nname = \"example.test\"\nfile = \"example.test.zone\"\n",
        zones.display()
    )
}

/// An instance with [`config`], its DNS on a port free a moment ago (the resolver must be named
/// before the server binds it).
async fn instance(db: Db, zones: &Path) -> Instance {
    let port = common::ports::free_port();
    let inst = Instance::new(db, &services(), &config(zones, port)).await;
    inst.set_dns_port(port);
    inst
}

fn services() -> [&'static str; 5] {
    ["smtp", "imap", "imaps", "admin", "dns"]
}

/// Every mailbox of `user` through IMAP (see tests/backup/imap_dump.py).
fn imap_dump(server: &Server, user: &str) -> Value {
    let out = Command::new("python3")
        .arg(repo_path("tests/backup/imap_dump.py"))
        .arg(server.addr("imaps").port().to_string())
        .arg(user)
        .arg(PASSWORD)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "imap_dump.py failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    serde_json::from_slice(&out.stdout).expect("JSON from imap_dump.py")
}

/// Users, aliases, DNS records and the queue through the admin API.
fn api_dump(api: &Api) -> Value {
    let mut all = serde_json::Map::new();
    for path in [
        "/api/v1/users",
        "/api/v1/aliases",
        "/api/v1/dns/records",
        "/api/v1/queue",
    ] {
        let (status, body) = api.get(path);
        assert_eq!(status, 200, "{path}: {body}");
        all.insert(path.to_owned(), body);
    }
    Value::Object(all)
}

fn postern(inst: &Instance, args: &[&str]) -> std::process::Output {
    inst.cli(args).output().expect("run postern")
}

fn wait_until(what: &str, server: &Server, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn backup_under_load_restores_on_the_other_backend(db: Db) {
    let zones = tempfile::tempdir().expect("temp dir");
    let inst = instance(db, zones.path()).await;
    inst.ok(&["domain", "add", "example.test"], "");
    for user in ["alice@example.test", "bob@example.test"] {
        inst.ok(&["user", "add", user], &format!("{PASSWORD}\n"));
    }
    inst.ok(
        &["alias", "add", "team@example.test", "alice@example.test"],
        "",
    );
    inst.ok(&["alias", "add", "fwd@example.test", "ok@remote.test"], "");
    let server = inst.start();
    let api = Api::for_server(&inst, &server);
    let (status, body) = api.call(
        "POST",
        "/api/v1/dns/records",
        Some(json!({"view": "all", "name": "www.example.test", "type": "A", "ttl": 300, "data": "192.0.2.7"})),
        None,
    );
    assert!(status == 200 || status == 201, "{status} {body}");

    // SMTP load; the backup starts once some messages are in and ends before the load does.
    let dir = tempfile::tempdir().expect("temp dir");
    let stop = dir.path().join("stop");
    let mut load = Command::new("python3")
        .arg(repo_path("tests/backup/smtp_load.py"))
        .arg(server.addr("smtp").port().to_string())
        .arg(&stop)
        .stdout(Stdio::piped())
        .spawn()
        .expect("run python3");
    let mut progress = BufReader::new(load.stdout.take().expect("stdout")).lines();
    let mut sent = 0;
    while sent < 30 {
        let line = progress.next().expect("load runs").expect("read");
        sent = line.trim_start_matches("sent ").parse().expect("count");
    }
    let backups = dir.path().join("backups");
    let backups_arg = backups.to_str().expect("utf-8 path");
    let level0 = postern(&inst, &["backup", backups_arg]);
    let line = progress.next().expect("load still running").expect("read");
    let sent_after: u32 = line.trim_start_matches("sent ").parse().expect("count");
    std::fs::write(&stop, "").expect("stop file");
    for line in progress {
        line.expect("read");
    }
    assert!(load.wait().expect("load exits").success());
    assert!(
        level0.status.success(),
        "backup under load failed: {}",
        String::from_utf8_lossy(&level0.stderr)
    );
    assert!(sent_after > sent, "the load went on while the backup ran");

    // A queue entry (to a remote recipient that cannot be resolved) deferred for an hour, so
    // it does not change between the backup and the comparison.
    let out = common::run_with_stdin(
        {
            let mut c = Command::new("swaks");
            c.args(["--server", "127.0.0.1", "--port"])
                .arg(server.addr("smtp").port().to_string())
                .args([
                    "--helo",
                    "client.test",
                    "--from",
                    "x@remote.test",
                    "--to",
                    "fwd@example.test",
                ]);
            c
        },
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    wait_until("the queue entry to be deferred", &server, || {
        let (_, queue) = api.get("/api/v1/queue");
        queue.to_string().contains("\"attempts\":1")
    });

    let level1 = postern(&inst, &["backup", backups_arg, "--level", "1"]);
    assert!(
        level1.status.success(),
        "{}",
        String::from_utf8_lossy(&level1.stderr)
    );
    let text = String::from_utf8_lossy(&level1.stdout);
    assert!(text.contains("level 1, builds on 00001-level-0-"), "{text}");
    let verify = postern(&inst, &["backup", "--verify", backups_arg]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(String::from_utf8_lossy(&verify.stdout).contains("verified 2 backup(s)"));

    let before_imap: Vec<Value> = ["alice@example.test", "bob@example.test"]
        .iter()
        .map(|u| imap_dump(&server, u))
        .collect();
    let before_api = api_dump(&api);
    let before_dkim = inst.ok(&["dns", "records", "example.test"], "");
    let messages = before_imap[0]["INBOX"]["messages"]
        .as_array()
        .map_or(0, Vec::len);
    assert!(
        messages as u32 >= sent_after,
        "{messages} messages, {sent_after} sent"
    );
    server.stop();

    // Restore into a new store on the other backend and serve it.
    let other = match db {
        Db::Sqlite => Db::Postgres,
        Db::Postgres => Db::Sqlite,
    };
    let restored = instance(other, zones.path()).await;
    let out = postern(&restored, &["restore", backups_arg]);
    assert!(
        out.status.success(),
        "restore failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A second restore into the now non-empty store is refused.
    let again = postern(&restored, &["restore", backups_arg]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    let server = restored.start();
    let api = Api::for_server(&restored, &server);
    for (user, before) in ["alice@example.test", "bob@example.test"]
        .iter()
        .zip(&before_imap)
    {
        assert_eq!(&imap_dump(&server, user), before, "{user}");
    }
    assert_eq!(api_dump(&api), before_api);
    assert_eq!(
        restored.ok(&["dns", "records", "example.test"], ""),
        before_dkim
    );
    assert!(before_dkim.contains("_domainkey"), "{before_dkim}");
    server.stop();
    check_damage_is_reported(&restored, &backups).await;
}

/// A damaged backup: verify names the file, restore into a fresh store names it, restores the
/// rest and exits non-zero.
async fn check_damage_is_reported(inst: &Instance, backups: &Path) {
    let newest = std::fs::read_dir(backups)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .find(|p| p.to_string_lossy().contains("level-1"))
        .expect("level 1 backup");
    let users = newest.join("tables/users.jsonl");
    let len = std::fs::metadata(&users).expect("users file").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&users)
        .expect("open")
        .set_len(len - 5)
        .expect("truncate");
    let out = postern(
        inst,
        &["backup", "--verify", backups.to_str().expect("utf-8")],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tables/users.jsonl: damaged or truncated"),
        "{err}"
    );
}
