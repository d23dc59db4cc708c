//! End-to-end vacation reply and forwarding settings (mailu's `reply_*` / `forward_*` fields) on
//! SQLite and PostgreSQL: through the JSON API, the CLI (`postern user vacation` / `forward`),
//! the user's own `/account` forms and the admin's `/users/{address}/rules` page; each time the
//! stored values, the refusals (bad dates, forwarding loops, CSRF) and the generated Sieve
//! script, which must compile.

mod common;

use common::http::{admin_session, agent, csrf_of, get_page, login_post, post_form, Api};
use common::{Db, Instance, Server};
use postern_store::Store;
use serde_json::json;

both_backends!(
    rules_through_api_and_cli,
    rules_through_account_and_admin_pages
);

async fn instance(db: Db) -> (Instance, Server) {
    let inst = Instance::new(db, &["admin"], "").await;
    inst.ok(&["domain", "add", "example.test"], "");
    inst.ok(&["user", "add", "alice@example.test"], "alice-pw-123\n");
    inst.ok(&["user", "add", "bob@example.test"], "bob-pw-123\n");
    inst.ok(
        &["alias", "add", "me@example.test", "alice@example.test"],
        "",
    );
    let server = inst.start();
    (inst, server)
}

/// The generated script of `address`, checked to compile.
async fn generated(inst: &Instance, address: &str) -> Option<String> {
    let store = Store::open(&inst.db.url).await.unwrap();
    let user = store.user(address).await.unwrap().unwrap();
    let script = postern_sieve::account_script_for(&store, user.id)
        .await
        .unwrap();
    store.close().await;
    if let Some(s) = &script {
        postern_sieve::compile(s).unwrap_or_else(|e| panic!("{e}:\n{s}"));
    }
    script
}

