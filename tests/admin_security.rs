//! End-to-end tests of the admin server's HTTP hardening, on SQLite and PostgreSQL: security
//! headers (with HSTS over HTTPS only), refusal of cross-site login POSTs, the case-insensitive
//! bearer scheme, and path parameters that must be percent-encoded (issue 13 bug 1).

mod common;

use common::http::{agent, csrf_of, login_form, send, urlencode, Api};
use common::{Db, Instance};
use serde_json::json;

both_backends!(
    security_headers_and_login_csrf,
    odd_local_parts_through_api,
    health_and_readiness_probes
);

/// `GET url` without credentials: status, `Cache-Control`, `Content-Type` and body.
fn probe(url: &str) -> (u16, String, String, String) {
    let resp = agent().get(url).call().expect("probe request");
    let header = |n: &str| {
        resp.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (cache, kind) = (header("cache-control"), header("content-type"));
    let status = resp.status().as_u16();
    let body = resp.into_body().read_to_string().unwrap_or_default();
    (status, cache, kind, body)
}

/// Runs one SQL statement as the test role on the PostgreSQL server of `DATABASE_URL`.
fn psql(sql: &str) {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let out = std::process::Command::new("psql")
        .args([base.as_str(), "-v", "ON_ERROR_STOP=1", "-qc", sql])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `/healthz` and `/readyz` answer without credentials, in plain text, never cached; on
/// PostgreSQL, `/readyz` turns 503 while the database refuses connections and 200 again after,
/// while `/healthz` stays 200 (issue 13 item 12).
async fn health_and_readiness_probes(db: Db) {
    let inst = Instance::new(db, &["admin", "smtp"], "").await;
    let server = inst.start();
    let base = format!("http://{}", server.addr("admin"));
    for (path, body) in [("/healthz", "ok\n"), ("/readyz", "ready\n")] {
        let (status, cache, kind, text) = probe(&format!("{base}{path}"));
        assert_eq!((status, text.as_str()), (200, body), "{path}");
        assert_eq!(cache, "no-store", "{path}");
        assert!(kind.starts_with("text/plain"), "{path}: {kind}");
    }
    if db == Db::Postgres {
        let name = inst
            .db
            .url
            .rsplit('/')
            .next()
            .expect("database name")
            .to_owned();
        psql(&format!(
            "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false"
        ));
        psql(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let (status, _, _, text) = probe(&format!("{base}/readyz"));
            if status == 503 {
                assert_eq!(text, "store unreachable\n");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "readyz stayed {status}"
            );
        }
        assert_eq!(probe(&format!("{base}/healthz")).0, 200);
        psql(&format!(
            "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"
        ));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while probe(&format!("{base}/readyz")).0 != 200 {
            assert!(
                std::time::Instant::now() < deadline,
                "readyz never recovered"
            );
        }
    }
    assert!(server.stop().success());
}

/// Security headers (CSP, framing, sniffing, referrer, caching, no HSTS over plain HTTP), the
/// refusal of cross-site login POSTs on both login forms, and the case-insensitive bearer scheme.
async fn security_headers_and_login_csrf(db: Db) {
    let inst = Instance::new(db, &["admin"], "").await;
    inst.ok(&["domain", "add", "example.test"], "");
    inst.ok(&["user", "add", "alice@example.test"], "mail-pw\n");
    let server = inst.start();
    let password = server.first_admin_password();
    let token = inst
        .ok(&["admin", "token", "admin", "--label", "tests"], "")
        .trim()
        .to_owned();
    let base = format!("http://{}", server.addr("admin"));
    let agent = agent();

    let check_headers = |what: &str, h: &ureq::http::HeaderMap, no_store: bool| {
        let get = |n: &str| h.get(n).map(|v| v.to_str().unwrap().to_owned());
        let csp = get("content-security-policy").unwrap_or_default();
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ] {
            assert!(csp.contains(directive), "{what}: CSP {csp:?}");
        }
        assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
        assert_eq!(get("x-frame-options").as_deref(), Some("DENY"), "{what}");
        assert_eq!(
            get("x-content-type-options").as_deref(),
            Some("nosniff"),
            "{what}"
        );
        assert_eq!(
            get("referrer-policy").as_deref(),
            Some("same-origin"),
            "{what}"
        );
        assert_eq!(
            get("cache-control").as_deref() == Some("no-store"),
            no_store,
            "{what}: {:?}",
            get("cache-control")
        );
        assert!(
            get("strict-transport-security").is_none(),
            "{what}: no HSTS over plain HTTP"
        );
    };
    let (s, h, _) = send(&agent, "GET", &format!("{base}/login"), &[], None);
    assert_eq!(s, 200);
    check_headers("login page", &h, true);
    let (s, h, _) = send(&agent, "GET", &format!("{base}/assets/app.js"), &[], None);
    assert_eq!(s, 200);
    check_headers("script asset", &h, false);
    let (s, h, _) = send(&agent, "GET", &format!("{base}/no/such/page"), &[], None);
    assert_eq!(s, 404);
    check_headers("404", &h, true);

    // Cross-site login POSTs are refused on both forms, whatever the browser sends.
    for (form, action, fields) in [
        (
            "/login",
            "/login",
            [("username", "admin"), ("password", password.as_str())],
        ),
        (
            "/account",
            "/account/login",
            [("address", "alice@example.test"), ("password", "mail-pw")],
        ),
    ] {
        let (cookie, csrf) = login_form(&agent, &format!("{base}{form}"));
        let body = |token: &str| {
            let mut all = vec![("csrf", token)];
            all.extend_from_slice(&fields);
            all.iter()
                .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
                .collect::<Vec<_>>()
                .join("&")
        };
        let url = format!("{base}{action}");
        let form_type = ("Content-Type", "application/x-www-form-urlencoded");
        let own_origin = base.clone();
        let refused = [
            (
                "another site's Origin",
                vec![
                    form_type,
                    ("Cookie", &cookie),
                    ("Origin", "http://evil.test"),
                ],
                body(&csrf),
            ),
            (
                "an opaque Origin",
                vec![form_type, ("Cookie", &cookie), ("Origin", "null")],
                body(&csrf),
            ),
            (
                "another site's Referer",
                vec![
                    form_type,
                    ("Cookie", &cookie),
                    ("Referer", "http://evil.test/login.html"),
                ],
                body(&csrf),
            ),
            (
                "Sec-Fetch-Site: cross-site",
                vec![
                    form_type,
                    ("Cookie", &cookie),
                    ("Sec-Fetch-Site", "cross-site"),
                ],
                body(&csrf),
            ),
            (
                "no SameSite=Strict cookie (what a cross-site form post carries)",
                vec![form_type, ("Origin", &own_origin)],
                body(&csrf),
            ),
            (
                "a token that is not the cookie's",
                vec![form_type, ("Cookie", &cookie), ("Origin", &own_origin)],
                body(&"0".repeat(64)),
            ),
        ];
        for (what, headers, body) in refused {
            let (s, h, text) = send(&agent, "POST", &url, &headers, Some(body));
            assert_eq!(s, 403, "{action} with {what}: {text}");
            assert!(h.get("set-cookie").is_none(), "{action} with {what}");
        }
        // The same form from this site logs in.
        let (s, h, text) = send(
            &agent,
            "POST",
            &url,
            &[
                form_type,
                ("Cookie", &cookie),
                ("Origin", &own_origin),
                ("Sec-Fetch-Site", "same-origin"),
                ("Referer", &format!("{base}{form}")),
            ],
            Some(body(&csrf)),
        );
        assert_eq!(s, 303, "{action}: {text}");
        let session = h
            .get("set-cookie")
            .expect("session cookie")
            .to_str()
            .unwrap();
        let session = session.split(';').next().unwrap().to_owned();
        let (s, h, _) = send(
            &agent,
            "GET",
            &format!("{base}{}", if form == "/login" { "/users" } else { form }),
            &[("Cookie", &session)],
            None,
        );
        assert_eq!(s, 200, "{form} after login");
        check_headers("authenticated page", &h, true);
    }

    // The bearer scheme is case-insensitive (RFC 9110 §11.1); API answers are never cached.
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let auth = format!("{scheme} {token}");
        let (s, h, body) = send(
            &agent,
            "GET",
            &format!("{base}/api/v1/domains"),
            &[("Authorization", &auth)],
            None,
        );
        assert_eq!(s, 200, "{scheme}: {body}");
        check_headers("API", &h, true);
    }
    let (s, _, _) = send(
        &agent,
        "GET",
        &format!("{base}/api/v1/domains"),
        &[("Authorization", &format!("Basic {token}"))],
        None,
    );
    assert_eq!(s, 401);
    assert!(server.stop().success());
}

