//! The mail transaction of an outbound delivery, passing the sender's DSN parameters on to the
//! next hop (RFC 3461 §4): when the server offers DSN, RET and ENVID go with MAIL and NOTIFY and
//! ORCPT with RCPT, so that it reports to the sender itself; otherwise the message is sent without
//! them and counts as relayed.

use lettre::address::Envelope;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt};
use lettre::transport::smtp::extension::{
    ClientId, Extension, MailBodyParameter, MailParameter, RcptParameter,
};
use lettre::transport::smtp::Error;
use postern_store::DsnRequest;

use super::data;
use crate::dsn::params::xtext;
use crate::message::Message;

/// Whether `dsn` holds any parameter to pass on.
fn has_parameters(dsn: &DsnRequest) -> bool {
    dsn.notify.is_some() || dsn.orcpt.is_some() || dsn.ret.is_some() || dsn.envid.is_some()
}

/// MAIL, RCPT and DATA for `envelope` and `message` on `conn` as lettre's `send` does them
/// (SMTPUTF8 and 8BITMIME as needed), with the DSN parameters of `dsn` when the server offers
/// DSN. Returns whether it did.
pub(super) async fn send(
    conn: &mut AsyncSmtpConnection,
    hello: &ClientId,
    envelope: &Envelope,
    message: &Message,
    dsn: &DsnRequest,
) -> Result<bool, Error> {
    let info = conn.server_info();
    let utf8 = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .any(|a| !AsRef::<str>::as_ref(a).is_ascii());
    let eight_bit = !data::is_ascii(message);
    if (utf8 && !info.supports_feature(Extension::SmtpUtfEight))
        || (eight_bit && !info.supports_feature(Extension::EightBitMime))
    {
        // lettre refuses such a message with the reason before it sends anything; a sample of the
        // data (one 8-bit byte, or none) is all it needs to see for that.
        let sample: &[u8] = if eight_bit { b"\x80" } else { b"" };
        return conn.send(envelope, sample).await.map(|_| false);
    }
    let mut mail = Vec::new();
    if utf8 {
        mail.push(MailParameter::SmtpUtfEight);
    }
    if eight_bit {
        mail.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    // lettre keeps only the extensions it knows: ask again to see whether DSN is among them
    // (a repeated EHLO only resets the transaction, RFC 5321 §4.1.4).
    let offers_dsn = has_parameters(dsn) && {
        let ehlo = conn.command(Ehlo::new(hello.clone())).await?;
        let offered = ehlo
            .message()
            .skip(1)
            .any(|line| line.split_whitespace().next() == Some("DSN"));
        offered
    };
    let mut rcpt = Vec::new();
    if offers_dsn {
        let other = |keyword: &str, value: String| (keyword.to_owned(), Some(value));
        let mail_dsn = [
            dsn.ret.clone().map(|v| other("RET", v)),
            dsn.envid.as_deref().map(|v| other("ENVID", xtext(v))),
        ];
        mail.extend(
            mail_dsn
                .into_iter()
                .flatten()
                .map(|(keyword, value)| MailParameter::Other { keyword, value }),
        );
        let rcpt_dsn = [
            dsn.notify.clone().map(|v| other("NOTIFY", v)),
            dsn.orcpt
                .as_deref()
                .map(|v| other("ORCPT", format!("rfc822;{}", xtext(v)))),
        ];
        rcpt.extend(
            rcpt_dsn
                .into_iter()
                .flatten()
                .map(|(keyword, value)| RcptParameter::Other { keyword, value }),
        );
    }
    conn.command(Mail::new(envelope.from().cloned(), mail))
        .await?;
    for to in envelope.to() {
        conn.command(Rcpt::new(to.clone(), rcpt.clone())).await?;
    }
    conn.command(Data).await?;
    // In pieces: lettre dot-stuffs each into a buffer of its size (its codec carries the line
    // state across pieces), so a large message is never copied whole.
    conn.message_iter(data::Pieces::new(message)).await?;
    Ok(offers_dsn)
}