async fn rules_through_api_and_cli(db: Db) {
    let (inst, server) = instance(db).await;
    let api = Api::for_server(&inst, &server);
    let alice = "/api/v1/users/alice@example.test";
    let (s, b) = api.get(alice);
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        (
            &b["reply_enabled"],
            &b["forward_enabled"],
            &b["forward_keep"],
            &b["sieve"]
        ),
        (&json!(false), &json!(false), &json!(true), &json!(null)),
        "{b}"
    );
    let body = "I am away.\n.\nQuotes \" and back\\slash, Grüße.";
    let (s, b) = api.call(
        "PATCH",
        alice,
        Some(json!({
            "reply_enabled": true,
            "reply_subject": "Out of office",
            "reply_body": body,
            "reply_startdate": "2026-12-20",
            "reply_enddate": "2027-01-06",
            "forward_enabled": true,
            "forward_destination": "Carol@Example.ORG",
            "forward_keep": true,
        })),
        None,
    );
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["forward_destination"], "carol@example.org");
    assert_eq!(b["reply_body"], body.replace('\n', "\r\n"));
    assert_eq!(b["reply_startdate"], "2026-12-20");
    let sieve = b["sieve"].as_str().expect("generated script");
    assert!(
        sieve.contains("vacation :days 7")
            && sieve.contains("redirect :copy \"carol@example.org\""),
        "{sieve}"
    );
    assert_eq!(
        generated(&inst, "alice@example.test").await.as_deref(),
        Some(sieve)
    );
    // Refusals name their field and change nothing.
    for (patch, field) in [
        (json!({"reply_startdate": "2026-02-30"}), "reply_startdate"),
        (json!({"reply_enddate": "2026-12-01"}), "reply_enddate"),
        (
            json!({"forward_destination": "ME@example.test"}),
            "forward_destination",
        ),
        (
            json!({"forward_destination": "alice+x@example.test"}),
            "forward_destination",
        ),
        (
            json!({"forward_destination": "not an address"}),
            "forward_destination",
        ),
        (
            json!({"reply_subject": "a\r\nBcc: evil@example.org"}),
            "reply_subject",
        ),
        (json!({"reply_body": "cost: ${amount}"}), "reply_body"),
        (json!({"reply_body": "x".repeat(20_000)}), "reply_body"),
    ] {
        let (s, b) = api.call("PATCH", alice, Some(patch.clone()), None);
        assert_eq!((s, b["field"].as_str()), (400, Some(field)), "{patch}: {b}");
    }
    let (s, b) = api.call("PATCH", alice, Some(json!({"reply_enabled": "yes"})), None);
    assert_eq!(
        (s, b["field"].as_str()),
        (422, Some("reply_enabled")),
        "{b}"
    );
    let (_, after) = api.get(alice);
    assert_eq!(
        after["sieve"].as_str(),
        Some(sieve),
        "refusals changed nothing"
    );
    // An empty date removes the limit.
    let (s, b) = api.call("PATCH", alice, Some(json!({"reply_startdate": ""})), None);
    assert_eq!((s, &b["reply_startdate"]), (200, &json!(null)), "{b}");
    assert_eq!(api.get("/api/v1/users/nobody@example.test").0, 404);

    // The CLI shows and sets the same.
    let out = inst.ok(&["user", "forward", "bob@example.test"], "");
    assert!(out.contains("forwarding of bob@example.test: off"), "{out}");
    let out = inst.ok(
        &[
            "user",
            "forward",
            "bob@example.test",
            "--to",
            "dave@example.org",
            "--no-keep",
        ],
        "",
    );
    assert!(out.contains("redirect \"dave@example.org\";"), "{out}");
    let out = inst.ok(
        &[
            "user",
            "vacation",
            "bob@example.test",
            "--on",
            "--subject",
            "Away",
            "--body-file",
            "-",
            "--end",
            "2027-01-06",
        ],
        "Back in January.\n",
    );
    assert!(
        out.contains("vacation reply of bob@example.test: on from now to 2027-01-06")
            && out.contains("Back in January."),
        "{out}"
    );
    let script = generated(&inst, "bob@example.test")
        .await
        .expect("bob's script");
    assert!(
        script.contains("currentdate :value \"le\" \"date\" \"2027-01-06\"")
            && script.contains("redirect \"dave@example.org\";"),
        "{script}"
    );
    let refused = inst.run(
        &[
            "user",
            "forward",
            "bob@example.test",
            "--to",
            "bob+x@example.test",
        ],
        "",
    );
    assert!(
        !refused.status.success(),
        "forwarding to oneself is refused"
    );
    let refused = inst.run(
        &[
            "user",
            "vacation",
            "bob@example.test",
            "--start",
            "tomorrow",
        ],
        "",
    );
    assert!(!refused.status.success(), "a bad date is refused");
    inst.ok(&["user", "vacation", "bob@example.test", "--off"], "");
    let out = inst.ok(&["user", "forward", "bob@example.test", "--off"], "");
    assert!(out.contains("no generated Sieve script"), "{out}");
    assert_eq!(generated(&inst, "bob@example.test").await, None);
    assert!(server.stop().success());
}

