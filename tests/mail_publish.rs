//! What Postern publishes for a hosted mail domain: `postern dns records` and the HTTP endpoints
//! mail clients use (Thunderbird autoconfig, Outlook autodiscover, MTA-STS policy, Apple profile).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::pebble::write_cert;
use common::{copy_zones, dig, example_dns, Db, Instance};

const MAIL: &str = r#"
[mail]
dmarc_policy = "reject"
mta_sts_mode = "enforce"
[mail.views.external]
addresses = ["192.0.2.10"]
[mail.views.internal]
addresses = ["10.0.0.10"]
"#;

fn get(url: &str, host: &str) -> (u16, String, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let req = ureq::http::Request::builder()
        .uri(url)
        .header("Host", host)
        .body(())
        .unwrap();
    let resp = agent.run(req).unwrap();
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (
        resp.status().as_u16(),
        ctype,
        resp.into_body().read_to_string().unwrap(),
    )
}

fn post(url: &str, host: &str, body: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let req = ureq::http::Request::builder()
        .method("POST")
        .uri(url)
        .header("Host", host)
        .header("Content-Type", "text/xml")
        .body(body.to_owned())
        .unwrap();
    let resp = agent.run(req).unwrap();
    (
        resp.status().as_u16(),
        resp.into_body().read_to_string().unwrap(),
    )
}

/// Text of the first element named `name` under `node`.
fn text<'a>(node: roxmltree::Node<'a, 'a>, name: &str) -> Option<&'a str> {
    node.descendants()
        .find(|n| n.has_tag_name(name))
        .and_then(|n| n.text())
}

#[tokio::test]
async fn dns_records_command_prints_every_mail_record() {
    let inst = Instance::new(Db::Sqlite, &["imaps", "submissions", "submission"], MAIL).await;
    inst.ok(&["domain", "add", "example.test"], "");
    let out = inst.ok(
        &["dns", "records", "example.test", "--view", "external"],
        "",
    );
    for line in [
        "example.test. 3600 IN MX 10 mail.example.test.",
        "example.test. 3600 IN TXT \"v=spf1 mx -all\"",
        "_dmarc.example.test. 3600 IN TXT \"v=DMARC1; p=reject\"",
        "_submissions._tcp.example.test. 3600 IN SRV 0 1 465 mail.example.test.",
        "_submission._tcp.example.test. 3600 IN SRV 0 1 587 mail.example.test.",
        "_imaps._tcp.example.test. 3600 IN SRV 0 1 993 mail.example.test.",
        "_imap._tcp.example.test. 3600 IN SRV 0 0 0 .",
        "autoconfig.example.test. 3600 IN CNAME mail.example.test.",
        "mail.example.test. 3600 IN A 192.0.2.10",
    ] {
        assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
    }
    assert_eq!(
        out.lines().filter(|l| l.contains("v=spf1")).count(),
        1,
        "exactly one SPF record"
    );
    let dkim_rsa = out
        .lines()
        .find(|l| l.starts_with("pst1r._domainkey.example.test. 3600 IN TXT \"v=DKIM1; k=rsa; p="))
        .expect("RSA DKIM");
    assert!(
        dkim_rsa.contains("\" \""),
        "long DKIM key split into strings: {dkim_rsa}"
    );
    assert!(out.contains("pst1e._domainkey.example.test. 3600 IN TXT \"v=DKIM1; k=ed25519; p="));
    let internal = inst.ok(
        &["dns", "records", "example.test", "--view", "internal"],
        "",
    );
    assert!(
        internal.contains("mail.example.test. 3600 IN A 10.0.0.10")
            && !internal.contains("192.0.2.10")
    );
    let step1 = inst.ok(&["dns", "rotate-dkim", "example.test"], "");
    assert!(step1.contains("new keys published"), "{step1}");
    let published = inst.ok(
        &["dns", "records", "example.test", "--view", "external"],
        "",
    );
    assert!(
        published.contains("pst1r._domainkey") && published.contains("pst2r._domainkey"),
        "both pairs published"
    );
    let step2 = inst.ok(&["dns", "rotate-dkim", "example.test"], "");
    assert!(step2.contains("now signing with the new keys"), "{step2}");
    let missing = inst.run(&["dns", "records", "other.test"], "");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("other.test is not a hosted domain"));
}

