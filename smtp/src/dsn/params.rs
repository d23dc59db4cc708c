//! The DSN parameters of the SMTP envelope (RFC 3461 §4): reading them from what smtp-proto
//! parsed, checking their xtext (§4, which smtp-proto decodes leniently), deciding which
//! notices a recipient asked for, and writing them back as xtext.

use postern_store::DsnRequest;
use smtp_proto::{
    MAIL_RET_FULL, MAIL_RET_HDRS, RCPT_NOTIFY_DELAY, RCPT_NOTIFY_FAILURE, RCPT_NOTIFY_NEVER,
    RCPT_NOTIFY_SUCCESS,
};

/// Every NOTIFY bit of smtp-proto's RCPT flags.
pub const NOTIFY_FLAGS: u64 =
    RCPT_NOTIFY_NEVER | RCPT_NOTIFY_SUCCESS | RCPT_NOTIFY_FAILURE | RCPT_NOTIFY_DELAY;

/// Longest ENVID as sent, in xtext (RFC 3461 §4.4).
const MAX_ENVID: usize = 100;

/// Longest ORCPT parameter value as sent, address type included (RFC 3461 §4.2).
const MAX_ORCPT: usize = 500;

/// A kind of notice a recipient may ask for with NOTIFY (RFC 3461 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Delivered, or relayed to a server without DSN.
    Success,
    /// Failed for good.
    Failure,
    /// Not delivered yet after a while.
    Delay,
}

/// Whether `dsn` asks for a notice of `kind`. Without NOTIFY, failures and delays are reported
/// and successes are not (RFC 3461 §4.1: the default is `FAILURE` or `FAILURE,DELAY`).
pub fn wants(dsn: &DsnRequest, kind: Notice) -> bool {
    let Some(notify) = &dsn.notify else {
        return kind != Notice::Success;
    };
    let word = match kind {
        Notice::Success => "SUCCESS",
        Notice::Failure => "FAILURE",
        Notice::Delay => "DELAY",
    };
    notify.split(',').any(|w| w.eq_ignore_ascii_case(word))
}

/// The DSN request passed on to each of the `targets` destinations an address expands to: for
/// several, SUCCESS is taken out of NOTIFY, since the address itself reports `expanded`
/// (RFC 3461 §6.2.7.3); what is left of NOTIFY, or NEVER if nothing is.
pub fn for_expansion(dsn: &DsnRequest, targets: usize) -> DsnRequest {
    if targets <= 1 || !wants(dsn, Notice::Success) {
        return dsn.clone();
    }
    let rest: Vec<&str> = dsn
        .notify
        .iter()
        .flat_map(|n| n.split(','))
        .filter(|w| !w.eq_ignore_ascii_case("SUCCESS"))
        .collect();
    DsnRequest {
        notify: Some(if rest.is_empty() {
            "NEVER".into()
        } else {
            rest.join(",")
        }),
        ..dsn.clone()
    }
}

/// Whether a failure notice returns the whole message (RET=FULL, RFC 3461 §4.3); otherwise
/// only its headers are returned.
pub fn returns_full(dsn: &DsnRequest) -> bool {
    dsn.ret
        .as_deref()
        .is_some_and(|r| r.eq_ignore_ascii_case("FULL"))
}

/// The NOTIFY value held by smtp-proto's RCPT flags, if NOTIFY was given.
pub fn notify_from_flags(flags: u64) -> Option<String> {
    if flags & RCPT_NOTIFY_NEVER != 0 {
        return Some("NEVER".into());
    }
    let words: Vec<&str> = [
        (RCPT_NOTIFY_SUCCESS, "SUCCESS"),
        (RCPT_NOTIFY_FAILURE, "FAILURE"),
        (RCPT_NOTIFY_DELAY, "DELAY"),
    ]
    .iter()
    .filter(|(bit, _)| flags & bit != 0)
    .map(|(_, w)| *w)
    .collect();
    (!words.is_empty()).then(|| words.join(","))
}

/// The RET value held by smtp-proto's MAIL flags, if RET was given.
pub fn ret_from_flags(flags: u64) -> Option<String> {
    if flags & MAIL_RET_FULL != 0 {
        Some("FULL".into())
    } else if flags & MAIL_RET_HDRS != 0 {
        Some("HDRS".into())
    } else {
        None
    }
}

