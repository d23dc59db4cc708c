//! Local delivery through the users' Sieve scripts (RFC 5228): one filter run per local user,
//! whose plan becomes that user's copies; redirects leave with an SRS envelope sender, vacation
//! replies with the null sender (RFC 3834 §3.3). A script that fails never loses mail: the copy
//! goes to INBOX and the failure is logged.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use postern_sieve::filter::{self, AutoReply, Delivery as FilterDelivery, Plan};
use postern_store::{
    BlobSource, DsnRequest, Incoming, JunkTraining, LocalCopy, Resolution, StoreError,
};

use crate::backend::Backend;
use crate::dsn;
use crate::srs;

/// Most times one message is redirected from user to user before the chain stops (each hop adds
/// a `Delivered-To:`; a repeated one stops it sooner).
const MAX_HOPS: usize = 8;

/// The local outcome of a delivery.
#[derive(Debug, Default)]
pub(crate) struct Filed {
    /// Copies to store with the message.
    pub copies: Vec<LocalCopy>,
    /// Recipients whose script rejected the message (RFC 5429), with the reason.
    pub rejects: Vec<(String, String)>,
    /// Replies to send once the message is accepted.
    pub replies: Vec<AutoReply>,
    /// How many messages each target user's junk statistics were trained with, read with their
    /// filters ([`postern_store::Store::delivery_filters`]).
    pub junk: BTreeMap<i64, JunkTraining>,
}

/// One local user reached by a recipient address.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The RCPT TO address (Sieve's `envelope "to"`).
    pub address: String,
    /// The user.
    pub user_id: i64,
}

