//! SIGHUP: re-read `postern.toml`, apply what can change at run time, and name every changed
//! key that only a restart applies.
//!
//! Applied at once: `log_level`, `[dns]` (views, zones, keys), `[tls]` certificates, `[mail]`
//! (what DNS publishes and what the admin listener tells clients, from one snapshot), the SMTP session limits ([`postern_smtp::SmtpLimits::KEYS`])
//! and the IMAP connection settings ([`postern_imap::ImapSettings::KEYS`]) for sessions that start
//! after the reload. Everything else (listeners, `database_url`, `data_dir`, `hostname`, `[net]`,
//! `[login]`, `[admin]`, `[acme]`, the other `[smtp]`/`[imap]` keys ...) is sized or bound at
//! start: a change is logged as `KEY changed: restart to apply`, and the running value stays.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::{self, Loaded};
use crate::dns_service::DnsService;
use crate::logging::LogHandle;
use crate::mail_dns::Publish;
use crate::tls::Certificates;

/// The parts of the running server a reload can change.
pub struct Running {
    /// The log filter.
    pub log: LogHandle,
    /// The served certificates.
    pub certs: Certificates,
    /// What hosted mail domains publish in DNS and over HTTP (one snapshot for both).
    pub publish: Arc<ArcSwap<Publish>>,
    /// The DNS service, when DNS listens.
    pub dns: Option<DnsService>,
    /// The SMTP session limits, when SMTP listens.
    pub smtp: Option<postern_smtp::SmtpLimits>,
    /// The IMAP connection settings, when IMAP listens.
    pub imap: Option<postern_imap::ImapSettings>,
}

impl Running {
    /// Re-reads `current.path` and applies what can change at run time: DNS views and zones
    /// first (the likeliest to be refused, and swapped atomically), then certificates, the log
    /// filter and the mail session limits. A configuration that does not parse, or zones that do
    /// not load, change nothing. Changed keys that need a restart are logged as warnings.
    pub async fn reload(&self, current: &Loaded) -> anyhow::Result<Loaded> {
        let next = config::load(&current.path)?;
        let before = self.publish.load_full();
        self.publish.store(Arc::new(Publish::from_config(
            current,
            &next,
            before.policy_https.clone(),
        )));
        if let Some(dns) = &self.dns {
            if let Err(e) = dns.reload(&next).await {
                self.publish.store(before);
                return Err(e);
            }
        }
        self.certs.reload(
            next.config.tls.as_ref(),
            &next.config.data_dir,
            &next.config.hostname,
        )?;
        self.log.set_filter(next.config.log_level.get_ref())?;
        if let Some(smtp) = &self.smtp {
            smtp.apply(&next.config.smtp);
        }
        if let Some(imap) = &self.imap {
            imap.apply(&next.config.imap);
        }
        for key in restart_keys(&current.text, &next.text) {
            tracing::warn!(key = %key, "{key} changed: restart to apply");
        }
        Ok(next)
    }
}

/// The dotted keys whose value differs between two configuration texts and that a reload does
/// not apply, in file order of their names. Texts that do not parse compare as empty (both were
/// validated before this is called).
pub fn restart_keys(old: &str, new: &str) -> Vec<String> {
    let (old, new) = (flatten(old), flatten(new));
    let mut keys: Vec<String> = old
        .keys()
        .chain(new.keys())
        .filter(|k| old.get(*k) != new.get(*k) && !applied(k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Whether a reload applies a change of `key`.
fn applied(key: &str) -> bool {
    let (section, rest) = key.split_once('.').unwrap_or((key, ""));
    match section {
        // DNS records and what the admin listener tells clients share one snapshot.
        "log_level" | "dns" | "tls" | "mail" => true,
        "smtp" => postern_smtp::SmtpLimits::KEYS.contains(&rest),
        "imap" => postern_imap::ImapSettings::KEYS.contains(&rest),
        _ => false,
    }
}

/// Every leaf of a TOML document under its dotted key; arrays are leaves.
fn flatten(text: &str) -> BTreeMap<String, toml::Value> {
    fn walk(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, toml::Value>) {
        for (k, v) in table {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(t) => walk(&key, t, out),
                other => {
                    out.insert(key, other.clone());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    if let Ok(table) = text.parse::<toml::Table>() {
        walk("", &table, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_restart_keys_and_skips_applied_ones() {
        let old = "log_level = \"info\"\n[listeners]\nadmin = [\"127.0.0.1:0\"]\n\
                   [smtp]\nmax_message_size = 1000\nqueue_concurrency = 4\n[dns]\nzones_dir = \"a\"\n";
        let new = "log_level = \"debug\"\n[listeners]\nadmin = [\"127.0.0.1:1\"]\n\
                   [smtp]\nmax_message_size = 2000\nqueue_concurrency = 5\n[dns]\nzones_dir = \"b\"\n\
                   [net]\nmax_per_ip = 3\n";
        assert_eq!(
            restart_keys(old, new),
            [
                "listeners.admin",
                "net.max_per_ip",
                "smtp.queue_concurrency"
            ]
        );
        assert!(restart_keys(old, old).is_empty());
        assert!(
            restart_keys(
                "",
                "[mail.ports]\nimap = 1\n[mail]\ndmarc_policy = \"none\"\nmta_sts_mode = \"enforce\"\n"
            )
            .is_empty(),
            "[mail] applies at once, in DNS and over HTTP"
        );
    }
}
