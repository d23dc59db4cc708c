//! Submission sender checks end to end: the `From:` header addresses must be ones the logged-in
//! user may send as (own address, +tag, aliases reaching them, the per-user send-as list managed
//! with `postern user sendas`, the API and the admin page), else 550 5.7.1; DKIM signs only for
//! such a domain.

mod common;
mod smtp_support;

use std::collections::HashMap;
use std::net::Ipv4Addr;

use common::http::{admin_session, agent, csrf_of, get_page, post_form, Api};
use common::{Db, Instance, Server};
use serde_json::json;
use smtp_support::{python, Rr, Sink, TestDns, PASSWORD};

both_backends!(from_header_must_be_owned);

/// Sends `message` (`\n` becomes CRLF) from alice over implicit TLS with envelope sender `from`
/// to `ok@remote.test`: `OK`, or the error code and text.
fn submit(server: &Server, from: &str, message: &str) -> String {
    const SUBMIT: &str = r#"
import smtplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP_SSL('127.0.0.1', int(sys.argv[1]), context=ctx, timeout=20)
s.login('alice@example.test', sys.argv[2])
try:
    s.sendmail(sys.argv[3], ['ok@remote.test'], sys.argv[4].replace('\n', '\r\n').encode())
    print('OK')
except smtplib.SMTPResponseException as e:
    print(e.smtp_code, e.smtp_error.decode())
except smtplib.SMTPRecipientsRefused as e:
    print(e.recipients)
s.quit()
"#;
    let port = server.addr("submissions").port().to_string();
    let (ok, out) = python(SUBMIT, &[&port, PASSWORD, from, message]);
    assert!(ok, "{out}");
    out.trim().to_owned()
}

