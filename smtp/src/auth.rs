//! Mail authentication: DKIM signing of submitted mail (RFC 6376 §5, RFC 8463), and SPF
//! (RFC 7208), DKIM (RFC 6376 §6) and DMARC (RFC 7489) checks of mail arriving on the MX, recorded
//! in an `Authentication-Results:` header field (RFC 8601).

use std::net::IpAddr;
use std::time::Duration;

use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::dmarc::Policy;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DmarcResult, MessageAuthenticator, SpfResult,
};
use postern_store::{DkimAlgorithm, DkimKey};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// Header fields covered by outbound signatures (RFC 6376 §5.4.1). Absent ones are signed too, as
/// empty: a field added later in transit then breaks the signature (RFC 6376 §8.15).
pub(crate) const SIGNED_HEADERS: [&str; 13] = [
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "List-Unsubscribe",
];

/// The `DKIM-Signature:` header fields for `message`, one per key in the given order (RSA first,
/// then the Ed25519 signature of RFC 8463). A key that cannot sign is logged and skipped.
pub(crate) fn sign(keys: &[DkimKey], message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for key in keys {
        let signed = match key.algorithm {
            DkimAlgorithm::Rsa => RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs8(
                PrivatePkcs8KeyDer::from(key.private_pkcs8.as_slice()),
            ))
            .and_then(|k| {
                DkimSigner::from_key(k)
                    .domain(key.domain.as_str())
                    .selector(key.selector.as_str())
                    .headers(SIGNED_HEADERS)
                    .sign(message)
            }),
            DkimAlgorithm::Ed25519 => {
                Ed25519Key::from_pkcs8_maybe_unchecked_der(&key.private_pkcs8).and_then(|k| {
                    DkimSigner::from_key(k)
                        .domain(key.domain.as_str())
                        .selector(key.selector.as_str())
                        .headers(SIGNED_HEADERS)
                        .sign(message)
                })
            }
        };
        match signed {
            Ok(signature) => out.extend_from_slice(signature.to_header().as_bytes()),
            Err(e) => tracing::error!(
                domain = key.domain,
                selector = key.selector,
                error = %e,
                "DKIM signing failed"
            ),
        }
    }
    out
}

/// The domain of the message's (first) `From:` address (RFC 5322 §3.6.2), lower-cased.
pub(crate) fn header_from_domain(message: &[u8]) -> Option<String> {
    let parsed = mail_parser::MessageParser::new().parse_headers(message)?;
    let address = parsed.from()?.first()?.address()?;
    let (_, domain) = address.rsplit_once('@')?;
    (!domain.is_empty()).then(|| domain.to_ascii_lowercase())
}

/// Every address of every `From:` field (RFC 5322 §3.6.2), groups included; `None` when the
/// message has no `From:` field. A field or entry without a usable address gives an empty string,
/// which no check accepts.
pub(crate) fn header_from_addresses(message: &[u8]) -> Option<Vec<String>> {
    let Some(parsed) = mail_parser::MessageParser::new().parse_headers(message) else {
        return Some(vec![String::new()]);
    };
    let mut fields = 0;
    let mut out = Vec::new();
    for value in parsed.header_values("From") {
        fields += 1;
        match value.as_address() {
            Some(list) => out.extend(list.iter().map(|a| a.address().unwrap_or("").to_owned())),
            None => out.push(String::new()),
        }
        if out.is_empty() {
            out.push(String::new());
        }
    }
    (fields > 0).then_some(out)
}

/// The domain part of an address, or the whole string without `@`.
pub(crate) fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or(address, |(_, d)| d)
}

/// Where an inbound message goes after the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// The recipients' INBOX.
    Inbox,
    /// The recipients' `Junk` folder.
    Junk,
    /// Refused at the end of DATA with 550 5.7.1 (RFC 7489 §6.7 allows rejecting in SMTP).
    Reject,
}

/// Chooses a disposition from the SPF MAIL FROM result and the DMARC result and policy
/// (RFC 7489 §6.6.2: the receiver applies the domain owner's policy to failing mail). Mail that
/// passes DMARC is delivered even when SPF failed (forwarders break SPF, not DKIM); otherwise a
/// hard SPF failure goes to Junk. Temporary and permanent errors never reject or junk: the
/// message is delivered with the result recorded.
pub(crate) fn decide(
    spf: &SpfResult,
    dmarc: &DmarcResult,
    policy: Policy,
    dmarc_reject: bool,
) -> Disposition {
    match dmarc {
        DmarcResult::Fail(_) => match policy {
            Policy::Reject if dmarc_reject => Disposition::Reject,
            Policy::Reject | Policy::Quarantine => Disposition::Junk,
            Policy::None | Policy::Unspecified if *spf == SpfResult::Fail => Disposition::Junk,
            Policy::None | Policy::Unspecified => Disposition::Inbox,
        },
        DmarcResult::Pass => Disposition::Inbox,
        _ if *spf == SpfResult::Fail => Disposition::Junk,
        _ => Disposition::Inbox,
    }
}

