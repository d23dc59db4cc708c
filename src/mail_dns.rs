//! The DNS records that make a hosted mail domain work, synthesised from the store: MX, SPF, DKIM
//! keys, DMARC, MTA-STS and TLS-RPT, RFC 6186 SRV records, and the autoconfig/autodiscover/mta-sts
//! names; plus A/AAAA for the mail host name per DNS view (internal addresses inside, public ones
//! outside). Zone files and admin records override them (the DNS server merges by precedence).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use postern_admin_web::ClientSettings;
use postern_store::{DkimKey, Store, StoreError};
use serde::Deserialize;

use crate::tls::Certificates;

/// The `[mail]` table: what is published for every hosted domain.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// SPF record (RFC 7208); exactly one is published per domain.
    pub spf: String,
    /// DMARC policy: `none`, `quarantine` or `reject` (RFC 7489 §6.3).
    pub dmarc_policy: String,
    /// Where aggregate DMARC reports go (`mailto:...`); none if empty.
    pub dmarc_rua: String,
    /// MTA-STS mode: `enforce`, `testing` or `none` (RFC 8461 §3.2).
    pub mta_sts_mode: String,
    /// MTA-STS policy lifetime in seconds.
    pub mta_sts_max_age: u32,
    /// Where TLS reports go (RFC 8460); `mailto:postmaster@<domain>` if empty.
    pub tls_rpt_rua: String,
    /// TTL of the synthesised records.
    pub ttl: u32,
    /// Ports clients are told to use (they may differ from the bound ports behind NAT).
    pub ports: PublicPorts,
    /// Per DNS view, the addresses the mail host name resolves to there. Views not listed get the
    /// records without addresses for the host name (a zone file provides them).
    pub views: BTreeMap<String, ViewAddresses>,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            spf: "v=spf1 mx -all".to_owned(),
            dmarc_policy: "quarantine".to_owned(),
            dmarc_rua: String::new(),
            mta_sts_mode: "testing".to_owned(),
            mta_sts_max_age: 604_800,
            tls_rpt_rua: String::new(),
            ttl: 3600,
            ports: PublicPorts::default(),
            views: BTreeMap::new(),
        }
    }
}

impl MailConfig {
    /// Checks values serde cannot: the enumerations and the SPF record's shape. The error names
    /// the offending key of `[mail]` (for its position in the file) and says what is wrong.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !["none", "quarantine", "reject"].contains(&self.dmarc_policy.as_str()) {
            return Err((
                "dmarc_policy",
                format!(
                    "mail.dmarc_policy {:?}: use none, quarantine or reject",
                    self.dmarc_policy
                ),
            ));
        }
        if !["enforce", "testing", "none"].contains(&self.mta_sts_mode.as_str()) {
            return Err((
                "mta_sts_mode",
                format!(
                    "mail.mta_sts_mode {:?}: use enforce, testing or none",
                    self.mta_sts_mode
                ),
            ));
        }
        if !self.spf.starts_with("v=spf1") {
            return Err((
                "spf",
                format!("mail.spf {:?} must start with v=spf1", self.spf),
            ));
        }
        for (key, rua) in [
            ("dmarc_rua", &self.dmarc_rua),
            ("tls_rpt_rua", &self.tls_rpt_rua),
        ] {
            if !rua.is_empty() && !rua.starts_with("mailto:") && !rua.starts_with("https:") {
                return Err((
                    key,
                    format!("mail.{key} {rua:?} must start with mailto: or https:"),
                ));
            }
        }
        Ok(())
    }
}

/// Public ports of the mail services (RFC 6186, RFC 8314).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PublicPorts {
    /// IMAP over TLS.
    pub imaps: u16,
    /// IMAP with STARTTLS.
    pub imap: u16,
    /// Submission over TLS.
    pub submissions: u16,
    /// Submission with STARTTLS.
    pub submission: u16,
}

impl Default for PublicPorts {
    fn default() -> Self {
        PublicPorts {
            imaps: 993,
            imap: 143,
            submissions: 465,
            submission: 587,
        }
    }
}

/// Addresses of the mail host name in one view.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewAddresses {
    /// IPv4 and IPv6 addresses.
    pub addresses: Vec<IpAddr>,
}

/// One synthesised record in presentation format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailRecord {
    /// Owner name, fully qualified with a trailing dot.
    pub name: String,
    /// TTL in seconds.
    pub ttl: u32,
    /// Record type.
    pub rtype: &'static str,
    /// RDATA in zone-file syntax.
    pub data: String,
}