impl Backend {
    /// Runs each target user's scripts over `message` and returns their copies; `folder` is where
    /// a kept copy goes (INBOX, or Junk for DMARC-junk mail). Redirects are queued here.
    pub(crate) fn file_local<'a>(
        &'a self,
        message: &'a [u8],
        sender: &'a str,
        targets: &'a [Target],
        folder: &'a str,
        hops: usize,
    ) -> Pin<Box<dyn Future<Output = Filed> + Send + 'a>> {
        Box::pin(async move {
            let mut filed = Filed::default();
            let mut seen = std::collections::BTreeSet::new();
            for target in targets.iter().filter(|t| seen.insert(t.user_id)) {
                let (plan, user, junk) = self.plan_for(message, sender, target).await;
                if let Some(junk) = junk {
                    filed.junk.insert(target.user_id, junk);
                }
                if let Some(reason) = plan.reject {
                    tracing::info!(user_id = target.user_id, "sieve rejected the message");
                    filed.rejects.push((target.address.clone(), reason));
                    continue;
                }
                let mut copies: Vec<LocalCopy> = plan
                    .copies
                    .into_iter()
                    .map(|c| LocalCopy {
                        user_id: target.user_id,
                        folder: if c.folder.eq_ignore_ascii_case("INBOX") {
                            folder.to_owned()
                        } else {
                            c.folder
                        },
                        flags: c.flags,
                    })
                    .collect();
                if !plan.redirects.is_empty() {
                    if let Err(e) = self
                        .redirect(message, sender, &user, &plan.redirects, hops)
                        .await
                    {
                        tracing::warn!(user_id = target.user_id, error = %e, "redirect failed; keeping the message");
                        if copies.is_empty() {
                            copies.push(LocalCopy::new(target.user_id, folder));
                        }
                    }
                }
                filed.copies.extend(copies);
                filed.replies.extend(plan.replies);
            }
            filed
        })
    }

    /// The plan of `target`'s scripts, or keep in INBOX if there are none or they fail; also the
    /// user's address (the RCPT address when no script ran) and how much the user's junk
    /// statistics were trained (read with the scripts; `None` if that read failed).
    async fn plan_for(
        &self,
        message: &[u8],
        sender: &str,
        target: &Target,
    ) -> (Plan, String, Option<JunkTraining>) {
        let filters = match self.store.delivery_filters(target.user_id).await {
            Ok(filters) => filters,
            Err(e) => {
                tracing::error!(user_id = target.user_id, error = %e, "sieve: loading scripts failed; keeping in INBOX");
                return (Plan::keep(), target.address.clone(), None);
            }
        };
        let junk = Some(filters.junk);
        let fallback = || (Plan::keep(), target.address.clone(), junk);
        let scripts = filter::scripts_of(&filters);
        if scripts.is_empty() {
            return fallback();
        }
        let user = match self.store.user_by_id(target.user_id).await {
            Ok(Some(user)) => user.address.to_string(),
            Ok(None) => return fallback(),
            Err(e) => {
                tracing::error!(user_id = target.user_id, error = %e, "sieve: user lookup failed; keeping in INBOX");
                return fallback();
            }
        };
        let delivery = FilterDelivery {
            sender,
            recipient: &target.address,
            user: &user,
        };
        match filter::filter(
            &self.store,
            &self.hostname,
            target.user_id,
            delivery,
            message,
            &scripts,
        )
        .await
        {
            Ok(plan) => {
                metrics::counter!("postern_sieve_runs_total", "result" => "ok").increment(1);
                (plan, user, junk)
            }
            Err(e) => {
                metrics::counter!("postern_sieve_runs_total", "result" => "error").increment(1);
                tracing::warn!(user, error = %e, "sieve failed; the message goes to INBOX");
                (Plan::keep(), user, junk)
            }
        }
    }

    /// Sends `message` on to `targets` for `user` (RFC 5228 §4.2) with `Delivered-To:` added and
    /// the sender rewritten by SRS; local targets are filtered again. A message that already
    /// passed this user (a loop) or too many hops is not sent: that is an error, so it is kept.
    async fn redirect(
        &self,
        message: &[u8],
        sender: &str,
        user: &str,
        targets: &[String],
        hops: usize,
    ) -> Result<(), RedirectError> {
        if hops >= MAX_HOPS || delivered_to(message, user) {
            return Err(RedirectError::Loop);
        }
        let mut forwarded = format!("Delivered-To: {user}\r\n").into_bytes();
        forwarded.extend_from_slice(message);
        let domain = crate::auth::domain_of(user);
        let env_sender = self.srs.forward(sender, domain, srs::today());
        let mut remote = Vec::new();
        let mut local = Vec::new();
        for target in targets {
            match self.store.resolve_recipient(target).await? {
                Resolution::NotHosted => remote.push(target.clone()),
                Resolution::Unknown => {
                    tracing::warn!(target, "redirect to an unknown local address dropped")
                }
                Resolution::Deliver {
                    local: users,
                    remote: more,
                } => {
                    local.extend(users.into_iter().map(|user_id| Target {
                        address: target.clone(),
                        user_id,
                    }));
                    remote.extend(more);
                }
            }
        }
        // Local users see the original sender (SPF plays no part here), so their vacation
        // replies and rejects reach it directly.
        let filed = self
            .file_local(&forwarded, sender, &local, "INBOX", hops + 1)
            .await;
        let now = postern_store::unix_now();
        let expires_at = now + self.config.queue_lifetime_secs as i64;
        if !filed.copies.is_empty() || !remote.is_empty() {
            self.store
                .accept(Incoming {
                    raw: BlobSource::Bytes(&forwarded),
                    internal_date: now,
                    local: &filed.copies,
                    sender: &env_sender,
                    remote: &remote,
                    remote_dsn: &[],
                    expires_at,
                })
                .await?;
        }
        self.send_replies(&filed.replies).await;
        let no_dsn = DsnRequest::default();
        let failures: Vec<_> = filed
            .rejects
            .iter()
            .map(|(recipient, reason)| dsn::local::rejected(recipient, &no_dsn, reason))
            .collect();
        let original = dsn::Original::new(sender, &forwarded, now, &no_dsn);
        dsn::send(
            &self.store,
            &self.hostname,
            expires_at,
            &original,
            &failures,
        )
        .await?;
        tracing::info!(
            user,
            redirects = targets.len(),
            sender = env_sender,
            "message redirected"
        );
        Ok(())
    }

    /// Sends vacation replies, DKIM-signed, with the null sender; failures are logged (a reply
    /// is optional).
    pub(crate) async fn send_replies(&self, replies: &[AutoReply]) {
        let expires_at = postern_store::unix_now() + self.config.queue_lifetime_secs as i64;
        for reply in replies {
            // Signed for the user's domain (the reply's From:), so it passes DMARC at the sender.
            let signed = self.sign_message(&reply.message, "").await;
            match dsn::send_null_sender(&self.store, &reply.to, &signed, expires_at).await {
                Ok(()) => tracing::info!(to = reply.to, "vacation reply sent"),
                Err(e) => tracing::warn!(to = reply.to, error = %e, "vacation reply failed"),
            }
        }
    }
}

/// The bounce lines for recipients whose script rejected the message (RFC 5429 §2.1).
/// `text` on one line of at most 200 printable ASCII characters, for an SMTP reply.
pub(crate) fn reply_text(text: &str) -> String {
    let line: String = dsn::one_line(text)
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(200)
        .collect();
    if line.is_empty() {
        "Message rejected by the recipient's filter".into()
    } else {
        line
    }
}

/// Why a redirect was not sent.
#[derive(Debug, thiserror::Error)]
enum RedirectError {
    /// The message already passed this user, or too many users.
    #[error("mail forwarding loop")]
    Loop,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether `message` carries `Delivered-To: <user>` in its header section (it passed here).
fn delivered_to(message: &[u8], user: &str) -> bool {
    let Some(parsed) = mail_parser::MessageParser::new().parse_headers(message) else {
        return false;
    };
    let found = parsed
        .header_values("Delivered-To")
        .filter_map(|v| v.as_text())
        .any(|v| v.trim().eq_ignore_ascii_case(user));
    found
}
