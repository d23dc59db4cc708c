//! DSN parameters of MAIL and RCPT (RFC 3461 §4): carried into the delivery per recipient, and
//! malformed ones refused with 501 naming the rule.

use super::*;

#[test]
fn dsn_parameters_reach_the_delivery_per_recipient() {
    let mut t = T::new(Listener::Mx, false);
    t.send(b"EHLO client.test\r\n");
    let r = t.send(
        b"MAIL FROM:<s@remote.test> RET=HDRS ENVID=QQ+20314159\r\n\
          RCPT TO:<alice@example.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;Alice+2BX@example.test\r\n\
          RCPT TO:<postmaster>\r\n\
          DATA\r\nSubject: hi\r\n\r\nbody\r\n.\r\n",
    );
    assert_eq!(codes(&r), ["250", "250", "250", "354", "250"], "{r}");
    let d = &t.delivered[0];
    assert_eq!(
        d.recipients[0].dsn,
        DsnRequest {
            notify: Some("SUCCESS,DELAY".into()),
            orcpt: Some("Alice+X@example.test".into()),
            ret: Some("HDRS".into()),
            envid: Some("QQ 314159".into()),
        }
    );
    assert_eq!(
        d.recipients[1].dsn,
        DsnRequest {
            ret: Some("HDRS".into()),
            envid: Some("QQ 314159".into()),
            ..DsnRequest::default()
        },
        "no NOTIFY or ORCPT given for the second recipient"
    );
}

#[test]
fn malformed_dsn_parameters_are_refused() {
    let mut t = T::new(Listener::Mx, false);
    t.send(b"EHLO client.test\r\n");
    let long = format!("MAIL FROM:<s@remote.test> ENVID={}\r\n", "x".repeat(101));
    for (line, rule) in [
        (long.as_str(), "ENVID"),
        ("MAIL FROM:<s@remote.test> ENVID=ab+4\r\n", "ENVID"),
        ("MAIL FROM:<s@remote.test> ENVID=ab+zz\r\n", "ENVID"),
        ("MAIL FROM:<s@remote.test> RET=ALL\r\n", "RET"),
    ] {
        let r = t.send(line.as_bytes());
        assert!(r.starts_with("501 5.5.4 Invalid "), "{line}: {r}");
        assert!(r.contains(rule) && r.contains("RFC 3461"), "{line}: {r}");
    }
    // A new session: each refusal counts towards the error limit.
    let mut t = T::new(Listener::Mx, false);
    t.send(b"EHLO client.test\r\nMAIL FROM:<s@remote.test>\r\n");
    for (line, rule) in [
        (
            "RCPT TO:<alice@example.test> NOTIFY=NEVER,SUCCESS\r\n",
            "NOTIFY",
        ),
        (
            "RCPT TO:<alice@example.test> NOTIFY=SOMETIMES\r\n",
            "NOTIFY",
        ),
        ("RCPT TO:<alice@example.test> ORCPT=x400;alice\r\n", "ORCPT"),
        (
            "RCPT TO:<alice@example.test> ORCPT=rfc822;al+1ice\r\n",
            "ORCPT",
        ),
    ] {
        let r = t.send(line.as_bytes());
        assert!(r.starts_with("501 5.5.4 Invalid "), "{line}: {r}");
        assert!(r.contains(rule) && r.contains("RFC 3461"), "{line}: {r}");
    }
    // The transaction is still usable after the refusals.
    let r = t.send(b"RCPT TO:<alice@example.test> NOTIFY=NEVER\r\n");
    assert_eq!(r, "250 2.1.5 Ok\r\n");
}

#[test]
fn dsn_parameters_are_checked_on_lines_arriving_in_parts() {
    let mut t = T::new(Listener::Mx, false);
    t.send(b"EHLO client.test\r\n");
    assert_eq!(t.send(b"MAIL FROM:<s@remote.test> ENV"), "");
    let r = t.send(b"ID=ab+zz\r\n");
    assert!(r.starts_with("501 5.5.4 Invalid ENVID parameter"), "{r}");
    assert_eq!(t.send(b"MAIL FROM:<s@remote.test> ENVID=a"), "");
    assert_eq!(t.send(b"b+2B\r\n"), "250 2.1.0 Ok\r\n");
    let r = t.send(
        b"RCPT TO:<alice@example.test> NOTIFY=SUCCESS\r\nDATA\r\nSubject: x\r\n\r\nx\r\n.\r\n",
    );
    assert_eq!(codes(&r), ["250", "354", "250"], "{r}");
    assert_eq!(
        t.delivered[0].recipients[0].dsn.envid.as_deref(),
        Some("ab+")
    );
}