impl std::fmt::Display for MailRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} IN {} {}",
            self.name, self.ttl, self.rtype, self.data
        )
    }
}

/// TXT RDATA for `text`, split into quoted character-strings of at most 255 bytes (RFC 1035
/// §3.3.14; DKIM keys are longer than one string may be).
pub fn txt_data(text: &str) -> String {
    postern_dns::zone::character_strings(text.as_bytes())
}

/// The id of the `_mta-sts` record: changes whenever the policy text changes (RFC 8461 §3.1).
pub fn mta_sts_id(policy: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(policy.as_bytes())[..10])
}

/// The records for one hosted domain (view-independent part). Host name and ports come from
/// `client`, what autoconfig and autodiscover tell clients, so DNS and HTTP always agree; a port
/// of 0 (service off) gets `SRV 0 0 0 .` (RFC 6186 §3.4). `_mta-sts` is published only with the
/// policy it announces (`None` while the policy is not served, RFC 8461 §3.3).
pub fn domain_records(
    domain: &str,
    keys: &[DkimKey],
    cfg: &MailConfig,
    client: &ClientSettings,
    mta_sts_policy: Option<&str>,
) -> Vec<MailRecord> {
    let d = format!("{domain}.");
    let host = format!("{}.", client.hostname);
    let rec = |name: String, rtype: &'static str, data: String| MailRecord {
        name,
        ttl: cfg.ttl,
        rtype,
        data,
    };
    let mut out = vec![
        rec(d.clone(), "MX", format!("10 {host}")),
        rec(d.clone(), "TXT", txt_data(&cfg.spf)),
    ];
    for k in keys {
        out.push(rec(
            format!("{}._domainkey.{d}", k.selector),
            "TXT",
            txt_data(&k.txt()),
        ));
    }
    let mut dmarc = format!("v=DMARC1; p={}", cfg.dmarc_policy);
    if !cfg.dmarc_rua.is_empty() {
        dmarc.push_str(&format!("; rua={}", cfg.dmarc_rua));
    }
    out.push(rec(format!("_dmarc.{d}"), "TXT", txt_data(&dmarc)));
    if cfg.mta_sts_mode != "none" {
        if let Some(policy) = mta_sts_policy {
            out.push(rec(
                format!("_mta-sts.{d}"),
                "TXT",
                txt_data(&format!("v=STSv1; id={}", mta_sts_id(policy))),
            ));
        }
        out.push(rec(format!("mta-sts.{d}"), "CNAME", host.clone()));
    }
    let rua = if cfg.tls_rpt_rua.is_empty() {
        format!("mailto:postmaster@{domain}")
    } else {
        cfg.tls_rpt_rua.clone()
    };
    out.push(rec(
        format!("_smtp._tls.{d}"),
        "TXT",
        txt_data(&format!("v=TLSRPTv1; rua={rua}")),
    ));
    for (service, port) in [
        ("_submissions._tcp", client.submissions_port),
        ("_submission._tcp", client.submission_port),
        ("_imaps._tcp", client.imaps_port),
        ("_imap._tcp", client.imap_port),
    ] {
        let data = if port != 0 {
            format!("0 1 {port} {host}")
        } else {
            "0 0 0 .".to_owned()
        };
        out.push(rec(format!("{service}.{d}"), "SRV", data));
    }
    out.push(rec(format!("autoconfig.{d}"), "CNAME", host.clone()));
    out.push(rec(format!("autodiscover.{d}"), "CNAME", host.clone()));
    out.push(rec(
        format!("_autodiscover._tcp.{d}"),
        "SRV",
        // An SRV target must be an address name, not an alias (RFC 2782, RFC 2181 §10.3).
        format!("0 1 443 {host}"),
    ));
    out
}

/// Whether the MTA-STS policy is served over HTTPS here, which `_mta-sts` must wait for (RFC
/// 8461 §3.3: a sender that finds the record fetches the policy, and a policy it cannot fetch
/// over validated HTTPS leaves it without one).
#[derive(Debug, Clone)]
pub enum PolicyHttps {
    /// No HTTPS admin listener serves it: `_mta-sts` is not published.
    NotServed,
    /// Served with these certificates: published for the domains whose `mta-sts.` name a valid
    /// certificate covers.
    Served(Certificates),
    /// Assumed (records printed for another server to publish).
    Assumed,
}

