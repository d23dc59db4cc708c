//! Delivery of a received message: checks and stamps (submission's `From:` and DKIM signing,
//! the MX's SPF/DKIM/DMARC verdict, antivirus), local filing and the junk filter, the durable
//! store, and the reports that follow the `250`.

use std::net::IpAddr;
use std::time::Duration;

use postern_store::{Accepted, DsnRequest, Incoming, LocalCopy};

use super::{message_id, Backend};
use crate::antivirus::{self, Check};
use crate::auth::{self, Disposition};
use crate::dsn;
use crate::junk;
use crate::local::{reply_text, Filed, Target};
use crate::message::Message;
use crate::reply::Reply;
use crate::session::{Account, Delivery, DeliveryResult};

impl Backend {
    /// Checks and stamps the message before delivery: submitted mail must come from the user's
    /// own addresses and is DKIM-signed; MX mail gets its SPF/DKIM/DMARC verdict. Returns the
    /// stamped message and the folder kept copies go to (Junk for DMARC-quarantined mail), or the
    /// refusal.
    async fn admit(
        &self,
        d: &Delivery,
        message: Message,
        ip: IpAddr,
    ) -> Result<(Message, &'static str), DeliveryResult> {
        let mut folder = "INBOX";
        if let Some(user) = &d.user {
            if let Some(refusal) = self.check_from(user, &message).await {
                return Err(refusal);
            }
            let signatures = self.signatures(&message, auth::domain_of(&d.sender)).await;
            return Ok((self.put_before(message, 0, &signatures).await?, folder));
        }
        let message = match auth::strip_own_results(&message, &self.hostname) {
            Some((head, end)) => self.put_before(message, end, &head).await?,
            None => message,
        };
        let verdict = auth::verify(
            self.resolver.authenticator(),
            &self.hostname,
            auth::Client {
                ip,
                helo: &d.helo,
                sender: &d.sender,
            },
            &message,
            self.config.dmarc_reject,
            Duration::from_secs(self.config.auth_timeout_secs.max(1)),
        )
        .await;
        match verdict.disposition {
            Disposition::Reject => {
                tracing::info!(%ip, sender = d.sender, "refused: DMARC policy reject");
                metrics::counter!("postern_smtp_policy_refusals_total", "reason" => "dmarc")
                    .increment(1);
                return Err(DeliveryResult::Refused(Reply::new(
                    550,
                    (5, 7, 1),
                    "Message rejected: DMARC policy of the sender domain",
                )));
            }
            Disposition::Junk => {
                metrics::counter!("postern_smtp_junk_total").increment(1);
                folder = "Junk";
            }
            Disposition::Inbox => {}
        }
        let stamped = self
            .put_before(message, 0, verdict.header.as_bytes())
            .await?;
        Ok((stamped, folder))
    }

    /// `head` followed by `message` from byte `from` on (see [`Message::replace_head`]); a spool
    /// file that cannot be written makes the client retry later.
    async fn put_before(
        &self,
        message: Message,
        from: usize,
        head: &[u8],
    ) -> Result<Message, DeliveryResult> {
        if from == 0 && head.is_empty() {
            return Ok(message);
        }
        let dir = self.config.spool_dir.as_deref();
        message.replace_head(from, head, dir).await.map_err(|e| {
            tracing::error!(error = %e, "writing a message to its spool file failed");
            DeliveryResult::Unavailable
        })
    }