/// Encodes `text` as xtext (RFC 3461 §4): `+`, `=` and every byte outside `!`..`~` as `+XX`.
pub fn xtext(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

/// Checks the ENVID and ORCPT values of a whole MAIL or RCPT command line as sent: well-formed
/// xtext (RFC 3461 §4: `+` only before two upper-case hex digits, no `=`, only `!`..`~`) and
/// within their lengths. The error names the parameter and the rule.
pub fn check_line(line: &[u8]) -> Result<(), &'static str> {
    let line = line.strip_suffix(b"\r\n").unwrap_or(line);
    for word in line.split(|&b| b == b' ') {
        let Some(eq) = word.iter().position(|&b| b == b'=') else {
            continue;
        };
        let (key, value) = (&word[..eq], &word[eq + 1..]);
        if key.eq_ignore_ascii_case(b"ENVID") {
            if !is_xtext(value) || value.len() > MAX_ENVID {
                return Err(
                    "Invalid ENVID parameter: 1 to 100 characters of xtext (RFC 3461 §4.4)",
                );
            }
        } else if key.eq_ignore_ascii_case(b"ORCPT") {
            let address = value
                .iter()
                .position(|&b| b == b';')
                .map(|i| &value[i + 1..]);
            if !address.is_some_and(is_xtext) || value.len() > MAX_ORCPT {
                return Err(
                    "Invalid ORCPT parameter: rfc822;<address in xtext> expected (RFC 3461 §4.2)",
                );
            }
        }
    }
    Ok(())
}

/// Whether `value` is non-empty, well-formed xtext (RFC 3461 §4).
fn is_xtext(value: &[u8]) -> bool {
    let hex = |b: &u8| b.is_ascii_digit() || (b'A'..=b'F').contains(b);
    let mut i = 0;
    while i < value.len() {
        match value[i] {
            b'+' => {
                if !value.get(i + 1..i + 3).is_some_and(|h| h.iter().all(hex)) {
                    return false;
                }
                i += 3;
            }
            b'=' => return false,
            b if (b'!'..=b'~').contains(&b) => i += 1,
            _ => return false,
        }
    }
    !value.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_defaults_to_failure_and_delay() {
        let none = DsnRequest::default();
        assert!(wants(&none, Notice::Failure) && wants(&none, Notice::Delay));
        assert!(!wants(&none, Notice::Success));
        let never = DsnRequest {
            notify: notify_from_flags(RCPT_NOTIFY_NEVER),
            ..DsnRequest::default()
        };
        assert!(!wants(&never, Notice::Failure) && !wants(&never, Notice::Delay));
        let success = DsnRequest {
            notify: notify_from_flags(RCPT_NOTIFY_SUCCESS | RCPT_NOTIFY_DELAY),
            ..DsnRequest::default()
        };
        assert_eq!(success.notify.as_deref(), Some("SUCCESS,DELAY"));
        assert!(wants(&success, Notice::Success) && wants(&success, Notice::Delay));
        assert!(!wants(&success, Notice::Failure));
        assert_eq!(notify_from_flags(0), None);
    }

    #[test]
    fn expansion_takes_success_out() {
        let dsn = DsnRequest {
            notify: Some("SUCCESS,FAILURE".into()),
            orcpt: Some("list@x.test".into()),
            ..DsnRequest::default()
        };
        assert_eq!(for_expansion(&dsn, 1), dsn);
        let each = for_expansion(&dsn, 2);
        assert_eq!(each.notify.as_deref(), Some("FAILURE"));
        assert_eq!(each.orcpt, dsn.orcpt);
        let only = DsnRequest {
            notify: Some("SUCCESS".into()),
            ..DsnRequest::default()
        };
        assert_eq!(for_expansion(&only, 3).notify.as_deref(), Some("NEVER"));
        assert_eq!(
            for_expansion(&DsnRequest::default(), 3),
            DsnRequest::default()
        );
    }

    #[test]
    fn xtext_round_trips_and_is_checked() {
        assert_eq!(xtext("bob@example.test"), "bob@example.test");
        assert_eq!(xtext("a+b=c d\r\n"), "a+2Bb+3Dc+20d+0D+0A");
        assert!(check_line(b"MAIL FROM:<a@b> ENVID=QQ+20314159 RET=HDRS\r\n").is_ok());
        assert!(check_line(b"RCPT TO:<a@b> ORCPT=rfc822;Bob+40x.test NOTIFY=NEVER\r\n").is_ok());
        for bad in [
            &b"MAIL FROM:<a@b> ENVID=QQ+2\r\n"[..],
            b"MAIL FROM:<a@b> ENVID=QQ+zz1\r\n",
            b"MAIL FROM:<a@b> ENVID=a=b\r\n",
            b"MAIL FROM:<a@b> ENVID=\r\n",
            b"RCPT TO:<a@b> ORCPT=rfc822;bob+4\r\n",
            b"RCPT TO:<a@b> ORCPT=rfc822\r\n",
        ] {
            assert!(check_line(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let long = format!("MAIL FROM:<a@b> ENVID={}\r\n", "+41".repeat(34));
        assert!(
            check_line(long.as_bytes()).is_err(),
            "102 characters as sent"
        );
    }
}
