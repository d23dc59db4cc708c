//! Performs a session's actions against the store: logins (through the store's one login service), sender ownership,
//! recipient resolution with quota checks, and durable acceptance of messages.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use postern_store::{
    normalize_address, Accepted, DsnRequest, Greylist, Incoming, LocalCopy, LoginAttempt,
    LoginOutcome, Resolution, Service, Store, UserSpace, ROLE_LOCAL_PARTS,
};

use crate::antivirus::{self, Check};
use crate::auth::{self, Disposition};
use crate::config::SmtpConfig;
use crate::dsn;
use crate::junk;
use crate::local::{reply_text, Filed, Target};
use crate::message::{Message, Receiving};
use crate::policy;
use crate::reply::Reply;
use crate::resolver::Resolver;
use crate::session::{
    literal_ip, Account, Action, AuthResult, Delivery, DeliveryResult, RecipientResult,
    SenderResult, Session, POSTMASTER,
};
use crate::srs::{self, Srs};

/// What sessions share: the store (which owns the login service), the settings and the resolver
/// used for block lists and (through its mail-auth checker) mail authentication.
pub(crate) struct Backend {
    pub store: Store,
    pub config: Arc<SmtpConfig>,
    pub hostname: String,
    pub resolver: Resolver,
    /// Rewrites the envelope sender of redirected mail and reverses it for bounces.
    pub srs: Srs,
}

