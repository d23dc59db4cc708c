//! Delivery status notifications (bounces): a `multipart/report` (RFC 6522) with a
//! `message/delivery-status` part (RFC 3464) and the original headers, sent to the envelope sender
//! when delivery fails for good. A message with the null sender is never bounced (RFC 5321 §4.5.5).

use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::{BodyPart, MimePart};
use mail_builder::MessageBuilder;
use postern_store::{Incoming, LocalCopy, Resolution, Store};

/// One recipient that could not be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The recipient address.
    pub recipient: String,
    /// Enhanced status code (RFC 3463), e.g. `5.1.1`.
    pub status: String,
    /// What the remote server or this server said.
    pub diagnostic: String,
    /// The remote host that refused it, if any.
    pub remote_mta: Option<String>,
}

/// Builds the bounce for `original` (its headers are returned, not the whole message).
pub fn build(
    hostname: &str,
    sender: &str,
    failures: &[Failure],
    original: &[u8],
    arrival: i64,
) -> Vec<u8> {
    let header_end = find_header_end(original);
    let original_headers = String::from_utf8_lossy(&original[..header_end]).into_owned();
    let mut human = format!(
        "This is the mail system at {hostname}.\r\n\r\n\
         Your message could not be delivered to one or more recipients.\r\n\
         It has been returned with the reasons below.\r\n\r\n"
    );
    let mut status = format!(
        "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; {hostname}\r\nArrival-Date: {}\r\n",
        Date::new(arrival).to_rfc822()
    );
    for f in failures {
        human.push_str(&format!(
            "<{}>: {}\r\n",
            f.recipient,
            one_line(&f.diagnostic)
        ));
        status.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {}\r\nAction: failed\r\nStatus: {}\r\n",
            f.recipient, f.status
        ));
        if let Some(mta) = &f.remote_mta {
            status.push_str(&format!("Remote-MTA: dns; {mta}\r\n"));
        }
        status.push_str(&format!(
            "Diagnostic-Code: smtp; {}\r\n",
            one_line(&f.diagnostic)
        ));
    }
    let headers_part = format!("Content-Type: text/rfc822-headers\r\n\r\n{original_headers}");
    let report = MimePart::new(
        ContentType::new("multipart/report").attribute("report-type", "delivery-status"),
        BodyPart::Multipart(vec![
            MimePart::new("text/plain", human),
            MimePart::raw(BodyPart::Text(status.into())),
            MimePart::raw(BodyPart::Text(headers_part.into())),
        ]),
    );
    let message_id: u128 = rand::random();
    MessageBuilder::new()
        .from(Address::new_address(
            Some("Mail Delivery System"),
            format!("MAILER-DAEMON@{hostname}"),
        ))
        .to(Address::new_address(None::<&str>, sender.to_owned()))
        .subject("Undelivered Mail Returned to Sender")
        .date(Date::new(postern_store::unix_now()))
        .message_id(format!("{message_id:032x}@{hostname}"))
        .header("Auto-Submitted", Raw::new("auto-replied"))
        .body(report)
        .write_to_vec()
        .unwrap_or_default()
}

/// Sends a bounce for `failures` to `sender`: stored at once if the sender is local, else queued
/// with the null sender so it can never bounce back.
pub async fn send(
    store: &Store,
    hostname: &str,
    expires_at: i64,
    sender: &str,
    failures: &[Failure],
    original: &[u8],
    arrival: i64,
) -> Result<(), postern_store::StoreError> {
    if sender.is_empty() || failures.is_empty() {
        return Ok(());
    }
    let raw = build(hostname, sender, failures, original, arrival);
    send_null_sender(store, sender, &raw, expires_at).await?;
    tracing::info!(sender, recipients = failures.len(), "bounce sent");
    Ok(())
}

/// Sends `raw` (a bounce or an automatic reply) to `to` with the null envelope sender, so it can
/// never bounce back (RFC 5321 §4.5.5, RFC 3834 §3.3): stored at once if `to` is local, else
/// queued.
pub async fn send_null_sender(
    store: &Store,
    to: &str,
    raw: &[u8],
    expires_at: i64,
) -> Result<(), postern_store::StoreError> {
    let (local, remote): (Vec<i64>, Vec<String>) = match store.resolve_recipient(to).await? {
        Resolution::Deliver { local, remote } => {
            (local.into_iter().collect(), remote.into_iter().collect())
        }
        Resolution::NotHosted => (Vec::new(), vec![to.to_owned()]),
        Resolution::Unknown => {
            tracing::warn!(to, "dropped: the local recipient no longer exists");
            return Ok(());
        }
    };
    store
        .accept(Incoming {
            raw,
            internal_date: postern_store::unix_now(),
            local: &LocalCopy::all(&local, "INBOX"),
            sender: "",
            remote: &remote,
            expires_at,
        })
        .await?;
    Ok(())
}

/// Where the header section ends (after the blank line), or the whole message if it has no body.
fn find_header_end(raw: &[u8]) -> usize {
    let crlf = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = raw.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => raw.len(),
    }
}

/// `s` with every run of whitespace (line breaks too) as one space.
pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounce_is_a_delivery_status_report() {
        let original = b"From: a@x.test\r\nSubject: hi\r\n\r\nsecret body\r\n";
        let failures = [Failure {
            recipient: "bob@remote.test".into(),
            status: "5.1.1".into(),
            diagnostic: "550 5.1.1 no such\r\n user".into(),
            remote_mta: Some("mx.remote.test".into()),
        }];
        let raw = build("mail.example.test", "a@x.test", &failures, original, 0);
        let text = String::from_utf8(raw.clone()).unwrap();
        assert!(text.contains("multipart/report"), "{text}");
        assert!(
            text.contains("report-type=\"delivery-status\"")
                || text.contains("report-type=delivery-status"),
            "{text}"
        );
        assert!(text.contains("Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mail.example.test"), "{text}");
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
        assert!(text.contains("Subject: hi"), "original headers returned");
        assert!(!text.contains("secret body"), "original body not returned");
        assert!(text.contains("Auto-Submitted: auto-replied"));
        let parsed = mail_parser::MessageParser::new().parse(&raw).unwrap();
        assert_eq!(
            parsed.subject(),
            Some("Undelivered Mail Returned to Sender")
        );
    }
}
