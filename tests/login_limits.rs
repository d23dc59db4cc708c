//! End-to-end: one login budget for the whole process. 100 parallel wrong logins from one address
//! hit IMAP, then SMTP submission AUTH, then the admin `/login`; `/metrics` must show at most 10
//! password verifications for them *in total*, while the real user logging in from another address
//! at the same moment (and afterwards) gets in at once with the right password.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{metrics_with, repo_path, Db, Instance};
use serde_json::Value;

both_backends!(one_budget_across_services_under_parallel_floods);

const USER: &str = "alice@example.test";
const PASSWORD: &str = "alice-secret-pw";
const GUESSER: &str = "127.0.0.20";
const REAL: &str = "127.0.0.21";
/// How long the real user's login may take while a flood is refused around it. Its verification
/// runs in the normal lane of the hashing pool, so it waits for at most one guess's verification;
/// the bound is generous for a loaded 2-core machine running a debug build.
const AT_ONCE: Duration = Duration::from_secs(8);

/// Runs tests/login/flood.py: `n` parallel wrong logins from GUESSER on `user`, and the real login
/// `real` = (source, password) at the same moment. Returns (outcome counts, real outcome).
fn flood(proto: &str, port: u16, n: usize, user: &str, real: (&str, &str)) -> (Value, Value) {
    let out = Command::new("python3")
        .arg(repo_path("tests/login/flood.py"))
        .args([
            proto,
            &port.to_string(),
            GUESSER,
            &n.to_string(),
            user,
            real.0,
            real.1,
        ])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "flood.py {proto} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(stdout.trim()).expect("flood.py prints JSON");
    (v["guesses"].clone(), v["real"].clone())
}

/// Checks a flood's counts: every guess failed or was refused unverified, none got in.
fn assert_guesses(proto: &str, guesses: &Value, n: u64) {
    eprintln!("{proto}: {n} guesses: {guesses}");
    let count = |k: &str| guesses[k].as_u64().unwrap_or(0);
    assert_eq!(
        count("failed") + count("throttled"),
        n,
        "{proto}: every guess is failed or throttled: {guesses}"
    );
    assert!(count("throttled") >= n - 10, "{proto}: {guesses}");
}

/// Checks that the real user's login succeeded, and quickly.
fn assert_real(proto: &str, real: &Value) {
    assert_eq!(
        real["outcome"], "ok",
        "{proto}: the real user gets in: {real}"
    );
    let secs = real["secs"].as_f64().expect("secs");
    assert!(
        secs < AT_ONCE.as_secs_f64(),
        "{proto}: the real user's login took {secs} s"
    );
    eprintln!("{proto}: real user's login took {secs} s");
}

/// Sum of every sample of metric `name` whose labels contain `filter` (all samples if empty).
fn total(text: &str, name: &str, filter: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(filter))
        .filter_map(|l| l.rsplit(' ').next()?.trim().parse::<u64>().ok())
        .sum()
}

async fn one_budget_across_services_under_parallel_floods(db: Db) {
    // The per-client connection cap (30 by default) would refuse most of one address's 100
    // parallel connections before they could try a password: lift it so the login limiter alone
    // is under test.
    let inst = Instance::new(
        db,
        &["imaps", "submissions", "admin"],
        "[net]\nmax_connections_per_client = 200\n",
    )
    .await;
    inst.ok(&["domain", "add", "example.test"], "");
    inst.ok(&["user", "add", USER], &format!("{PASSWORD}\n"));
    let server = inst.start();
    let admin_password = server.first_admin_password();
    let token = inst
        .ok(&["admin", "token", "admin", "--label", "metrics"], "")
        .trim()
        .to_owned();
    let imap = server.addr("imaps").port();
    let smtp = server.addr("submissions").port();
    let admin = server.addr("admin").port();

    let (guesses, real) = flood("imap", imap, 100, USER, (REAL, PASSWORD));
    assert_guesses("imap", &guesses, 100);
    assert!(guesses["failed"].as_u64().unwrap_or(0) >= 1, "{guesses}");
    assert_real("imap", &real);

    let (guesses, real) = flood("smtp", smtp, 100, USER, (REAL, PASSWORD));
    assert_guesses("smtp", &guesses, 100);
    assert_real("smtp", &real);

    let (guesses, real) = flood("admin", admin, 100, "admin", (REAL, &admin_password));
    assert_guesses("admin", &guesses, 100);
    assert_real("admin", &real);

    // The guesser's address is spent for every service, even with the right password...
    let (_, right) = flood("imap", imap, 0, USER, (GUESSER, PASSWORD));
    assert_eq!(right["outcome"], "throttled", "{right}");
    let (_, right) = flood("smtp", smtp, 0, USER, (GUESSER, PASSWORD));
    assert_eq!(right["outcome"], "throttled", "{right}");
    // ...while the real user still logs in at once over both mail protocols.
    assert_real("imap", &flood("imap", imap, 0, USER, (REAL, PASSWORD)).1);
    assert_real("smtp", &flood("smtp", smtp, 0, USER, (REAL, PASSWORD)).1);

    let m = metrics_with(&server, &token);
    let verifications = total(&m, "postern_login_verifications_total", "");
    let successes = total(&m, "postern_logins_total", "result=\"success\"");
    let failures = total(&m, "postern_logins_total", "result=\"failure\"");
    let throttled = total(&m, "postern_logins_total", "result=\"throttled\"");
    // Every success is the real user's (5 logins); the rest of the verifications are the guesses.
    assert_eq!(successes, 5, "{m}");
    assert!(
        verifications - successes <= 10 && verifications - successes == failures,
        "at most 10 verifications for 300 guesses over three services:\n{m}"
    );
    assert!(failures >= 1, "{m}");
    assert_eq!(throttled, 300 - failures + 2, "{m}");
    assert!(
        total(&m, "postern_login_limiter_total", "decision=\"throttled\"") >= 290 - failures,
        "{m}"
    );
    for service in ["imap", "smtp", "admin-web"] {
        assert!(
            m.contains(&format!(
                "postern_login_verifications_total{{service=\"{service}\"}}"
            )),
            "{service} verified at least the real user's password:\n{m}"
        );
    }
    assert!(server.stop().success());
}
