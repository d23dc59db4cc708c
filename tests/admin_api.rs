//! End-to-end tests of the admin JSON API and the admin pages' security, against the real binary
//! over HTTP, on SQLite and PostgreSQL.

mod common;

use common::http::{agent, csrf_of, get_page, login_post, post_form, send, Api};
use common::{Db, Instance};
use serde_json::json;

both_backends!(
    api_endpoints_and_auth,
    pages_are_protected_and_escaped,
    api_refusals_are_json
);

async fn api_endpoints_and_auth(db: Db) {
    // Nothing answers DNS on the discard port: the queue worker defers queued mail instead of
    // bouncing it, so the queue entry stays for the API to list.
    let inst = Instance::new(db, &["admin"], "[smtp]\nresolver = \"127.0.0.1:9\"\n").await;
    let server = inst.start();
    let token = inst
        .ok(&["admin", "token", "admin", "--label", "tests"], "")
        .trim()
        .to_owned();
    assert_eq!(token.len(), 64);
    let api = Api {
        base: format!("http://{}", server.addr("admin")),
        token,
        agent: agent(),
    };

    // Every endpoint refuses a missing or wrong token.
    let spec = api.get("/api/v1/openapi.yaml").1;
    let spec = spec.as_str().expect("openapi text");
    let paths: Vec<&str> = spec
        .lines()
        .filter(|l| l.starts_with("  /"))
        .map(|l| l.trim().trim_end_matches(':'))
        .collect();
    assert!(paths.len() >= 12, "{paths:?}");
    for path in &paths {
        let concrete = path
            .replace("{name}", "x.test")
            .replace("{address}", "a@x.test")
            .replace("{id}", "1");
        for token in ["", "wrong-token"] {
            let (status, body) = api.call("GET", &concrete, None, Some(token));
            assert!(
                status == 401 || status == 405,
                "{concrete} with {token:?}: {status} {body}"
            );
        }
        let (status, _) = api.get(&concrete);
        assert_ne!(status, 401, "{concrete} accepts the token");
    }

    // Domains.
    assert_eq!(
        api.call(
            "POST",
            "/api/v1/domains",
            Some(json!({"name": "Example.TEST"})),
            None
        ),
        (201, json!({"name": "example.test"}))
    );
    let (s, b) = api.call(
        "POST",
        "/api/v1/domains",
        Some(json!({"name": "example.test"})),
        None,
    );
    assert_eq!((s, b["field"].as_str()), (409, Some("name")));
    let (s, b) = api.call(
        "POST",
        "/api/v1/domains",
        Some(json!({"name": "bad domain"})),
        None,
    );
    assert_eq!((s, b["field"].as_str()), (400, Some("domain")), "{b}");
    assert!(
        b["error"]
            .as_str()
            .unwrap()
            .contains("only letters, digits"),
        "{b}"
    );
    api.call(
        "POST",
        "/api/v1/domains",
        Some(json!({"name": "other.test"})),
        None,
    );
    assert_eq!(
        api.get("/api/v1/domains"),
        (
            200,
            json!([{"name": "example.test"}, {"name": "other.test"}])
        )
    );
    assert_eq!(
        api.call("DELETE", "/api/v1/domains/other.test", None, None)
            .0,
        204
    );
    assert_eq!(
        api.call("DELETE", "/api/v1/domains/other.test", None, None)
            .0,
        404
    );

    // Users.
    let (s, b) = api.call(
        "POST",
        "/api/v1/users",
        Some(json!({"address": "alice@example.test", "password": "pw-1", "quota": "1G"})),
        None,
    );
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        b,
        json!({"address": "alice@example.test", "quota_bytes": 1 << 30, "used_bytes": 0, "disabled": false})
    );
    let (s, b) = api.call(
        "POST",
        "/api/v1/users",
        Some(json!({"address": "bob@example.test", "password": "x", "quota": "1X"})),
        None,
    );
    assert_eq!((s, b["field"].as_str()), (400, Some("quota")), "{b}");
    let (s, _) = api.call(
        "POST",
        "/api/v1/users",
        Some(json!({"address": "bob@nowhere.test", "password": "x"})),
        None,
    );
    assert_eq!(s, 404);
    let (s, b) = api.call(
        "PATCH",
        "/api/v1/users/alice@example.test",
        Some(json!({"quota": 5000, "disabled": true, "password": "pw-2"})),
        None,
    );
    assert_eq!(
        (s, &b["quota_bytes"], &b["disabled"]),
        (200, &json!(5000), &json!(true)),
        "{b}"
    );
    let (s, _) = api.call(
        "PATCH",
        "/api/v1/users/alice@example.test",
        Some(json!({"colour": "red"})),
        None,
    );
    assert_eq!(s, 422, "unknown fields are refused");
    assert_eq!(
        api.call(
            "PATCH",
            "/api/v1/users/nobody@example.test",
            Some(json!({"disabled": false})),
            None
        )
        .0,
        404
    );
    api.call(
        "PATCH",
        "/api/v1/users/alice@example.test",
        Some(json!({"disabled": false})),
        None,
    );
    let store = postern_store::Store::open(&inst.db.url).await.unwrap();
    assert!(
        store
            .authenticate("alice@example.test", "pw-2")
            .await
            .unwrap()
            .is_some(),
        "password reset took effect"
    );
    assert_eq!(
        api.get("/api/v1/users?domain=example.test")
            .1
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Aliases.
    let (s, b) = api.call(
        "POST",
        "/api/v1/aliases",
        Some(json!({"source": "@example.test", "destination": "alice@example.test"})),
        None,
    );
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        api.call(
            "POST",
            "/api/v1/aliases",
            Some(json!({"source": "@example.test", "destination": "alice@example.test"})),
            None
        )
        .0,
        409
    );
    assert_eq!(
        api.call(
            "POST",
            "/api/v1/aliases",
            Some(json!({"source": "x@example.test"})),
            None
        )
        .0,
        400
    );
    assert_eq!(
        api.get("/api/v1/aliases").1,
        json!([{"source": "@example.test", "destination": "alice@example.test"}])
    );
    assert_eq!(
        api.call("DELETE", "/api/v1/aliases?source=@example.test", None, None)
            .0,
        204
    );
    assert_eq!(
        api.call("DELETE", "/api/v1/aliases?source=@example.test", None, None)
            .0,
        404
    );

    // Queue.
    let remote = vec!["r@remote.test".to_owned()];
    let id = store
        .accept(postern_store::Incoming {
            raw: postern_store::BlobSource::Bytes(b"x"),
            internal_date: 0,
            local: &[],
            sender: "alice@example.test",
            remote: &remote,
            remote_dsn: &[],
            expires_at: i64::MAX,
        })
        .await
        .unwrap()
        .queued[0];
    let (s, q) = api.get("/api/v1/queue");
    assert_eq!(
        (s, q[0]["id"].as_i64(), q[0]["recipient"].as_str()),
        (200, Some(id), Some("r@remote.test"))
    );
    assert_eq!(
        api.call("POST", &format!("/api/v1/queue/{id}/retry"), None, None)
            .0,
        204
    );
    assert_eq!(
        api.call("DELETE", &format!("/api/v1/queue/{id}"), None, None)
            .0,
        204
    );
    assert_eq!(
        api.call("DELETE", &format!("/api/v1/queue/{id}"), None, None)
            .0,
        404
    );
    assert_eq!(
        api.call("POST", "/api/v1/queue/999/retry", None, None).0,
        404
    );

    // Status and metrics.
    let (s, st) = api.get("/api/v1/status");
    assert_eq!(s, 200);
    assert!(
        st["listeners"]["admin"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{st}"
    );
    let (s, m) = api.get("/metrics");
    assert_eq!(s, 200);
    assert!(m.is_string());
    store.close().await;
    assert!(server.stop().success());
}