#[tokio::test]
async fn client_configuration_endpoints() {
    let inst = Instance::new(
        Db::Sqlite,
        &["admin", "imaps", "submissions", "submission"],
        MAIL,
    )
    .await;
    inst.ok(&["domain", "add", "example.test"], "");
    let server = inst.start();
    let base = format!("http://{}", server.addr("admin"));

    // Thunderbird: both URLs, domain from the address or from the Host name.
    let (s, ctype, body) = get(
        &format!("{base}/mail/config-v1.1.xml?emailaddress=alice%40example.test"),
        "autoconfig.example.test",
    );
    assert_eq!(s, 200);
    assert!(ctype.starts_with("application/xml"), "{ctype}");
    let doc = roxmltree::Document::parse(&body).expect("well-formed XML");
    let root = doc.root_element();
    assert!(root.has_tag_name("clientConfig") && root.attribute("version") == Some("1.1"));
    let provider = root
        .children()
        .find(|n| n.has_tag_name("emailProvider"))
        .expect("emailProvider");
    assert_eq!(provider.attribute("id"), Some("example.test"));
    for field in ["domain", "displayName", "displayShortName"] {
        assert!(text(provider, field).is_some(), "{field} in {body}");
    }
    let servers: Vec<_> = provider
        .children()
        .filter(|n| n.has_tag_name("incomingServer") || n.has_tag_name("outgoingServer"))
        .collect();
    let summary: Vec<_> = servers
        .iter()
        .map(|n| {
            (
                n.attribute("type").unwrap(),
                text(*n, "port").unwrap(),
                text(*n, "socketType").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("imap", "993", "SSL"),
            ("smtp", "465", "SSL"),
            ("smtp", "587", "STARTTLS")
        ]
    );
    for n in &servers {
        assert_eq!(text(*n, "hostname"), Some("mail.example.test"));
        assert_eq!(text(*n, "username"), Some("%EMAILADDRESS%"));
        assert_eq!(text(*n, "authentication"), Some("password-cleartext"));
    }
    let (s, _, _) = get(
        &format!("{base}/.well-known/autoconfig/mail/config-v1.1.xml"),
        "example.test",
    );
    assert_eq!(s, 200);
    let (s, _, _) = get(
        &format!("{base}/mail/config-v1.1.xml?emailaddress=x%40other.test"),
        "autoconfig.other.test",
    );
    assert_eq!(s, 404, "only hosted domains");

    // Outlook POX autodiscover.
    let request = r#"<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>alice@example.test</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>"#;
    let (s, body) = post(
        &format!("{base}/autodiscover/autodiscover.xml"),
        "autodiscover.example.test",
        request,
    );
    assert_eq!(s, 200);
    let doc = roxmltree::Document::parse(&body).expect("well-formed XML");
    assert_eq!(
        doc.root_element().tag_name().namespace(),
        Some("http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006")
    );
    let response = doc
        .descendants()
        .find(|n| n.has_tag_name("Response"))
        .unwrap();
    assert_eq!(
        response.tag_name().namespace(),
        Some("http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a")
    );
    assert_eq!(text(response, "AccountType"), Some("email"));
    assert_eq!(text(response, "Action"), Some("settings"));
    let protocols: Vec<_> = response
        .descendants()
        .filter(|n| n.has_tag_name("Protocol"))
        .map(|p| {
            (
                text(p, "Type").unwrap(),
                text(p, "Port").unwrap(),
                text(p, "LoginName").unwrap(),
                text(p, "SSL").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        protocols,
        [
            ("IMAP", "993", "alice@example.test", "on"),
            ("SMTP", "465", "alice@example.test", "on")
        ]
    );
    let (s, ctype, body) = get(
        &format!(
            "{base}/autodiscover/autodiscover.json/v1.0/alice@example.test?Protocol=AutodiscoverV1"
        ),
        "autodiscover.example.test",
    );
    assert_eq!(s, 200, "newer Outlook gets a pointer, not 400");
    assert!(
        ctype.starts_with("application/json")
            && body.contains("https://autodiscover.example.test/autodiscover/autodiscover.xml"),
        "{body}"
    );

    // MTA-STS policy on mta-sts.<domain>.
    let (s, ctype, body) = get(
        &format!("{base}/.well-known/mta-sts.txt"),
        "mta-sts.example.test",
    );
    assert_eq!((s, ctype.as_str()), (200, "text/plain"));
    assert_eq!(
        body,
        "version: STSv1\r\nmode: enforce\r\nmx: mail.example.test\r\nmax_age: 604800\r\n"
    );
    assert_eq!(
        get(
            &format!("{base}/.well-known/mta-sts.txt"),
            "mta-sts.other.test"
        )
        .0,
        404
    );

    // Apple profile.
    let (s, ctype, body) = get(
        &format!("{base}/apple/mail.mobileconfig?email=alice%40example.test"),
        "mail.example.test",
    );
    assert_eq!(
        (s, ctype.as_str()),
        (200, "application/x-apple-aspen-config")
    );
    let doc = roxmltree::Document::parse_with_options(
        &body,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .expect("plist XML");
    let strings: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("string"))
        .filter_map(|n| n.text())
        .collect();
    assert!(
        strings.contains(&"com.apple.mail.managed")
            && strings.contains(&"mail.example.test")
            && strings.contains(&"alice@example.test")
    );
    assert_eq!(
        get(
            &format!("{base}/apple/mail.mobileconfig"),
            "mail.example.test"
        )
        .0,
        400
    );
    assert!(server.stop().success());
}

both_backends!(dns_and_http_publish_one_snapshot);

/// `curl` over HTTPS to the admin listener as `name` (SNI and Host), trusting only `ca`: the
/// body, or `None` when the TLS handshake or the request fails.
fn https_get(admin: std::net::SocketAddr, name: &str, path: &str, ca: &Path) -> Option<String> {
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "10", "--cacert"])
        .arg(ca)
        .arg("--resolve")
        .arg(format!("{name}:{}:127.0.0.1", admin.port()))
        .arg(format!("https://{name}:{}{path}", admin.port()))
        .output()
        .expect("curl is installed");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The `id=` of `_mta-sts.example.test`, if published.
fn mta_sts_id(dns: std::net::SocketAddr) -> Option<String> {
    let txt = dig(dns, "127.0.0.3", &["_mta-sts.example.test", "TXT"]);
    let txt = txt.first()?;
    Some(txt.split("id=").nth(1)?.trim_end_matches('"').to_owned())
}

/// The id DNS must announce for a policy text (RFC 8461 §3.1: changes with the policy).
fn id_of(policy: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(policy.as_bytes())[..10]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The IMAP port Thunderbird autoconfig tells.
fn autoconfig_imap_port(admin: std::net::SocketAddr, ca: &Path) -> String {
    let xml = https_get(
        admin,
        "autoconfig.example.test",
        "/mail/config-v1.1.xml?emailaddress=alice%40example.test",
        ca,
    )
    .expect("autoconfig over HTTPS");
    let doc = roxmltree::Document::parse(&xml).expect("autoconfig XML");
    let imap = doc
        .descendants()
        .find(|n| n.has_tag_name("incomingServer") && n.attribute("type") == Some("imap"))
        .expect("an IMAP server");
    text(imap, "port").expect("port").to_owned()
}

/// DNS and the admin listener publish from one snapshot: `_mta-sts` appears only once a
/// certificate valid for `mta-sts.example.test` is served over HTTPS, and after a SIGHUP that
/// changes the MTA-STS mode and the public IMAPS port, the `_mta-sts` id, the policy served over
/// HTTPS, the SRV record and autoconfig all show the new values together.
async fn dns_and_http_publish_one_snapshot(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = write_cert(
        &dir.path().join("one"),
        &["mail.example.test", "autoconfig.example.test"],
    );
    // The example zones without their own `_imaps._tcp` SRV (a zone file's RRset wins).
    let zones = dir.path().join("zones");
    copy_zones(&zones);
    for view in ["internal", "external"] {
        let file = zones.join(view).join("example.test.zone");
        let text = std::fs::read_to_string(&file).unwrap();
        let text: String = text
            .lines()
            .filter(|l| !l.starts_with("_imaps._tcp"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&file, text).unwrap();
    }
    let extra = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n{}\n[mail]\nmta_sts_mode = \"testing\"\n",
        cert.display(),
        key.display(),
        example_dns(&zones)
    );
    let inst = Instance::new(db, &["dns", "admin", "imaps", "submissions"], &extra).await;
    inst.ok(&["domain", "add", "example.test"], "");
    let server = inst.start();
    let (dns, admin) = (server.addr("dns"), server.addr("admin"));
    let srv = || dig(dns, "127.0.0.3", &["_imaps._tcp.example.test", "SRV"]);
    assert_eq!(srv(), ["0 1 993 mail.example.test."]);
    assert_eq!(
        mta_sts_id(dns),
        None,
        "no certificate for mta-sts.example.test: no _mta-sts"
    );
    assert!(
        https_get(
            admin,
            "mta-sts.example.test",
            "/.well-known/mta-sts.txt",
            &cert
        )
        .is_none(),
        "the served certificate is not valid for mta-sts.example.test"
    );
    assert_eq!(autoconfig_imap_port(admin, &cert), "993");

    // New certificate (now covering mta-sts.example.test), enforce mode, another IMAPS port.
    let (cert2, key2) = write_cert(
        &dir.path().join("two"),
        &[
            "mail.example.test",
            "mta-sts.example.test",
            "autoconfig.example.test",
        ],
    );
    std::fs::copy(&cert2, &cert).unwrap();
    std::fs::copy(&key2, &key).unwrap();
    let text = std::fs::read_to_string(&inst.config).unwrap().replace(
        "mta_sts_mode = \"testing\"",
        "mta_sts_mode = \"enforce\"\n[mail.ports]\nimaps = 10993",
    );
    std::fs::write(&inst.config, text).unwrap();
    server.signal(libc::SIGHUP);
    server.wait_for_log("configuration reloaded");
    let deadline = Instant::now() + Duration::from_secs(30);
    let id = loop {
        if let Some(id) = mta_sts_id(dns) {
            break id;
        }
        assert!(
            Instant::now() < deadline,
            "_mta-sts never published:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let policy = https_get(
        admin,
        "mta-sts.example.test",
        "/.well-known/mta-sts.txt",
        &cert,
    )
    .expect("the policy is served over HTTPS with a certificate valid for mta-sts.example.test");
    assert_eq!(
        policy,
        "version: STSv1\r\nmode: enforce\r\nmx: mail.example.test\r\nmax_age: 604800\r\n"
    );
    assert_eq!(
        id,
        id_of(&policy),
        "the DNS id is the id of the policy served"
    );
    assert_eq!(srv(), ["0 1 10993 mail.example.test."]);
    assert_eq!(autoconfig_imap_port(admin, &cert), "10993");
    assert!(server.stop().success());
}
