//! Delivery status notifications (RFC 3464): a `multipart/report` (RFC 6522) with a
//! `message/delivery-status` part and the original headers (or, for a failure with RET=FULL, the
//! whole message), sent to the envelope sender when delivery fails for good, is delayed, or
//! succeeded and the sender asked to hear of it (RFC 3461). A message with the null sender never
//! gets one (RFC 5321 §4.5.5). `params` reads and checks the envelope's DSN parameters.

pub(crate) mod local;
pub(crate) mod params;

use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::{BodyPart, MimePart};
use mail_builder::MessageBuilder;
use postern_store::{BlobSource, DsnRequest, Incoming, LocalCopy, Resolution, Store};

/// What became of a recipient (RFC 3464 §2.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Delivery failed for good.
    Failed,
    /// Not delivered yet; still being retried.
    Delayed,
    /// Delivered to the recipient's mailbox.
    Delivered,
    /// Handed to a next hop that does not offer DSN, so no further notice will come.
    Relayed,
    /// Delivered to an alias that passes it on to several recipients, who send no success
    /// notices of their own (RFC 3461 §6.2.7.3).
    Expanded,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Delivered => "delivered",
            Action::Relayed => "relayed",
            Action::Expanded => "expanded",
        }
    }
}

/// One recipient's entry in a report (RFC 3464 §2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The recipient address.
    pub recipient: String,
    /// The ORCPT the sender gave for it (RFC 3461 §4.2), xtext-decoded.
    pub orcpt: Option<String>,
    /// What became of it.
    pub action: Action,
    /// Enhanced status code (RFC 3463), e.g. `5.1.1`.
    pub status: String,
    /// What the remote server or this server said, if anything.
    pub diagnostic: Option<String>,
    /// The remote host involved, if any.
    pub remote_mta: Option<String>,
    /// When delivery will be given up, for a delay (RFC 3464 §2.3.9).
    pub will_retry_until: Option<i64>,
}

impl Notice {
    /// A notice about `recipient` with the ORCPT of its DSN request.
    pub fn new(recipient: &str, dsn: &DsnRequest, action: Action, status: &str) -> Notice {
        Notice {
            recipient: recipient.to_owned(),
            orcpt: dsn.orcpt.clone(),
            action,
            status: status.to_owned(),
            diagnostic: None,
            remote_mta: None,
            will_retry_until: None,
        }
    }
}

/// The message a report is about.
#[derive(Debug, Clone, Copy)]
pub struct Original<'a> {
    /// Its envelope sender, who gets the report.
    pub sender: &'a str,
    /// The message as stored.
    pub raw: &'a [u8],
    /// When this server accepted it, Unix seconds.
    pub arrival: i64,
    /// The sender's envelope identifier (ENVID, RFC 3461 §4.4), xtext-decoded.
    pub envid: Option<&'a str>,
    /// Return the whole message in a failure report (RET=FULL, RFC 3461 §4.3).
    pub full: bool,
}

impl<'a> Original<'a> {
    /// The message `raw` from `sender`, with the message-wide DSN parameters of `dsn`.
    pub fn new(sender: &'a str, raw: &'a [u8], arrival: i64, dsn: &'a DsnRequest) -> Self {
        Original {
            sender,
            raw,
            arrival,
            envid: dsn.envid.as_deref(),
            full: params::returns_full(dsn),
        }
    }
}