/// The one snapshot of what a mail domain publishes, in DNS and over HTTP (autoconfig,
/// autodiscover, the MTA-STS policy); swapped whole on SIGHUP, so both change together.
#[derive(Debug, Clone)]
pub struct Publish {
    /// The `[mail]` table.
    pub mail: MailConfig,
    /// Host name and public ports clients are told, and the MTA-STS policy's settings.
    pub client: Arc<ClientSettings>,
    /// Where the MTA-STS policy is served.
    pub policy_https: PolicyHttps,
}

impl Publish {
    /// What `running` publishes with the `[mail]` table of `mail_from` (the same configuration at
    /// start; the re-read one on SIGHUP, while host name and listeners stay those running).
    pub fn from_config(
        running: &crate::config::Loaded,
        mail_from: &crate::config::Loaded,
        policy_https: PolicyHttps,
    ) -> Publish {
        let mail = mail_from.config.mail.clone();
        Publish {
            client: Arc::new(running.client_settings(&mail)),
            mail,
            policy_https,
        }
    }

    /// The MTA-STS policy `domain` announces in DNS, if its `_mta-sts` record is published.
    pub fn mta_sts_policy(&self, domain: &str) -> Option<String> {
        let served = match &self.policy_https {
            PolicyHttps::NotServed => false,
            PolicyHttps::Served(certs) => certs.serves_valid(&format!("mta-sts.{domain}")),
            PolicyHttps::Assumed => true,
        };
        (served && self.mail.mta_sts_mode != "none").then(|| self.client.mta_sts_policy())
    }

    /// Every synthesised record of `domain` for `view` (`None`: without the host's addresses).
    pub async fn records_for(
        &self,
        store: &postern_store::Store,
        domain: &str,
        view: Option<&str>,
    ) -> Result<Vec<MailRecord>, postern_store::StoreError> {
        let keys = store.dkim_keys(domain).await?;
        let policy = self.mta_sts_policy(domain);
        let mut out = domain_records(domain, &keys, &self.mail, &self.client, policy.as_deref());
        if let Some(addrs) = view.and_then(|v| self.mail.views.get(v)) {
            out.extend(host_records(
                &self.client.hostname,
                &addrs.addresses,
                self.mail.ttl,
            ));
        }
        Ok(out)
    }

    /// The records of `domain` for `view`, or for every view of `[mail.views]` (once without
    /// the host's addresses when none is listed): what `postern dns records` prints and the admin
    /// UI's domain page shows.
    pub async fn records_by_view(
        &self,
        store: &Store,
        domain: &str,
        view: Option<&str>,
    ) -> Result<Vec<(Option<String>, Vec<MailRecord>)>, StoreError> {
        let views: Vec<Option<String>> = match view {
            Some(v) => vec![Some(v.to_owned())],
            None if self.mail.views.is_empty() => vec![None],
            None => self.mail.views.keys().cloned().map(Some).collect(),
        };
        let mut out = Vec::with_capacity(views.len());
        for v in views {
            let records = self.records_for(store, domain, v.as_deref()).await?;
            out.push((v, records));
        }
        Ok(out)
    }
}

/// The admin UI's source of a domain's mail records; it reads the [`Publish`] a reload swaps.
pub struct PublishedRecords {
    /// What synthesis needs, current.
    pub publish: Arc<ArcSwap<Publish>>,
    /// The store (DKIM keys).
    pub store: Store,
}

impl postern_admin_web::MailRecords for PublishedRecords {
    fn for_domain<'a>(
        &'a self,
        domain: &'a str,
    ) -> postern_admin_web::BoxFuture<'a, Result<postern_admin_web::RecordsByView, StoreError>>
    {
        Box::pin(async move {
            let publish = self.publish.load_full();
            let views = publish.records_by_view(&self.store, domain, None).await?;
            Ok(views
                .into_iter()
                .map(|(v, records)| (v, records.iter().map(ToString::to_string).collect()))
                .collect())
        })
    }
}