impl Backend {
    /// Performs `action` for a client at `ip` and reports the result to `session`; a delivery
    /// takes the message's data from `received`.
    pub async fn perform(
        &self,
        session: &mut Session,
        action: Action,
        ip: IpAddr,
        received: &mut Receiving,
    ) {
        match action {
            Action::Authenticate { username, password } => {
                let result = self.authenticate(ip, &username, &password).await;
                session.auth_result(result);
            }
            Action::CheckSender {
                user_id,
                user,
                address,
            } => {
                let result = match self.store.may_send_as(user_id, &user, &address).await {
                    Ok(true) => SenderResult::Owned,
                    Ok(false) => {
                        tracing::warn!(user, sender = address, "sender address not owned");
                        SenderResult::NotOwned
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "sender check failed");
                        SenderResult::Unavailable
                    }
                };
                session.sender_result(result);
            }
            Action::CheckRecipient {
                address,
                size,
                sender,
                authenticated,
            } => {
                let result = match self.check_recipient(&address, size).await {
                    Ok(RecipientResult::Deliver { local, remote }) if !authenticated => {
                        match self.mx_policy(ip, &sender, &address).await {
                            Some(refusal) => RecipientResult::Refused(refusal),
                            None => RecipientResult::Deliver { local, remote },
                        }
                    }
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(error = %e, "recipient check failed");
                        RecipientResult::Unavailable
                    }
                };
                session.recipient_result(address, result);
            }
            Action::Deliver(delivery) => {
                let source = if delivery.user.is_some() {
                    "submission"
                } else {
                    "mx"
                };
                let result = match std::mem::take(received).finish().await {
                    Ok(message) => self.deliver(*delivery, message, ip).await,
                    Err(e) => {
                        tracing::error!(error = %e, "the received message cannot be read");
                        DeliveryResult::Unavailable
                    }
                };
                let outcome = match &result {
                    DeliveryResult::Accepted { .. } => "accepted",
                    DeliveryResult::MailboxFull => "mailbox_full",
                    DeliveryResult::Refused(_) => "refused",
                    DeliveryResult::Unavailable => "unavailable",
                };
                metrics::counter!("postern_smtp_messages_total", "source" => source, "result" => outcome)
                    .increment(1);
                session.delivery_result(result);
            }
        }
    }

    /// Checks a login with the store's one login service (limiter, verification, metrics and
    /// logs are all there; RFC 4954 §6 for the 454 when it refuses unverified).
    async fn authenticate(&self, ip: IpAddr, username: &str, password: &str) -> AuthResult {
        let attempt = LoginAttempt {
            service: Service::Smtp,
            client: ip,
            username,
            password,
        };
        match self.store.login(attempt).await {
            LoginOutcome::Success(user) => AuthResult::Success {
                user_id: user.id,
                address: user.address.to_string(),
            },
            LoginOutcome::Failed => AuthResult::Failed,
            LoginOutcome::Throttled { .. } => AuthResult::Throttled,
            LoginOutcome::Unavailable => AuthResult::Unavailable,
        }
    }

    /// Resolves a recipient (role addresses through [`Store::resolve_role`]); a single local
    /// mailbox that is already full (or cannot take the announced size) is refused with 452 at RCPT.
    async fn check_recipient(
        &self,
        address: &str,
        size: usize,
    ) -> postern_store::Result<RecipientResult> {
        let local_form = self.literal_as_local(address);
        let address = local_form.as_deref().unwrap_or(address);
        if let Some(result) = self.srs_bounce(address).await? {
            return Ok(result);
        }
        let (resolution, space) = match role_address(address) {
            Some(role) => (
                self.store
                    .resolve_role(role, self.config.postmaster.as_deref())
                    .await?,
                None,
            ),
            None => self.store.resolve_recipient_with_space(address).await?,
        };
        Ok(match resolution {
            Resolution::NotHosted => RecipientResult::NotHosted,
            Resolution::Unknown => RecipientResult::Unknown,
            Resolution::Deliver { local, remote } => {
                if remote.is_empty()
                    && local.len() == 1
                    && self.mailbox_full(address, &local, size, space).await?
                {
                    RecipientResult::MailboxFull
                } else {
                    RecipientResult::Deliver { local, remote }
                }
            }
        })
    }

    /// A recipient `SRS0=...@` a hosted domain: a bounce of mail we redirected goes on to the
    /// original sender if the address is ours and fresh, else 550 5.1.1.
    async fn srs_bounce(&self, address: &str) -> postern_store::Result<Option<RecipientResult>> {
        let Some((local, _)) = address.rsplit_once('@') else {
            return Ok(None);
        };
        if !local
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case("SRS0="))
        {
            return Ok(None);
        }
        if matches!(
            self.store.resolve_recipient(address).await?,
            Resolution::NotHosted
        ) {
            return Ok(None);
        }
        match self.srs.reverse(local, srs::today()) {
            Ok(original) => {
                tracing::info!(address, original, "SRS address reversed");
                Ok(Some(
                    match self.store.resolve_recipient(&original).await? {
                        Resolution::NotHosted => RecipientResult::Deliver {
                            local: BTreeSet::new(),
                            remote: BTreeSet::from([original]),
                        },
                        Resolution::Deliver { local, remote } => {
                            RecipientResult::Deliver { local, remote }
                        }
                        Resolution::Unknown => RecipientResult::Unknown,
                    },
                ))
            }
            Err(e) => {
                tracing::info!(address, error = %e, "SRS address refused");
                Ok(Some(RecipientResult::Refused(Reply::new(
                    550,
                    (5, 1, 1),
                    format!("Invalid SRS address: {e}"),
                ))))
            }
        }
    }

    /// `user@[ip]` as `user@domain` when `[smtp] address_literals` maps that address of this
    /// server to a hosted domain (RFC 5321 §4.1.3).
    fn literal_as_local(&self, address: &str) -> Option<String> {
        let (local, domain) = address.rsplit_once('@')?;
        let hosted = self.config.address_literals.get(&literal_ip(domain)?)?;
        Some(format!("{local}@{hosted}"))
    }

    /// Whether the user an address names directly (or through `+tag`) is out of space; `space`
    /// is that of the user with the exact address, if the resolution read it (no further query
    /// then).
    async fn mailbox_full(
        &self,
        address: &str,
        local: &BTreeSet<i64>,
        size: usize,
        space: Option<UserSpace>,
    ) -> postern_store::Result<bool> {
        let full = |s: UserSpace| {
            local.contains(&s.user_id)
                && s.quota_bytes > 0
                && (s.used_bytes >= s.quota_bytes || s.used_bytes + size as i64 > s.quota_bytes)
        };
        if let Some(s) = space {
            return Ok(full(s));
        }
        let Ok(a) = normalize_address(address) else {
            return Ok(false);
        };
        let base = a.local.split_once('+').map_or(a.local.as_str(), |(b, _)| b);
        for candidate in [a.to_string(), format!("{base}@{}", a.domain)] {
            if let Some(u) = self.store.user(&candidate).await? {
                return Ok(full(UserSpace {
                    user_id: u.id,
                    quota_bytes: u.quota_bytes,
                    used_bytes: u.used_bytes,
                }));
            }
        }
        Ok(false)
    }

    /// The block list (RFC 5782) and greylisting (RFC 6647) checks for an unauthenticated
    /// client's recipient: the refusal to send, if any.
    async fn mx_policy(&self, ip: IpAddr, sender: &str, recipient: &str) -> Option<Reply> {
        let config = &self.config;
        if !config.dnsbl.is_empty() && (config.dnsbl_check_private || policy::is_public(ip)) {
            if let Some(list) = policy::dnsbl_listed(&self.resolver, ip, &config.dnsbl).await {
                tracing::warn!(%ip, list, "client refused: on a block list");
                metrics::counter!("postern_smtp_policy_refusals_total", "reason" => "dnsbl")
                    .increment(1);
                return Some(Reply::new(
                    554,
                    (5, 7, 1),
                    format!("Service unavailable; client host [{ip}] blocked using {list}"),
                ));
            }
        }
        let domain = auth::domain_of(recipient).to_ascii_lowercase();
        if !config.greylists(&domain) {
            return None;
        }
        let delay = i64::try_from(config.greylist_delay_secs).unwrap_or(i64::MAX);
        let lifetime = i64::try_from(config.greylist_lifetime_secs).unwrap_or(i64::MAX);
        let network = policy::greylist_network(ip);
        match self
            .store
            .greylist(&network, sender, recipient, delay, lifetime)
            .await
        {
            Ok(Greylist::Pass) => None,
            Ok(Greylist::Defer(secs)) => {
                tracing::info!(%ip, sender, recipient, secs, "greylisted");
                metrics::counter!("postern_smtp_policy_refusals_total", "reason" => "greylist")
                    .increment(1);
                Some(Reply::new(451, (4, 7, 1), "greylisted, try again later"))
            }
            Err(e) => {
                // Greylisting only delays spam; a store error must not refuse mail for it.
                tracing::error!(error = %e, "greylist check failed");
                None
            }
        }
    }

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
    async fn deliver(&self, d: Delivery, message: Message, ip: IpAddr) -> DeliveryResult {
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

/// A fresh queue id for the log and the `250` reply.
fn message_id() -> String {
    format!("{:016X}", rand::random::<u64>())
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

/// A role address (`postmaster`, `abuse`; [`ROLE_LOCAL_PARTS`]): `Some(None)` for the bare
/// `postmaster`, `Some(Some(address))` for `role@domain`, `None` for any other address.
fn role_address(address: &str) -> Option<Option<&str>> {
    if address.eq_ignore_ascii_case(POSTMASTER) {
        return Some(None);
    }
    let (local, _) = address.rsplit_once('@')?;
    ROLE_LOCAL_PARTS
        .iter()
        .any(|r| local.eq_ignore_ascii_case(r))
        .then_some(Some(address))
}