/// Local parts with `%`, `#`, `/` and `?` (legal atext, RFC 5322 §3.2.3) are one path segment each
/// when percent-encoded, decoded exactly once: a change reaches exactly the addressed user.
async fn odd_local_parts_through_api(db: Db) {
    let inst = Instance::new(db, &["admin"], "").await;
    inst.ok(&["domain", "add", "example.test"], "");
    let server = inst.start();
    let api = Api::for_server(&inst, &server);
    let odd = ["a%62c", "abc", "h#x", "s/t", "q?x"];
    for local in odd {
        let address = format!("{local}@example.test");
        let (s, b) = api.call(
            "POST",
            "/api/v1/users",
            Some(json!({"address": address, "password": "pw"})),
            None,
        );
        assert_eq!(
            (s, b["address"].as_str()),
            (201, Some(address.as_str())),
            "{b}"
        );
    }
    let state = |api: &Api| -> Vec<(String, bool)> {
        let (s, list) = api.get("/api/v1/users");
        assert_eq!(s, 200);
        list.as_array()
            .unwrap()
            .iter()
            .map(|u| {
                (
                    u["address"].as_str().unwrap().to_owned(),
                    u["disabled"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    let path = |local: &str| format!("/api/v1/users/{}@example.test", urlencode(local));
    // Disable the odd ones through their encoded paths: exactly they change.
    for local in ["a%62c", "h#x", "s/t", "q?x"] {
        let (s, b) = api.call("PATCH", &path(local), Some(json!({"disabled": true})), None);
        assert_eq!(
            (s, b["address"].as_str(), &b["disabled"]),
            (
                200,
                Some(format!("{local}@example.test").as_str()),
                &json!(true)
            ),
            "{local}: {b}"
        );
    }
    let mut expected: Vec<(String, bool)> = odd
        .iter()
        .map(|l| (format!("{l}@example.test"), *l != "abc"))
        .collect();
    expected.sort();
    let mut seen = state(&api);
    seen.sort();
    assert_eq!(seen, expected, "only the addressed users are disabled");
    // Delete them: abc@ stays.
    for local in ["a%62c", "h#x", "s/t", "q?x"] {
        assert_eq!(
            api.call("DELETE", &path(local), None, None).0,
            204,
            "{local}"
        );
        assert_eq!(
            api.call("DELETE", &path(local), None, None).0,
            404,
            "{local}"
        );
    }
    assert_eq!(state(&api), [("abc@example.test".to_owned(), false)]);
    assert!(server.stop().success());
}

#[tokio::test]
async fn admin_over_https_sets_secure_cookies() {
    let inst = Instance::new(
        Db::Sqlite,
        &["admin"],
        "[admin]\nhttps_with_self_signed = true\n",
    )
    .await;
    let server = inst.start();
    let password = server.first_admin_password();
    let url = format!("https://{}/login", server.addr("admin"));
    let jar = inst.dir.path().join("cookies.txt");
    // The login form, as a browser opens it: sets the pre-login cookie, over HTTPS with HSTS.
    let out = std::process::Command::new("curl")
        .args(["-sk", "-i", "-c"])
        .arg(&jar)
        .arg(&url)
        .output()
        .expect("curl");
    let form = String::from_utf8_lossy(&out.stdout);
    assert!(form.starts_with("HTTP/1.1 200"), "{form}");
    let header = |response: &str, name: &str| {
        response
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .find(|l| {
                l.to_ascii_lowercase()
                    .starts_with(&format!("{}:", name.to_ascii_lowercase()))
            })
            .map(|l| l[name.len() + 1..].trim().to_owned())
    };
    assert_eq!(
        header(&form, "strict-transport-security").as_deref(),
        Some("max-age=31536000"),
        "{form}"
    );
    let login_cookie = header(&form, "set-cookie").expect("pre-login cookie");
    assert!(
        login_cookie.starts_with("postern_login=")
            && login_cookie.contains("Secure")
            && login_cookie.contains("SameSite=Strict"),
        "{login_cookie}"
    );
    let token = csrf_of(&form);
    let out = std::process::Command::new("curl")
        .args(["-sk", "-i", "-b"])
        .arg(&jar)
        .args(["--data-urlencode", "username=admin", "--data-urlencode"])
        .arg(format!("password={password}"))
        .args(["--data-urlencode"])
        .arg(format!("csrf={token}"))
        .args(["-H"])
        .arg(format!("Origin: https://{}", server.addr("admin")))
        .arg(&url)
        .output()
        .expect("curl");
    let response = String::from_utf8_lossy(&out.stdout);
    assert!(response.starts_with("HTTP/1.1 303"), "{response}");
    let cookie = header(&response, "set-cookie").expect("cookie");
    assert!(
        cookie.contains("Secure")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        header(&response, "strict-transport-security").is_some(),
        "{response}"
    );
    let plain = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(url.replace("https:", "http:"))
        .output()
        .unwrap();
    assert_ne!(
        String::from_utf8_lossy(&plain.stdout),
        "200",
        "no plain HTTP on an HTTPS listener"
    );
    assert!(server.stop().success());
}