async fn rules_through_account_and_admin_pages(db: Db) {
    let (inst, server) = instance(db).await;
    let base = format!("http://{}", server.addr("admin"));
    let web = agent();
    let (s, _, cookie) = login_post(
        &web,
        &base,
        "/account",
        &[
            ("address", "alice@example.test"),
            ("password", "alice-pw-123"),
        ],
    );
    assert_eq!(s, 303, "user login");
    let cookie = cookie
        .expect("session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let (s, page, _) = get_page(&web, &format!("{base}/account"), Some(&cookie));
    assert_eq!(s, 200);
    assert!(
        page.contains("id=\"vacation\"") && page.contains("id=\"forwarding\""),
        "{page}"
    );
    assert!(
        page.contains("vacation reply and forwarding are off"),
        "{page}"
    );
    let csrf = csrf_of(&page);
    let vacation = |csrf: &str, start: &str| {
        post_form(
            &web,
            &format!("{base}/account/vacation"),
            Some(&cookie),
            &[
                ("csrf", csrf),
                ("reply_enabled", "on"),
                ("reply_subject", "Weg <b>\"bis\"</b>"),
                ("reply_body", "Zurück am Montag.\r\n.\r\nTschüss"),
                ("reply_startdate", start),
                ("reply_enddate", ""),
            ],
        )
    };
    assert_eq!(vacation("wrong", "2026-12-20").0, 403, "CSRF is checked");
    let (s, page, _) = vacation(&csrf, "2026-13-01");
    assert_eq!(s, 400, "a bad date is refused");
    assert!(page.contains("data-field=\"reply_startdate\""), "{page}");
    assert!(
        page.contains("Zurück am Montag."),
        "the typed text is kept: {page}"
    );
    let (s, _, _) = vacation(&csrf, "2026-12-20");
    assert_eq!(s, 303, "saved");
    let (_, page, _) = get_page(&web, &format!("{base}/account"), Some(&cookie));
    assert!(
        page.contains("id=\"generated-sieve\"")
            && page.contains(
                "currentdate :value &quot;ge&quot; &quot;date&quot; &quot;2026-12-20&quot;"
            ),
        "the generated script is shown (escaped): {page}"
    );
    assert!(!page.contains("<b>"), "the subject is escaped in the page");
    let forward = |to: &str, keep: bool| {
        let mut fields = vec![
            ("csrf", csrf.as_str()),
            ("forward_enabled", "on"),
            ("forward_destination", to),
        ];
        if keep {
            fields.push(("forward_keep", "on"));
        }
        post_form(
            &web,
            &format!("{base}/account/forwarding"),
            Some(&cookie),
            &fields,
        )
    };
    let (s, page, _) = forward("me@example.test", true);
    assert_eq!(s, 400, "an alias of alice loops");
    assert!(
        page.contains("data-field=\"forward_destination\""),
        "{page}"
    );
    assert_eq!(forward("bob@example.test", false).0, 303);
    let script = generated(&inst, "alice@example.test")
        .await
        .expect("script");
    assert!(
        script.contains("Zurück am Montag.\r\n.\r\nTschüss")
            && script.contains("redirect \"bob@example.test\";")
            && script.contains(":subject \"Weg <b>${hex:22}bis${hex:22}</b>\""),
        "{script}"
    );

    // The administrator sees and changes the same settings.
    let password = server.first_admin_password();
    let admin = admin_session(&web, &base, &password);
    let rules = format!("{base}/users/alice@example.test/rules");
    let (s, page, _) = get_page(&web, &rules, Some(&admin));
    assert_eq!(s, 200);
    assert!(page.contains("value=\"bob@example.test\""), "{page}");
    let csrf = csrf_of(&page);
    let (s, _, _) = post_form(
        &web,
        &format!("{rules}/forwarding"),
        Some(&admin),
        &[("csrf", &csrf), ("forward_destination", "bob@example.test")],
    );
    assert_eq!(s, 303, "forwarding turned off by the admin");
    let (_, page, _) = get_page(&web, &rules, Some(&admin));
    assert!(
        page.contains("vacation :days 7") && !page.contains("redirect"),
        "{page}"
    );
    let script = generated(&inst, "alice@example.test")
        .await
        .expect("vacation left");
    assert!(!script.contains("redirect"), "{script}");
    assert_eq!(
        get_page(
            &web,
            &format!("{base}/users/nobody@example.test/rules"),
            Some(&admin)
        )
        .0,
        404
    );
    // A mail user's session opens no admin page.
    let (s, _, location) = get_page(&web, &rules, Some(&cookie));
    assert!(
        (300..400).contains(&s) && location.as_deref() == Some("/login"),
        "{s} {location:?}"
    );
    assert!(server.stop().success());
}