/// The result of checking one inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// The complete `Authentication-Results:` header field, CRLF-terminated.
    pub header: String,
    /// What to do with the message.
    pub disposition: Disposition,
}

/// Who handed an inbound message over: what SPF (RFC 7208 §2.3, §2.4) checks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Client<'a> {
    /// The connecting address.
    pub ip: IpAddr,
    /// The HELO/EHLO name.
    pub helo: &'a str,
    /// The MAIL FROM address, empty for the null reverse-path.
    pub sender: &'a str,
}

/// Checks SPF for HELO and MAIL FROM, every DKIM signature and DMARC for a message from
/// `client`. Gives up after `timeout` with a `temperror` result, so that a slow DNS never loses
/// mail.
pub(crate) async fn verify(
    authenticator: &MessageAuthenticator,
    hostname: &str,
    client: Client<'_>,
    message: &[u8],
    dmarc_reject: bool,
    timeout: Duration,
) -> Verdict {
    let checks = checks(authenticator, hostname, client, message, dmarc_reject);
    match tokio::time::timeout(timeout, checks).await {
        Ok(verdict) => verdict,
        Err(_) => {
            tracing::warn!(ip = %client.ip, "mail authentication checks timed out");
            Verdict {
                header: format!(
                    "Authentication-Results: {hostname};\r\n\tdkim=temperror (timeout);\r\n\tspf=temperror (timeout);\r\n\tdmarc=temperror (timeout)\r\n"
                ),
                disposition: Disposition::Inbox,
            }
        }
    }
}

async fn checks(
    authenticator: &MessageAuthenticator,
    hostname: &str,
    client: Client<'_>,
    message: &[u8],
    dmarc_reject: bool,
) -> Verdict {
    let Client { ip, helo, sender } = client;
    let Some(parsed) = AuthenticatedMessage::parse(message) else {
        return Verdict {
            header: format!("Authentication-Results: {hostname}; none (unparsable message)\r\n"),
            disposition: Disposition::Inbox,
        };
    };
    let dkim = authenticator.verify_dkim(&parsed).await;
    let spf_helo = authenticator
        .verify_spf(SpfParameters::verify_ehlo(ip, helo, hostname))
        .await;
    // The null reverse-path is checked as postmaster@HELO (RFC 7208 §2.4).
    let postmaster = format!("postmaster@{helo}");
    let mail_from = if sender.is_empty() {
        postmaster.as_str()
    } else {
        sender
    };
    let spf = authenticator
        .verify_spf(SpfParameters::verify_mail_from(
            ip, helo, hostname, mail_from,
        ))
        .await;
    let dmarc = authenticator
        .verify_dmarc(DmarcParameters::new(
            &parsed,
            &dkim,
            domain_of(mail_from),
            &spf,
        ))
        .await;
    let header = AuthenticationResults::new(hostname)
        .with_dkim_results(&dkim, parsed.from())
        .with_spf_ehlo_result(&spf_helo, ip, helo)
        .with_spf_mailfrom_result(&spf, ip, sender, helo)
        .with_dmarc_result(&dmarc)
        .to_header();
    let disposition = decide(&spf.result(), &dmarc.result(), dmarc.policy(), dmarc_reject);
    tracing::info!(
        %ip,
        sender,
        spf = ?spf.result(),
        dmarc = ?dmarc.result(),
        ?disposition,
        "mail authentication"
    );
    Verdict {
        header,
        disposition,
    }
}

/// The header section of `message` without the `Authentication-Results:` header fields whose
/// authserv-id is `authserv_id` (RFC 8601 §5: a receiver must not trust such fields from
/// outside), with the offset where the old header section ends; `None` if there are none.
pub(crate) fn strip_own_results(message: &[u8], authserv_id: &str) -> Option<(Vec<u8>, usize)> {
    let end = header_end(message);
    let mut out = Vec::new();
    let mut stripped = false;
    let mut pos = 0;
    while pos < end {
        let field_end = field_end(message, pos, end);
        let field = &message[pos..field_end];
        if claims(field, authserv_id) {
            stripped = true;
        } else {
            out.extend_from_slice(field);
        }
        pos = field_end;
    }
    stripped.then_some((out, end))
}

