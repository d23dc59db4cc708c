//! `/metrics` end to end: SMTP, IMAP and DNS traffic from real clients (python smtplib and
//! imaplib, dig), then the scrape must describe every metric family (HELP and TYPE), carry the
//! latency histograms and the gauges with values that match the traffic, and contain every metric
//! the Grafana dashboard in `deploy/grafana/postern.json` queries. The admin dashboard shows the
//! counters named for people, and warns of an administrator's record that a zone file overrides
//! but not of the mail records the zone file is meant to override, nor loses that warning under a
//! flood of refused logins. On SQLite and PostgreSQL.

mod common;
mod smtp_support;

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::http::{admin_session, agent, get_page, send};
use common::{dig, example_dns, metrics_with, repo_path, sample, Db, Instance, Server};
use smtp_support::{Rr, TestDns};

both_backends!(
    scrape_describes_counts_and_feeds_the_grafana_dashboard,
    dashboard_names_counters_and_warns_only_of_real_overrides,
);

const USER: &str = "alice@example.test";
const PASSWORD: &str = "alice-metrics-pw";

/// Polls `/metrics` until `done` holds for the text, or fails after a generous deadline.
fn scrape_until(server: &Server, token: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = metrics_with(server, token);
        if done(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "{what} never held:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The metric families of a scrape, by name: (HELP text, TYPE).
fn families(text: &str) -> HashMap<&str, (Option<&str>, Option<&str>)> {
    let mut out: HashMap<&str, (Option<&str>, Option<&str>)> = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP text");
            out.entry(name).or_default().0 = Some(help);
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE kind");
            out.entry(name).or_default().1 = Some(kind);
        }
    }
    out
}

/// The names of the samples of a scrape (`postern_x_bucket` for a histogram's buckets).
fn sample_names(text: &str) -> BTreeSet<&str> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect()
}

/// Every `postern_...` metric name in the expressions of the Grafana dashboard.
fn grafana_metrics() -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo_path("deploy/grafana/postern.json"))
        .expect("deploy/grafana/postern.json");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("dashboard is JSON");
    let mut names = BTreeSet::new();
    let panels = dashboard["panels"].as_array().expect("panels");
    let exprs: Vec<&str> = panels
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .map(|t| t["expr"].as_str().expect("every target has an expr"))
        .collect();
    assert!(exprs.len() >= 15, "a real dashboard: {exprs:?}");
    for expr in exprs {
        let mut rest = expr;
        while let Some(at) = rest.find("postern_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            names.insert(tail[..end].to_owned());
            rest = &tail[end..];
        }
    }
    names
}