async fn from_header_must_be_owned(db: Db) {
    let dns = TestDns::start(HashMap::from([(
        "remote.test".to_owned(),
        vec![Rr::A(Ipv4Addr::LOCALHOST)],
    )]));
    let sink = Sink::start();
    let extra = format!(
        "[smtp]\nresolver = \"{}\"\noutbound_port = {}\nretry_initial_secs = 1\nqueue_scan_secs = 1\n",
        dns.addr,
        sink.addr.port()
    );
    let inst = Instance::new(db, &["submissions", "admin"], &extra).await;
    for domain in ["example.test", "b.test"] {
        inst.ok(&["domain", "add", domain], "");
    }
    for user in ["alice@example.test", "bob@example.test", "ceo@b.test"] {
        inst.ok(&["user", "add", user], &format!("{PASSWORD}\n"));
    }
    inst.ok(
        &["alias", "add", "info@example.test", "alice@example.test"],
        "",
    );
    inst.ok(&["alias", "add", "@example.test", "alice@example.test"], "");
    let server = inst.start();
    let alice = "alice@example.test";

    // Refused: another hosted domain (with or without a display name), a second address or a
    // second From: field, an address only the catch-all would reach, no address at all.
    for from in [
        "From: ceo@b.test",
        "From: The CEO <ceo@b.test>",
        "From: alice@example.test, ceo@b.test",
        "From: alice@example.test\nFrom: ceo@b.test",
        "From: bob@example.test",
        "From: random@example.test",
        "From: team: ceo@b.test;",
        "From: undisclosed",
    ] {
        let r = submit(&server, alice, &format!("{from}\nSubject: x\n\nbody\n"));
        assert!(r.starts_with("550 5.7.1 "), "{from}: {r}");
    }
    // Accepted: her own address, a +tag form, an alias that reaches her, no From: at all.
    for from in [
        "From: Alice <alice@example.test>",
        "From: alice+news@example.test",
        "From: INFO@example.test",
        "X-No-From: here",
    ] {
        let r = submit(&server, alice, &format!("{from}\nSubject: ok\n\nbody\n"));
        assert_eq!(r, "OK", "{from}");
    }
    // The envelope check stays (553).
    assert!(submit(&server, "ceo@b.test", "From: alice@example.test\n\nx\n").starts_with("553"));

    // Allowed through the CLI: accepted, and signed for b.test (the aligned domain).
    assert_eq!(
        inst.ok(&["user", "sendas", "add", alice, "ceo@b.test"], ""),
        "alice@example.test may send as ceo@b.test\n"
    );
    assert_eq!(
        inst.ok(&["user", "sendas", "list", alice], ""),
        "ceo@b.test\n"
    );
    let r = submit(
        &server,
        "ceo@b.test",
        "From: CEO <ceo@b.test>\nSubject: as ceo\n\nhi\n",
    );
    assert_eq!(r, "OK");
    let got = sink.wait_for(5);
    let as_ceo = got
        .iter()
        .find(|m| m.data.contains("Subject: as ceo"))
        .expect("delivered");
    assert_eq!(as_ceo.from, "ceo@b.test");
    assert!(as_ceo.data.contains("d=b.test;"), "{}", as_ceo.data);
    assert!(!as_ceo.data.contains("d=example.test;"), "{}", as_ceo.data);
    let own = got
        .iter()
        .find(|m| m.data.contains("From: Alice <alice@example.test>"))
        .expect("delivered");
    assert!(own.data.contains("d=example.test;"), "{}", own.data);
    inst.ok(&["user", "sendas", "remove", alice, "ceo@b.test"], "");
    assert_eq!(inst.ok(&["user", "sendas", "list", alice], ""), "");
    let r = submit(&server, alice, "From: ceo@b.test\n\nagain\n");
    assert!(r.starts_with("550 5.7.1 "), "{r}");
    assert!(!inst
        .run(
            &["user", "sendas", "add", "nobody@example.test", "x@b.test"],
            ""
        )
        .status
        .success());

    // The API.
    let token = inst
        .ok(&["admin", "token", "admin", "--label", "tests"], "")
        .trim()
        .to_owned();
    let api = Api {
        base: format!("http://{}", server.addr("admin")),
        token,
        agent: agent(),
    };
    let path = "/api/v1/users/alice@example.test/send-as";
    let (status, body) = api.call("POST", path, Some(json!({"address": "pr@b.test"})), None);
    assert_eq!(status, 201, "{body}");
    assert_eq!(api.get(path), (200, json!(["pr@b.test"])));
    let (status, _) = api.call("POST", path, Some(json!({"address": "pr@b.test"})), None);
    assert_eq!(status, 409);
    let r = submit(&server, alice, "From: pr@b.test\n\nvia api\n");
    assert_eq!(r, "OK");
    let (status, _) = api.call("DELETE", &format!("{path}/pr@b.test"), None, None);
    assert_eq!(status, 204);
    assert_eq!(api.get(path), (200, json!([])));
    let (status, _) = api.call(
        "GET",
        "/api/v1/users/nobody@example.test/send-as",
        None,
        None,
    );
    assert_eq!(status, 404);

    // The page: linked from the users list, adds and removes addresses.
    let base = format!("http://{}", server.addr("admin"));
    let password = server.first_admin_password();
    let web = agent();
    let session = admin_session(&web, &base, &password);
    let session = session.as_str();
    let (s, users, _) = get_page(&web, &format!("{base}/users"), Some(session));
    assert_eq!(s, 200);
    assert!(
        users.contains("href=\"/users/alice@example.test/send-as\""),
        "{users}"
    );
    let url = format!("{base}/users/alice@example.test/send-as");
    let (s, page, _) = get_page(&web, &url, Some(session));
    assert_eq!(s, 200);
    let csrf = csrf_of(&page);
    let (s, _, _) = post_form(
        &web,
        &url,
        Some(session),
        &[("csrf", &csrf), ("address", "web@b.test")],
    );
    assert_eq!(s, 303);
    let (s, body, _) = post_form(
        &web,
        &url,
        Some(session),
        &[("csrf", &csrf), ("address", "not an address")],
    );
    assert_eq!(s, 400);
    assert!(body.contains("data-field=\"address\""), "{body}");
    assert_eq!(
        inst.ok(&["user", "sendas", "list", alice], ""),
        "web@b.test\n"
    );
    let (_, page, _) = get_page(&web, &url, Some(session));
    assert!(page.contains("<td>web@b.test</td>"), "{page}");
    // Removing is confirmed on a page of its own first (the UI works without JavaScript).
    let (s, confirm, _) = post_form(
        &web,
        &format!("{url}/delete"),
        Some(session),
        &[("csrf", &csrf), ("address", "web@b.test")],
    );
    assert_eq!(s, 200);
    assert!(confirm.contains("Please confirm"), "{confirm}");
    assert!(
        confirm.contains(r#"name="confirmed" value="yes""#),
        "{confirm}"
    );
    assert_eq!(
        inst.ok(&["user", "sendas", "list", alice], ""),
        "web@b.test\n"
    );
    let (s, _, _) = post_form(
        &web,
        &format!("{url}/delete"),
        Some(session),
        &[
            ("csrf", &csrf),
            ("address", "web@b.test"),
            ("confirmed", "yes"),
        ],
    );
    assert_eq!(s, 303);
    assert_eq!(inst.ok(&["user", "sendas", "list", alice], ""), "");
    assert!(server.stop().success());
}