/// A and AAAA records of the mail host name in one view.
pub fn host_records(hostname: &str, addresses: &[IpAddr], ttl: u32) -> Vec<MailRecord> {
    addresses
        .iter()
        .map(|a| MailRecord {
            name: format!("{hostname}."),
            ttl,
            rtype: if a.is_ipv4() { "A" } else { "AAAA" },
            data: a.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(selector: &str, public: &str) -> DkimKey {
        DkimKey {
            domain: "example.test".into(),
            selector: selector.into(),
            algorithm: postern_store::DkimAlgorithm::Rsa,
            private_pkcs8: vec![],
            public_key: public.into(),
            state: postern_store::DkimState::Active,
        }
    }

    #[test]
    fn long_txt_is_split_into_255_byte_strings() {
        let long = "p".repeat(400);
        let data = txt_data(&long);
        assert_eq!(
            data,
            format!("\"{}\" \"{}\"", "p".repeat(255), "p".repeat(145))
        );
        assert_eq!(txt_data("say \"hi\""), "\"say \\\"hi\\\"\"");
        assert_eq!(
            txt_data("café"),
            "\"caf\\195\\169\"",
            "octets, never split inside a character"
        );
    }

    #[test]
    fn domain_records_cover_mail_dns() {
        let cfg = MailConfig {
            dmarc_rua: "mailto:dmarc@example.test".into(),
            ..MailConfig::default()
        };
        let client = ClientSettings {
            hostname: "mail.example.test".into(),
            imaps_port: 993,
            imap_port: 0,
            submissions_port: 465,
            submission_port: 587,
            mta_sts_mode: "testing".into(),
            mta_sts_max_age: 86400,
        };
        let keys = [key("pst1r", &"A".repeat(392))];
        let recs = domain_records("example.test", &keys, &cfg, &client, Some("policy"));
        let find = |name: &str, t: &str| {
            recs.iter()
                .filter(|r| r.name == name && r.rtype == t)
                .map(|r| r.data.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(find("example.test.", "MX"), ["10 mail.example.test."]);
        assert_eq!(
            find("example.test.", "TXT"),
            ["\"v=spf1 mx -all\""],
            "exactly one SPF record"
        );
        let dkim = &find("pst1r._domainkey.example.test.", "TXT")[0];
        assert!(
            dkim.starts_with("\"v=DKIM1; k=rsa; p=AAA") && dkim.contains("\" \""),
            "{dkim}"
        );
        assert_eq!(
            find("_dmarc.example.test.", "TXT"),
            ["\"v=DMARC1; p=quarantine; rua=mailto:dmarc@example.test\""]
        );
        assert_eq!(
            find("_mta-sts.example.test.", "TXT"),
            [format!("\"v=STSv1; id={}\"", mta_sts_id("policy"))]
        );
        assert_eq!(
            find("_smtp._tls.example.test.", "TXT"),
            ["\"v=TLSRPTv1; rua=mailto:postmaster@example.test\""]
        );
        assert_eq!(
            find("_imaps._tcp.example.test.", "SRV"),
            ["0 1 993 mail.example.test."]
        );
        assert_eq!(
            find("_imap._tcp.example.test.", "SRV"),
            ["0 0 0 ."],
            "a service that is off says so"
        );
        assert_eq!(
            find("_submission._tcp.example.test.", "SRV"),
            ["0 1 587 mail.example.test."]
        );
        assert_eq!(
            find("autoconfig.example.test.", "CNAME"),
            ["mail.example.test."]
        );
        assert_eq!(
            find("mta-sts.example.test.", "CNAME"),
            ["mail.example.test."]
        );
        assert_ne!(mta_sts_id("a"), mta_sts_id("b"));
        let unserved = domain_records("example.test", &keys, &cfg, &client, None);
        assert!(
            !unserved.iter().any(|r| r.name.starts_with("_mta-sts.")),
            "no _mta-sts while the policy is not served"
        );
    }

    #[test]
    fn host_records_per_family() {
        let recs = host_records(
            "mail.example.test",
            &["10.0.0.5".parse().unwrap(), "2001:db8::5".parse().unwrap()],
            60,
        );
        assert_eq!(recs[0].to_string(), "mail.example.test. 60 IN A 10.0.0.5");
        assert_eq!(recs[1].rtype, "AAAA");
    }

    #[test]
    fn validation() {
        assert!(MailConfig::default().validate().is_ok());
        assert!(MailConfig {
            dmarc_policy: "drop".into(),
            ..MailConfig::default()
        }
        .validate()
        .is_err());
        assert!(MailConfig {
            mta_sts_mode: "on".into(),
            ..MailConfig::default()
        }
        .validate()
        .is_err());
        assert!(MailConfig {
            spf: "mx".into(),
            ..MailConfig::default()
        }
        .validate()
        .is_err());
        assert!(MailConfig {
            dmarc_rua: "dmarc@x".into(),
            ..MailConfig::default()
        }
        .validate()
        .is_err());
    }
}