async fn scrape_describes_counts_and_feeds_the_grafana_dashboard(db: Db) {
    // Outbound mail to elsewhere.test goes to a port where nothing listens: it is deferred, and
    // stays in the queue (the next attempt is an hour away).
    let closed_port = common::ports::free_port();
    let resolver = TestDns::start(HashMap::from([
        (
            "elsewhere.test".to_owned(),
            vec![Rr::Mx(10, "mx.elsewhere.test".into())],
        ),
        (
            "mx.elsewhere.test".to_owned(),
            vec![Rr::A(std::net::Ipv4Addr::LOCALHOST)],
        ),
    ]));
    let extra = format!(
        "[smtp]\nresolver = \"{}\"\noutbound_port = {closed_port}\nretry_initial_secs = 3600\n\
         queue_scan_secs = 1\noutbound_timeout_secs = 5\n\n{}",
        resolver.addr,
        example_dns(&repo_path("zones"))
    );
    let services = ["dns", "smtp", "submission", "imap", "admin"];
    let inst = Instance::new(db, &services, &extra).await;
    inst.ok(&["domain", "add", "example.test"], "");
    inst.ok(&["user", "add", USER], &format!("{PASSWORD}\n"));
    let server = inst.start();
    let metrics_token = inst.ok(
        &[
            "admin",
            "token",
            "add",
            "admin",
            "--label",
            "prometheus",
            "--scope",
            "metrics",
        ],
        "",
    );
    let token = metrics_token.trim();

    // DNS over UDP in both views, over TCP, and a name that does not exist.
    let dns = server.addr("dns");
    assert_eq!(
        dig(dns, "127.0.0.2", &["www.example.test"]),
        ["192.168.10.80"]
    );
    assert_eq!(dig(dns, "127.0.0.3", &["www.example.test"]), ["192.0.2.80"]);
    assert_eq!(
        dig(dns, "127.0.0.3", &["+tcp", "www.example.test"]),
        ["192.0.2.80"]
    );
    assert!(dig(dns, "127.0.0.3", &["nothing.example.test"]).is_empty());

    // Mail in, mail out, and an IMAP session that stays logged in until told to leave.
    let mut traffic = Command::new("python3")
        .arg(repo_path("tests/metrics/traffic.py"))
        .args([
            server.addr("smtp").port().to_string(),
            server.addr("submission").port().to_string(),
            server.addr("imap").port().to_string(),
            USER.to_owned(),
            PASSWORD.to_owned(),
        ])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut said = String::new();
    BufReader::new(traffic.stdout.take().expect("stdout"))
        .read_line(&mut said)
        .expect("traffic.py output");
    assert_eq!(
        said.trim(),
        "logged-in",
        "traffic.py failed before its IMAP login"
    );

    // The queue gauges follow the store's change notifications, a moment after the attempt.
    let text = scrape_until(&server, token, "the outbound attempt was deferred", |t| {
        sample(t, r#"postern_smtp_outbound_total{result="deferred"}"#) >= 1
            && sample(t, r#"postern_queue_messages{state="deferred"}"#) == 1
    });

    // Every family is described: HELP and TYPE lines, histograms as true histograms.
    let families = families(&text);
    for name in sample_names(&text) {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|s| name.strip_suffix(s))
            .find(|base| families.get(base).and_then(|f| f.1) == Some("histogram"))
            .unwrap_or(name);
        let (help, kind) = families.get(family).copied().unwrap_or_default();
        assert!(
            help.is_some_and(|h| h.len() > 10) && kind.is_some(),
            "{family} has HELP and TYPE lines:\n{text}"
        );
    }
    for (name, kind) in [
        ("postern_smtp_command_duration_seconds", "histogram"),
        ("postern_imap_command_duration_seconds", "histogram"),
        ("postern_dns_query_duration_seconds", "histogram"),
        ("postern_connections_active", "gauge"),
        ("postern_sessions_active", "gauge"),
        ("postern_queue_messages", "gauge"),
        ("postern_dns_queries_total", "counter"),
        ("postern_imap_commands_total", "counter"),
        ("postern_dns_responses_total", "counter"),
    ] {
        assert_eq!(families.get(name).and_then(|f| f.1), Some(kind), "{name}");
    }

    // The histograms count what happened, in buckets up to +Inf.
    for (series, at_least) in [
        (
            r#"postern_dns_query_duration_seconds_count{transport="udp"}"#,
            3,
        ),
        (
            r#"postern_dns_query_duration_seconds_count{transport="tcp"}"#,
            1,
        ),
        (
            r#"postern_dns_query_duration_seconds_bucket{transport="udp",le="+Inf"}"#,
            3,
        ),
        (
            r#"postern_smtp_command_duration_seconds_count{command="data",listener="smtp"}"#,
            1,
        ),
        (
            r#"postern_smtp_command_duration_seconds_count{command="auth",listener="submission"}"#,
            1,
        ),
        (
            r#"postern_smtp_command_duration_seconds_count{command="rcpt",listener="submission"}"#,
            1,
        ),
        (
            r#"postern_imap_command_duration_seconds_count{command="LOGIN"}"#,
            1,
        ),
        (
            r#"postern_imap_command_duration_seconds_count{command="FETCH"}"#,
            1,
        ),
        (
            r#"postern_imap_command_duration_seconds_bucket{command="SELECT",le="10"}"#,
            1,
        ),
    ] {
        assert!(
            sample(&text, series) >= at_least,
            "{series} >= {at_least}:\n{text}"
        );
    }
    let sum = text
        .lines()
        .find_map(|l| l.strip_prefix(r#"postern_dns_query_duration_seconds_sum{transport="udp"} "#))
        .and_then(|v| v.parse::<f64>().ok())
        .expect("DNS latency sum");
    assert!(sum > 0.0 && sum < 30.0, "a sensible time: {sum} s");

    // Counters and gauges match the traffic.
    for (series, expected) in [
        (r#"postern_dns_queries_total{view="internal"}"#, 1),
        (r#"postern_dns_queries_total{view="external"}"#, 3),
        (r#"postern_dns_responses_total{kind="nxdomain"}"#, 1),
        (
            r#"postern_smtp_messages_total{source="mx",result="accepted"}"#,
            1,
        ),
        (
            r#"postern_smtp_messages_total{source="submission",result="accepted"}"#,
            1,
        ),
        (r#"postern_queue_messages{state="deferred"}"#, 1),
        (r#"postern_queue_messages{state="new"}"#, 0),
        (r#"postern_sessions_active{service="imap"}"#, 1),
        (r#"postern_connections_active{service="imap"}"#, 1),
        (r#"postern_imap_commands_total{status="bad"}"#, 1),
    ] {
        assert_eq!(sample(&text, series), expected, "{series}:\n{text}");
    }
    assert!(sample(&text, r#"postern_imap_commands_total{status="ok"}"#) >= 4);
    assert!(sample(&text, "postern_start_time_seconds") > 1_700_000_000);

    // Every metric the Grafana dashboard queries is in the scrape.
    let names = sample_names(&text);
    for metric in grafana_metrics() {
        assert!(
            names.contains(metric.as_str()),
            "deploy/grafana/postern.json uses {metric}, which /metrics does not have:\n{text}"
        );
    }

    // The IMAP client logs out: its session and connection are no longer counted.
    let mut stdin = traffic.stdin.take().expect("stdin");
    writeln!(stdin, "done").expect("tell traffic.py to log out");
    drop(stdin);
    assert!(traffic.wait().expect("traffic.py").success());
    scrape_until(&server, token, "the IMAP session ended", |t| {
        sample(t, r#"postern_sessions_active{service="imap"}"#) == 0
            && sample(t, r#"postern_connections_active{service="imap"}"#) == 0
    });
    assert!(server.stop().success());
}

async fn dashboard_names_counters_and_warns_only_of_real_overrides(db: Db) {
    // The example zone files already hold example.test's MX, SPF, DMARC, SRV and mail host
    // records: they override what Postern publishes for the mail domain, as intended.
    let extra = format!(
        "{}\n[mail.views.external]\naddresses = [\"192.0.2.25\"]\n\
         [mail.views.internal]\naddresses = [\"192.168.10.25\"]\n",
        example_dns(&repo_path("zones"))
    );
    let inst = Instance::new(db, &["dns", "admin", "imaps", "submissions"], &extra).await;
    inst.ok(&["domain", "add", "example.test"], "");
    let server = inst.start();
    let dns = server.addr("dns");
    // An administrator's record that the zone file overrides is a real problem: it is warned of.
    let store = postern_store::Store::open(&inst.db.url).await.unwrap();
    store
        .add_dns_record("internal", "www.example.test", "A", 60, "10.9.9.9")
        .await
        .unwrap();
    server.wait_for_log("managed record [internal] www.example.test. A: warning: overridden");
    store.close().await;
    assert_eq!(
        dig(dns, "127.0.0.2", &["www.example.test"]),
        ["192.168.10.80"]
    );
    for _ in 0..2 {
        assert_eq!(dig(dns, "127.0.0.3", &["www.example.test"]), ["192.0.2.80"]);
    }

    // Password guessers' 75 refused logins (from three addresses, under the per-client cap)
    // come after that warning: they take a few places among the recent warnings, counted, not
    // all 50 of them.
    for source in ["127.0.0.9", "127.0.0.10", "127.0.0.11"] {
        let flood = Command::new("python3")
            .arg(repo_path("tests/login/flood.py"))
            .args(["imap", &server.addr("imaps").port().to_string()])
            .args([source, "25", "nobody@example.test"])
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .expect("python3");
        let out = String::from_utf8_lossy(&flood.stdout);
        assert!(
            flood.status.success() && out.contains("\"failed\""),
            "{flood:?}"
        );
    }

    let base = format!("http://{}", server.addr("admin"));
    let agent = agent();
    // The status API carries the same values, keyed as on /metrics.
    let token = inst.ok(&["admin", "token", "admin", "--label", "status"], "");
    let bearer = format!("Bearer {}", token.trim());
    let (s, _, body) = send(
        &agent,
        "GET",
        &format!("{base}/api/v1/status"),
        &[("Authorization", &bearer)],
        None,
    );
    assert_eq!(s, 200, "{body}");
    let status: serde_json::Value = serde_json::from_str(&body).expect("status JSON");
    let counters = &status["counters"];
    assert_eq!(
        counters[r#"postern_dns_queries_total{view="external"}"#], 2.0,
        "{status}"
    );
    assert!(
        counters[r#"postern_dns_query_duration_seconds_count{transport="udp"}"#]
            .as_f64()
            .is_some_and(|n| n >= 3.0),
        "{status}"
    );
    let password = server.first_admin_password();
    let session = admin_session(&agent, &base, &password);
    let session = session.as_str();
    let (s, page, _) = get_page(&agent, &format!("{base}/"), Some(session));
    assert_eq!(s, 200);
    for shown in [
        "in the queue: 0 new, 0 deferred",
        "DNS queries in view internal</th><td>1 query</td>",
        "DNS queries in view external</th><td>2 queries</td>",
        "Admin web logins</th><td>1 succeeded, 0 failed, 0 throttled</td>",
        "Admin web connections</th><td>1 open now",
    ] {
        assert!(page.contains(shown), "{shown:?} on the dashboard:\n{page}");
    }
    let warnings = page
        .split_once("Recent warnings and errors")
        .map(|(_, rest)| rest)
        .expect("warnings section");
    assert!(
        warnings.contains("managed record [internal] www.example.test. A: warning: overridden"),
        "{warnings}"
    );
    assert!(warnings.contains("times in a row"), "{warnings}");
    for expected in [
        "example.test. MX",
        "example.test. TXT",
        "_dmarc",
        "is a CNAME",
    ] {
        assert!(
            !warnings.contains(expected) && !server.log().contains(expected),
            "no warning about {expected:?}:\n{warnings}"
        );
    }
    assert!(server.stop().success());
}