/// Builds the report about `original` for `notices` (all of one [`Action`]).
pub fn build(hostname: &str, original: &Original<'_>, notices: &[Notice]) -> Vec<u8> {
    let action = notices.first().map_or(Action::Failed, |n| n.action);
    let (subject, intro) = match action {
        Action::Failed => (
            "Undelivered Mail Returned to Sender",
            "Your message could not be delivered to one or more recipients.\r\n\
             It has been returned with the reasons below.",
        ),
        Action::Delayed => (
            "Delayed Mail (still being retried)",
            "Your message could not be delivered yet to one or more recipients.\r\n\
             Delivery is still being attempted; you do not need to send it again.",
        ),
        Action::Delivered => (
            "Successful Mail Delivery Report",
            "Your message was delivered to the recipients below.",
        ),
        Action::Relayed => (
            "Successful Mail Delivery Report",
            "Your message was relayed to the recipients below. Their mail system does not\r\n\
             report deliveries, so no further notice will follow.",
        ),
        Action::Expanded => (
            "Successful Mail Delivery Report",
            "Your message reached the addresses below, which pass it on to several recipients.\r\n\
             No further notice of success will follow.",
        ),
    };
    let mut human = format!("This is the mail system at {hostname}.\r\n\r\n{intro}\r\n\r\n");
    let mut status = String::from("Content-Type: message/delivery-status\r\n\r\n");
    if let Some(envid) = original.envid {
        status.push_str(&format!(
            "Original-Envelope-Id: {}\r\n",
            params::xtext(envid)
        ));
    }
    status.push_str(&format!(
        "Reporting-MTA: dns; {hostname}\r\nArrival-Date: {}\r\n",
        Date::new(original.arrival).to_rfc822()
    ));
    for n in notices {
        let said = n.diagnostic.as_deref().map(one_line);
        human.push_str(&format!(
            "<{}>: {}\r\n",
            n.recipient,
            said.as_deref().unwrap_or(n.action.name())
        ));
        status.push_str("\r\n");
        if let Some(orcpt) = &n.orcpt {
            status.push_str(&format!(
                "Original-Recipient: rfc822; {}\r\n",
                params::xtext(orcpt)
            ));
        }
        status.push_str(&format!(
            "Final-Recipient: rfc822; {}\r\nAction: {}\r\nStatus: {}\r\n",
            n.recipient,
            n.action.name(),
            n.status
        ));
        if let Some(mta) = &n.remote_mta {
            status.push_str(&format!("Remote-MTA: dns; {mta}\r\n"));
        }
        if let Some(said) = &said {
            status.push_str(&format!("Diagnostic-Code: smtp; {said}\r\n"));
        }
        if matches!(n.action, Action::Failed | Action::Delayed) {
            status.push_str(&format!(
                "Last-Attempt-Date: {}\r\n",
                Date::new(postern_store::unix_now()).to_rfc822()
            ));
        }
        if let Some(until) = n.will_retry_until {
            status.push_str(&format!(
                "Will-Retry-Until: {}\r\n",
                Date::new(until).to_rfc822()
            ));
        }
    }
    let returned = if original.full && action == Action::Failed {
        let mut part = b"Content-Type: message/rfc822\r\n\r\n".to_vec();
        part.extend_from_slice(original.raw);
        part
    } else {
        let headers = &original.raw[..find_header_end(original.raw)];
        let mut part = b"Content-Type: text/rfc822-headers\r\n\r\n".to_vec();
        part.extend_from_slice(headers);
        part
    };
    let report = MimePart::new(
        ContentType::new("multipart/report").attribute("report-type", "delivery-status"),
        BodyPart::Multipart(vec![
            MimePart::new("text/plain", human),
            MimePart::raw(BodyPart::Text(status.into())),
            MimePart::raw(BodyPart::Binary(returned.into())),
        ]),
    );
    let message_id: u128 = rand::random();
    MessageBuilder::new()
        .from(Address::new_address(
            Some("Mail Delivery System"),
            format!("MAILER-DAEMON@{hostname}"),
        ))
        .to(Address::new_address(
            None::<&str>,
            original.sender.to_owned(),
        ))
        .subject(subject)
        .date(Date::new(postern_store::unix_now()))
        .message_id(format!("{message_id:032x}@{hostname}"))
        .header("Auto-Submitted", Raw::new("auto-replied"))
        .body(report)
        .write_to_vec()
        .unwrap_or_default()
}

/// Sends the report about `original` for `notices` to its sender: stored at once if the sender is
/// local, else queued with the null sender so it can never cause a report itself.
pub async fn send(
    store: &Store,
    hostname: &str,
    expires_at: i64,
    original: &Original<'_>,
    notices: &[Notice],
) -> Result<(), postern_store::StoreError> {
    let sender = original.sender;
    if sender.is_empty() || notices.is_empty() {
        return Ok(());
    }
    let raw = build(hostname, original, notices);
    send_null_sender(store, sender, &raw, expires_at).await?;
    let action = notices[0].action.name();
    tracing::info!(
        sender,
        recipients = notices.len(),
        action,
        "delivery report sent"
    );
    Ok(())
}

/// Sends `raw` (a delivery report or an automatic reply) to `to` with the null envelope sender,
/// so it can never bounce back (RFC 5321 §4.5.5, RFC 3834 §3.3): stored at once if `to` is
/// local, else queued.
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
            raw: BlobSource::Bytes(raw),
            internal_date: postern_store::unix_now(),
            local: &LocalCopy::all(&local, "INBOX"),
            sender: "",
            remote: &remote,
            remote_dsn: &[],
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
mod tests;