async fn pages_are_protected_and_escaped(db: Db) {
    let inst = Instance::new(db, &["admin"], "").await;
    inst.ok(&["domain", "add", "example.test"], "");
    inst.ok(&["user", "add", "alice@example.test"], "mail-pw\n");
    let server = inst.start();
    let password = server.first_admin_password();
    let base = format!("http://{}", server.addr("admin"));
    let agent = agent();

    // Without a session every page redirects to the login form.
    for path in ["/", "/domains", "/users", "/aliases", "/dns", "/queue"] {
        let (s, _, loc) = get_page(&agent, &format!("{base}{path}"), None);
        assert_eq!((s, loc.as_deref()), (303, Some("/login")), "{path}");
    }
    // Failed login echoes the name, escaped.
    let (s, body, _) = login_post(
        &agent,
        &base,
        "/login",
        &[("username", "<script>alert(1)</script>"), ("password", "x")],
    );
    assert_eq!(s, 400);
    assert!(
        body.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !body.contains("<script>alert"),
        "{body}"
    );
    assert!(body.contains("Wrong name or password"));

    let (s, _, cookie) = login_post(
        &agent,
        &base,
        "/login",
        &[("username", "admin"), ("password", &password)],
    );
    assert_eq!(s, 303);
    let cookie = cookie.expect("session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "no Secure flag over plain HTTP: {cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_owned();

    let (s, dashboard, _) = get_page(&agent, &format!("{base}/"), Some(&session));
    assert_eq!(s, 200);
    assert!(
        dashboard.contains("created the first administrator"),
        "recent events are shown"
    );
    assert!(
        dashboard.contains("Admin web logins</th><td>1 succeeded, 1 failed, 0 throttled"),
        "counters are shown, named for people: {dashboard}"
    );
    let counters = dashboard
        .split_once("Counters since start")
        .and_then(|(_, rest)| rest.split_once("Recent warnings"))
        .map(|(counters, _)| counters)
        .expect("counters section");
    assert!(
        !counters.contains("postern_"),
        "no Prometheus names among the counters: {counters}"
    );
    assert!(
        !dashboard.contains(&password),
        "the first password is never shown again"
    );
    let (s, page, _) = get_page(&agent, &format!("{base}/domains"), Some(&session));
    assert_eq!(s, 200);
    let csrf = csrf_of(&page);
    // A form without the CSRF token, or with a wrong one, is refused.
    let (s, _, _) = post_form(
        &agent,
        &format!("{base}/domains"),
        Some(&session),
        &[("name", "evil.test")],
    );
    assert!(s == 403 || s == 422, "{s}");
    let (s, _, _) = post_form(
        &agent,
        &format!("{base}/domains"),
        Some(&session),
        &[("csrf", "0000"), ("name", "evil.test")],
    );
    assert_eq!(s, 403);
    // Invalid input shows the error next to the field.
    let (s, body, _) = post_form(
        &agent,
        &format!("{base}/domains"),
        Some(&session),
        &[("csrf", &csrf), ("name", "bad domain!")],
    );
    assert_eq!(s, 400);
    assert!(body.contains("data-field=\"name\""), "{body}");
    let (s, _, _) = post_form(
        &agent,
        &format!("{base}/domains"),
        Some(&session),
        &[("csrf", &csrf), ("name", "second.test")],
    );
    assert_eq!(s, 303);
    assert!(get_page(&agent, &format!("{base}/domains"), Some(&session))
        .1
        .contains("second.test"));

    // The domain page without Postern's DNS: the records to publish elsewhere, and why.
    let (s, domain, _) = get_page(
        &agent,
        &format!("{base}/domains/example.test"),
        Some(&session),
    );
    assert_eq!(s, 200);
    assert!(
        domain.contains("DNS service is off")
            && domain.contains("example.test. 3600 IN MX 10 mail.example.test.")
            && domain.contains("._domainkey.example.test. 3600 IN TXT"),
        "{domain}"
    );
    let (s, _, _) = get_page(&agent, &format!("{base}/domains/nope.test"), Some(&session));
    assert_eq!(s, 404);
    // Hostile search text is shown escaped (in the box and the "nothing matches" line); a page
    // number past the end or below 1 is a page, not an error.
    let (s, found, _) = get_page(
        &agent,
        &format!("{base}/users?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E"),
        Some(&session),
    );
    assert_eq!(s, 200);
    assert!(
        found.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !found.contains("<script>alert"),
        "{found}"
    );
    for page in ["-3", "0", "99"] {
        let (s, _, _) = get_page(&agent, &format!("{base}/users?page={page}"), Some(&session));
        assert_eq!(s, 200, "page {page}");
    }
    let (_, listed, _) = get_page(&agent, &format!("{base}/users?q=ALICE"), Some(&session));
    assert!(
        listed.contains("data-address=\"alice@example.test\""),
        "{listed}"
    );

    // A mail user's self-service session opens no admin page, and changes only their own password.
    let (s, _, user_cookie) = login_post(
        &agent,
        &base,
        "/account",
        &[("address", "alice@example.test"), ("password", "mail-pw")],
    );
    assert_eq!(s, 303);
    let user_session = user_cookie.unwrap().split(';').next().unwrap().to_owned();
    for path in ["/", "/domains", "/users"] {
        let (s, _, loc) = get_page(&agent, &format!("{base}{path}"), Some(&user_session));
        assert_eq!(
            (s, loc.as_deref()),
            (303, Some("/login")),
            "mail user reached {path}"
        );
    }
    let (_, account, _) = get_page(&agent, &format!("{base}/account"), Some(&user_session));
    assert!(account.contains("alice@example.test"));
    let ucsrf = csrf_of(&account);
    let (s, body, _) = post_form(
        &agent,
        &format!("{base}/account/password"),
        Some(&user_session),
        &[
            ("csrf", &ucsrf),
            ("current", "wrong"),
            ("new", "n"),
            ("repeat", "n"),
        ],
    );
    assert_eq!(s, 400);
    assert!(body.contains("data-field=\"current\""), "{body}");
    // Success redirects (post/redirect/get); the page it leads to says so.
    let (s, body, flash) = post_form(
        &agent,
        &format!("{base}/account/password"),
        Some(&user_session),
        &[
            ("csrf", &ucsrf),
            ("current", "mail-pw"),
            ("new", "new-mail-pw"),
            ("repeat", "new-mail-pw"),
        ],
    );
    assert_eq!(s, 303, "{body}");
    let flash = flash.expect("message cookie");
    let flash = flash.split(';').next().unwrap();
    let (s, account, _) = get_page(
        &agent,
        &format!("{base}/account"),
        Some(&format!("{user_session}; {flash}")),
    );
    assert_eq!(s, 200);
    assert!(
        account.contains("Your password has been changed."),
        "{account}"
    );

    let store = postern_store::Store::open(&inst.db.url).await.unwrap();
    assert!(store
        .authenticate("alice@example.test", "new-mail-pw")
        .await
        .unwrap()
        .is_some());
    store.close().await;

    // Logout ends the admin session.
    let (s, _, _) = post_form(
        &agent,
        &format!("{base}/logout"),
        Some(&session),
        &[("csrf", &csrf)],
    );
    assert_eq!(s, 303);
    assert_eq!(get_page(&agent, &format!("{base}/"), Some(&session)).0, 303);

    // Login is rate limited per client address (the one budget every service shares): 429.
    let mut last = (0, String::new());
    for _ in 0..11 {
        let (status, body, _) = login_post(
            &agent,
            &base,
            "/login",
            &[("username", "admin"), ("password", "guess")],
        );
        last = (status, body);
    }
    assert_eq!(last.0, 429, "{}", last.1);
    assert!(last.1.contains("Too many failed logins"), "{}", last.1);
    assert!(server.stop().success());
}

/// Requests the API cannot read are refused with the documented `{"error", "field"}` JSON body
/// (issue 13 bug 6): bad JSON 400, another content type 415, wrong shape 422 (a JSON array, a
/// missing, unknown or mistyped field), unparsable path and query parameters 400.
async fn api_refusals_are_json(db: Db) {
    let inst = Instance::new(db, &["admin"], "").await;
    inst.ok(&["domain", "add", "example.test"], "");
    let server = inst.start();
    let token = inst
        .ok(&["admin", "token", "admin", "--label", "tests"], "")
        .trim()
        .to_owned();
    let base = format!("http://{}", server.addr("admin"));
    let agent = agent();
    let auth = format!("Bearer {token}");
    let raw = |method: &str, path: &str, content_type: Option<&str>, body: Option<&str>| {
        let mut headers = vec![("Authorization", auth.as_str())];
        if let Some(t) = content_type {
            headers.push(("Content-Type", t));
        }
        let (status, h, text) = send(
            &agent,
            method,
            &format!("{base}{path}"),
            &headers,
            body.map(str::to_owned),
        );
        assert_eq!(
            h.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "{method} {path}: {status} {text}"
        );
        let v: serde_json::Value = serde_json::from_str(&text).expect("JSON error body");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
        (status, v["field"].clone())
    };
    let json_type = Some("application/json");
    /// Method, path, Content-Type, body, expected status and `field`.
    type Case<'a> = (
        &'a str,
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        u16,
        Option<&'a str>,
    );
    let cases: [Case; 11] = [
        (
            "POST",
            "/api/v1/domains",
            json_type,
            Some("{\"name\": "),
            400,
            None,
        ),
        ("POST", "/api/v1/domains", json_type, Some(""), 400, None),
        (
            "POST",
            "/api/v1/domains",
            Some("text/plain"),
            Some("{\"name\": \"a.test\"}"),
            415,
            None,
        ),
        (
            "POST",
            "/api/v1/domains",
            None,
            Some("{\"name\": \"a.test\"}"),
            415,
            None,
        ),
        (
            "POST",
            "/api/v1/domains",
            json_type,
            Some("[\"a.test\"]"),
            422,
            None,
        ),
        (
            "POST",
            "/api/v1/domains",
            json_type,
            Some("{\"name\": \"a.test\", \"extra\": 1}"),
            422,
            Some("extra"),
        ),
        (
            "POST",
            "/api/v1/users",
            json_type,
            Some("{\"address\": \"x@example.test\"}"),
            422,
            Some("password"),
        ),
        (
            "POST",
            "/api/v1/users",
            json_type,
            Some("[\"x@example.test\", \"pw\"]"),
            422,
            None,
        ),
        (
            "PATCH",
            "/api/v1/users/x@example.test",
            json_type,
            Some("{\"disabled\": \"yes\"}"),
            422,
            Some("disabled"),
        ),
        ("POST", "/api/v1/queue/abc/retry", None, None, 400, None),
        ("DELETE", "/api/v1/aliases", None, None, 400, None),
    ];
    for (method, path, content_type, body, status, field) in cases {
        let (s, f) = raw(method, path, content_type, body);
        assert_eq!(
            (s, f.as_str()),
            (status, field),
            "{method} {path} {content_type:?} {body:?}"
        );
    }
    // Nothing was created by the refused requests.
    let api = Api {
        base: base.clone(),
        token: token.clone(),
        agent: agent.clone(),
    };
    assert_eq!(
        api.get("/api/v1/domains").1,
        json!([{"name": "example.test"}])
    );
    assert_eq!(api.get("/api/v1/users").1, json!([]));
    assert!(server.stop().success());
}
