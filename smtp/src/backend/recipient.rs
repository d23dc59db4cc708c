//! Recipient checks at RCPT: resolution (role addresses, SRS bounces, address literals), the
//! full-mailbox refusal, and the block list and greylisting policy of the MX.

use std::collections::BTreeSet;
use std::net::IpAddr;

use postern_store::{normalize_address, Greylist, Resolution, UserSpace, ROLE_LOCAL_PARTS};

use super::Backend;
use crate::auth;
use crate::policy;
use crate::reply::Reply;
use crate::session::{literal_ip, RecipientResult, POSTMASTER};
use crate::srs;

impl Backend {
    /// Resolves a recipient (role addresses through [`postern_store::Store::resolve_role`]); a single local
    /// mailbox that is already full (or cannot take the announced size) is refused with 452 at RCPT.
    pub(super) async fn check_recipient(
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
    pub(super) async fn mx_policy(
        &self,
        ip: IpAddr,
        sender: &str,
        recipient: &str,
    ) -> Option<Reply> {
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
