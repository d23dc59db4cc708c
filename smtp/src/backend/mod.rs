//! Performs a session's actions against the store: logins (through the store's one login service), sender ownership,
//! recipient resolution with quota checks ([`recipient`]), and durable acceptance of messages
//! ([`deliver`]).

mod deliver;
mod recipient;

use std::net::IpAddr;
use std::sync::Arc;

use postern_store::{LoginAttempt, LoginOutcome, Service, Store};

use crate::config::SmtpConfig;
use crate::message::Receiving;
use crate::resolver::Resolver;
use crate::session::{Action, AuthResult, DeliveryResult, RecipientResult, SenderResult, Session};
use crate::srs::Srs;

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
}

/// A fresh queue id for the log and the `250` reply.
fn message_id() -> String {
    format!("{:016X}", rand::random::<u64>())
}