    /// Stores the message for local users (as their Sieve scripts decide) and queues it for
    /// remote ones in one committed transaction; only then may the session answer 250
    /// (RFC 5321 §6.1). The message is [admitted](Self::admit) first.
    pub(super) async fn deliver(
        &self,
        d: Delivery,
        message: Message,
        ip: IpAddr,
    ) -> DeliveryResult {
        let checking = message.check_permit().await;
        let virus = match antivirus::check(&self.config.antivirus, &message).await {
            Check::Pass => None,
            Check::Quarantine(signature) => Some(signature),
            Check::Refuse(reply) => return DeliveryResult::Refused(reply),
        };
        let (mut message, folder) = match self.admit(&d, message, ip).await {
            Ok(admitted) => admitted,
            Err(refusal) => return refusal,
        };
        let now = postern_store::unix_now();
        // Each user once, with the first RCPT address that reached them (Sieve's envelope "to").
        let targets: Vec<Target> = d
            .local_users()
            .into_iter()
            .filter_map(|user_id| {
                let r = d.recipients.iter().find(|r| r.local.contains(&user_id))?;
                Some(Target {
                    address: r.address.clone(),
                    user_id,
                })
            })
            .collect();
        let (mut remote, mut remote_dsn) = d.remote_addresses();
        let filed = match virus {
            // Quarantined: every local copy into Junk, marked; no filter runs (no redirect of a
            // virus) and nothing goes out.
            Some(signature) => {
                let header = antivirus::quarantine_header(&signature);
                message = match self.put_before(message, 0, header.as_bytes()).await {
                    Ok(message) => message,
                    Err(failure) => return failure,
                };
                remote.clear();
                remote_dsn.clear();
                Filed {
                    copies: LocalCopy::all(&d.local_users(), "Junk"),
                    ..Filed::default()
                }
            }
            None => {
                let mut filed = self
                    .file_local(&message, &d.sender, &targets, folder, 0)
                    .await;
                if d.user.is_none() {
                    junk::classify(
                        &self.store,
                        &self.config.junk,
                        &message,
                        &mut filed.copies,
                        &filed.junk,
                    )
                    .await;
                }
                filed
            }
        };
        let expires_at = now + self.config.queue_lifetime_secs as i64;
        if filed.copies.is_empty() && remote.is_empty() && !filed.rejects.is_empty() {
            if let Some(refusal) = every_recipient_rejected(&d, &filed.rejects) {
                return refusal;
            }
        }
        let size = message.len();
        let stored = message.unmap();
        drop(checking);
        let accepted = if filed.copies.is_empty() && remote.is_empty() {
            // Every recipient's filter discarded, redirected or rejected it: nothing to store.
            Accepted {
                local: Vec::new(),
                queued: Vec::new(),
            }
        } else {
            match self
                .store
                .accept(Incoming {
                    raw: stored.source(),
                    internal_date: now,
                    local: &filed.copies,
                    sender: &d.sender,
                    remote: &remote,
                    remote_dsn: &remote_dsn,
                    expires_at,
                })
                .await
            {
                Ok(a) => a,
                Err(e) => {
                    tracing::error!(error = %e, "storing a message failed");
                    return DeliveryResult::Unavailable;
                }
            }
        };
        let full = accepted.over_quota();
        let delivered = accepted.local.len() - full.len();
        let id = message_id();
        self.send_replies(&filed.replies).await;
        if delivered == 0 && accepted.queued.is_empty() && !full.is_empty() {
            tracing::info!(id, sender = d.sender, "refused: every mailbox is full");
            return DeliveryResult::MailboxFull;
        }
        tracing::info!(
            id,
            sender = d.sender,
            user = d.user.as_ref().map_or("", |u| u.address.as_str()),
            delivered,
            queued = accepted.queued.len(),
            over_quota = full.len(),
            size,
            "message accepted"
        );
        let message = match Message::map(stored) {
            Ok(message) => message,
            Err(e) => {
                tracing::error!(id, error = %e, "the accepted message cannot be read: no reports");
                return DeliveryResult::Accepted { id };
            }
        };
        // Some recipients took it, others are full or their script rejected it: the 250 stands,
        // the sender gets a report for those (RFC 5321 §3.7 / §6.1; RFC 5429 §2.1), and one for
        // deliveries if asked (RFC 3461).
        // RET and ENVID are the same for every recipient of the transaction.
        let no_dsn = DsnRequest::default();
        let first_dsn = d.recipients.first().map_or(&no_dsn, |r| &r.dsn);
        let original = dsn::Original::new(&d.sender, &message, now, first_dsn);
        dsn::local::report(
            &self.store,
            &self.hostname,
            expires_at,
            &d,
            &original,
            &accepted,
            &filed.rejects,
        )
        .await;
        DeliveryResult::Accepted { id }
    }

    /// Submission: every `From:` address must be one the user may send as (RFC 6409 §6.1;
    /// RFC 7489 §3.1 aligns DMARC on it, and the message is signed for its domain), else 550 5.7.1.
    /// A message without `From:` is signed for the envelope sender's domain, which was checked.
    async fn check_from(&self, user: &Account, message: &[u8]) -> Option<DeliveryResult> {
        for address in auth::header_from_addresses(message).unwrap_or_default() {
            match self
                .store
                .may_send_as(user.id, &user.address, &address)
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(
                        user = user.address,
                        from = address,
                        "From: address not owned"
                    );
                    metrics::counter!("postern_smtp_policy_refusals_total", "reason" => "from_not_owned")
                        .increment(1);
                    return Some(DeliveryResult::Refused(Reply::new(
                        550,
                        (5, 7, 1),
                        "From: header address not owned by the logged-in user",
                    )));
                }
                Err(e) => {
                    tracing::error!(error = %e, "From: check failed");
                    return Some(DeliveryResult::Unavailable);
                }
            }
        }
        None
    }

    /// The DKIM signatures (RFC 6376 §5; RFC 8463) of `message` for its `From:` domain, else for
    /// `fallback_domain` (the envelope sender's, which was checked); empty when that domain has no
    /// keys.
    async fn signatures(&self, message: &[u8], fallback_domain: &str) -> Vec<u8> {
        let domain = auth::header_from_domain(message)
            .unwrap_or_else(|| fallback_domain.to_ascii_lowercase());
        match self.store.signing_keys(&domain).await {
            Ok(keys) if keys.is_empty() => {
                tracing::info!(domain, "domain has no DKIM keys: sending unsigned");
                Vec::new()
            }
            Ok(keys) => auth::sign(&keys, message),
            Err(e) => {
                tracing::warn!(domain, error = %e, "no DKIM keys: sending unsigned");
                Vec::new()
            }
        }
    }

    /// `message` with its [signatures](Self::signatures) put before it.
    pub(crate) async fn sign_message(&self, message: &[u8], fallback_domain: &str) -> Vec<u8> {
        let mut signed = self.signatures(message, fallback_domain).await;
        signed.extend_from_slice(message);
        signed
    }
}

/// 550 5.7.1 with the script's reason when every recipient's script rejected the message
/// (RFC 5429 §2.1: refuse in the SMTP transaction rather than bounce), else `None`.
fn every_recipient_rejected(d: &Delivery, rejects: &[(String, String)]) -> Option<DeliveryResult> {
    let all = d
        .recipients
        .iter()
        .all(|r| r.remote.is_empty() && rejects.iter().any(|(a, _)| *a == r.address));
    let (_, reason) = rejects.first()?;
    all.then(|| DeliveryResult::Refused(Reply::new(550, (5, 7, 1), reply_text(reason))))
}