/// The offset of the empty line ending the header section (or the end of the message).
fn header_end(message: &[u8]) -> usize {
    let mut pos = 0;
    while pos < message.len() {
        if message[pos..].starts_with(b"\r\n") || message[pos..].starts_with(b"\n") {
            return pos;
        }
        pos = message[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(message.len(), |i| pos + i + 1);
    }
    message.len()
}

/// The end of the header field starting at `start`, continuation lines included.
fn field_end(message: &[u8], start: usize, end: usize) -> usize {
    let mut pos = start;
    loop {
        pos = message[pos..end]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(end, |i| pos + i + 1);
        if pos >= end || !matches!(message[pos], b' ' | b'\t') {
            return pos;
        }
    }
}

/// Whether a header field is an `Authentication-Results:` naming `authserv_id`.
fn claims(field: &[u8], authserv_id: &str) -> bool {
    let Some(colon) = field.iter().position(|&b| b == b':') else {
        return false;
    };
    if !field[..colon]
        .trim_ascii()
        .eq_ignore_ascii_case(b"Authentication-Results")
    {
        return false;
    }
    let value = String::from_utf8_lossy(&field[colon + 1..]);
    let id = value
        .split(';')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .next()
        .unwrap_or("");
    id.eq_ignore_ascii_case(authserv_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_results_are_stripped_others_kept() {
        let msg = b"Received: x\r\nAuthentication-Results: mx.example.test;\r\n\tspf=pass\r\nauthentication-results: other.test; dkim=pass\r\nAuthentication-Results:  MX.Example.Test 1; none\r\nSubject: hi\r\n\r\nAuthentication-Results: mx.example.test; body\r\n";
        let (head, end) = strip_own_results(msg, "mx.example.test").unwrap();
        let mut out = head;
        out.extend_from_slice(&msg[end..]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Received: x\r\nauthentication-results: other.test; dkim=pass\r\nSubject: hi\r\n\r\nAuthentication-Results: mx.example.test; body\r\n"
        );
        assert_eq!(
            strip_own_results(b"Subject: hi\r\n\r\nbody\r\n", "mx.example.test"),
            None
        );
    }

    #[test]
    fn decisions_follow_policy_and_settings() {
        use Disposition::*;
        let fail = DmarcResult::Fail(mail_auth::Error::NotAligned);
        let none = DmarcResult::None;
        let pass = DmarcResult::Pass;
        assert_eq!(decide(&SpfResult::Pass, &none, Policy::Reject, true), Inbox);
        assert_eq!(
            decide(&SpfResult::Pass, &fail, Policy::Reject, true),
            Reject
        );
        assert_eq!(decide(&SpfResult::Pass, &fail, Policy::Reject, false), Junk);
        assert_eq!(
            decide(&SpfResult::Pass, &fail, Policy::Quarantine, true),
            Junk
        );
        assert_eq!(
            decide(&SpfResult::SoftFail, &fail, Policy::None, true),
            Inbox
        );
        assert_eq!(decide(&SpfResult::Fail, &fail, Policy::None, true), Junk);
        assert_eq!(decide(&SpfResult::Fail, &none, Policy::None, true), Junk);
        assert_eq!(decide(&SpfResult::Fail, &pass, Policy::Reject, true), Inbox);
        assert_eq!(
            decide(&SpfResult::TempError, &none, Policy::Reject, true),
            Inbox
        );
    }

    #[test]
    fn from_domain_is_taken_from_the_header() {
        let msg = b"From: Ann <Ann@Example.TEST>\r\nTo: b@x.test\r\n\r\nhi\r\n";
        assert_eq!(header_from_domain(msg).as_deref(), Some("example.test"));
        assert_eq!(header_from_domain(b"Subject: x\r\n\r\n"), None);
        assert_eq!(domain_of("a@b.test"), "b.test");
    }

    #[test]
    fn ed25519_signature_covers_the_present_headers() {
        let key = DkimKey {
            domain: "example.test".into(),
            selector: "ed1".into(),
            algorithm: DkimAlgorithm::Ed25519,
            private_pkcs8: Ed25519Key::generate_pkcs8().expect("key"),
            public_key: String::new(),
            state: postern_store::DkimState::Active,
        };
        let msg = b"From: a@example.test\r\nTo: b@x.test\r\nSubject: hi\r\n\r\nbody\r\n";
        let header = String::from_utf8(sign(&[key], msg)).unwrap();
        assert!(header.starts_with("DKIM-Signature:"), "{header}");
        assert!(header.contains("a=ed25519-sha256"), "{header}");
        assert!(header.contains("d=example.test"), "{header}");
        assert!(header.contains("s=ed1"), "{header}");
        let h = header.to_ascii_lowercase().replace(['\r', '\n', '\t'], "");
        let h = h
            .split("h=")
            .nth(1)
            .and_then(|t| t.split(';').next())
            .unwrap();
        for field in ["from", "to", "subject", "date", "message-id"] {
            assert!(h.split(':').any(|f| f == field), "{field} not in h={h}");
        }
        assert!(header.ends_with("\r\n"));
    }
}
