use super::*;

const ORIGINAL: &[u8] = b"From: a@x.test\r\nSubject: hi\r\n\r\nsecret body\r\n";

fn original(dsn: &DsnRequest) -> Original<'_> {
    Original::new("a@x.test", ORIGINAL, 0, dsn)
}

#[test]
fn bounce_is_a_delivery_status_report() {
    let dsn = DsnRequest::default();
    let notice = Notice {
        diagnostic: Some("550 5.1.1 no such\r\n user".into()),
        remote_mta: Some("mx.remote.test".into()),
        ..Notice::new("bob@remote.test", &dsn, Action::Failed, "5.1.1")
    };
    let raw = build("mail.example.test", &original(&dsn), &[notice]);
    let text = String::from_utf8(raw.clone()).unwrap();
    assert!(text.contains("multipart/report"), "{text}");
    assert!(
        text.contains("report-type=\"delivery-status\"")
            || text.contains("report-type=delivery-status"),
        "{text}"
    );
    assert!(
        text.contains(
            "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mail.example.test"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "Final-Recipient: rfc822; bob@remote.test\r\nAction: failed\r\nStatus: 5.1.1"
        ),
        "{text}"
    );
    assert!(
        text.contains("Diagnostic-Code: smtp; 550 5.1.1 no such user"),
        "{text}"
    );
    assert!(text.contains("Last-Attempt-Date: "), "{text}");
    assert!(text.contains("Subject: hi"), "original headers returned");
    assert!(!text.contains("secret body"), "original body not returned");
    assert!(!text.contains("Original-Envelope-Id"), "{text}");
    assert!(text.contains("Auto-Submitted: auto-replied"));
    let parsed = mail_parser::MessageParser::new().parse(&raw).unwrap();
    assert_eq!(
        parsed.subject(),
        Some("Undelivered Mail Returned to Sender")
    );
}

#[test]
fn ret_full_returns_the_whole_message_on_failure_only() {
    let dsn = DsnRequest {
        ret: Some("FULL".into()),
        ..DsnRequest::default()
    };
    let failed = Notice::new("bob@remote.test", &dsn, Action::Failed, "5.1.1");
    let text = String::from_utf8(build("m.test", &original(&dsn), &[failed])).unwrap();
    assert!(
        text.contains("Content-Type: message/rfc822\r\n\r\nFrom: a@x.test"),
        "{text}"
    );
    assert!(text.contains("secret body"), "{text}");
    let delayed = Notice {
        will_retry_until: Some(86_400),
        ..Notice::new("bob@remote.test", &dsn, Action::Delayed, "4.4.1")
    };
    let text = String::from_utf8(build("m.test", &original(&dsn), &[delayed])).unwrap();
    assert!(!text.contains("secret body"), "{text}");
    assert!(text.contains("Action: delayed\r\nStatus: 4.4.1"), "{text}");
    assert!(
        text.contains("Will-Retry-Until: Fri, 2 Jan 1970 00:00:00 +0000"),
        "{text}"
    );
}

#[test]
fn success_report_echoes_envid_and_orcpt_safely() {
    let dsn = DsnRequest {
        notify: Some("SUCCESS".into()),
        orcpt: Some("Bob Smith@x.test\r\nX-Injected: 1".into()),
        ret: Some("HDRS".into()),
        envid: Some("QQ 314159".into()),
    };
    let notice = Notice::new("bob@x.test", &dsn, Action::Delivered, "2.0.0");
    let raw = build("m.test", &original(&dsn), &[notice]);
    let text = String::from_utf8(raw.clone()).unwrap();
    assert!(
        text.contains("Original-Envelope-Id: QQ+20314159\r\n"),
        "{text}"
    );
    assert!(
        text.contains("Original-Recipient: rfc822; Bob+20Smith@x.test+0D+0AX-Injected:+201\r\nFinal-Recipient: rfc822; bob@x.test\r\nAction: delivered\r\nStatus: 2.0.0\r\n"),
        "{text}"
    );
    assert!(!text.contains("\r\nX-Injected"), "{text}");
    assert!(!text.contains("Diagnostic-Code"), "{text}");
    let parsed = mail_parser::MessageParser::new().parse(&raw).unwrap();
    assert_eq!(parsed.subject(), Some("Successful Mail Delivery Report"));
}
